"""The ``command`` backend: plain commands (helm, kubectl, scripts) run with ``sh -c``.

References never enter the script text: ``strataflow.resolve`` prepared each command with
``strataflow.shellrefs``, so each reference is an expansion of a variable ``STRATA_REF_<n>``
that this backend sets to its value, and sh never parses a value as code, whatever it holds
and wherever it stands (bare, in "...", in '...', in ``$(...)``, in a here-document). Logs and
summaries show the command as written, with its references, never values.

The command runs in the config directory, in its own process group (at the timeout, or when
the run is cancelled, the group gets SIGTERM, then SIGKILL ``KILL_GRACE`` seconds later), with ``STRATA_ENV``, ``STRATA_CLOUD``, ``STRATA_COMPONENT`` and
``STRATA_ACTION`` set; each line it prints goes to the task log, prefixed by the component and
masked. With ``outputs: json`` its last stdout line is the outputs: it is logged only once read,
with the values of ``sensitive_outputs`` masked.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterable
from typing import Any

from strataflow import cancel, shellrefs
from strataflow.backends import process
from strataflow.backends.base import ComponentRun, Outcome, Untracked, mask
from strataflow.backends.command import CommandImpl
from strataflow.errors import Cancelled, CommandTimeout, DeploymentFailed, TemplateError
from strataflow.refs import as_text

_TAIL = 20
KILL_GRACE = 5.0
"""Seconds between asking a timed-out command to stop (SIGTERM to its group) and killing the group."""


class CommandBackend(Untracked):
    """Runs a component's apply, plan and destroy commands."""

    def apply(self, run: ComponentRun) -> Outcome:
        impl = _impl(run)
        wants_outputs = impl.outputs == "json"
        stdout = self._run(run, "apply", hold_last=wants_outputs)
        outputs: dict[str, Any] = {}
        sensitive = frozenset(impl.sensitive_outputs)
        if wants_outputs:
            outputs = _parse_outputs(run, stdout)
            hidden = {as_text(outputs[key]) for key in sensitive if key in outputs}
            run.log(f"[{run.component}] {mask(_last(stdout), run.secrets | hidden)}")
        return Outcome(changes=1, outputs=outputs, summary=[f"ran: {_display(run, 'apply')}"], sensitive=sensitive)

    def plan(self, run: ComponentRun) -> Outcome:
        impl = _impl(run)
        if impl.plan is None:
            return Outcome(changes=1, summary=[f"would run: {_display(run, 'apply')}"])
        stdout = self._run(run, "plan")
        return Outcome(changes=1, summary=[mask(line, run.secrets) for line in stdout if line.strip()][-_TAIL:])

    def destroy(self, run: ComponentRun) -> Outcome:
        impl = _impl(run)
        if impl.destroy is None:
            return Outcome(no_changes=True, summary=["no destroy command: nothing to do"])
        self._run(run, "destroy")
        return Outcome(changes=1, summary=[f"ran: {_display(run, 'destroy')}"])

    def _run(self, run: ComponentRun, field: str, hold_last: bool = False) -> list[str]:
        """Run the command of ``field``; return its stdout lines; raise on a non-zero exit or a timeout.

        With ``hold_last`` each stdout line is logged when the next one comes: the last one (the
        outputs) is left to the caller.
        """
        prepared = _prepared(run, field)
        try:
            variables = shellrefs.environment(prepared, run.script_values)
        except (KeyError, ValueError) as exc:
            message = mask(str(exc.args[0] if exc.args else exc), run.secrets)
            raise TemplateError(f"{run.component}: {field}: {message}", component=run.component) from None
        env = {k: v for k, v in os.environ.items() if not k.startswith(shellrefs.PREFIX)}
        env.update(variables)
        env.update(STRATA_ENV=run.env, STRATA_CLOUD=run.cloud, STRATA_COMPONENT=run.component, STRATA_ACTION=run.action)
        stdout: list[str] = []
        held: list[str] = []  # with hold_last: the last non-blank line so far and the blank ones after it

        def show(line: str) -> None:
            run.log(f"[{run.component}] {mask(line, run.secrets)}")

        def out(line: str) -> None:
            stdout.append(line)
            if not hold_last:
                show(line)
                return
            if line.strip():
                for earlier in held:
                    show(earlier)
                held.clear()
            held.append(line)

        def err(line: str) -> None:
            run.log(f"[{run.component}] ! {mask(line, run.secrets)}")

        token = cancel.current()
        finished = process.run(
            ["/bin/sh", "-c", prepared.script],
            cwd=run.config_dir,
            env=env,
            timeout=run.timeout,
            grace=KILL_GRACE,
            interrupt=signal.SIGTERM,
            on_stdout=out,
            on_stderr=err,
            token=token,
        )
        if finished.timed_out or finished.cancelled or finished.code != 0:
            for line in held:
                show(line)
        if finished.cancelled:
            how = f"was killed after {KILL_GRACE:g}s" if finished.killed else "stopped"
            raise Cancelled(
                f"{run.component}: its {field} command was stopped ({token.reason}): its process group got SIGTERM "
                f"and {how}; what it had done stays done: run it again with --resume",
                component=run.component,
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


def _prepared(run: ComponentRun, field: str) -> shellrefs.Prepared:
    """The command of ``field`` as resolved (``run.scripts``), else prepared from the implementation."""
    found = run.scripts.get(field)
    if found is not None:
        return found
    command = getattr(_impl(run), field)
    try:
        return shellrefs.prepare(command)
    except shellrefs.RefusedReference as exc:
        raise TemplateError(f"{run.component}: {field}: {exc}", component=run.component) from None


def _display(run: ComponentRun, field: str) -> str:
    """The command as written, references as their text: what logs and summaries show, never values."""
    found = run.scripts.get(field)
    return mask(found.display if found is not None else str(getattr(_impl(run), field)), run.secrets)


def _last(stdout: Iterable[str]) -> str:
    return next((line for line in reversed(list(stdout)) if line.strip()), "")


def _parse_outputs(run: ComponentRun, stdout: list[str]) -> dict[str, Any]:
    last = _last(stdout)
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
