"""A new environment file, decided before anything is written: ``strata env new`` without the I/O.

Pure. ``from_blueprint`` fills a blueprint's holes (``strataflow.blueprints``);
``from_environment`` copies another environment. Both apply ``--set KEY=VALUE`` first (a
dotted path of the environment file, checked against the models; the value is YAML, so
``node_count=3`` is a number and ``approvers=[alice, bob]`` a list, except where the model
wants text: ``account_id=012345678901`` stays those twelve characters), then
``--promote-from``, and return a ``Draft``: the file's data, each decision with its reason,
and what is left to do. Every refusal raises before a Draft exists (the command writes
nothing): a missing required value, a CIDR given by hand that overlaps an environment's, a
pool with no free block, a name that is taken, a promotion chain that would loop (fanning
out, dev promoting to both qa and staging, is fine).

Copying another environment (``--from ENV``) is ``strataflow.copyenv``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from strataflow import blueprints, cidrs, refs, yamlsrc
from strataflow.backends import registry
from strataflow.blueprints import Blueprint, Path_, dotted, lookup, plain, put
from strataflow.config import NAME_PATTERN, Environment, Platform, env_file
from strataflow.errors import ConfigError, Problem, UsageError
from strataflow.graph import find_cycle
from strataflow.hints import did_you_mean


@dataclass(frozen=True)
class Setting:
    """One ``--set KEY=VALUE``: the path, the typed value and what was typed."""

    path: tuple[str, ...]
    value: Any
    text: str


@dataclass(frozen=True)
class Request:
    """What ``strata env new`` was asked: the name, the ``--set`` values, ``--promote-from``."""

    name: str
    sets: tuple[Setting, ...] = ()
    promote_from: str | None = None

    def hand(self) -> set[Path_]:
        paths: set[Path_] = {s.path for s in self.sets}
        return paths | ({("promote_from",)} if self.promote_from is not None else set())


@dataclass
class Draft:
    """A new environment file, decided: its data, each decision (path, value, why) and what is left to do."""

    name: str
    origin: str
    header: str
    data: dict[str, Any]
    decisions: list[tuple[str, str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def decide(self, path: Path_ | str, value: Any, why: str) -> None:
        where = path if isinstance(path, str) else dotted(path)
        self.decisions = [d for d in self.decisions if d[0] != where] + [(where, refs.as_text(value), why)]

    def ordered(self) -> list[tuple[str, str, str]]:
        """The decisions in the order their values stand in the file."""
        leaves = [dotted(p) for p in blueprints.leaf_paths(self.data)]

        def rank(decision: tuple[str, str, str]) -> int:
            where = decision[0]
            return next((i for i, leaf in enumerate(leaves) if leaf == where or leaf.startswith(where + ".")), len(leaves))

        return sorted(self.decisions, key=rank)


# --- --set ------------------------------------------------------------------------------------


def parse_set(text: str) -> Setting:
    """``KEY=VALUE`` with KEY a dotted path of the environment file; UsageError naming what is wrong."""
    key, equals, raw = text.partition("=")
    path = tuple(key.strip().split("."))
    if not equals or not all(re.fullmatch(r"[A-Za-z0-9_-]+", part) for part in path):
        raise UsageError(f"--set {text}: give KEY=VALUE with KEY a dotted path such as clouds.aws.account_id")
    if _wants_text(path, text):
        return Setting(path, None if raw.strip() in ("", "null", "~") else raw, text)
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise UsageError(f"--set {text}: the value is not YAML ({str(exc).splitlines()[0]}); quote it") from None
    return Setting(path, value, text)


def _wants_text(path: tuple[str, ...], text: str) -> bool:
    """Walk the environment's models along ``path``: unknown keys are refused; True when the leaf is text."""
    kind: Any = Environment
    for depth, key in enumerate(path):
        where = ".".join(path[:depth]) or "the top level"
        if depth == 0 and key in registry.settings_keys():
            found = registry.spec(key)
            kind = found.settings if found is not None else Any
            continue
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            fields = {k: f for k, f in kind.model_fields.items() if not (depth == 0 and k in ("name", "settings"))}
            if key not in fields:
                raise UsageError(f"--set {text}: unknown key '{key}'{did_you_mean(key, fields)} in {where}")
            kind = _inner(fields[key].annotation)
        elif get_origin(kind) is dict:
            kind = _inner(get_args(kind)[1])
        elif kind is Any:
            return False
        else:
            raise UsageError(f"--set {text}: {where} is not a mapping; set it whole (--set {where}=...)")
    return kind is str


def _inner(annotation: Any) -> Any:
    """The type inside ``X | None``."""
    if get_origin(annotation) in (Union, type(int | None)):
        kinds = [a for a in get_args(annotation) if a is not type(None)]
        return kinds[0] if len(kinds) == 1 else Any
    return annotation


# --- shared checks and the promotion chain --------------------------------------------------------


def promotion_cycle(edges: Mapping[str, str | None]) -> list[str] | None:
    """A loop of promote_from edges as its path (source -> target -> ... -> source), or None."""
    return find_cycle({target: [source] if source else [] for target, source in edges.items()})


def chain(edges: Mapping[str, str | None], name: str) -> list[str]:
    """The environments promoting into ``name``, from the head of its chain, ending with ``name``."""
    path = [name]
    while (source := edges.get(path[-1])) and source not in path:
        path.append(source)
    return list(reversed(path))


def taken(platform: Platform) -> list[cidrs.Found]:
    """Every network of every existing environment."""
    return [f for name in sorted(platform.environments) for f in cidrs.find(name, platform.environments[name].variables)]


def check_request(platform: Platform, request: Request) -> None:
    """The name is valid and free, and no network given by hand overlaps an environment's."""
    name = request.name
    if not re.match(NAME_PATTERN, name):
        raise UsageError(f"'{name}' is not a valid environment name; use lowercase letters, digits and '-' (at most 63)")
    if name in platform.environments:
        raise UsageError(f"environment '{name}' already exists ({env_file(platform.root, name)}); choose another name")
    existing = taken(platform)
    for setting in request.sets:
        for network in cidrs.networks_in(setting.value) if setting.path[:1] == ("variables",) else []:
            clash = cidrs.overlapping(network, existing)
            if clash is not None:
                raise UsageError(f"--set {setting.text} overlaps {clash.describe()}; choose a free block, or leave it out to have one allocated")


def finish(platform: Platform, draft: Draft, hand: set[Path_], settings: Sequence[Setting], blueprint: Blueprint | None) -> Draft:
    """The checks every draft passes: values given by hand, the chain, the networks, the resource group."""
    name, data = draft.name, draft.data
    try:
        Environment.model_validate({**{k: v for k, v in data.items() if k not in registry.settings_keys()}, "name": name})
    except ValidationError as exc:
        for error in exc.errors():
            loc = tuple(str(part) for part in error["loc"])
            given = next((s for s in settings if loc[: len(s.path)] == s.path or s.path[: len(loc)] == loc), None)
            if given is not None:
                raise UsageError(f"--set {given.text}: {dotted(loc)}: {error['msg']}") from None
    source = data.get("promote_from")
    if source is not None:
        if not isinstance(source, str) or (source not in platform.environments and source != name):
            known = ", ".join(sorted(platform.environments)) or "none"
            hint = did_you_mean(source, platform.environments)
            raise UsageError(f"promote_from names unknown environment '{source}'{hint} (known: {known}); choose one with --promote-from ENV")
        edges = {env.name: env.promote_from for env in platform.environments.values()} | {name: source}
        loop = promotion_cycle(edges)
        if loop:
            raise UsageError(f"{name} promoting from {source} would make the promotion chain loop ({' -> '.join(loop)}); choose another --promote-from")
    existing = taken(platform)
    for key, value in (data.get("variables") or {}).items():
        for network in cidrs.networks_in(value):
            clash = cidrs.overlapping(network, existing)
            if clash is None:
                continue
            given = next((s for s in settings if s.path == ("variables", key)), None)
            if given is not None:
                raise UsageError(f"--set {given.text} overlaps {clash.describe()}; choose a free block, or leave it out to have one allocated")
            where = blueprint.file if blueprint else env_file(platform.root, name)
            line, column = yamlsrc.position(blueprint.data, ("variables", key)) if blueprint else (None, None)
            raise ConfigError(Problem(where, line, column, f"variables.{key} {network} overlaps {clash.describe()}; make it an ${{allocate ...}} hole or --set variables.{key}=CIDR"))
    group = (data.get("clouds") or {}).get("azure", {}) or {}
    for other in platform.environments.values():
        theirs = other.clouds.azure
        if theirs and group.get("resource_group") and theirs.resource_group == group.get("resource_group") and theirs.subscription_id == group.get("subscription_id"):
            raise UsageError(f"clouds.azure.resource_group '{theirs.resource_group}' is {other.name}'s in the same subscription; --set clouds.azure.resource_group=NAME")
    return draft


# --- from a blueprint ---------------------------------------------------------------------------


def from_blueprint(platform: Platform, blueprint: Blueprint, request: Request) -> Draft:
    """The blueprint filled in for ``request``; refuses (UsageError, ConfigError) before deciding anything else."""
    check_request(platform, request)
    name, hand = request.name, request.hand()
    header = f"# {name}: made by `strata env new {name} --blueprint {blueprint.name}` from {blueprint.file}.\n"
    draft = Draft(name, f"blueprint {blueprint.name}", header, plain(blueprint.data))
    apply_request(draft, request)

    def live(path: Path_) -> bool:
        return not any(path[: len(h)] == h or h[: len(path)] == path for h in hand)

    holes = [hole for hole in blueprint.holes if live(hole.path)]
    missing = [hole for hole in holes if hole.kind == "required"]
    if missing:
        wanted = ", ".join(h.dotted + (f" ({h.what})" if h.what else "") for h in missing)
        how = " and ".join(dict.fromkeys("--promote-from ENV" if h.path == ("promote_from",) else f"--set {h.dotted}=VALUE" for h in missing))
        first = missing[0]
        raise ConfigError(Problem(blueprint.file, first.line, first.column, f"{name} needs {wanted}: give {how}"))
    chosen: list[cidrs.Network] = []
    existing = [found.network for found in taken(platform)]
    for hole in holes:
        if hole.kind == "allocate" and hole.pool is not None:
            try:
                block = cidrs.allocate(hole.pool, hole.prefix, existing + chosen)
            except cidrs.Exhausted:
                raise ConfigError(Problem(blueprint.file, hole.line, hole.column, f"{hole.dotted}: pool {hole.pool} has no free /{hole.prefix} left for {name}; widen the pool or --set {hole.dotted}=CIDR")) from None
            chosen.append(block)
            put(draft.data, hole.path, str(block))
            draft.decide(hole.path, block, f"allocated: the first free /{hole.prefix} of {hole.pool}")
    for hole in holes:
        if hole.kind == "subnets":
            value = get(draft.data, hole.source)
            nets = cidrs.networks_in(value)
            given = " (given by hand)" if not live(hole.source) else ""
            try:
                if len(nets) != 1:
                    raise ValueError(f"{dotted(hole.source)} is {value!r}, not one CIDR")
                subnets = cidrs.subnets(nets[0], hole.prefix, hole.indexes)
            except ValueError as exc:
                fix = f"--set a larger {dotted(hole.source)}, or --set {hole.dotted} too" if given else "fix the hole"
                raise ConfigError(Problem(blueprint.file, hole.line, hole.column, f"{hole.dotted}: {exc}{given}; {fix}")) from None
            put(draft.data, hole.path, ",".join(str(n) for n in subnets))
            draft.decide(hole.path, draft.data["variables"][hole.path[1]], f"derived from {dotted(hole.source)}")
    _fill_strings(draft, blueprint, live)
    if live(("promote_from",)) and draft.data.get("promote_from"):
        draft.decide("promote_from", draft.data["promote_from"], f"blueprint {blueprint.name}'s place in the chain; --promote-from ENV to choose")
    return finish(platform, draft, hand, request.sets, blueprint)


def _fill_strings(draft: Draft, blueprint: Blueprint, live: Any) -> None:
    """``${name}`` and ``${PATH}`` filled in every string the blueprint wrote (not those given by hand)."""
    data, done = draft.data, {}

    def value_of(path: tuple[str, ...]) -> Any:
        found = get(data, path)
        return resolve(path, found) if isinstance(found, str) and live(path) else found

    def resolve(path: Path_, text: str) -> str:
        if path not in done:
            done[path] = blueprints.substitute(text, draft.name, value_of)
        return done[path]

    for path, text in list(refs.walk(data)):
        if live(path) and refs.PATTERN.search(text):
            filled = resolve(path, text)
            if filled != text:
                put(data, path, filled)
                used = [dotted(p) if isinstance(p, tuple) else "the name" for p in blueprints.interpolations(text)]
                if used:
                    draft.decide(path, filled, "derived from " + ", ".join(dict.fromkeys(used)))


# --- shared steps -----------------------------------------------------------------------------


def apply_request(draft: Draft, request: Request) -> None:
    for setting in request.sets:
        try:
            put(draft.data, setting.path, setting.value)
        except (KeyError, TypeError):
            raise UsageError(f"--set {setting.text}: {dotted(setting.path[:-1])} is not a mapping here") from None
        draft.decide(setting.path, setting.value, "--set")
    if request.promote_from is not None:
        draft.data["promote_from"] = request.promote_from
        draft.decide("promote_from", request.promote_from, "--promote-from")


def get(data: Any, path: Path_) -> Any:
    try:
        return lookup(data, path)
    except KeyError:
        return None


class _Dumper(yaml.SafeDumper):
    """Block style, lists indented under their key."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def render(draft: Draft) -> str:
    """The environment file: the header comment, then readable YAML in the source's key order."""
    body = yaml.dump(draft.data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True, width=1000)
    return draft.header + ("# Edit it freely: `strata validate` checks it; docs/environments.md explains how it was made.\n") + (body if draft.data else "{}\n")


__all__ = [
    "Draft",
    "Request",
    "Setting",
    "apply_request",
    "chain",
    "check_request",
    "finish",
    "from_blueprint",
    "get",
    "parse_set",
    "promotion_cycle",
    "render",
    "taken",
]
