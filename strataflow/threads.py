"""Threads that carry the caller's context.

A thread started with ``threading.Thread`` begins with an empty context: Prefect's
settings (which API), its flow and task run contexts and strataflow's progress sink are
not there. A thread that logs or calls the API on the caller's behalf starts with
``start``, in a copy of the caller's context.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from typing import Any


def start(target: Callable[..., Any], *args: Any, name: str | None = None) -> threading.Thread:
    """Run ``target(*args)`` in a new daemon thread, in a copy of the caller's context; return the thread."""
    thread = threading.Thread(target=contextvars.copy_context().run, args=(target, *args), name=name, daemon=True)
    thread.start()
    return thread


__all__ = ["start"]
