"""The shipping API's routes, one module per resource (each a Powertools ``Router``)."""
