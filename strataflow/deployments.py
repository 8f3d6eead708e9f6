"""The part of ``prefect.yaml`` strataflow owns, generated from the config: ``strata deployments``.

Pure (text and YAML). The generated deployments sit in ``prefect.yaml``'s ``deployments:``
list between two marker lines::

    deployments:
      # >>> strataflow deployments: generated from config/ by `strata deployments --write`; ...
      - <<: *orchestrate
        ...
      # <<< strataflow deployments (add your own deployments below)
      - name: my-own-deployment          # anything outside the markers is never touched
        ...

Everything outside the markers (the header, ``build``/``pull``, ``definitions:`` with its
anchors, hand-added deployments) is kept byte for byte. The generated entries use the
anchors ``&orchestrate``, ``&promote``, ``&drift`` and ``&<kind>_parameters`` defined under
``definitions:`` (so the work pool and the parameters' defaults stay editable by hand), and
an environment's deployments use ``*<env>-pool`` instead of the shared pool when the file
defines an anchor of that name (one work pool per trust zone).

What is generated, in the promotion chain's order (each head, then what it promotes to,
siblings by name), deterministically (the same config gives the same bytes):

- ``orchestrate/<env>`` for every environment, with ``env: <env>`` in its parameters;
- ``promote/<source>-to-<target>`` for every ``promote_from`` edge. A promotion into an
  environment that needs no approval is automatic: a ``nightly`` schedule at 02:00 UTC from a
  chain head, 10 minutes later for each step further down the chain (dev -> staging at 02:00,
  staging -> uat at 02:10), so promotions out of one source run together and adding a
  sibling never moves an existing promotion. One that needs an approval has no schedule (a
  run would wait for a person anyway);
- ``drift/<env>`` for every environment, ``daily`` from 05:00 UTC, each 10 minutes after the
  one before it in chain order: adding an environment can move the drift checks after it by
  10 minutes (``strata deployments --write`` lists them as changed).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import yaml

from strataflow.config import Platform
from strataflow.errors import ConfigError, Problem

BEGIN = "# >>> strataflow deployments"
END = "# <<< strataflow deployments"
BEGIN_LINE = f"{BEGIN}: generated from config/ by `strata deployments --write`; edit config/, not these lines"
END_LINE = f"{END} (add your own deployments below)"
NIGHTLY_HOUR, DRIFT_HOUR, STAGGER_MINUTES = 2, 5, 10
INDENT = "  "


@dataclass(frozen=True)
class Deployment:
    """One generated deployment: its flow, name, the environment it acts on, its lines."""

    flow: str
    name: str
    env: str
    lines: tuple[str, ...]
    schedule: str | None = None

    @property
    def full(self) -> str:
        return f"{self.flow}/{self.name}"


@dataclass
class Changes:
    """How the deployments of two versions of prefect.yaml differ, by ``flow/name``."""

    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)

    def text(self) -> str:
        parts = [f"+ {n}" for n in self.added] + [f"- {n}" for n in self.removed] + [f"~ {n}" for n in self.changed]
        return ", ".join(parts)


@dataclass(frozen=True)
class Section:
    """prefect.yaml cut at the markers: ``current`` is None when it has none."""

    before: str
    current: str | None
    after: str


# --- the chain ---------------------------------------------------------------------------------


def chain_order(platform: Platform) -> list[str]:
    """Every environment: each chain head (by name), then depth first what it promotes to (by name)."""
    envs = platform.environments
    children: dict[str, list[str]] = {}
    for env in envs.values():
        if env.promote_from in envs and env.promote_from != env.name:
            children.setdefault(str(env.promote_from), []).append(env.name)
    order: list[str] = []
    stack = sorted((n for n, e in envs.items() if e.promote_from not in envs or e.promote_from == n), reverse=True)
    while stack:
        name = stack.pop()
        if name not in order:
            order.append(name)
            stack.extend(sorted(children.get(name, []), reverse=True))
    return order + sorted(set(envs) - set(order))


def plan(platform: Platform, pools: Iterable[str] = ()) -> list[Deployment]:
    """The generated deployments, in order: orchestrators, promotions, drift checks."""
    envs, order, own_pool = platform.environments, chain_order(platform), set(pools)

    def pool(env: str) -> list[str]:
        return [f"    work_pool: *{env}-pool"] if f"{env}-pool" in own_pool else []

    found: list[Deployment] = []
    for env in order:
        source = envs[env].promote_from
        if envs[env].approval.required and source:
            what = f"Deploy the {env} environment directly (plan, apply or destroy). Changes normally reach {env} through promote/{source}-to-{env}."
        else:
            what = f"Deploy the {env} environment (plan, apply or destroy; apply by default)."
        lines = ["  - <<: *orchestrate", f"    name: {_plain(env)}", f"    description: {_plain(what)}", *pool(env)]
        lines += [f'    tags: [strata, orchestrate, "env:{env}"]', f"    parameters: {{<<: *orchestrate_parameters, env: {_flow(env)}}}"]
        found.append(Deployment("orchestrate", env, env, tuple(lines)))
    for target in order:
        source = envs[target].promote_from
        if not source or source not in envs or source == target:
            continue
        name = f"{source}-to-{target}"
        if envs[target].approval.required:
            what = f"Promote what {source} verified to {target}. Pauses for an approval by one of {target}'s approvers (strata approve FLOW_RUN_ID --as NAME, or the UI)."
            schedule, tail = None, []
        else:
            what = f"Promote what {source} verified to {target} (no approval). Runs nightly; run it by hand any time."
            cron, schedule = _slot(NIGHTLY_HOUR, _depth(platform, source))
            schedule = f"nightly {schedule}"
            tail = ["    schedules:", f'      - cron: "{cron}"', "        timezone: UTC", "        slug: nightly"]
            tail += ["        active: true", "        parameters: {actor: nightly-schedule}"]
        lines = ["  - <<: *promote", f"    name: {_plain(name)}", f"    description: {_plain(what)}", *pool(target)]
        lines += [f'    tags: [strata, promotion, "env:{target}"]']
        lines += [f"    parameters: {{<<: *promote_parameters, source: {_flow(source)}, target: {_flow(target)}}}", *tail]
        found.append(Deployment("promote", name, target, tuple(lines), schedule))
    for index, env in enumerate(order):
        cron, when = _slot(DRIFT_HOUR, index)
        lines = ["  - <<: *drift", f"    name: {_plain(env)}", f"    description: {_plain(f'Check what is deployed in {env} against what was applied.')}"]
        lines += [*pool(env), f'    tags: [strata, drift, "env:{env}"]', f"    parameters: {{<<: *drift_parameters, env: {_flow(env)}}}", "    schedules:"]
        lines += [f'      - {{cron: "{cron}", timezone: UTC, slug: daily, active: true, parameters: {{actor: daily-drift-schedule}}}}']
        found.append(Deployment("drift", env, env, tuple(lines), f"daily {when}"))
    return found


def block(platform: Platform, pools: Iterable[str] = ()) -> str:
    """The generated section, marker lines included, as it stands in prefect.yaml."""
    found = plan(platform, pools)
    first = found[0].name if found else "ENV"
    heads = {
        "orchestrate": f"# --- the orchestrator, once per environment: prefect deployment run 'orchestrate/{first}' --watch",
        "promote": "# --- promotions, one per promotion edge (the target's promote_from)",
        "drift": "# --- drift, daily per environment (staggered)",
    }
    lines, seen = [INDENT + BEGIN_LINE], set[str]()
    for deployment in found:
        if deployment.flow not in seen:
            lines += ([""] if seen else []) + [INDENT + heads[deployment.flow]]
            seen.add(deployment.flow)
        lines += deployment.lines
    return "\n".join([*lines, INDENT + END_LINE]) + "\n"


def _depth(platform: Platform, name: str) -> int:
    """How many promotions lie between the head of ``name``'s chain and ``name`` (0 for a head)."""
    seen = [name]
    while (source := platform.environments[seen[-1]].promote_from) in platform.environments and source not in seen:
        seen.append(str(source))
    return len(seen) - 1


def _slot(hour: int, index: int) -> tuple[str, str]:
    minutes = hour * 60 + index * STAGGER_MINUTES
    h, m = divmod(minutes % (24 * 60), 60)
    return f"{m} {h} * * *", f"{h:02d}:{m:02d} UTC"


def _plain(text: str) -> str:
    """``text`` as a YAML block value: plain when it reads back the same, else double-quoted."""
    return text if _reads_back(f"k: {text}", text) else json.dumps(text)


def _flow(text: str) -> str:
    """``text`` inside a flow mapping (``{a: text}``)."""
    return text if _reads_back(f"{{k: {text}}}", text) else json.dumps(text)


def _reads_back(document: str, text: str) -> bool:
    try:
        return bool(text.strip() == text and yaml.safe_load(document) == {"k": text})
    except yaml.YAMLError:
        return False


# --- prefect.yaml --------------------------------------------------------------------------------


def split(text: str, file: str) -> Section:
    """``text`` cut at the marker lines; ConfigError when they are not one BEGIN followed by one END."""
    lines = text.splitlines(keepends=True)
    begins = [i for i, line in enumerate(lines) if line.strip().startswith(BEGIN)]
    ends = [i for i, line in enumerate(lines) if line.strip().startswith(END)]
    if not begins and not ends:
        return Section(text, None, "")
    if len(begins) != 1 or len(ends) != 1 or ends[0] < begins[0]:
        where = (begins + ends)[0] + 1
        message = f"the strataflow section needs one '{BEGIN}' line followed by one '{END}' line; fix the marker lines"
        raise ConfigError(Problem(file, where, None, message))
    start, stop = begins[0], ends[0] + 1
    return Section("".join(lines[:start]), "".join(lines[start:stop]), "".join(lines[stop:]))


def anchors(text: str) -> set[str]:
    """The YAML anchors (``&name``) ``text`` defines."""
    return set(re.findall(r"(?:^|[\s\[{,:])&([^\s,\[\]{}]+)", text))


def updated(text: str, platform: Platform, file: str) -> str:
    """prefect.yaml with its strataflow section regenerated; ConfigError when the result would not load."""
    section = split(text, file)
    kept = section.before + section.after
    generated = block(platform, {a for a in anchors(kept) if a.endswith("-pool")})
    if section.current is not None:
        new = section.before + generated + section.after
    elif re.search(r"^deployments:", text, re.M):
        message = (
            f"deployments: has no strataflow section; put the two lines '  {BEGIN}' and '  {END}' under it "
            "where strataflow's deployments go (and remove the ones written by hand for environments of config/)"
        )
        raise ConfigError(Problem(file, _line_of(text, r"^deployments:"), None, message))
    else:
        new = text + ("" if text.endswith("\n") or not text else "\n") + "\ndeployments:\n" + generated
    _check(new, platform, file, kept)
    return new


def _check(text: str, platform: Platform, file: str, kept: str) -> None:
    """The new file loads, defines the anchors the section uses, and names no deployment twice."""
    used = {"orchestrate", "drift", "orchestrate_parameters", "drift_parameters"} if platform.environments else set()
    if any(env.promote_from for env in platform.environments.values()):
        used |= {"promote", "promote_parameters"}
    missing = sorted(used - anchors(kept))
    if missing:
        names = ", ".join(f"&{a}" for a in missing)
        raise ConfigError(Problem(file, _line_of(text, r"^definitions:"), None, f"the generated deployments use the anchors {names}, which this file does not define; add them under definitions: (see strataflow's prefect.yaml)"))
    try:  # PyYAML's own loader: a key given next to a merge (<<) overrides it, as Prefect reads it
        data = yaml.safe_load(text)
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise ConfigError(Problem(file, line, None, f"YAML error: {getattr(exc, 'problem', None) or exc}")) from None
    items = [v for k, v in root.value if k.value == "deployments"][:1] if isinstance(root, yaml.MappingNode) else []
    lines = [item.start_mark.line + 1 for item in items[0].value] if items and isinstance(items[0], yaml.SequenceNode) else []
    seen: dict[str, int | None] = {}
    entries = (data.get("deployments") if isinstance(data, dict) else None) or []
    for index, entry in enumerate(entries):
        key = identity(entry)
        line = lines[index] if index < len(lines) else None
        if key in seen:
            message = f"deployment '{key}' is defined twice (first at line {seen[key]}); strataflow generates it from config/, remove the one written by hand"
            raise ConfigError(Problem(file, line, None, message))
        seen[key] = line


def identity(entry: Any) -> str:
    """``flow/name`` of a deployment entry (the flow is the entrypoint's function)."""
    if not isinstance(entry, dict):
        return repr(entry)
    return f"{str(entry.get('entrypoint', '')).rpartition(':')[2]}/{entry.get('name')}"


def changes(old: str, new: str) -> Changes:
    """The deployments ``new`` adds, removes and changes compared with ``old``."""
    before, after = _entries(old), _entries(new)
    return Changes(
        added=[k for k in after if k not in before],
        removed=[k for k in before if k not in after],
        changed=[k for k in after if k in before and before[k] != after[k]],
    )


def _entries(text: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return {}
    entries = data.get("deployments") if isinstance(data, dict) else None
    return {identity(entry): entry for entry in entries or []}


def stale(text: str, platform: Platform, file: str) -> Changes | None:
    """None when the strataflow section is what the config generates, else how it differs (maybe only in text)."""
    new = updated(text, platform, file)
    return None if new == text else changes(text, new)


def _line_of(text: str, pattern: str) -> int | None:
    match = re.search(pattern, text, re.M)
    return text.count("\n", 0, match.start()) + 1 if match else None


__all__ = [
    "BEGIN",
    "END",
    "Changes",
    "Deployment",
    "Section",
    "anchors",
    "block",
    "chain_order",
    "changes",
    "identity",
    "plan",
    "split",
    "stale",
    "updated",
]
