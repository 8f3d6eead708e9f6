"""Prefect flows: orchestrate (one environment), promote (one environment to the next), drift."""
