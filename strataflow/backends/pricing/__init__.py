"""Prices and spend from the clouds: the only code of the cost feature that talks to them.

Not a deployment backend (nothing registers it): the clients behind ``strata cost``.

- ``aws.py``: the AWS Price List Query API (boto3 ``pricing``, ``GetProducts``);
- ``azure.py``: the Azure Retail Prices API (httpx, ``NextPageLink`` pages);
- ``cache.py``: each answer kept for the day under ``$STRATA_HOME/prices/``, and the
  ``CachedPriceBook`` the pure estimate (``strataflow.cost``) asks;
- ``billing.py``: actual spend from AWS Cost Explorer and Azure Cost Management;
- ``connect.py``: the clients for the live clouds, the sandbox or another endpoint;
- ``errors.py``: the SDKs' exceptions as one-line ``PricingError``/``TransientError``;
- ``sandbox.py`` and ``snapshot/``: a local HTTP server speaking both price APIs (and Cost
  Management's query) from a dated snapshot of list prices, for ``--sandbox``.

This module is pure (the layer check counts it with the backends' specs): import the
submodules for the clients.
"""
