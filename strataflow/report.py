"""The run report (a contract: see the README) and its renderings: JSON, text, markdown, mermaid.

Pure: the orchestrator fills a ``RunReport``; the command line prints it, the flow publishes
it as a markdown artifact. Outputs listed as sensitive are masked in every rendering.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from strataflow.graph import Graph
from strataflow.records import ComponentStatus


class ComponentReport(BaseModel):
    status: ComponentStatus
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_s: float | None = None
    outputs: dict[str, Any] = Field(default_factory=dict)
    changes: int = 0
    error: str | None = None
    skipped_because: str | None = None


class RunReport(BaseModel):
    env: str
    cloud: str
    action: str
    status: Literal["succeeded", "failed", "cancelled", "running"]
    flow_run_id: str | None
    started_at: datetime
    finished_at: datetime | None = None
    components: dict[str, ComponentReport] = Field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @property
    def failed(self) -> list[str]:
        return [n for n, c in self.components.items() if c.status == "failed"]


_MARK = {
    "succeeded": "✔",
    "unchanged": "=",
    "planned": "~",
    "failed": "✘",
    "skipped": "-",
    "cancelled": "⊘",
}


def text(report: RunReport, plans: dict[str, list[str]] | None = None) -> str:
    """A readable summary for a terminal."""
    lines = [f"{report.action} {report.env} ({report.cloud}): {report.status}"]
    for name, comp in report.components.items():
        took = f" {comp.duration_s:.1f}s" if comp.duration_s is not None else ""
        extra = ""
        if comp.status == "skipped":
            extra = f" (because {comp.skipped_because} failed)"
        elif comp.error:
            extra = f": {comp.error}"
        elif comp.changes:
            extra = f" ({comp.changes} change{'s' if comp.changes != 1 else ''})"
        lines.append(f"  {_MARK[comp.status]} {name:<24} {comp.status}{took}{extra}")
        for line in (plans or {}).get(name, []):
            lines.append(f"      {line}")
    return "\n".join(lines)


def mermaid(graph: Graph, statuses: dict[str, str] | None = None) -> str:
    """The graph as a mermaid flowchart, coloured by status when given."""
    statuses = statuses or {}
    lines = ["flowchart LR"]
    for name in graph.order():
        node = _mermaid_id(name)
        lines.append(f'  {node}["{name}"]')
    for name in graph.order():
        for dep in sorted(graph.upstream[name]):
            lines.append(f"  {_mermaid_id(dep)} --> {_mermaid_id(name)}")
    colours = {
        "succeeded": "#2e7d32",
        "unchanged": "#607d8b",
        "planned": "#1565c0",
        "failed": "#c62828",
        "skipped": "#9e9e9e",
        "cancelled": "#ef6c00",
    }
    for name, status in statuses.items():
        if status in colours:
            lines.append(f"  style {_mermaid_id(name)} fill:{colours[status]},color:#fff")
    return "\n".join(lines)


def _mermaid_id(name: str) -> str:
    return "c_" + name.replace("-", "_")


def markdown(report: RunReport, graph: Graph, next_steps: list[str] | None = None) -> str:
    """The run report as a Prefect markdown artifact."""
    rows = ["| component | status | duration | changes | outputs |", "|---|---|---|---|---|"]
    for name, comp in report.components.items():
        outputs = ", ".join(f"`{k}`={_short(v)}" for k, v in comp.outputs.items()) or ""
        note = comp.error or (f"because {comp.skipped_because} failed" if comp.skipped_because else "")
        took = f"{comp.duration_s:.1f}s" if comp.duration_s is not None else ""
        rows.append(f"| {name} | {comp.status} {note} | {took} | {comp.changes} | {outputs} |")
    parts = [
        f"# {report.action} {report.env} ({report.cloud}): {report.status}",
        "\n".join(rows),
        "```mermaid\n" + mermaid(graph, {n: c.status for n, c in report.components.items()}) + "\n```",
    ]
    if next_steps:
        parts.append("## Next steps\n" + "\n".join(f"- {s}" for s in next_steps))
    return "\n\n".join(parts)


def _short(value: Any) -> str:
    text_value = str(value)
    return text_value if len(text_value) <= 60 else text_value[:57] + "..."
