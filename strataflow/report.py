"""The run report (a contract: see the README) and its renderings: JSON, text, markdown, mermaid; and the
promotion report.

Pure: the orchestrator fills a ``RunReport``; the command line prints it, the flow publishes
it as a markdown artifact. Outputs listed as sensitive are masked in every rendering.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from strataflow.graph import Graph
from strataflow.records import ComponentStatus, Decision, RunRecord

if TYPE_CHECKING:  # only as types: the command line renders reports without loading deepdiff
    from strataflow.approvals import ApprovalRequest
    from strataflow.diff import PromotionDiff
    from strataflow.gates import Gate


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


def markdown(report: RunReport, next_steps: list[str] | None = None) -> str:
    """The run report as a Prefect markdown artifact (the run's task graph is drawn by the UI itself)."""
    rows = ["| component | status | duration | changes | note |", "|---|---|---|---|---|"]
    for name, comp in report.components.items():
        note = comp.error or (f"because {comp.skipped_because} failed" if comp.skipped_because else "")
        took = f"{comp.duration_s:.1f}s" if comp.duration_s is not None else ""
        rows.append(f"| {name} | {_MARK[comp.status]} {comp.status} | {took} | {comp.changes} | {_cell(note)} |")
    parts = [f"# {report.action} {report.env} ({report.cloud}): {report.status}", "\n".join(rows)]
    outputs = [
        f"- **{name}**\n" + "\n".join(f"    - `{key}`: {_value(value)}" for key, value in comp.outputs.items())
        for name, comp in report.components.items()
        if comp.outputs
    ]
    if outputs:
        parts.append("## Outputs\n" + "\n".join(outputs))
    if next_steps:
        parts.append("## Next steps\n" + "\n".join(f"- {s}" for s in next_steps))
    return "\n\n".join(parts)


def _cell(text: str) -> str:
    """Text safe inside a markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def _value(value: Any) -> str:
    """An output value in full: a code span, or a list when it is a list."""
    if isinstance(value, list):
        return "".join(f"\n        - `{item}`" for item in value) or "`[]`"
    text_value = str(value).replace("`", "'")
    return f"`{text_value}`"


def promotion_markdown(
    record: RunRecord,
    status: str,
    checks: list[Gate] | None,
    diff: PromotionDiff | None,
    report: dict[str, Any] | None,
    request: ApprovalRequest | None,
    refused: list[dict[str, Any]],
) -> str:
    """The promotion's report: gates, the diff and plan, who asked and who may decide, the approval, the result."""
    detail = record.detail
    source = detail.get("source")
    title = f"Promote {source} → {record.env}" if source else f"Roll back {record.env}"
    parts = [
        f"# {title} ({record.cloud}{', sandbox' if record.sandbox else ''}): {status}",
        f"Requested by **{record.actor}**.",
    ]
    if request is not None:
        parts.append(
            f"May decide: {request.who_may_decide()}.\n\nDigest of what is approved: `{request.digest}`"
            + (f"\n\n`{request.command()}`" if status == "awaiting approval" else "")
        )
    if checks:
        parts.append("## Gates\n" + "\n".join(g.markdown() for g in checks))
    if diff:
        parts.append("## Changes\n" + diff.markdown())
    approval = detail.get("approval")
    if approval:
        decision = Decision.model_validate(approval)
        parts.append(
            f"## Approval\n{decision.decision} by {decision.who()}" + (f": {decision.comment}" if decision.comment else "")
        )
    if refused:
        parts.append(
            "## Refused decisions\n"
            + "\n".join(f"- {r['at']} {r['decision']} by {r['actor']}: {r['reason']}" for r in refused)
        )
    if report and report.get("components"):
        rows = [
            f"| {n} | {c['status']} | {_cell(c.get('error') or c.get('skipped_because') or '')} |"
            for n, c in report["components"].items()
        ]
        parts.append("## Deployment\n| component | status | note |\n|---|---|---|\n" + "\n".join(rows))
    if detail.get("reason") and status != "succeeded":
        parts.append(f"## Outcome\n{detail['reason']}")
    steps = {
        "succeeded": f"`strata status {record.env}`; promote onward when {record.env} is verified.",
        "failed": f"fix the failed components, then promote again (or `strata rollback {record.env}`).",
        "refused": "fix what the gates name, then promote again.",
        "rejected": "address the approver's comment, then promote again.",
        "timed out": "promote again when an approver is available.",
    }
    if status in steps:
        parts.append("## Next steps\n" + steps[status])
    issue = detail.get("issue")
    if issue:
        parts.append(f"Issue: {issue.get('url') or issue.get('number')}")
    return "\n\n".join(parts)
