"""strataflow: deploy a platform's components into environments, in dependency order, with Prefect."""

__version__ = "0.1.0"
