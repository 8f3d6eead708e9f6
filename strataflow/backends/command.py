"""The ``command`` backend: plain commands (helm, kubectl, scripts) run with ``sh -c``.

References in the commands were resolved before they got here, every substituted value
shell-quoted (``strataflow.resolve``), so outputs that come from outside are data, never
code. The command runs in the config directory, in its own process group (a timeout kills
the whole group), with ``STRATA_ENV``, ``STRATA_CLOUD``, ``STRATA_COMPONENT`` and
``STRATA_ACTION`` set; each line it prints goes to the task log, prefixed by the component.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
from collections import deque
from typing import IO, Any

from strataflow import threads
from strataflow.backends.base import ComponentRun, Drift, Outcome, mask
from strataflow.config import CommandImpl
from strataflow.errors import BackendError, CommandTimeout, DeploymentFailed, TemplateError

_TAIL = 20


class CommandBackend:
    """Runs a component's apply, plan and destroy commands."""

    def apply(self, run: ComponentRun) -> Outcome:
        impl = _impl(run)
        stdout = self._run(run, impl.apply)
        outputs = _parse_outputs(run, stdout) if impl.outputs == "json" else {}
        return Outcome(changes=1, outputs=outputs, summary=[f"ran: {mask(impl.apply, run.secrets)}"])

    def plan(self, run: ComponentRun) -> Outcome:
        impl = _impl(run)
        if impl.plan is None:
            return Outcome(changes=1, summary=[f"would run: {mask(impl.apply, run.secrets)}"])
        stdout = self._run(run, impl.plan)
        return Outcome(changes=1, summary=[mask(line, run.secrets) for line in stdout if line.strip()][-_TAIL:])

    def destroy(self, run: ComponentRun) -> Outcome:
        impl = _impl(run)
        if impl.destroy is None:
            return Outcome(no_changes=True, summary=["no destroy command: nothing to do"])
        self._run(run, impl.destroy)
        return Outcome(changes=1, summary=[f"ran: {mask(impl.destroy, run.secrets)}"])

    def outputs(self, run: ComponentRun) -> dict[str, Any]:
        del run
        return {}

    def exists(self, run: ComponentRun) -> bool:
        """A command leaves nothing strataflow can look at: what it applied is taken to exist."""
        del run
        return True

    def drift(self, run: ComponentRun) -> Drift:
        del run
        return Drift(supported=False)

    def _run(self, run: ComponentRun, command: str) -> list[str]:
        """Run ``command``; return its stdout lines; raise on a non-zero exit or a timeout."""
        env = {
            **os.environ,
            "STRATA_ENV": run.env,
            "STRATA_CLOUD": run.cloud,
            "STRATA_COMPONENT": run.component,
            "STRATA_ACTION": run.action,
        }
        try:
            process = subprocess.Popen(  # noqa: S603 - the command is the user's own config
                ["/bin/sh", "-c", command],
                cwd=run.config_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
                text=True,
                errors="replace",
            )
        except OSError as exc:
            raise BackendError(f"cannot start /bin/sh: {exc.strerror}", component=run.component) from exc
        stdout: list[str] = []
        stderr: deque[str] = deque(maxlen=_TAIL)
        # the readers log in the task's context (its Prefect settings and run)
        readers = [
            threads.start(_pump, process.stdout, run, "", stdout.append),
            threads.start(_pump, process.stderr, run, "! ", stderr.append),
        ]
        # A timer kills the group at the timeout: Popen.wait(timeout) polls (up to 50 ms late
        # noticing the end), a blocking wait returns the moment the command exits.
        expired = threading.Event()

        def expire() -> None:
            expired.set()
            _kill_group(process, wait=False)

        timer = threading.Timer(run.timeout, expire) if run.timeout else None
        if timer is not None:
            timer.daemon = True
            timer.start()
        try:
            code = process.wait()
        except BaseException:
            _kill_group(process)
            raise
        finally:
            if timer is not None:
                timer.cancel()
        if expired.is_set():
            raise CommandTimeout(
                f"{run.component}: command ran longer than its timeout of {run.timeout:g}s and was stopped",
                component=run.component,
            )
        for reader in readers:
            reader.join(timeout=5)
        if code != 0:
            tail = " | ".join(mask(line, run.secrets) for line in stderr if line.strip()) or "no output on stderr"
            reason = f"signal {-code}" if code < 0 else f"exit code {code}"
            raise DeploymentFailed(f"{run.action} command failed with {reason}: {tail}", component=run.component)
        return stdout


def _impl(run: ComponentRun) -> CommandImpl:
    if not isinstance(run.impl, CommandImpl):
        raise TemplateError(f"{run.component} is not a command component", component=run.component)
    return run.impl


def _pump(stream: IO[str] | None, run: ComponentRun, marker: str, keep: Any) -> None:
    if stream is None:
        return
    for raw in stream:
        line = raw.rstrip("\n")
        keep(line)
        run.log(f"[{run.component}] {marker}{mask(line, run.secrets)}")
    stream.close()


def _kill_group(process: subprocess.Popen[str], wait: bool = True) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    if wait:
        process.wait()


def _parse_outputs(run: ComponentRun, stdout: list[str]) -> dict[str, Any]:
    last = next((line for line in reversed(stdout) if line.strip()), "")
    try:
        outputs = json.loads(last)
    except json.JSONDecodeError:
        outputs = None
    if not isinstance(outputs, dict):
        raise DeploymentFailed(
            f"{run.component} declares 'outputs: json' but its last line of output is not a JSON object: "
            f"{mask(last, run.secrets)[:200]!r}",
            component=run.component,
        )
    return outputs
