"""The orders service: HTTP API, outbox relay and order status."""
