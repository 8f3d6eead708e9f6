"""Local emulators of cloud control planes for ``--sandbox`` runs and the tests.

``strataflow.sandbox.arm`` is an HTTPS Azure Resource Manager endpoint (standard library
plus ``cryptography`` for its certificate) that the real Azure SDK clients talk to.
"""
