"""The Grafana dashboard (docs/grafana-dashboard.json) is built only on what strataflow.metrics exports."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from strataflow import metrics
from strataflow.metrics import LockState, Snapshot, WaitingApproval, WorkingConfig
from strataflow.records import Applied, ComponentRecord, DriftRecord, RunRecord

DASHBOARD = Path(__file__).resolve().parents[1] / "docs" / "grafana-dashboard.json"
NOW = datetime(2026, 3, 10, tzinfo=UTC)
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset"}


def at(hours: float) -> datetime:
    return NOW - timedelta(hours=hours)


def everything() -> Snapshot:
    """A snapshot in which every series has a value: applies (one failed, then restored), drift, a promotion, a wait, a lock."""
    applied = Applied(digest="d", version="1.0", applied_at=at(5))
    drift = DriftRecord(checked_at=at(4), supported=True, drifted=True, resources=["x"])
    runs = [
        RunRecord(env="dev", cloud="aws", action="apply", status="failed", started_at=at(9), finished_at=at(8.9), components={"app": "failed"}),
        RunRecord(env="dev", cloud="aws", action="apply", status="succeeded", started_at=at(8), finished_at=at(7.9), components={"app": "succeeded"}),
        RunRecord(env="dev", cloud="aws", action="apply", status="running", started_at=at(0.5), flow_run_id="holder"),
        RunRecord(kind="promote", env="prod", cloud="aws", action="promote", status="succeeded", started_at=at(6), finished_at=at(5), detail={"source": "dev"}),
        RunRecord(env="prod", cloud="aws", action="apply", status="succeeded", started_at=at(5.5), finished_at=at(5.2), components={"app": "succeeded"}, detail={"how": "promotion", "source": "dev"}),
    ]
    return Snapshot(
        taken_at=NOW,
        components=[
            ComponentRecord(env="dev", cloud="aws", component="app", action="apply", status="succeeded", applied=applied, drift=drift, started_at=at(8), finished_at=at(7.9))
        ],
        runs=runs,
        locks=[LockState(env="dev", cloud="aws", locked=True)],
        requests=[WaitingApproval(flow_run_id="w", env="prod", cloud="aws", since=at(1))],
        paused=["w"],
        working=[WorkingConfig(env="dev", cloud="aws", pending={"app": False})],
    )


def exported() -> set[str]:
    """Every sample name strataflow.metrics produces (the exporter's own series included)."""
    found = metrics.families(everything()) + metrics.exporter_families(NOW, 0.5, 0)
    return metrics.names(found)


def queries() -> list[str]:
    """Every PromQL expression in the dashboard (panel targets and template variables)."""
    board = json.loads(DASHBOARD.read_text())
    found: list[str] = []

    def walk(panel: dict[str, Any]) -> None:
        found.extend(t["expr"] for t in panel.get("targets", []) if t.get("expr"))
        for inner in panel.get("panels", []):
            walk(inner)

    for panel in board["panels"]:
        walk(panel)
    for variable in board["templating"]["list"]:
        query = variable.get("query")
        if isinstance(query, dict):
            found.append(query["query"])
        elif variable["type"] == "query":
            found.append(str(query))
    return found


def used_metrics(expr: str) -> set[str]:
    return set(re.findall(r"\bstrata_[a-z_]+\b", expr))


class TestDashboard:
    def test_the_full_snapshot_exports_every_series(self) -> None:
        """The snapshot the other checks use has a sample of every series in the catalogue (so they check them all)."""
        names = exported()
        missing = [n for n in metrics.SERIES if n not in names]
        assert not missing, missing

    def test_every_metric_a_query_uses_is_exported(self) -> None:
        """Each strata_* name in the dashboard's queries is a sample name strataflow.metrics exports."""
        names = exported()
        unknown = sorted({m for q in queries() for m in used_metrics(q)} - names)
        assert queries() and not unknown, unknown

    def test_every_label_a_query_uses_is_one_of_its_metrics(self) -> None:
        """Labels in selectors and in `by (...)` belong to the metrics the query reads (a renamed label is noticed)."""
        labels = {name: set(spec[2]) for name, spec in metrics.SERIES.items()}
        for expr in queries():
            allowed = set().union(*(labels[m] for m in used_metrics(expr) if m in labels)) or set()
            selectors = re.findall(r"\{([^}]*)\}", expr)
            named = {m.group(1) for s in selectors for m in re.finditer(r"([a-z_]+)\s*(?:=~|!=|!~|=)", s)}
            grouped = {w.strip() for g in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr) for w in g.split(",")}
            extra = (named | grouped) - allowed - PROMQL_WORDS - {""}
            assert not extra, (expr, extra)

    def test_the_dashboard_shows_what_the_issue_asks_for(self) -> None:
        """Environments x components with state and age, drift, pending approvals and the four delivery keys are queried."""
        used = {m for q in queries() for m in used_metrics(q)}
        wanted = {
            "strata_component_info",
            "strata_component_last_success_timestamp_seconds",
            "strata_component_drifted",
            "strata_approvals_pending",
            "strata_deployment_frequency_per_day",
            "strata_lead_time_seconds",
            "strata_change_failure_ratio",
            "strata_time_to_restore_seconds",
        }
        assert wanted <= used, wanted - used

    def test_its_variables_are_defined(self) -> None:
        """Every $variable the queries and panels use is a template variable of the dashboard."""
        board = json.loads(DASHBOARD.read_text())
        defined = {v["name"] for v in board["templating"]["list"]}
        used = set(re.findall(r"\$\{?([a-z_]+)", json.dumps(board["panels"]))) - {"__range", "__rate_interval", "__interval", "__all"}
        assert used <= defined, used - defined
