"""The local suite's web console (``orderflow local`` serves it at ``/console/``)."""
