"""The promotion core without a Prefect server: gates, the promotion diff and the run report.

These modules are pure (tests/test_layers.py holds them to it): records and environments go in,
decisions and text come out. Each test builds its inputs here and calls the function itself.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from strataflow import diff, gates, report
from strataflow.config import FreezeWindow, Platform
from strataflow.graph import Graph
from strataflow.load import load_platform
from strataflow.records import Applied, ComponentRecord, DriftRecord
from strataflow.report import ComponentReport, RunReport

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def platform() -> Platform:
    return load_platform(ROOT / "config")


def record(
    name: str,
    *,
    status: str = "succeeded",
    action: str = "apply",
    bundle: str | None = "b" * 64,
    digest: str = "d" * 64,
    error: str | None = None,
    drifted: bool | None = None,
    parameters: dict[str, Any] | None = None,
) -> ComponentRecord:
    applied = Applied(digest=digest, bundle=bundle, version="1.0.0", applied_at=NOW, parameters=parameters or {})
    drift = DriftRecord(checked_at=NOW, supported=True, drifted=drifted) if drifted is not None else None
    return ComponentRecord(
        env="dev", cloud="aws", component=name, action=action, status=status, applied=applied, error=error, drift=drift
    )


class TestGates:
    def test_promote_from_passes_only_along_the_configured_edge(self, platform: Platform) -> None:
        dev, staging, prod = (platform.environment(e) for e in ("dev", "staging", "prod"))
        assert gates.promote_from(dev, staging).passed
        wrong = gates.promote_from(dev, prod)
        assert not wrong.passed
        assert wrong.reason == "prod receives promotions from staging, not dev (promote_from in its environment file)"

    def test_source_ok_refuses_each_component_not_verified_and_names_why(self) -> None:
        records = {
            "ok": record("ok"),
            "broken": record("broken", status="failed", error="stack rolled back"),
            "old": record("old", bundle=None),
        }
        sandbox = {"emulated": record("emulated")}
        found = {
            g.component: g
            for g in gates.source_ok("dev", ["ok", "broken", "old", "emulated", "never"], records, sandbox)
        }
        assert found["ok"].passed and found["ok"].reason == f"ok in dev runs 1.0.0 (bundle {'b' * 12})"
        assert (
            not found["broken"].passed
            and found["broken"].reason == "broken in dev: its latest apply failed: stack rolled back"
        )
        assert not found["old"].passed and "before releases were recorded" in found["old"].reason
        assert not found["emulated"].passed and "only on the sandbox" in found["emulated"].reason
        assert not found["never"].passed and found["never"].reason == "never in dev was never applied; apply dev first"

    def test_a_destroyed_component_is_not_a_verified_source(self) -> None:
        (gate,) = gates.source_ok("dev", ["gone"], {"gone": record("gone", action="destroy")})
        assert not gate.passed and "its latest destroy succeeded" in gate.reason

    def test_not_running_names_the_holder(self) -> None:
        assert gates.not_running("prod", None).passed
        held = gates.not_running("prod", {"flow_run_id": "run-1", "actor": "carol"})
        assert not held.passed and "flow run run-1 (carol)" in held.reason

    def test_no_drift_names_only_drifted_components(self) -> None:
        records = {"a": record("a", drifted=True), "b": record("b", drifted=False), "c": record("c")}
        gate = gates.no_drift("dev", records, ["a", "b", "c"])
        assert not gate.passed and "drift found in dev: a;" in gate.reason
        assert gates.no_drift("dev", records, ["b", "c"]).passed

    def test_a_recurring_freeze_refuses_and_only_an_approver_overrides(self, platform: Platform) -> None:
        friday = FreezeWindow(reason="weekend", cron="0 18 * * 5", duration="64h")
        prod = platform.environment("prod").model_copy(update={"freeze": [friday]})
        saturday = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)
        assert gates.active_freeze([friday], saturday) is friday
        assert gates.active_freeze([friday], saturday + timedelta(days=2)) is None
        refused = gates.not_frozen(prod, saturday, None, "alice")
        assert not refused.passed and "--override-freeze" in refused.reason
        assert gates.not_frozen(prod, saturday, "hotfix", "alice").passed
        assert not gates.not_frozen(prod, saturday, "hotfix", "mallory").passed

    def test_a_one_off_window_ends_at_its_end(self) -> None:
        window = FreezeWindow(reason="audit", start="2026-12-01T00:00:00+00:00", end="2026-12-02T00:00:00+00:00")
        assert gates.active_freeze([window], NOW) is window
        assert gates.active_freeze([window], datetime(2026, 12, 2, tzinfo=UTC)) is None


class TestDiff:
    def test_parameter_changes_read_as_added_removed_and_changed(self) -> None:
        before = {"size": 2, "name": "a", "zones": ["x", "y"], "old": True}
        after = {"size": 3, "name": "a", "zones": ["x", "y", "z"], "new": {"k": 1}}
        assert diff.parameter_changes(before, after) == sorted(
            ["~ size: 2 -> 3", "+ zones.2: 'z'", "+ new: {'k': 1}", "- old: True"]
        )
        assert diff.parameter_changes({}, {"b": 1, "a": 2}) == ["+ a: 2", "+ b: 1"]

    def test_component_changes_compare_digests_with_what_the_target_runs(self, platform: Platform) -> None:
        staging = platform.environment("staging")
        first = {c.component: c for c in diff.component_changes(platform, staging, "aws", ["identity", "network"], {})}
        assert first["identity"].change == "create" and first["identity"].digest_now is None
        same = record("identity", digest=str(first["identity"].digest_next))
        other = record("network", digest="0" * 64, parameters={"VpcCidr": "10.99.0.0/16"})
        again = {
            c.component: c
            for c in diff.component_changes(
                platform, staging, "aws", ["identity", "network"], {"identity": same, "network": other}
            )
        }
        assert again["identity"].change == "none"
        assert again["network"].change == "update"
        assert again["network"].parameters == [
            "+ CreateNatGateway: 'true'",
            "+ PrivateSubnetCidrs: '10.20.128.0/20,10.20.144.0/20'",
            "+ PublicSubnetCidrs: '10.20.0.0/20,10.20.16.0/20'",
            "~ VpcCidr: '10.99.0.0/16' -> '10.20.0.0/16'",
        ]  # key by key, even where the two share few keys (deepdiff would report one root replacement)

    def test_environment_diff_expects_per_environment_values_and_flags_structure(self, platform: Platform) -> None:
        dev = platform.environment("dev")
        staging = platform.environment("staging")
        extra = staging.model_copy(update={"variables": {**staging.variables, "only_here": "x"}})
        result = diff.environment_diff(dev, extra)
        assert any(line.startswith("variables.vpc_cidr: ") for line in result.expected)
        assert "variables.only_here: none in dev → x in staging" in result.warnings

    def test_the_diff_as_text_and_markdown(self) -> None:
        change = diff.ComponentChange(
            component="network",
            change="update",
            version_now="1.0",
            version_next="1.1",
            parameters=["~ size: 2 -> 3"],
            plan=["~ Modify Vpc"],
            cost="+$3.00/month",
        )
        whole = diff.PromotionDiff(
            components=[change], environment=diff.EnvironmentDiff(warnings=["w"], expected=["e"])
        )
        assert whole.text().splitlines() == [
            "changes:",
            f"  {'network':<20} {'update':<7} 1.0 -> 1.1",
            "      ~ size: 2 -> 3",
            "      plan: ~ Modify Vpc",
            "      cost: +$3.00/month",
            "  warning: w",
            "  expected: e",
        ]
        markdown = whole.markdown()
        assert "| network | update | 1.0 → 1.1 |" in markdown and "- network (+$3.00/month)" in markdown


def run_report(**components: ComponentReport) -> RunReport:
    return RunReport(
        env="dev", cloud="aws", action="apply", status="failed", flow_run_id=None, started_at=NOW, components=components
    )


class TestReport:
    def test_text_says_what_happened_to_each_component(self) -> None:
        text = report.text(
            run_report(
                network=ComponentReport(status="succeeded", duration_s=1.25, changes=1),
                clusters=ComponentReport(status="failed", error="boom"),
                addons=ComponentReport(status="skipped", skipped_because="clusters"),
            )
        )
        assert text.splitlines() == [
            "apply dev (aws): failed",
            f"  ✔ {'network':<24} succeeded 1.2s (1 change)",
            f"  ✘ {'clusters':<24} failed: boom",
            f"  - {'addons':<24} skipped (because clusters failed)",
        ]

    def test_markdown_keeps_table_cells_and_code_spans_whole(self) -> None:
        markdown = report.markdown(
            run_report(
                web=ComponentReport(status="failed", error="a | b\nc", outputs={"url": "`x`", "zones": ["a", "b"]}),
            ),
            next_steps=["strata apply dev --resume"],
        )
        assert "| web | ✘ failed |  | 0 | a \\| b c |" in markdown
        assert "`url`: `'x'`" in markdown and "- `a`" in markdown
        assert markdown.endswith("## Next steps\n- strata apply dev --resume")

    def test_report_lists_failed_components(self) -> None:
        assert run_report(a=ComponentReport(status="failed"), b=ComponentReport(status="succeeded")).failed == ["a"]

    def test_mermaid_draws_every_edge_and_colours_by_status(self) -> None:
        graph = Graph({"net": set(), "k8s-cluster": {"net"}})
        chart = report.mermaid(graph, {"k8s-cluster": "failed"})
        assert "  c_net --> c_k8s_cluster" in chart.splitlines()
        assert "  style c_k8s_cluster fill:#c62828,color:#fff" in chart.splitlines()
