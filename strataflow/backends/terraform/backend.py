"""Terraform (or OpenTofu) components: the CLI driven with ``-json``, one working copy per component.

Each env/cloud/component has its own working copy, ``<state_dir>/terraform/<env>/<cloud>/<component>``
(``state_dir`` defaults to ``$STRATA_HOME`` or ``~/.strataflow``), holding a copy of the module,
``.terraform/`` and, unless a backend is configured, the local state ``terraform.tfstate``. The
module is copied in on every operation (files that left the module leave the copy); ``init`` and
``validate`` run only when the module, the binary or the backend configuration changed.

Parameters go to ``strata.auto.tfvars.json`` and the environment's ``backend_config`` to
``strata.backend.json`` (both mode 0600, passed as ``-backend-config=FILE``): no value ever reaches
a command line, and every log line goes through ``mask`` with the run's secrets.

Pitfalls:
- A module must be self-contained: only its directory is copied (``source = "../x"`` breaks).
  State files and ``.terraform/`` found in the module directory are never copied.
- ``terraform_data`` refreshes to exactly its prior state, so ``plan -refresh-only`` never reports
  *resource* drift for it; an attribute changed out of band shows as drift of the outputs derived
  from it. ``drift`` reports both kinds.
- A changed backend configuration is not migrated: ``init`` fails (TemplateError) saying how to.
- The inherited ``TF_LOG*``, ``TF_CLI_ARGS*``, ``TF_VAR_*``, ``TF_WORKSPACE`` and ``TF_DATA_DIR``
  are dropped: a component's inputs are its parameters, and its files are its working copy.
- A timeout interrupts terraform's process group (SIGINT: terraform stops, saves the state and
  releases the lock) and kills the group ``kill_grace`` seconds later if it is still running.
"""

from __future__ import annotations

import json
from typing import Any

from strataflow.backends.base import ComponentRun, Drift, Outcome
from strataflow.backends.terraform.session import (
    NOT_A_CHANGE,
    PLAN_FILE,
    TFVARS,
    Session,
    change_key,
    cli_for,
    has_anything,
    settings_of,
    working_dir,
)
from strataflow.refs import KNOWN_AFTER_APPLY

__all__ = ["PLAN_FILE", "TFVARS", "TerraformBackend", "working_dir"]


def _unwrap_outputs(raw: str) -> tuple[dict[str, Any], frozenset[str]]:
    try:
        data = json.loads(raw or "{}")
    except ValueError:
        data = {}
    items = {name: item for name, item in data.items() if isinstance(item, dict)}
    return {name: item.get("value") for name, item in items.items()}, frozenset(
        name for name, item in items.items() if item.get("sensitive")
    )


def _plan_outcome(plan: dict[str, Any], exit_code: int) -> Outcome:
    """An Outcome from ``show -json`` of a saved plan; output changes are listed when no resource changes."""
    summary: list[str] = []
    output_lines: list[str] = []
    changes = 0
    for change in plan.get("resource_changes") or []:
        actions = (change.get("change") or {}).get("actions") or []
        address = change.get("address", "?")
        if actions and actions[0] not in NOT_A_CHANGE:
            changes += 1
            summary.append(f"{change_key(actions)} {address}")
        elif change.get("previous_address"):
            summary.append(f"~ move {change['previous_address']} -> {address}")
    outputs: dict[str, Any] = {}
    sensitive: set[str] = set()
    planned = (plan.get("planned_values") or {}).get("outputs") or {}
    for name, change in (plan.get("output_changes") or {}).items():
        actions = change.get("actions") or []
        if change.get("after_unknown") is True:
            outputs[name] = KNOWN_AFTER_APPLY
        elif "delete" not in actions:
            outputs[name] = change.get("after")
        if change.get("after_sensitive") is True or (planned.get(name) or {}).get("sensitive"):
            sensitive.add(name)
        if actions and actions[0] not in NOT_A_CHANGE:
            output_lines.append(f"{change_key(actions)} output.{name}")
    return Outcome(
        changes=changes,
        outputs=outputs,
        summary=summary or output_lines,
        no_changes=exit_code == 0,
        sensitive=frozenset(sensitive),
    )


class TerraformBackend:
    """Plans, applies, destroys and inspects terraform modules with the ``terraform`` (or ``tofu``) CLI."""

    def __init__(self, *, kill_grace: float = 10.0) -> None:
        self.kill_grace = kill_grace
        """Seconds between interrupting a timed-out terraform and killing it."""

    def _session(self, run: ComponentRun) -> Session:
        return Session(run, cli_for(settings_of(run).binary), self.kill_grace)

    def plan(self, run: ComponentRun) -> Outcome:
        """``plan -out`` then ``show -json``: a line per changed address, outputs (unknown ones as placeholders)."""
        session = self._session(run)
        session.prepare()
        result = session.call("plan", "-input=false", "-no-color", "-json", "-detailed-exitcode", f"-out={PLAN_FILE}")
        if result.code not in (0, 2):
            raise session.failure("plan", result)
        try:
            shown = session.call("show", "-json", "-no-color", PLAN_FILE, json_lines=False, quiet=True)
        finally:
            (session.workdir / PLAN_FILE).unlink(missing_ok=True)  # it holds every variable in clear text
        if shown.code != 0:
            raise session.failure("show", shown)
        return _plan_outcome(json.loads(shown.stdout), result.code)

    def apply(self, run: ComponentRun) -> Outcome:
        """``apply -auto-approve -json`` streamed to the log, then the outputs."""
        session = self._session(run)
        session.prepare()
        result = session.call("apply", "-input=false", "-no-color", "-json", "-auto-approve")
        if result.code != 0:
            raise session.failure("apply", result)
        counts = result.counts("apply")
        changes = counts.get("add", 0) + counts.get("change", 0) + counts.get("remove", 0)
        outputs, sensitive = self._read_outputs(session)
        return Outcome(
            changes=changes,
            outputs=outputs,
            summary=result.planned_lines(),
            no_changes=changes == 0,
            sensitive=sensitive,
        )

    def destroy(self, run: ComponentRun) -> Outcome:
        """``destroy -auto-approve -json``; a component with no (local) state is ``no_changes``."""
        session = self._session(run)
        if session.nothing_deployed():
            return Outcome(no_changes=True)
        session.prepare()
        result = session.call("destroy", "-input=false", "-no-color", "-json", "-auto-approve")
        if result.code != 0:
            raise session.failure("destroy", result)
        removed = result.counts("destroy").get("remove", 0)
        return Outcome(changes=removed, summary=result.planned_lines(), no_changes=removed == 0)

    def outputs(self, run: ComponentRun) -> dict[str, Any]:
        """The state's outputs (``output -json``, unwrapped to name: value)."""
        session = self._session(run)
        if session.nothing_deployed():
            return {}
        session.prepare()
        return self._read_outputs(session)[0]

    def exists(self, run: ComponentRun) -> bool:
        """Whether the state holds at least one resource or output (the state file, or ``show -json``; no refresh)."""
        session = self._session(run)
        if session.local_state:
            return has_anything(session.read_local_state())
        session.prepare()
        shown = session.call("show", "-json", "-no-color", json_lines=False, quiet=True)
        if shown.code != 0:
            raise session.failure("show", shown)
        values = json.loads(shown.stdout or "{}").get("values") or {}
        root = values.get("root_module") or {}
        return bool(values.get("outputs") or root.get("resources") or root.get("child_modules"))

    def drift(self, run: ComponentRun) -> Drift:
        """``plan -refresh-only -detailed-exitcode``: drifted resources, and outputs that moved with them."""
        session = self._session(run)
        if session.nothing_deployed():
            return Drift(supported=True, drifted=False)
        session.prepare()
        result = session.call("plan", "-refresh-only", "-input=false", "-no-color", "-json", "-detailed-exitcode")
        if result.code not in (0, 2):
            raise session.failure("plan -refresh-only", result)
        if result.code == 0:
            return Drift(supported=True, drifted=False)
        resources: list[str] = []
        for message in result.of_type("resource_drift"):
            change = message.get("change") or {}
            resources.append(f"{(change.get('resource') or {}).get('addr', '?')} ({change.get('action', 'update')})")
        for message in result.of_type("outputs"):
            for name, item in (message.get("outputs") or {}).items():
                if (item or {}).get("action", "noop") not in NOT_A_CHANGE:
                    resources.append(f"output.{name} ({item['action']})")
        return Drift(supported=True, drifted=True, resources=resources)

    @staticmethod
    def _read_outputs(session: Session) -> tuple[dict[str, Any], frozenset[str]]:
        shown = session.call("output", "-json", "-no-color", json_lines=False, quiet=True)
        if shown.code != 0:
            raise session.failure("output", shown)
        return _unwrap_outputs(shown.stdout)
