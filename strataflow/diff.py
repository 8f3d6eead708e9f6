"""What a promotion will change: per-component changes and environment-file differences.

Pure: records and configs in, a ``PromotionDiff`` out (deepdiff does the comparing).
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

_PER_ENVIRONMENT = ("clouds", "default_cloud", "promote_from", "approval", "freeze", "issue_tracker", *registry.settings_keys())
"""Environment settings every environment sets for itself: differences there are expected."""


class ComponentChange(BaseModel):
    component: str
    change: str = Field(description="create, update or none")
    version_now: str | None = None
    version_next: str | None = None
    digest_now: str | None = None
    digest_next: str | None = None
    parameters: list[str] = Field(default_factory=list, description="Readable parameter changes.")


class EnvironmentDiff(BaseModel):
    expected: list[str] = Field(default_factory=list, description="Values each environment sets for itself.")
    warnings: list[str] = Field(default_factory=list, description="Structural differences worth a look.")


class PromotionDiff(BaseModel):
    components: list[ComponentChange]
    environment: EnvironmentDiff

    def markdown(self) -> str:
        rows = ["| component | change | version | digest | parameters |", "|---|---|---|---|---|"]
        for c in self.components:
            version = f"{c.version_now or '-'} → {c.version_next or '-'}"
            digest = f"`{c.digest_now or '-'}` → `{c.digest_next or '-'}`"
            rows.append(f"| {c.component} | {c.change} | {version} | {digest} | {'<br>'.join(c.parameters)} |")
        parts = ["\n".join(rows)]
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
    found = DeepDiff(dict(before), dict(after), ignore_order=True, verbose_level=2)
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
    platform: Platform, target: Environment, cloud: str, names: list[str], records: Mapping[str, ComponentRecord]
) -> list[ComponentChange]:
    """For each component, what the target runs now against what it will run after the promotion."""
    outputs = applied_outputs(records)
    sensitive = sensitive_keys(records)
    changes = []
    for name in names:
        record = records.get(name)
        applied = record.applied if record and record.state == "applied" else None
        try:
            working = resolve(platform, target, cloud, name, outputs, planning=True, sensitive=sensitive)
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
                parameters=parameter_changes(applied.parameters if applied else {}, working.shown_parameters),
            )
        )
    return changes


def environment_diff(source: Environment, target: Environment) -> EnvironmentDiff:
    """Source and target environment files compared: per-environment values are expected, structure is flagged."""
    result = EnvironmentDiff()
    left = source.model_dump(mode="json", exclude={"name"})
    right = target.model_dump(mode="json", exclude={"name"})
    found = DeepDiff(left, right, ignore_order=True, verbose_level=2)
    for kind, entries in found.items():
        for path, change in entries.items():
            where = _path(path)
            top = where.split(".")[0]
            if kind in ("dictionary_item_added", "dictionary_item_removed"):
                side = f"only in {target.name}" if kind.endswith("added") else f"only in {source.name}"
                message = f"{where} is {side}"
                (result.expected if top in _PER_ENVIRONMENT else result.warnings).append(message)
            elif kind == "type_changes" and top in _PER_ENVIRONMENT:
                result.expected.append(
                    f"{where}: {change['old_value']!r} in {source.name}, {change['new_value']!r} in {target.name}"
                )
            elif kind == "type_changes":
                result.warnings.append(
                    f"{where} changes type: {change['old_type'].__name__} in {source.name}, {change['new_type'].__name__} in {target.name}"
                )
            elif kind == "values_changed":
                result.expected.append(
                    f"{where}: {change['old_value']!r} in {source.name}, {change['new_value']!r} in {target.name}"
                )
            else:
                result.expected.append(f"{where} differs ({kind.replace('_', ' ')})")
    result.expected.sort()
    result.warnings.sort()
    return result
