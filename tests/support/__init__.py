"""Shared test helpers: servers, fake backends, synthetic platforms."""
