"""Orderflow's command line and local runtime (never deployed to Lambda)."""
