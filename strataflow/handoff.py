"""Handing a component's result to the scheduler before its state record is written.

A component task does two things in turn: its backend call, then the write of its state
record to the Prefect API. The record write is synchronous for the task (so a finished task means a recorded component), but
a dependent needs only the outputs, so the task hands its result over as soon as the
backend returns and the scheduler starts the dependents and frees the parallelism slot
while the write is on its way. On the local server under load a write takes 70-190 ms
(median), up to seconds; paid on every edge of the critical path it cost 15-25% of the
makespan of a 200-component graph.

What the order of writes keeps: a component's record is written only after the records
of the components it waited for, so the records never show a component applied on top
of an upstream that is not recorded. A crash between a backend's return and its record's
write leaves that component unrecorded (as a crash during the backend call does): the
resume runs it again, and nothing downstream of it is recorded either. The flow waits for
every record before it writes the run's.

Pure threading: no Prefect here. Without a handoff (tasks in another process, the drift
flow) a component is released when its task finishes, record written.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable
from typing import Any, Literal

Message = tuple[Literal["result", "ended"], str, Any]
"""(kind, component, payload): a handed-over result, or the end of a task."""


class Handoff:
    """The channel between component tasks (threads of the flow's process) and the scheduler."""

    def __init__(self) -> None:
        self._messages: queue.SimpleQueue[Message] = queue.SimpleQueue()
        self._recorded: dict[str, threading.Event] = {}
        self._unrecorded: set[str] = set()
        self._lock = threading.Lock()

    def _recorded_event(self, name: str) -> threading.Event:
        with self._lock:
            return self._recorded.setdefault(name, threading.Event())

    def expect(self, name: str) -> None:
        """``name`` is about to be submitted: records after it wait for its own."""
        self._recorded_event(name)

    def result(self, name: str, result: Any) -> None:
        """The backend of ``name`` returned ``result``: its dependents may start."""
        self._messages.put(("result", name, result))

    def ended(self, name: str) -> None:
        """The task of ``name`` is over (record written, failed or crashed)."""
        self.recorded(name, written=False)
        self._messages.put(("ended", name, None))

    def recorded(self, name: str, written: bool = True) -> None:
        """The record of ``name`` is written (``written``), or will never be; the first word counts."""
        event = self._recorded_event(name)
        with self._lock:
            if event.is_set():
                return
            if not written:
                self._unrecorded.add(name)
        event.set()

    def wait_recorded(self, names: Iterable[str]) -> list[str]:
        """Block until each of ``names`` (those this run submitted) has its record written, or never will;
        return those whose record was not written (a record built on them would be built on nothing)."""
        missing = []
        for name in names:
            with self._lock:
                event = self._recorded.get(name)
            if event is not None:
                event.wait()
                with self._lock:
                    if name in self._unrecorded:
                        missing.append(name)
        return missing

    def next(self, timeout: float) -> Message | None:
        """The next message, or None after ``timeout`` seconds without one."""
        try:
            return self._messages.get(timeout=timeout)
        except queue.Empty:
            return None


__all__ = ["Handoff"]
