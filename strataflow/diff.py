"""What a promotion will change: per-component changes and environment-file differences.

Pure: records and configs in, a ``PromotionDiff`` out (deepdiff compares parameters).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deepdiff import DeepDiff
from pydantic import BaseModel, Field

from strataflow.backends import registry
from strataflow.config import Environment, Platform
from strataflow.errors import StrataError
from strataflow.records import ComponentRecord, applied_outputs, sensitive_keys
from strataflow.resolve import resolve

_PER_ENVIRONMENT = (
    "clouds",
    "default_cloud",
    "promote_from",
    "approval",
    "freeze",
    "issue_tracker",
    "components",
    *registry.settings_keys(),
)
"""Environment settings every environment sets for itself: differences there are expected."""


class ComponentChange(BaseModel):
    component: str
    change: str = Field(description="create, update or none")
    version_now: str | None = None
    version_next: str | None = None
    digest_now: str | None = None
    digest_next: str | None = None
    bundle_now: str | None = Field(default=None, description="The bundle the target runs now.")
    bundle_next: str | None = Field(default=None, description="The bundle it will run.")
    parameters: list[str] = Field(default_factory=list, description="Readable parameter changes.")
    plan: list[str] = Field(default_factory=list, description="What the backend's plan says it will change.")
    cost: str | None = Field(default=None, description="The monthly cost change, where known.")


class EnvironmentDiff(BaseModel):
    expected: list[str] = Field(default_factory=list, description="Values each environment sets for itself.")
    warnings: list[str] = Field(default_factory=list, description="Structural differences worth a look.")


class PromotionDiff(BaseModel):
    components: list[ComponentChange]
    environment: EnvironmentDiff

    def markdown(self) -> str:
        rows = ["| component | change | version | bundle | parameters |", "|---|---|---|---|---|"]
        for c in self.components:
            version = f"{c.version_now or '-'} → {c.version_next or '-'}"
            bundle = f"`{(c.bundle_now or '-')[:12]}` → `{(c.bundle_next or '-')[:12]}`"
            rows.append(f"| {c.component} | {c.change} | {version} | {bundle} | {'<br>'.join(c.parameters)} |")
        parts = ["\n".join(rows)]
        plans = [(c.component, c.plan, c.cost) for c in self.components if c.plan or c.cost]
        if plans:
            parts.append(
                "**Plan**\n"
                + "\n".join(
                    f"- {name}" + (f" ({cost})" if cost else "") + "".join(f"\n    - `{line}`" for line in lines)
                    for name, lines, cost in plans
                )
            )
        if self.environment.warnings:
            parts.append("**Warnings**\n" + "\n".join(f"- ⚠ {w}" for w in self.environment.warnings))
        if self.environment.expected:
            parts.append(
                "**Expected per-environment differences**\n" + "\n".join(f"- {e}" for e in self.environment.expected)
            )
        return "\n\n".join(parts)

    def text(self) -> str:
        lines = ["changes:"]
        for c in self.components:
            lines.append(f"  {c.component:<20} {c.change:<7} {c.version_now or '-'} -> {c.version_next or '-'}")
            lines.extend(f"      {p}" for p in c.parameters)
            lines.extend(f"      plan: {p}" for p in c.plan)
            if c.cost:
                lines.append(f"      cost: {c.cost}")
        for w in self.environment.warnings:
            lines.append(f"  warning: {w}")
        for e in self.environment.expected:
            lines.append(f"  expected: {e}")
        return "\n".join(lines)


def _path(path: str) -> str:
    """deepdiff's ``root['a']['b']`` as ``a.b``."""
    return (
        path.replace("root", "", 1)
        .replace("']['", ".")
        .replace("['", "")
        .replace("']", "")
        .replace("[", ".")
        .replace("]", "")
    )


def parameter_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """Readable lines for what changes between two resolved parameter sets."""
    if not before:
        return [f"+ {key}: {value!r}" for key, value in sorted(after.items())]
    # threshold_to_diff_deeper=0: never one root-level "replaced" line when few keys are shared
    found = DeepDiff(dict(before), dict(after), ignore_order=True, verbose_level=2, threshold_to_diff_deeper=0)
    lines = []
    for path, change in found.get("values_changed", {}).items():
        lines.append(f"~ {_path(path)}: {change['old_value']!r} -> {change['new_value']!r}")
    for path, change in found.get("type_changes", {}).items():
        lines.append(f"~ {_path(path)}: {change['old_value']!r} -> {change['new_value']!r}")
    for path, value in found.get("dictionary_item_added", {}).items():
        lines.append(f"+ {_path(path)}: {value!r}")
    for path, value in found.get("dictionary_item_removed", {}).items():
        lines.append(f"- {_path(path)}: {value!r}")
    for kind in ("iterable_item_added", "iterable_item_removed"):
        for path, value in found.get(kind, {}).items():
            lines.append(f"{'+' if kind.endswith('added') else '-'} {_path(path)}: {value!r}")
    return sorted(lines)


def component_changes(
    platform: Platform,
    target: Environment,
    cloud: str,
    names: list[str],
    records: Mapping[str, ComponentRecord],
    bundles: Mapping[str, str] | None = None,
) -> list[ComponentChange]:
    """For each component, what the target runs now against what it will run after the promotion.

    ``bundles``: the bundle each component will run (a release's); the platform's files when not given.
    """
    outputs = applied_outputs(records)
    sensitive = sensitive_keys(records)
    changes = []
    for name in names:
        record = records.get(name)
        applied = record.applied if record and record.state == "applied" else None
        try:
            working = resolve(
                platform, target, cloud, name, outputs, planning=True, sensitive=sensitive, bundle=(bundles or {}).get(name)
            )
        except StrataError as exc:
            changes.append(ComponentChange(component=name, change="update", parameters=[f"cannot resolve: {exc}"]))
            continue
        change = "create" if applied is None else "none" if applied.digest == working.digest else "update"
        changes.append(
            ComponentChange(
                component=name,
                change=change,
                version_now=applied.version if applied else None,
                version_next=platform.components[name].version,
                digest_now=applied.digest if applied else None,
                digest_next=working.digest,
                bundle_now=applied.bundle if applied else None,
                bundle_next=working.bundle,
                parameters=parameter_changes(applied.parameters if applied else {}, working.shown_parameters),
            )
        )
    return changes


def _flat(value: Any, path: str = "") -> dict[str, Any]:
    """Mappings flattened to dotted paths; lists and scalars are leaves."""
    if isinstance(value, dict) and value:
        found: dict[str, Any] = {}
        for key, item in value.items():
            found.update(_flat(item, f"{path}.{key}" if path else str(key)))
        return found
    return {path: value}


def _words(value: Any) -> str:
    """A value as a person reads it: lists in brackets, approvers by name, nothing as 'none'."""
    if value is None or value == {}:
        return "none"
    if isinstance(value, list):
        return "[" + ", ".join(_words(v.get("name", v) if isinstance(v, dict) and "name" in v else v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def environment_diff(source: Environment, target: Environment) -> EnvironmentDiff:
    """Source and target environment files compared in plain words.

    Values each environment sets for itself (clouds, approval, freeze windows, variables' values, ...)
    are expected to differ; a key one has and the other lacks, or a value that changes type,
    is structural and flagged.
    """
    result = EnvironmentDiff()
    left = _flat(source.model_dump(mode="json", exclude={"name"}))
    right = _flat(target.model_dump(mode="json", exclude={"name"}))
    for path in sorted(set(left) | set(right)):
        before, after = left.get(path), right.get(path)
        if before == after:
            continue
        top = path.split(".")[0]
        line = f"{path}: {_words(before)} in {source.name} → {_words(after)} in {target.name}"
        structural = path.endswith(".enabled") or (
            top not in _PER_ENVIRONMENT and (path not in left or path not in right or type(before) is not type(after))
        )
        (result.warnings if structural else result.expected).append(line)
    return result
