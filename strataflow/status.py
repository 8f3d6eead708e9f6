"""What is deployed where: each component's state against the working config, and what is next."""

from __future__ import annotations

from typing import Any

from strataflow import graph as graphs
from strataflow import state
from strataflow.config import Platform
from strataflow.errors import StrataError
from strataflow.records import applied_outputs, masked, sensitive_keys
from strataflow.resolve import resolve


def environment_status(platform: Platform, env_name: str, cloud: str) -> dict[str, Any]:
    """The status document of ``strata status ENV --json``."""
    env = platform.environment(env_name)
    graph = graphs.component_graph(platform, env, cloud)
    records = state.latest_components(env_name, cloud, graph.nodes)
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
            "source_digest": applied.source_digest if applied else None,
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
    return {"env": env_name, "cloud": cloud, "components": components, "next": ready}


def render(doc: dict[str, Any]) -> str:
    lines = [f"{doc['env']} ({doc['cloud']})"]
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
        for key, value in info["outputs"].items():
            lines.append(f"      {key} = {value}")
        if info["error"]:
            lines.append(f"      error: {info['error']}")
    lines.append("next: " + (", ".join(doc["next"]) or "nothing to deploy"))
    return "\n".join(lines)
