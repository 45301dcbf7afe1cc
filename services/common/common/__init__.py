"""Orderflow's CommonLayer: what every function shares.

Modules are imported on demand so that a function pays only for what it uses:
``settings``, ``observability``, ``db``, ``events``, ``outbox``, ``publisher``,
``http`` and ``auth``.
"""
