"""Planning a template's resources: copy loops, conditions, ids and dependency order.

``plan_resources`` expands resource ``copy`` loops (``count``, ``mode: serial`` with
``batchSize``), drops resources whose ``condition`` is false (remembering them, so a
``dependsOn`` on them is ignored as in Azure), flattens child resources, computes every
resource id (extension resources with ``scope``, nested deployments with
``resourceGroup``/``subscriptionId``, resource groups in subscription deployments) and
orders the resources by their ``dependsOn`` (ids, ``type/name``, names, copy-loop names and,
in ``languageVersion`` 2.0 templates, symbolic names) plus the implicit dependencies that
``reference()``/``list*()`` of another resource of the template create.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from strataflow.sandbox.arm_eval import ROOT, Ctx, Frame, Scope, evaluate, loop_count
from strataflow.sandbox.arm_fn_deployment import resource_path
from strataflow.sandbox.arm_parser import calls
from strataflow.sandbox.arm_values import ExpressionError, Unknown

DEPLOYMENTS = "microsoft.resources/deployments"
GROUPS = "microsoft.resources/resourcegroups"


@dataclass
class Planned:
    """One resource instance of a template, its id known, its body not yet evaluated."""

    decl: dict[str, Any]
    type: str
    name: str
    id: str
    depends_on: list[str] = field(default_factory=list)
    frame: Frame = ROOT
    loop: str | None = None
    symbolic: str | None = None
    existing: bool = False
    aliases: list[str] = field(default_factory=list)
    """Other ways ``dependsOn`` may name it: ``type/name``, ``NS/type/name/child/name``, its last name."""

    @property
    def api_version(self) -> str:
        """The declared ``apiVersion``."""
        return str(self.decl.get("apiVersion", ""))


@dataclass
class Plan:
    """A template's planned resources and what ``dependsOn``/``reference()`` can name."""

    items: list[Planned] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    """``(id, "type/name")`` of resources whose condition is false."""
    loops: dict[str, list[Planned]] = field(default_factory=dict)
    skipped_symbols: set[str] = field(default_factory=set)

    def find(self, target: str) -> Planned | None:
        """The resource a ``dependsOn`` entry or ``reference()`` target names, if planned."""
        lowered = target.lower().strip()
        for item in self.items:
            if item.symbolic is not None and item.symbolic.lower() == lowered:
                return item
        for item in self.items:
            full = f"{item.type}/{item.name}".lower()
            if lowered in (item.id.lower(), full, item.name.lower()):
                return item
        for item in self.items:
            if item.id.lower().endswith("/providers/" + lowered) or any(a.lower() == lowered for a in item.aliases[:2]):
                return item
        for item in self.items:
            if item.aliases and item.aliases[-1].lower() == lowered:
                return item
        return None

    def symbol(self, name: str) -> list[Planned]:
        """The instances of a symbolic name (several for a copy loop)."""
        lowered = name.lower()
        return [i for i in self.items if i.symbolic is not None and i.symbolic.lower() == lowered]

    def is_skipped(self, target: str) -> bool:
        """Whether ``target`` names a resource whose condition is false."""
        lowered = target.lower()
        return lowered in self.skipped_symbols or any(
            lowered in (rid.lower(), full.lower(), full.split("/", 2)[-1].lower(), full.split("/")[-1].lower())
            or rid.lower().endswith("/providers/" + lowered)
            for rid, full in self.skipped
        )


def declarations(template: dict[str, Any]) -> list[tuple[str | None, dict[str, Any]]]:
    """``(symbolic name or None, declaration)`` for each top-level resource."""
    resources = template.get("resources") or []
    if isinstance(resources, dict):
        return [(str(k), v) for k, v in resources.items()]
    return [(None, r) for r in resources]


def plan_resources(template: dict[str, Any], scope: Scope, base: str | None = None) -> Plan:
    """The template's resources (conditions applied, loops expanded) in dependency order."""
    plan = Plan()
    _collect(declarations(template), scope, plan, None, ROOT, base or scope.group_id)
    for item in plan.items:
        item.depends_on = _dependencies(item, plan, scope)
    plan.items = _topological(plan.items)
    return plan


def _collect(
    decls: list[tuple[str | None, dict[str, Any]]],
    scope: Scope,
    plan: Plan,
    parent: Planned | None,
    frame: Frame,
    base: str,
) -> None:
    for symbolic, decl in decls:
        loop = decl.get("copy") if parent is None else None
        frames = [frame]
        loop_name = None
        if isinstance(loop, dict):
            loop_name = str(loop.get("name") or symbolic or decl.get("name"))
            count = loop_count(loop.get("count", 0), scope, frame, loop_name)
            frames = [frame.with_copy(loop_name, i, default=True) for i in range(count)]
            plan.loops.setdefault(loop_name.lower(), [])
        for current in frames:
            if "condition" in decl:
                verdict = evaluate(decl["condition"], scope, current)
                if not isinstance(verdict, bool):
                    raise ExpressionError(
                        f"The template resource '{decl.get('name')}' condition must evaluate to a boolean, got '{verdict}'."
                    )
                if not verdict:
                    _skip(decl, symbolic, scope, current, parent, base, plan)
                    continue
            kind, name, resource_id, aliases = _identify(decl, scope, current, parent, base)
            depends = [parent.id] if parent is not None and not parent.existing else []
            item = Planned(decl, kind, name, resource_id, depends, current, loop_name, symbolic, aliases=aliases)
            item.existing = bool(decl.get("existing"))
            plan.items.append(item)
            if loop_name is not None:
                plan.loops[loop_name.lower()].append(item)
            children = decl.get("resources")
            if isinstance(children, list):
                _collect([(None, c) for c in children], scope, plan, item, current, base)


def _skip(
    decl: dict[str, Any],
    symbolic: str | None,
    scope: Scope,
    frame: Frame,
    parent: Planned | None,
    base: str,
    plan: Plan,
) -> None:
    """Remember a resource whose condition is false (its name may not even evaluate)."""
    if symbolic:
        plan.skipped_symbols.add(symbolic.lower())
    try:
        kind, name, resource_id, aliases = _identify(decl, scope, frame, parent, base)
    except (ExpressionError, Unknown):
        return
    plan.skipped.append((resource_id, f"{kind}/{name}"))
    plan.skipped.extend((resource_id, alias) for alias in aliases)


def _identify(
    decl: dict[str, Any], scope: Scope, frame: Frame, parent: Planned | None, base: str
) -> tuple[str, str, str, list[str]]:
    """``(type, name, id, other names)`` of one resource instance."""
    kind, name = _type_and_name(decl, scope, frame, parent)
    aliases = [f"{kind}/{name}", _interleaved(kind, name), name.split("/")[-1]]
    extension = _split_extension(kind, name)
    if extension is not None and "scope" not in decl:
        base_type, base_names, ext_type, ext_names = extension
        owner = base + resource_path(base_type, base_names)
        ext_name = "/".join(ext_names)
        return ext_type, ext_name, owner + resource_path(ext_type, ext_names), aliases
    return kind, name, _resource_id(kind, name, decl, scope, frame, base), aliases


def _interleaved(kind: str, name: str) -> str:
    """``NS/type/name/child/name``: how ``dependsOn`` may spell a (child) resource."""
    types, names = kind.split("/"), name.split("/")
    return "/".join([types[0], *[p for pair in zip(types[1:], names, strict=False) for p in pair]])


def _split_extension(kind: str, name: str) -> tuple[str, list[str], str, list[str]] | None:
    """The old ``type/providers/extType`` + ``name/NS/extName`` extension syntax, split."""
    segments, names = kind.split("/"), name.split("/")
    lowered = [s.lower() for s in segments]
    if "providers" not in lowered[1:]:
        return None
    at = lowered.index("providers", 1)
    base_names, rest = names[: at - 1], names[at - 1 :]
    ext_types = segments[at + 1 :]
    if len(rest) != len(ext_types) + 1 or not ext_types:
        return None
    return "/".join(segments[:at]), base_names, "/".join([rest[0], *ext_types]), rest[1:]


def _type_and_name(decl: dict[str, Any], scope: Scope, frame: Frame, parent: Planned | None) -> tuple[str, str]:
    kind = str(evaluate(decl.get("type", ""), scope, frame))
    name = str(evaluate(decl.get("name", ""), scope, frame))
    if parent is not None and "." not in kind.split("/", maxsplit=1)[0]:
        kind, name = f"{parent.type}/{kind}", f"{parent.name}/{name}"
    elif parent is not None and name.count("/") < kind.count("/") - 1:
        name = f"{parent.name}/{name}"
    return kind, name


def _resource_id(kind: str, name: str, decl: dict[str, Any], scope: Scope, frame: Frame, base: str) -> str:
    lowered = kind.lower()
    subscription = scope.subscription_id
    if "subscriptionId" in decl:
        subscription = str(evaluate(decl["subscriptionId"], scope, frame))
    if lowered == GROUPS:
        return f"/subscriptions/{subscription}/resourceGroups/{name}"
    if "scope" in decl:  # an extension resource: on a resource id, or 'NS/type/name' in this group
        target = str(evaluate(decl["scope"], scope, frame)).rstrip("/")
        parts = target.strip("/").split("/")
        if not target.startswith("/"):
            target = base + resource_path("/".join(parts[0:2] + parts[3::2]), parts[2::2])
        return target + resource_path(kind, name.split("/"))
    if lowered == DEPLOYMENTS and ("resourceGroup" in decl or "subscriptionId" in decl):
        group = evaluate(decl["resourceGroup"], scope, frame) if "resourceGroup" in decl else None
        base = f"/subscriptions/{subscription}" + (f"/resourceGroups/{group}" if group else "")
    return base + resource_path(kind, name.split("/"))


def _dependencies(item: Planned, plan: Plan, scope: Scope) -> list[str]:
    found = list(item.depends_on)
    for raw in item.decl.get("dependsOn") or []:
        entry = str(evaluate(raw, scope, item.frame))
        loop = plan.loops.get(entry.lower())
        symbols = plan.symbol(entry)
        if loop is not None or symbols:
            found.extend(i.id for i in (loop or symbols))
            continue
        target = plan.find(entry)
        if target is not None:
            found.append(target.id)
        elif not plan.is_skipped(entry):
            raise ExpressionError(f"The resource '{entry}' is not defined in the template.")
    found.extend(_implicit(item, plan, scope))
    existing = {i.id.lower() for i in plan.items if i.existing}
    unique: list[str] = []
    for dependency in found:
        if dependency.lower() != item.id.lower() and dependency.lower() not in existing and dependency not in unique:
            unique.append(dependency)
    return unique


def _implicit(item: Planned, plan: Plan, scope: Scope) -> list[str]:
    """Resources of the template that ``reference()``/``list*()`` in ``item``'s body read."""
    body = {k: v for k, v in item.decl.items() if k not in ("resources", "dependsOn", "copy", "condition")}
    props = item.decl.get("properties")
    options = (props.get("expressionEvaluationOptions") or {}) if isinstance(props, dict) else {}
    if (
        item.type.lower() == DEPLOYMENTS
        and isinstance(props, dict)
        and str(options.get("scope", "outer")).lower() == "inner"
    ):
        body["properties"] = {k: v for k, v in props.items() if k != "template"}
    found: list[str] = []
    try:
        found_calls = list(calls(body))
    except ExpressionError:
        return found
    ctx = Ctx(scope.child(reference=_unknown, lister=_unknown_list), item.frame)
    for call in found_calls:
        if not (call.name in ("reference", "resourceinfo", "references") or call.name.startswith("list")):
            continue
        if not call.args:
            continue
        try:
            target = ctx.eval(call.args[0])
        except (ExpressionError, Unknown, TypeError, KeyError, ValueError):
            continue
        if isinstance(target, str):
            items = plan.symbol(target) or ([t] if (t := plan.find(target)) is not None else [])
            found.extend(i.id for i in items if i is not item)
    return found


def _unknown(ctx: Ctx, target: str, api: str | None, full: bool) -> Any:
    raise Unknown(target)


def _unknown_list(ctx: Ctx, name: str, target: str, api: str | None, body: Any) -> Any:
    raise Unknown(target)


def _topological(planned: list[Planned]) -> list[Planned]:
    serial: dict[str, list[Planned]] = {}
    for item in planned:
        if item.loop is not None and str((item.decl.get("copy") or {}).get("mode", "")).lower() == "serial":
            serial.setdefault(item.loop.lower(), []).append(item)
    for members in serial.values():
        size = max(int((members[0].decl.get("copy") or {}).get("batchSize") or 1), 1)
        for index, item in enumerate(members):
            batch = index // size
            item.depends_on.extend(m.id for m in members[(batch - 1) * size : batch * size] if batch > 0)
    done: list[Planned] = []
    placed: set[str] = set()
    pending = list(planned)
    known = {p.id.lower() for p in planned}
    while pending:
        ready = [
            p
            for p in pending
            if all(d.lower() in placed or d.lower() not in known for d in p.depends_on if d.lower() != p.id.lower())
        ]
        if not ready:
            names = ", ".join(p.name for p in pending)
            raise ExpressionError(f"Circular dependency detected on resources: '{names}'.")
        for item in ready:
            done.append(item)
            placed.add(item.id.lower())
            pending.remove(item)
    return done
