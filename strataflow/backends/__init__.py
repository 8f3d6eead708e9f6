"""Backends: the only code that talks to clouds or runs deployment commands.

One package per backend (``cloudformation/``, ``arm/``, ``terraform/``, ``command/``); each
``__init__`` is its spec (config model, source files, settings: pure), and ``backend.py``
its operations, imported only when a component of that kind runs. ``registry`` is how the
core finds them; ``base`` is the protocol every backend implements; ``process`` runs
programs for every backend that runs one; ``memory`` is an in-memory test double.
"""
