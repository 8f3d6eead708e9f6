"""`strata cost` end to end: the sample applied on the sandbox, then priced from the price sandbox and billed by moto."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.cli import strata
from tests.support.configs import unique
from tests.support.pricing import SAMPLE, T3_MEDIUM_US, ce_result, inject_ce_results

CLOUDFORMATION = "network,identity,registry,clusters,observability,addons,platform"
NODE = T3_MEDIUM_US * 730


@pytest.fixture(scope="module")
def applied_sample(tmp_path_factory: pytest.TempPathFactory, prefect_api: str) -> tuple[Path, str]:
    """A copy of the sample with an environment like dev under a fresh name, its CloudFormation components applied on the sandbox."""
    del prefect_api
    root = tmp_path_factory.mktemp("cost") / "config"
    shutil.copytree(SAMPLE, root)
    env = unique("cost")
    shutil.copy(root / "environments" / "dev.yaml", root / "environments" / f"{env}.yaml")
    done = strata("apply", env, "--sandbox", "--config", str(root), "--select", CLOUDFORMATION, "--json", timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return root, env


def _cost(root: Path, env: str, *extra: str) -> dict[str, Any]:
    done = strata("cost", env, "--sandbox", "--config", str(root), "--json", *extra)
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout))


def test_estimate_of_the_applied_sample(applied_sample: tuple[Path, str]) -> None:
    """`strata cost ENV --sandbox --json` prices the applied sample per component, with not-priced resources as null."""
    root, env = applied_sample
    doc = _cost(root, env)
    assert (doc["env"], doc["cloud"], doc["currency"], doc["prices_as_of"]) == (env, "aws", "USD", "2025-06-01")
    clusters = doc["components"]["clusters"]
    assert clusters["monthly"] == pytest.approx(round(2 * NODE, 2)) == clusters["planned_monthly"]
    node_group = next(r for r in clusters["resources"] if r["name"] == "NodeGroup")
    assert node_group["monthly"] == clusters["monthly"]
    unpriced = [r for c in doc["components"].values() for r in c["resources"] if r["monthly"] is None]
    assert unpriced and all(r["note"].startswith("not priced") for r in unpriced)
    assert doc["components"]["network"]["monthly"] is None  # dev runs no NAT gateway
    assert doc["total_monthly"] == pytest.approx(sum(c["monthly"] or 0 for c in doc["components"].values()))


def test_node_count_change_shows_in_planned_monthly(applied_sample: tuple[Path, str]) -> None:
    """After node_count goes from 2 to 4 in the working config, planned_monthly is two nodes more than what runs."""
    root, env = applied_sample
    path = root / "environments" / f"{env}.yaml"
    original = path.read_text()
    data = yaml.safe_load(original)
    data["variables"]["node_count"] = 4
    path.write_text(yaml.safe_dump(data))
    try:
        clusters = _cost(root, env, "--select", "clusters")["components"]["clusters"]
        text = strata("cost", env, "--sandbox", "--config", str(root), "--select", "clusters")
    finally:
        path.write_text(original)
    assert clusters["planned_monthly"] - clusters["monthly"] == pytest.approx(2 * NODE, abs=0.01)
    assert "planned: 4 x t3.medium" in text.stdout


def test_plan_shows_the_monthly_change_of_what_it_would_change(applied_sample: tuple[Path, str]) -> None:
    """`strata plan` after node_count goes from 2 to 3 ends with the monthly change: one node more, for clusters."""
    root, env = applied_sample
    path = root / "environments" / f"{env}.yaml"
    original = path.read_text()
    data = yaml.safe_load(original)
    data["variables"]["node_count"] = 3
    path.write_text(yaml.safe_dump(data))
    try:
        planned = strata("plan", env, "--sandbox", "--config", str(root), "--select", "clusters", timeout=600)
        as_json = strata("plan", env, "--sandbox", "--config", str(root), "--select", "clusters", "--json", timeout=600)
    finally:
        path.write_text(original)
    assert planned.returncode == 0, planned.stderr[-3000:]
    tail = planned.stdout[planned.stdout.index("monthly cost:") :]
    assert f"clusters: +${NODE:,.2f}/month (NodeCount 2 -> 3)" in tail, tail
    assert f"total: +${NODE:,.2f}/month" in tail, tail
    assert "cost" not in json.loads(as_json.stdout)  # the run report keeps its keys


def test_actual_groups_injected_cost_explorer_results(applied_sample: tuple[Path, str], strata_home: Path) -> None:
    """`strata cost ENV --actual --sandbox --json` groups what moto's Cost Explorer answers by component."""
    root, env = applied_sample
    moto_url = json.loads((strata_home / "sandbox-aws.json").read_text())["url"]
    inject_ce_results(moto_url, [ce_result({"clusters": 61.5, "platform": 19.0, "": 1.25})])
    done = strata("cost", env, "--actual", "--sandbox", "--config", str(root), "--json", "--days", "30")
    assert done.returncode == 0, done.stderr[-3000:]
    doc = json.loads(done.stdout)
    assert doc["components"]["clusters"] == 61.5 and doc["components"]["platform"] == 19.0
    assert doc["components"]["network"] == 0.0 and doc["untagged"] == 1.25 and doc["total"] == 81.75
    assert doc["days"] == 30


def test_bad_days_is_a_usage_error(applied_sample: tuple[Path, str]) -> None:
    """`--days 0` exits 2 with one line, no traceback."""
    root, env = applied_sample
    done = strata("cost", env, "--actual", "--config", str(root), "--days", "0")
    assert done.returncode == 2 and "Traceback" not in done.stderr and "--days" in done.stderr
