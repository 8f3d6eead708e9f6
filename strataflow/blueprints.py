"""Environment blueprints: ``config/blueprints/NAME.yaml``, an environment file with holes.

Pure (YAML, pydantic, ``ipaddress``). ``load`` reads and parses the blueprints of a config
directory, ``check`` validates them against the platform the way environments are validated;
``strataflow.newenv`` fills one in for ``strata env new NAME --blueprint NAME``.

A blueprint is written exactly like an environment file (same keys, same models, same
messages), except that values may be holes. Holes are ``${...}`` forms that no runtime
reference uses (``${var.X}``, ``${env.name}``, ``${secret.X}``, ``${C.outputs.K}`` are kept
as written, for the component overrides that use them), and none of them needs a ``:``, so
they can be written unquoted in YAML::

    account_id: ${required 12-digit AWS account id}     # --set clouds.aws.account_id=... or refused
    vpc_cidr: ${allocate /16 from 10.0.0.0/8}            # the first /16 of the pool no environment overlaps
    public_subnets: ${subnets /20 0 1 of variables.vpc_cidr}   # the 0th and 1st /20 of that block, comma-joined
    resource_group: strata-${name}                       # the new environment's name
    role_arn: arn:aws:iam::${clouds.aws.account_id}:role/strata-deploy   # another value of the same file

- ``${required}`` and ``${required WHAT}`` are whole values; ``WHAT`` is said when it is missing.
  ``promote_from: ${required}`` is filled by ``--promote-from ENV``.
- ``${allocate /PREFIX from POOL}`` is a whole value directly under ``variables:``: that is
  where strataflow looks for an environment's networks (``strataflow.cidrs``), so every
  allocation is seen by the next one.
- ``${subnets /PREFIX N M ... of PATH}`` is a whole value under ``variables:``: the N-th, M-th,
  ... ``/PREFIX`` blocks of the CIDR at PATH (allocated or given), joined with commas.
- ``${name}`` and ``${PATH}`` (a dotted path of this file) may appear inside any string.
- Every plain value is a default: ``--set KEY=VALUE`` replaces it.

Where the new environment sits in the promotion chain is the blueprint's ``promote_from``
(a name, a hole, or absent: a chain head); ``--promote-from`` overrides it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from strataflow import cidrs, refs, yamlsrc
from strataflow.backends import registry
from strataflow.config import CLOUDS, NAME_PATTERN, Environment, Platform
from strataflow.errors import Problem
from strataflow.graph import find_cycle
from strataflow.hints import did_you_mean
from strataflow.load import _problems_from  # the one translation of pydantic errors into Problems

DIRECTORY = "blueprints"
Path_ = tuple[str | int, ...]
_WHOLE = re.compile(r"^(required|allocate|subnets)(?![A-Za-z0-9_.-]):?\s*(.*)$", re.S)
_ALLOCATE = re.compile(r"^/(\d+)\s+from\s+(\S+)$")
_SUBNETS = re.compile(r"^/(\d+)\s+([\d\s,]+?)\s+of\s+(\S+)$")
_DOTTED = re.compile(r"^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*$")
HOLES_HELP = (
    "use ${required}, ${required WHAT}, ${allocate /PREFIX from POOL}, ${subnets /PREFIX N ... of PATH}, "
    "${name} or ${PATH} (a value of this file)"
)


class HoleError(ValueError):
    """A ``${...}`` in a blueprint that is no hole and no runtime reference."""


@dataclass(frozen=True)
class Hole:
    """A whole-value hole: ``required``, ``allocate`` or ``subnets``, where it is and what it asks."""

    kind: str
    path: Path_
    line: int | None
    column: int | None
    what: str = ""
    prefix: int = 0
    pool: cidrs.Network | None = None
    source: tuple[str, ...] = ()
    indexes: tuple[int, ...] = ()

    @property
    def dotted(self) -> str:
        return dotted(self.path)


@dataclass(frozen=True)
class Blueprint:
    """A parsed blueprint: its template (the YAML as read, with positions) and its holes."""

    name: str
    file: str
    data: yamlsrc.LineDict
    holes: tuple[Hole, ...] = ()
    broken: bool = field(default=False, compare=False)

    def pools(self) -> list[cidrs.Network]:
        return [hole.pool for hole in self.holes if hole.pool is not None]


def dotted(path: Path_) -> str:
    return ".".join(str(part) for part in path)


def whole_hole(text: str, path: Path_, line: int | None, column: int | None) -> Hole | None:
    """The hole ``text`` is when it is one ``${required|allocate|subnets ...}``; HoleError when malformed."""
    match = refs.PATTERN.fullmatch(text.strip())
    inner = _WHOLE.match(match.group(1).strip()) if match else None
    if inner is None:
        if any(_WHOLE.match(m.group(1).strip()) for m in refs.PATTERN.finditer(text)):
            raise HoleError(f"'{text}': ${{required}}, ${{allocate ...}} and ${{subnets ...}} must be the whole value")
        return None
    kind, rest = inner.group(1), inner.group(2).strip()
    if kind == "required":
        return Hole(kind, path, line, column, what=rest)
    if path[:1] != ("variables",) or len(path) != 2:
        raise HoleError(f"'{text}' must be a value directly under variables: (where environments keep their networks)")
    if kind == "allocate":
        found = _ALLOCATE.match(rest)
        pool = cidrs.parse(found.group(2)) if found else None
        if found is None or pool is None:
            raise HoleError(f"'{text}' is not an allocation; write ${{allocate /16 from 10.0.0.0/8}}")
        prefix = int(found.group(1))
        if not pool.prefixlen <= prefix <= pool.max_prefixlen:
            raise HoleError(f"'{text}': a /{prefix} does not fit in {pool}; give a prefix from /{pool.prefixlen} to /{pool.max_prefixlen}")
        return Hole(kind, path, line, column, prefix=prefix, pool=pool)
    found = _SUBNETS.match(rest)
    if found is None or not _DOTTED.match(found.group(3)):
        raise HoleError(f"'{text}' is not a subnet list; write ${{subnets /20 0 1 of variables.vpc_cidr}}")
    indexes = tuple(int(i) for i in re.split(r"[\s,]+", found.group(2).strip()) if i)
    return Hole(kind, path, line, column, prefix=int(found.group(1)), source=tuple(found.group(3).split(".")), indexes=indexes)


def interpolations(text: str) -> Iterator[str | tuple[str, ...]]:
    """What ``text`` interpolates: ``"name"`` for ``${name}``, a path for ``${PATH}``; runtime references are skipped."""
    for match in refs.PATTERN.finditer(text):
        body = match.group(1).strip()
        try:
            refs.parse(body)
        except refs.RefSyntaxError:
            pass
        else:
            continue
        if body == "name":
            yield "name"
        elif _WHOLE.match(body):
            raise HoleError(f"'{text}': ${{{body.split()[0]}}} must be the whole value")
        elif _DOTTED.match(body):
            yield tuple(body.split("."))
        else:
            raise HoleError(f"'${{{body}}}' is not a hole; {HOLES_HELP}")


def substitute(text: str, name: str, value_of: Callable[[tuple[str, ...]], Any]) -> str:
    """``text`` with ``${name}`` and ``${PATH}`` filled in; runtime references stay as written."""

    def one(match: re.Match[str]) -> str:
        body = match.group(1).strip()
        try:
            refs.parse(body)
        except refs.RefSyntaxError:
            return name if body == "name" else refs.as_text(value_of(tuple(body.split("."))))
        return match.group(0)

    return refs.PATTERN.sub(one, text)


def lookup(data: Any, path: Path_) -> Any:
    """The value at ``path``; KeyError when there is none."""
    node = data
    for part in path:
        in_map = isinstance(node, dict) and isinstance(part, str) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_map or in_list:
            node = node[part]
        else:
            raise KeyError(dotted(path))
    return node


def leaf_paths(data: Any, path: Path_ = ()) -> Iterator[Path_]:
    if isinstance(data, dict):
        for key, value in data.items():
            yield from leaf_paths(value, (*path, key))
    elif path:
        yield path


# --- loading -------------------------------------------------------------------------------


def load(root: Path) -> tuple[dict[str, Blueprint], list[Problem]]:
    """The blueprints under ``root/blueprints`` (none when the directory is absent) and their problems."""
    directory = root / DIRECTORY
    found: dict[str, Blueprint] = {}
    problems: list[Problem] = []
    if not directory.is_dir():
        return found, problems
    for path in sorted(directory.glob("*.yml")):
        problems.append(Problem(str(path), None, None, f"blueprint files end in .yaml; rename it to {path.stem}.yaml"))
    for path in sorted(directory.glob("*.yaml")):
        file = str(path)
        data, errors = yamlsrc.load(path, file)
        problems.extend(errors)
        if errors and data is None:
            continue
        if data is None:
            data = yamlsrc.LineDict(line=1)
        if not isinstance(data, yamlsrc.LineDict):
            problems.append(Problem(file, 1, None, "a blueprint is an environment file with holes: a mapping"))
            continue
        before = len(problems)
        if not re.match(NAME_PATTERN, path.stem):
            problems.append(Problem(file, None, None, f"'{path.stem}' is not a valid blueprint name; rename the file to lowercase letters, digits and '-'"))
        holes = _holes(data, file, problems)
        found[path.stem] = Blueprint(path.stem, file, data, tuple(holes), broken=len(problems) > before)
    return found, problems


def _holes(data: yamlsrc.LineDict, file: str, problems: list[Problem]) -> list[Hole]:
    """Every whole-value hole, in file order; malformed ones and dangling paths become problems."""
    holes: list[Hole] = []
    leaves = [dotted(p) for p in leaf_paths(data)]
    depends: dict[str, list[str]] = {}
    for path, text in refs.walk(data):
        line, column = yamlsrc.position(data, path)
        try:
            hole = whole_hole(text, path, line, column)
            if hole is not None and any(isinstance(part, int) for part in path):
                raise HoleError(f"'{text}' is in a list; make the whole list the hole")
            if hole is None:
                used = [p for p in interpolations(text) if isinstance(p, tuple)]
            else:
                used = [hole.source] if hole.kind == "subnets" else []
        except HoleError as exc:
            problems.append(Problem(file, line, column, str(exc)))
            continue
        for target in used:
            try:
                lookup(data, target)
            except KeyError:
                hint = did_you_mean(dotted(target), leaves)
                message = f"'{text}' names '{dotted(target)}', which this blueprint does not set{hint}; add it (a value or ${{required}})"
                problems.append(Problem(file, line, column, message))
        depends[dotted(path)] = [dotted(p) for p in used]
        if hole is not None:
            holes.append(hole)
    allocated = {hole.path: hole for hole in holes if hole.kind == "allocate" and hole.pool is not None}
    for hole in holes:
        block = allocated.get(hole.source) if hole.kind == "subnets" else None
        if block is not None and block.pool is not None:
            try:
                cidrs.subnets(cidrs.allocate(block.pool, block.prefix, []), hole.prefix, hole.indexes)
            except ValueError as exc:
                message = f"{hole.dotted}: {exc}, the size of the /{block.prefix} that {block.dotted} allocates; fix the prefix or the numbers"
                problems.append(Problem(file, hole.line, hole.column, message))
    cycle = find_cycle(depends)
    if cycle:
        line, column = yamlsrc.position(data, tuple(cycle[0].split(".")))
        problems.append(Problem(file, line, column, "values refer to each other in a loop: " + " -> ".join(cycle)))
    return holes


# --- checking --------------------------------------------------------------------------------


def probe(blueprint: Blueprint, name: str = "blueprint") -> dict[str, Any]:
    """The blueprint filled with stand-ins (required values left out, first blocks of pools), for checks."""
    data: dict[str, Any] = plain(blueprint.data)
    required = {hole.path for hole in blueprint.holes if hole.kind == "required"}
    for hole in blueprint.holes:
        if hole.kind == "allocate" and hole.pool is not None:
            put(data, hole.path, str(cidrs.allocate(hole.pool, hole.prefix, [])))
    for hole in blueprint.holes:
        if hole.kind == "subnets":
            block = cidrs.parse(str(_get(data, hole.source, "")))
            try:
                nets = cidrs.subnets(block, hole.prefix, hole.indexes) if block else []
            except ValueError:
                nets = []
            put(data, hole.path, ",".join(str(n) for n in nets))
    for path, text in list(refs.walk(data)):
        if tuple(path) not in required and refs.PATTERN.search(text):
            try:
                put(data, path, substitute(text, name, lambda p: "required" if p in required else _get(data, p, "")))
            except HoleError:
                continue
    for path in sorted(required, key=len, reverse=True):
        _drop(data, path)
    return data


def check(blueprint: Blueprint, platform: Platform | None) -> list[Problem]:
    """The blueprint validated as an environment (and, with a platform, against its components and environments)."""
    if blueprint.broken:
        return []
    file, data = blueprint.file, blueprint.data
    problems: list[Problem] = []
    required = {hole.path for hole in blueprint.holes if hole.kind == "required"}
    for key, message in (("name", "a blueprint's environments are named by `strata env new NAME`"), ("settings", "a backend's settings go under its name (terraform:)")):
        if key in data:
            line, column = yamlsrc.position(data, (key,))
            problems.append(Problem(file, line, column, f"unknown key '{key}' at the top level; {message}"))
    filled = {k: v for k, v in probe(blueprint).items() if k not in ("name", "settings")}
    for key in registry.settings_keys() & set(filled):
        try:
            registry.parse_settings(key, filled[key])
        except ValidationError as exc:
            problems.extend(_problems_from(exc, file, data, (key,)))
    try:
        environment = Environment.model_validate({**filled, "name": "blueprint"})
    except ValidationError as exc:
        return problems + _problems_from(exc, file, data, ())
    if platform is not None:
        problems += _against(blueprint, environment, platform, required)
    return problems


def _against(blueprint: Blueprint, env: Environment, platform: Platform, required: set[Path_]) -> list[Problem]:
    """Cross-checks: promote_from, overrides and the variables the components use."""
    file, data = blueprint.file, blueprint.data
    problems = []
    if env.promote_from is not None and env.promote_from not in platform.environments:
        line, column = yamlsrc.position(data, ("promote_from",))
        hint = did_you_mean(env.promote_from, platform.environments)
        problems.append(Problem(file, line, column, f"promote_from names unknown environment '{env.promote_from}'{hint}"))
    if env.approval.required and not env.approval.approvers and ("approval", "approvers") not in required:
        line, column = yamlsrc.position(data, ("approval",))
        problems.append(Problem(file, line, column, "approval.required needs at least one name under approval.approvers"))
    for name in env.components:
        if name not in platform.components:
            line, column = yamlsrc.position(data, ("components", name))
            problems.append(Problem(file, line, column, f"override for unknown component '{name}'{did_you_mean(name, platform.components)}"))
    defined = set(env.variables) | {str(p[1]) for p in required if p[:1] == ("variables",) and len(p) == 2}
    users: dict[str, list[str]] = {}
    for cname, component in platform.components.items():
        if not env.override(cname).enabled:
            continue
        for cloud in env.declared_clouds() or list(CLOUDS):
            impl = component.impl(cloud)
            params = [impl.model_dump(exclude_defaults=True)] if impl is not None else []
            for _, ref in refs.find([*params, env.override(cname).parameters]):
                if isinstance(ref, refs.Ref) and ref.kind == "var" and ref.name not in defined:
                    users.setdefault(ref.name, []).append(cname)
    line, column = yamlsrc.position(data, ("variables",))
    for var, names in sorted(users.items()):
        used_by = ", ".join(sorted(set(names)))
        problems.append(Problem(file, line, column, f"variable '{var}' is used by {used_by} but this blueprint does not define it; add it under variables:"))
    return problems


# --- plain data --------------------------------------------------------------------------------


def plain(value: Any) -> Any:
    """A deep copy as plain dicts and lists (no positions)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def put(data: Any, path: Path_, value: Any) -> None:
    """Set ``path`` (creating mappings on the way; a hole or null on the way becomes a mapping)."""
    node = data
    for part in path[:-1]:
        child = node[part] if isinstance(node, list) and isinstance(part, int) else node.get(part)
        if child is None or (isinstance(child, str) and whole_hole(child, (), None, None)):
            child = {}
            node[part] = child
        if not isinstance(child, dict | list):
            raise KeyError(dotted(path))
        node = child
    node[path[-1]] = value


def _get(data: Any, path: Path_, default: Any) -> Any:
    try:
        return lookup(data, path)
    except KeyError:
        return default


def _drop(data: Any, path: Path_) -> None:
    try:
        parent = lookup(data, path[:-1])
    except KeyError:
        return
    if isinstance(parent, dict):
        parent.pop(path[-1], None)


__all__ = [
    "DIRECTORY",
    "Blueprint",
    "Hole",
    "HoleError",
    "check",
    "dotted",
    "interpolations",
    "load",
    "lookup",
    "plain",
    "probe",
    "put",
    "substitute",
    "whole_hole",
]
