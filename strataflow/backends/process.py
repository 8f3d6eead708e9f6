"""The one way a backend runs a program: its own process group, lines streamed, a timeout that ends it.

Every backend that runs a program (``terraform``, ``sh -c`` for commands, ``bicep``) runs it
here: stdin closed, stdout and stderr read line by line as they come (so the task log shows
progress), in a new process group. At the timeout the group is interrupted (``SIGINT``, or
the signal the backend names: terraform then stops cleanly, saves its state and releases its
lock); if it is still running ``grace`` seconds later the whole group is killed.

A cancelled run (``strataflow/cancel.py``: Ctrl-C, SIGTERM) stops its programs the same way:
when the caller's token is cancelled the group gets the same signal at once and SIGKILL after
the grace, and the program ends ``cancelled`` (no program starts once the token is set). If
the caller itself is interrupted by an exception the group is killed at once; a second
Ctrl-C kills every group still running before the process exits. So nothing keeps changing
the cloud behind a run that has ended.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from strataflow import cancel, threads
from strataflow.errors import BackendError

STDERR_KEPT = 2000
"""Lines of stderr kept for the caller's error message (all are streamed to ``on_stderr``)."""


@dataclass
class Finished:
    """How a program ended."""

    code: int
    """Its exit code (negative: the signal that ended it)."""
    stderr: list[str] = field(default_factory=list)
    """Its last ``STDERR_KEPT`` lines on stderr, without line ends."""
    timed_out: bool = False
    cancelled: bool = False
    """Stopped because the caller's token was cancelled (interrupted, then killed if it outlived the grace)."""

    @property
    def killed(self) -> bool:
        """Whether it ended by SIGKILL (it did not stop within the grace, or it was killed at once)."""
        return self.code == -signal.SIGKILL


_live: set[int] = set()
"""Process groups running now (their leaders' pids)."""
_live_guard = threading.Lock()


def _kill_live() -> None:
    """Kill every group still running: the process is about to be force-exited (a second Ctrl-C)."""
    with _live_guard:
        groups = list(_live)
    for pid in groups:
        signal_group(pid, signal.SIGKILL)


cancel.at_force_exit(_kill_live)


def _ignore(line: str) -> None:
    del line


def signal_group(pid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to the process group ``pid`` leads (gone already: nothing to do)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _group_alive(pid: int) -> bool:
    """Whether the process group ``pid`` leads still has a member."""
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run(
    argv: list[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    timeout: float | None = None,
    grace: float = 10.0,
    interrupt: signal.Signals = signal.SIGINT,
    on_stdout: Callable[[str], None] = _ignore,
    on_stderr: Callable[[str], None] = _ignore,
    token: cancel.Token | None = None,
) -> Finished:
    """Run ``argv`` to its end (or its timeout, or ``token``'s cancellation: default the current one);
    each line goes to ``on_stdout``/``on_stderr`` as it comes.

    Raises BackendError when the program cannot be started, Cancelled when the token already is.
    """
    token = token or cancel.current()
    token.raise_if_cancelled(f"starting {Path(argv[0]).name}")
    try:
        process = subprocess.Popen(  # noqa: S603 - an argv list, never a shell string built from values
            argv,
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
            start_new_session=True,
        )
    except OSError as exc:
        raise BackendError(f"cannot start {argv[0]}: {exc.strerror}") from exc
    with _live_guard:
        _live.add(process.pid)
    finished, timed_out, stopped, wake = threading.Event(), threading.Event(), threading.Event(), threading.Event()
    kept: deque[str] = deque(maxlen=STDERR_KEPT)

    def keep_stderr(line: str) -> None:
        kept.append(line)
        on_stderr(line)

    # the readers run in the caller's context, so their log lines reach the caller's task run
    readers = [threads.start(_pump, process.stdout, on_stdout), threads.start(_pump, process.stderr, keep_stderr)]

    def watchdog() -> None:
        wake.wait(timeout)  # the program's end, the token's cancellation or the timeout
        if finished.is_set():
            return
        (stopped if token.cancelled() else timed_out).set()
        signal_group(process.pid, interrupt)
        deadline = time.monotonic() + grace
        while _group_alive(process.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        signal_group(process.pid, signal.SIGKILL)  # the group past the grace, or what the program left behind

    unwatch = token.on_cancel(wake.set)
    watcher = threading.Thread(target=watchdog, daemon=True, name=f"strata-watch-{process.pid}")
    watcher.start()
    try:
        code = process.wait()
    finally:
        finished.set()
        wake.set()
        unwatch()
        if process.poll() is None:  # the caller was interrupted: leave nothing running behind it
            signal_group(process.pid, signal.SIGKILL)
            process.wait()
        if timed_out.is_set() or stopped.is_set():  # stopped: return once its whole group is gone
            watcher.join(grace + 1.0)
        with _live_guard:
            _live.discard(process.pid)
    for reader in readers:
        reader.join(timeout=10)
    return Finished(code=code, stderr=list(kept), timed_out=timed_out.is_set(), cancelled=stopped.is_set())


def _pump(stream: IO[str] | None, on_line: Callable[[str], None]) -> None:
    if stream is None:
        return
    with stream:
        for raw in stream:
            on_line(raw.rstrip("\n"))


__all__ = ["Finished", "run", "signal_group"]
