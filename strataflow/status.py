"""What is deployed where: each component's state against the working config, and what is next."""

from __future__ import annotations

from typing import Any

from strataflow import graph as graphs
from strataflow import state
from strataflow.config import Platform
from strataflow.errors import StrataError
from strataflow.records import applied_outputs, masked, release_of, sensitive_keys
from strataflow.releases import release_id
from strataflow.resolve import resolve


def environment_status(platform: Platform, env_name: str, cloud: str, sandbox: bool = False) -> dict[str, Any]:
    """The status document of ``strata status ENV --json`` (of the sandbox's records with ``sandbox``)."""
    env = platform.environment(env_name)
    graph = graphs.component_graph(platform, env, cloud)
    everything = state.all_components(env_name, cloud, sandbox)
    records = {name: record for name, record in everything.items() if name in graph.upstream}
    components: dict[str, Any] = {}
    outputs = applied_outputs(records)
    sensitive = sensitive_keys(records)
    for name in graph.order():
        record = records.get(name)
        try:
            working = resolve(platform, env, cloud, name, outputs, planning=True, sensitive=sensitive).digest
        except StrataError:
            working = None
        applied = record.applied if record and record.state == "applied" else None
        components[name] = {
            "state": record.state if record else "never",
            "last_action": f"{record.action} {record.status}" if record else None,
            "version": applied.version if applied else None,
            "working_version": platform.components[name].version,
            "applied_at": applied.applied_at.isoformat() if applied else None,
            "applied_by": applied.actor if applied else None,
            "digest": applied.digest if applied else None,
            "bundle": applied.bundle if applied else None,
            "release": applied.release if applied else None,
            "how": applied.how if applied else None,
            "approved_by": applied.approval.who() if applied and applied.approval else None,
            "approval": applied.approval.model_dump(mode="json") if applied and applied.approval else None,
            "working_digest": working,
            "pending_change": applied is None or applied.digest != working,
            "outputs": masked(applied.outputs, set(applied.sensitive)) if applied else {},
            "error": record.error if record and record.state == "failed" else None,
            "drift": record.drift.model_dump(mode="json") if record and record.drift else None,
            "flow_run_url": state.flow_run_url(record.flow_run_id) if record else None,
            "depends_on": sorted(graph.upstream[name]),
        }
    ready = [
        name
        for name, info in components.items()
        if info["pending_change"]
        and all(
            components[dep]["state"] == "applied" and not components[dep]["pending_change"]
            for dep in graph.upstream[name]
        )
    ]
    running = release_of(records)
    orphans = {
        name: {
            "version": record.applied.version,
            "applied_at": record.applied.applied_at.isoformat(),
            "bundle": record.applied.bundle,
            "why": "not in the config" if name not in platform.components else f"not deployed to {cloud} in {env_name}",
        }
        for name, record in sorted(everything.items())
        if name not in graph.upstream and record.applied is not None and record.state == "applied"
    }
    return {
        "env": env_name,
        "cloud": cloud,
        "sandbox": sandbox,
        "release": release_id(running) if running else None,
        "components": components,
        "orphans": orphans,
        "next": ready,
    }


def render(doc: dict[str, Any]) -> str:
    where = f"{doc['env']} ({doc['cloud']}{', sandbox' if doc.get('sandbox') else ''})"
    lines = [where + (f": release {doc['release'][:12]}" if doc.get("release") else ": nothing deployed")]
    header = f"  {'component':<20} {'state':<10} {'version':<10} {'applied':<20} {'by':<12} pending"
    lines.append(header)
    for name, info in doc["components"].items():
        applied = (info["applied_at"] or "")[:19].replace("T", " ")
        pending = "yes" if info["pending_change"] else ""
        if info.get("drift") and info["drift"].get("drifted"):
            pending = (pending + " drifted").strip()
        lines.append(
            f"  {name:<20} {info['state']:<10} {info['version'] or '-':<10} {applied:<20} {info['applied_by'] or '':<12} {pending}"
        )
        if info.get("approved_by"):
            lines.append(f"      approved by {info['approved_by']} ({info['how']})")
        for key, value in info["outputs"].items():
            lines.append(f"      {key} = {value}")
        if info["error"]:
            lines.append(f"      error: {info['error']}")
    for name, info in doc.get("orphans", {}).items():
        lines.append(f"  {name:<20} orphan     {info['version'] or '-':<10} still deployed, {info['why']}")
    if doc.get("orphans"):
        lines.append(f"orphans: remove them with `strata destroy {doc['env']} --orphans`")
    lines.append("next: " + (", ".join(doc["next"]) or "nothing to deploy"))
    return "\n".join(lines)


def pending_changes(platform: Platform, env_name: str, cloud: str, records: dict[str, Any]) -> dict[str, bool]:
    """Each component of the environment's working config: whether it differs from what ``records`` say is applied.

    The ``pending_change`` of ``environment_status``, from records already read (``strata metrics``
    reads every environment's records at once).
    """
    env = platform.environment(env_name)
    graph = graphs.component_graph(platform, env, cloud)
    outputs, sensitive = applied_outputs(records), sensitive_keys(records)
    found: dict[str, bool] = {}
    for name in graph.order():
        record = records.get(name)
        applied = record.applied if record and record.state == "applied" else None
        try:
            working = resolve(platform, env, cloud, name, outputs, planning=True, sensitive=sensitive).digest
        except StrataError:
            working = None
        found[name] = applied is None or applied.digest != working
    return found
