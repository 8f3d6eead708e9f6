"""Prefect tasks: thin wrappers that log, call one operation and return a typed result."""
