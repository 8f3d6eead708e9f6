"""The one way a backend runs a program: its own process group, lines streamed, a timeout that ends it.

Every backend that runs a program (``terraform``, ``sh -c`` for commands, ``bicep``) runs it
here: stdin closed, stdout and stderr read line by line as they come (so the task log shows
progress), in a new process group. At the timeout the group is interrupted (``SIGINT``, or
the signal the backend names: terraform then stops cleanly, saves its state and releases its
lock); if it is still running ``grace`` seconds later the whole group is killed. If the
caller itself is interrupted (Ctrl-C, a cancelled run) the group is killed at once, so
nothing keeps changing the cloud behind a run that has ended.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from strataflow import threads
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


def _ignore(line: str) -> None:
    del line


def signal_group(pid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to the process group ``pid`` leads (gone already: nothing to do)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


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
) -> Finished:
    """Run ``argv`` to its end (or its timeout); each line goes to ``on_stdout``/``on_stderr`` as it comes.

    Raises BackendError when the program cannot be started.
    """
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
    finished, timed_out = threading.Event(), threading.Event()
    kept: deque[str] = deque(maxlen=STDERR_KEPT)

    def keep_stderr(line: str) -> None:
        kept.append(line)
        on_stderr(line)

    # the readers run in the caller's context, so their log lines reach the caller's task run
    readers = [threads.start(_pump, process.stdout, on_stdout), threads.start(_pump, process.stderr, keep_stderr)]

    def watchdog() -> None:
        if not finished.wait(timeout):
            timed_out.set()
            signal_group(process.pid, interrupt)
            if not finished.wait(grace):
                signal_group(process.pid, signal.SIGKILL)

    if timeout is not None:
        threading.Thread(target=watchdog, daemon=True, name=f"strata-timeout-{process.pid}").start()
    try:
        code = process.wait()
    finally:
        finished.set()
        if process.poll() is None:  # the caller was interrupted: leave nothing running behind it
            signal_group(process.pid, signal.SIGKILL)
            process.wait()
    for reader in readers:
        reader.join(timeout=10)
    return Finished(code=code, stderr=list(kept), timed_out=timed_out.is_set())


def _pump(stream: IO[str] | None, on_line: Callable[[str], None]) -> None:
    if stream is None:
        return
    with stream:
        for raw in stream:
            on_line(raw.rstrip("\n"))


__all__ = ["Finished", "run", "signal_group"]
