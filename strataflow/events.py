"""Events from a running flow to whoever watches in the same process (the command line's view).

Pure and optional: a flow run by a worker has no listeners, and emitting costs nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

Listener = Callable[[str, str, dict[str, Any]], None]
"""Called with (component, status, details); status is 'running' or a final component status."""

_listeners: list[Listener] = []
_lock = threading.Lock()


def subscribe(listener: Listener) -> Callable[[], None]:
    """Start sending events to ``listener``; returns the function that stops it."""
    with _lock:
        _listeners.append(listener)

    def unsubscribe() -> None:
        with _lock:
            if listener in _listeners:
                _listeners.remove(listener)

    return unsubscribe


def emit(component: str, status: str, **details: Any) -> None:
    with _lock:
        listeners = list(_listeners)
    for listener in listeners:
        listener(component, status, details)
