"""The ``command`` backend: plain commands (helm, kubectl, scripts) run with ``sh -c``.

References in the commands were resolved before they got here, every substituted value
shell-quoted (``strataflow.resolve``), so outputs that come from outside are data, never
code. The command runs in the config directory, in its own process group (at the timeout the
group gets SIGTERM, then SIGKILL), with ``STRATA_ENV``, ``STRATA_CLOUD``, ``STRATA_COMPONENT`` and
``STRATA_ACTION`` set; each line it prints goes to the task log, prefixed by the component.
"""

from __future__ import annotations

import json
import os
import signal
from typing import Any

from strataflow.backends import process
from strataflow.backends.base import ComponentRun, Drift, Outcome, mask
from strataflow.backends.command import CommandImpl
from strataflow.errors import CommandTimeout, DeploymentFailed, TemplateError

_TAIL = 20
KILL_GRACE = 5.0
"""Seconds between asking a timed-out command to stop (SIGTERM to its group) and killing the group."""


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
        stdout: list[str] = []

        def out(line: str) -> None:
            stdout.append(line)
            run.log(f"[{run.component}] {mask(line, run.secrets)}")

        def err(line: str) -> None:
            run.log(f"[{run.component}] ! {mask(line, run.secrets)}")

        finished = process.run(
            ["/bin/sh", "-c", command],
            cwd=run.config_dir,
            env=env,
            timeout=run.timeout,
            grace=KILL_GRACE,
            interrupt=signal.SIGTERM,
            on_stdout=out,
            on_stderr=err,
        )
        if finished.timed_out:
            raise CommandTimeout(
                f"{run.component}: command ran longer than its timeout of {run.timeout:g}s and was stopped",
                component=run.component,
            )
        if finished.code != 0:
            tail = [mask(line, run.secrets) for line in finished.stderr[-_TAIL:] if line.strip()]
            reason = f"signal {-finished.code}" if finished.code < 0 else f"exit code {finished.code}"
            detail = " | ".join(tail) or "no output on stderr"
            raise DeploymentFailed(f"{run.action} command failed with {reason}: {detail}", component=run.component)
        return stdout


def _impl(run: ComponentRun) -> CommandImpl:
    if not isinstance(run.impl, CommandImpl):
        raise TemplateError(f"{run.component} is not a command component", component=run.component)
    return run.impl


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
