"""Copying an environment: ``strata env new NAME --from ENV``, decided before anything is written.

Pure, like ``strataflow.newenv`` (whose ``Draft``, ``Request`` and checks it shares).
``from_environment`` copies the source's file (as written: ``24h`` stays ``24h``) and then:

- **re-allocates its networks**: each outermost CIDR block in its variables gets a free block
  of the same size from the smallest blueprint pool holding it, else from its private range
  (10/8, 172.16/12, ...); CIDRs inside a block (subnets) move with it, to the same offset;
- **renames** the source's name where it is a word of a value under ``clouds``, ``variables``,
  ``components`` and backend sections (``strata-staging`` → ``strata-qa``,
  ``staging.example.com`` → ``qa.example.com``), outside ``${...}`` references;
- **follows a new account**: when ``--set`` gives another ``clouds.aws.account_id`` (or Azure
  ``subscription_id``), the old id is replaced in that cloud's other values (the deploy
  ``role_arn``); an account or subscription not given is kept and said to be shared;
- **drops** ``clouds.*.credentials`` and ``clouds.aws.profile``: they name the source's
  identity (a block or profile reaching the source's account), and a copy must not deploy as
  the source; without them the default chain (the worker's own identity) and ``role_arn``
  apply, as docs/running-on-a-prefect-server.md recommends per trust zone;
- **keeps** ``approval`` (approvers included) and ``freeze`` windows: both are gates, and a
  copy that silently lost a gate would fail open, while a copy that keeps one fails safe
  and is one edit away from loosening; ``promote_from`` (the source's place in the chain,
  a sibling of it, unless ``--promote-from`` says otherwise), ``issue_tracker``, component
  overrides and backend settings are kept too, each said in the decisions.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from strataflow import cidrs, refs
from strataflow.backends import registry
from strataflow.blueprints import Path_, plain, put
from strataflow.config import Platform
from strataflow.errors import UsageError
from strataflow.hints import did_you_mean
from strataflow.newenv import Draft, Request, apply_request, check_request, finish, get, taken


def from_environment(platform: Platform, source: str, raw: Any, request: Request, pools: Iterable[cidrs.Network]) -> Draft:
    """A copy of environment ``source`` (its file's data ``raw``) for ``request``, as the module docstring says."""
    check_request(platform, request)
    if source not in platform.environments:
        hint = did_you_mean(source, platform.environments)
        raise UsageError(f"--from names unknown environment '{source}'{hint} (known: {', '.join(sorted(platform.environments))})")
    name, hand = request.name, request.hand()
    header = f"# {name}: made by `strata env new {name} --from {source}`: {source}'s settings, its own networks and names.\n"
    original = plain(raw) if isinstance(raw, dict) else {}
    draft = Draft(name, f"environment {source}", header, plain(original))
    data = draft.data
    for cloud, key in (("aws", "credentials"), ("aws", "profile"), ("azure", "credentials")):
        section = (data.get("clouds") or {}).get(cloud) or {}
        if key in section:
            draft.notes.append(f"clouds.{cloud}.{key} '{section.pop(key)}' was not copied: it is {source}'s identity; {name} uses the default credential chain (and role_arn) unless you --set one")
    apply_request(draft, request)
    if ("promote_from",) not in hand and data.get("promote_from"):
        draft.decide("promote_from", data["promote_from"], f"{source}'s place in the chain; --promote-from ENV to choose")
    for cloud, key, what in (("aws", "account_id", "AWS account"), ("azure", "subscription_id", "Azure subscription")):
        before = get(original, ("clouds", cloud, key))
        after = get(data, ("clouds", cloud, key))
        if not before:
            continue
        if after == before:
            draft.notes.append(f"clouds.{cloud}.{key} is {source}'s {what} ({before}): {name} shares it; --set clouds.{cloud}.{key}=... to give {name} its own")
            continue
        for path, text in list(refs.walk(data["clouds"][cloud], ("clouds", cloud))):
            if path not in hand and str(before) in text and after:
                put(data, path, text.replace(str(before), str(after)))
                draft.decide(path, text.replace(str(before), str(after)), f"derived from clouds.{cloud}.{key}")
    _rename(draft, source, hand)
    _networks(platform, draft, source, original, request, pools)
    for key in [k for k in data if k not in ("clouds", "variables", "promote_from", "default_cloud")]:
        if data.get(key) and (key,) not in hand:
            draft.decide(key, _summary(key, data[key]), f"copied from {source}")
    decided = {path for path, _, _ in draft.decisions}
    same = [key for key in data.get("variables") or {} if f"variables.{key}" not in decided]
    if same:
        draft.notes.append(f"variables copied from {source} as they are: {', '.join(same)}; change those that must differ in {name}")
    return finish(platform, draft, hand, request.sets, None)


def _rename(draft: Draft, source: str, hand: set[Path_]) -> None:
    word = re.compile(rf"(?<![A-Za-z0-9]){re.escape(source)}(?![A-Za-z0-9])")
    for top in ("clouds", "variables", "components", *sorted(registry.settings_keys())):
        if top not in draft.data:
            continue
        for path, text in list(refs.walk(draft.data[top], (top,))):
            if any(path[: len(h)] == h for h in hand):
                continue
            pieces = re.split(r"(\$\{[^{}]*\})", text)
            renamed = "".join(p if i % 2 else word.sub(draft.name, p) for i, p in enumerate(pieces))
            if renamed != text:
                put(draft.data, path, renamed)
                draft.decide(path, renamed, f"renamed from {source}'s {text}")


def _networks(platform: Platform, draft: Draft, source: str, original: dict[str, Any], request: Request, pools: Iterable[cidrs.Network]) -> None:
    """Each outermost block of the source's variables re-allocated (or given by hand); the CIDRs inside moved with it."""
    theirs = dict(cidrs.walk_variables(original.get("variables") or {}))
    given = {s.path[1]: s for s in request.sets if s.path[:1] == ("variables",) and len(s.path) == 2}
    blocks = cidrs.outermost(net for nets in theirs.values() for net in nets)
    existing = [found.network for found in taken(platform)]
    moved: dict[cidrs.Network, cidrs.Network] = {}
    for block in blocks:
        holder = next(key for key, nets in theirs.items() if block in nets)
        if holder in given:
            mine = cidrs.networks_in(given[holder].value)
            if len(mine) != 1:
                raise UsageError(f"--set {given[holder].text}: give one CIDR, the block that takes the place of {source}'s {block}")
            moved[block] = mine[0]
            continue
        pool = cidrs.pool_for(block, list(pools))
        if pool is None:
            raise UsageError(f"{source}'s variables.{holder} {block} is in no blueprint pool nor private range; --set variables.{holder}=CIDR")
        try:
            moved[block] = cidrs.allocate(pool, block.prefixlen, existing + list(moved.values()))
        except cidrs.Exhausted:
            raise UsageError(f"no free /{block.prefixlen} left in {pool} for {draft.name}'s variables.{holder}; --set variables.{holder}=CIDR") from None
        draft.decide(("variables", holder), moved[block], f"allocated from {pool}; {source} has {block}")
    for key, nets in theirs.items():
        if key in given:
            continue

        def move(net: cidrs.Network, key: str = key) -> cidrs.Network:
            block = next(b for b in blocks if b.version == net.version and net.subnet_of(b))  # type: ignore[arg-type]
            try:
                return cidrs.translate(net, block, moved[block])
            except ValueError:
                raise UsageError(f"{source}'s variables.{key} {net} does not fit in {moved[block]}; --set variables.{key} too") from None

        new = cidrs.rewrite(draft.data["variables"][key], move)
        draft.data["variables"][key] = new
        if not any(net in blocks for net in nets):
            draft.decide(("variables", key), new, f"moved with its block; {source} has {refs.as_text(original['variables'][key])}")


def _summary(key: str, value: Any) -> str:
    if key == "approval" and isinstance(value, dict):
        if not value.get("required"):
            return "not required"
        names = [str(a.get("name") if isinstance(a, dict) else a) for a in value.get("approvers") or []]
        return f"required, by {' or '.join(names) or 'nobody'}" + (f", timeout {value['timeout']}" if "timeout" in value else "")
    if isinstance(value, list):
        return f"{len(value)} window{'s' * (len(value) != 1)}"
    if isinstance(value, dict):
        return ", ".join(map(str, value))
    return str(value)


__all__ = ["from_environment"]
