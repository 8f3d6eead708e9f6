"""Cancelling a run: a token its threads look at, set by SIGINT or SIGTERM.

What Ctrl-C (or the SIGTERM a Prefect worker sends to cancel a flow run) does to a run:

1. The handler ``signals`` installs (the command line around the flow call; the orchestrator
   flow around its locked section, when it runs in the main thread) sets the run's ``Token``
   and does nothing else: it raises nothing in the main thread, so the flow's ``finally``
   blocks (the environment lock's release among them) cannot run while a worker thread
   still works.
2. The scheduler (``flows/schedule.py``) starts no more components and waits for those in
   flight to come back: they come back ``cancelled`` (their records carry the last
   successful apply forward, as for a failure). It does not give up on one after a while:
   Prefect joins the task threads when the flow ends anyway, so that would only release the
   lock early; every ``REMIND_EVERY`` seconds it says what it still waits for.
3. Backends stop on the token. Every cloud call checks it first, so none is made once it is
   set (CloudFormation checks again in botocore's ``before-send``, which covers botocore's own
   retries; ARM in the SDK's request hook, which covers its poller). A wait on a stack or a
   deployment wakes at once and raises ``Cancelled`` naming the state the object was left
   in: nothing is deleted, rolled back or cancelled in the cloud, it carries on, and the
   message says what to do. Programs get SIGINT (terraform: it stops, saves its state and
   releases its lock) or SIGTERM (commands), and SIGKILL after their grace
   (``strataflow/backends/process.py``). Retries stop.
4. Then the flow leaves its locked section and releases the lock: nothing of the run can
   change the cloud any more. The command line prints the report and exits 130 (143 after
   SIGTERM: 128 + the signal, as a shell reports it).

A second signal while the first is handled exits at once (``os._exit``, 128 + the signal):
the program groups still running are killed, and the lock is not released (its lease
expires within about a minute), as nothing then proves the run's threads are done. A signal
while no run watches the token (before the lock is taken, while waiting for the lock or an
approval: nothing is in flight) does what it did before the handler was installed:
KeyboardInterrupt for SIGINT, Prefect's or the default handling of SIGTERM.

The token is found through a context variable (``current``), which Prefect's task runner
and ``strataflow.threads`` copy into the threads they start. ``Token.child`` gives one call
a token of its own, cancelled with its parent or alone (the runner stops a call past its
timeout with it). Pure: the standard library only.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

from strataflow.errors import Cancelled

REMIND_EVERY = 30.0
"""Seconds between the reminders of what a cancelled run still waits for (``flows/schedule.py``)."""
SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Token:
    """Whether the work it is handed to should stop, and why; thread-safe, and safe to set from a signal handler."""

    def __init__(self) -> None:
        self._event = threading.Event()
        # reentrant: a signal handler runs in the main thread, which may hold it at that moment
        self._guard = threading.RLock()
        self._callbacks: list[Callable[[], None]] = []
        self._watchers = 0
        self.reason: str | None = None
        """Why it was cancelled, as a clause: ``the run was cancelled by SIGINT``."""
        self.signum: int | None = None
        """The signal that cancelled it, if one did."""

    def cancel(self, reason: str, *, signum: int | None = None) -> bool:
        """Cancel it (the first call counts; True if this one did); the callbacks run in this thread."""
        with self._guard:
            if self._event.is_set():
                return False
            self.reason, self.signum = reason, signum
            self._event.set()
            callbacks = list(self._callbacks)
        for callback in callbacks:
            callback()
        return True

    def cancelled(self) -> bool:
        return self._event.is_set()

    def wait(self, seconds: float | None) -> bool:
        """Sleep up to ``seconds`` (None: until cancelled), waking at once when cancelled; True if cancelled."""
        return self._event.wait(seconds)

    def raise_if_cancelled(self, doing: str) -> None:
        """Raise Cancelled (``<reason>; stopped before <doing>``) when cancelled."""
        if self._event.is_set():
            raise Cancelled(f"{self.reason}; stopped before {doing}")

    @property
    def exit_code(self) -> int:
        """What the command line exits with after this cancellation: 128 + the signal, else 130."""
        return 128 + self.signum if self.signum else Cancelled.exit_code

    def on_cancel(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Run ``callback`` when cancelled (now, if it is); returns what unregisters it.

        It may run twice when the cancellation races the registration, and it may run in a
        signal handler: keep it quick and idempotent (set an event).
        """
        with self._guard:
            self._callbacks.append(callback)
        if self._event.is_set():
            callback()

        def remove() -> None:
            with self._guard, contextlib.suppress(ValueError):
                self._callbacks.remove(callback)

        return remove

    @contextlib.contextmanager
    def child(self) -> Iterator[Token]:
        """A token cancelled when this one is, and which may be cancelled alone."""
        token = Token()

        def cascade() -> None:
            token.cancel(self.reason or "cancelled", signum=self.signum)

        remove = self.on_cancel(cascade)
        try:
            yield token
        finally:
            remove()

    @contextlib.contextmanager
    def watching(self) -> Iterator[Token]:
        """While inside, someone stops the work on this token: a signal cancels it instead of interrupting."""
        with self._guard:
            self._watchers += 1
        try:
            yield self
        finally:
            with self._guard:
                self._watchers -= 1

    @property
    def watched(self) -> bool:
        return self._watchers > 0


_NEVER = Token()
"""The token of work outside any run: nobody cancels it."""
_current: contextvars.ContextVar[Token | None] = contextvars.ContextVar("strata_cancel_token", default=None)
_at_force_exit: list[Callable[[], None]] = []


def current() -> Token:
    """The token of the run (or call) this thread works for; outside a run, one that is never cancelled."""
    return _current.get() or _NEVER


@contextlib.contextmanager
def scope(token: Token) -> Iterator[Token]:
    """Make ``token`` the current one inside (and in the threads started from inside with a copy of the context)."""
    reset = _current.set(token)
    try:
        yield token
    finally:
        _current.reset(reset)


def at_force_exit(callback: Callable[[], None]) -> None:
    """Run ``callback`` before a second signal ends the process (``process.py`` kills its program groups)."""
    _at_force_exit.append(callback)


@contextlib.contextmanager
def signals(token: Token | None = None) -> Iterator[Token]:
    """Inside, SIGINT and SIGTERM cancel ``token`` (default: the current run's, else a new one) while it is watched.

    Yields the token, made current. In the main thread it installs the handlers, and puts the
    previous ones back on the way out; elsewhere (signals reach only the main thread) it only
    makes the token current.
    """
    token = token or _current.get() or Token()
    if threading.current_thread() is not threading.main_thread():
        with scope(token):
            yield token
        return
    previous: dict[int, Any] = {}

    def handle(signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if token.cancelled() and token.signum is not None:
            _force_exit(name, signum)
        if not token.watched:
            _delegate(previous[signum], signum, frame)
            return
        token.cancel(f"the run was cancelled by {name}", signum=signum)
        _say(
            f"strata: {name}: cancelling: no component starts any more, those running are being stopped; "
            f"{name} again exits at once (the environment lock is then left to expire)\n"
        )

    for sig in SIGNALS:
        previous[sig] = signal.signal(sig, handle)
    try:
        with scope(token):
            yield token
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


def _delegate(handler: Any, signum: int, frame: FrameType | None) -> None:
    """What the signal did before: the previous Python handler, or the default action."""
    if callable(handler):
        handler(signum, frame)
    elif handler != signal.SIG_IGN:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)


def _force_exit(name: str, signum: int) -> None:
    for callback in list(_at_force_exit):
        with contextlib.suppress(Exception):
            callback()
    _say(
        f"strata: {name} again: exiting now; programs still running were killed, and the environment lock "
        "is left to expire (within about a minute)\n"
    )
    os._exit(128 + signum)


def _say(text: str) -> None:
    """A line on stderr, written without Python's buffers (a signal handler may interrupt a print)."""
    with contextlib.suppress(OSError):
        os.write(2, text.encode())


__all__ = ["REMIND_EVERY", "SIGNALS", "Token", "at_force_exit", "current", "scope", "signals"]
