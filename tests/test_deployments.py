"""`strata deployments`: prefect.yaml's strataflow section generated from the config, checked and written.

Pure generation tests load the sample config in-process; command tests run `strata` in a
subprocess on a copy of the project; the slow test registers the result on a real Prefect
server with `prefect deploy --all`.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from strataflow import deployments
from strataflow.config import Platform
from strataflow.errors import ConfigError
from strataflow.load import load_platform
from tests.support.cli import ROOT, strata
from tests.support.configs import sample_project, unique
from tests.support.services import base_env, prefect_server, run

QA = "environments/qa.yaml"




def add_qa(root: Path, promote_from: str = "dev", approval: bool = False) -> None:
    """An environment file written by hand (not by `strata env new`)."""
    text = (root / "config" / "environments" / "staging.yaml").read_text()
    text = text.replace("10.20.", "10.40.").replace("strata-staging", "strata-qa").replace("staging.platform", "qa.platform")
    text = text.replace("promote_from: dev", f"promote_from: {promote_from}")
    if approval:
        text = text.replace("approval:\n  required: false", "approval:\n  required: true\n  approvers: [alice]")
    (root / "config" / QA).write_text(text)


def entries(text: str) -> dict[str, Any]:
    data = yaml.safe_load(text)
    return {deployments.identity(entry): entry for entry in data["deployments"]}


def crons(entry: dict[str, Any]) -> list[str]:
    return [schedule["cron"] for schedule in entry.get("schedules") or []]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return sample_project(tmp_path)


@pytest.fixture(scope="module")
def sample() -> Platform:
    return load_platform(ROOT / "config")


class TestGenerate:
    def test_the_committed_prefect_yaml_is_up_to_date(self) -> None:
        """The repository's prefect.yaml is exactly what the sample config generates (`--check` passes)."""
        run_ = strata("deployments", "--check")
        assert run_.returncode == 0, run_.stdout + run_.stderr

    def test_the_sample_deployments_keep_their_meaning(self, sample: Platform) -> None:
        """Generated from the sample: orchestrators with env, dev-to-staging nightly at 02:00, staging-to-prod unscheduled, staggered drift."""
        found = entries((ROOT / "prefect.yaml").read_text())
        assert sorted(found) == sorted(
            ["orchestrate/dev", "orchestrate/staging", "orchestrate/prod", "promote/dev-to-staging",
             "promote/staging-to-prod", "drift/dev", "drift/staging", "drift/prod"]
        )
        for env in ("dev", "staging", "prod"):
            assert found[f"orchestrate/{env}"]["parameters"]["env"] == env
            assert found[f"orchestrate/{env}"]["parameters"]["config_dir"] == "config"
            assert found[f"orchestrate/{env}"]["work_pool"] == {"name": "strata"}
        assert crons(found["promote/dev-to-staging"]) == ["0 2 * * *"]
        assert found["promote/dev-to-staging"]["schedules"][0]["parameters"] == {"actor": "nightly-schedule"}
        assert crons(found["promote/staging-to-prod"]) == []
        assert [crons(found[f"drift/{e}"]) for e in ("dev", "staging", "prod")] == [["0 5 * * *"], ["10 5 * * *"], ["20 5 * * *"]]

    def test_generation_is_deterministic(self, sample: Platform) -> None:
        """The same config in any dictionary order gives the same bytes."""
        names = list(sample.environments)
        random.Random(7).shuffle(names)
        shuffled = sample.model_copy(update={"environments": {n: sample.environments[n] for n in names}})
        assert deployments.block(shuffled) == deployments.block(sample)

    def test_nightly_only_without_approval_staggered_down_the_chain(self, sample: Platform) -> None:
        """Promotions needing no approval run nightly, later for each step down the chain; approved ones have no schedule."""
        envs = dict(sample.environments)
        envs["uat"] = envs["staging"].model_copy(update={"name": "uat", "promote_from": "staging"})
        envs["qa"] = envs["staging"].model_copy(update={"name": "qa", "promote_from": "dev"})
        found = {d.full: d for d in deployments.plan(sample.model_copy(update={"environments": envs}))}
        assert found["promote/dev-to-staging"].schedule == found["promote/dev-to-qa"].schedule == "nightly 02:00 UTC"
        assert found["promote/staging-to-uat"].schedule == "nightly 02:10 UTC"
        assert found["promote/staging-to-prod"].schedule is None
        drift = [d.schedule for d in deployments.plan(sample.model_copy(update={"environments": envs})) if d.flow == "drift"]
        assert len(set(drift)) == len(drift) == 5

    def test_names_yaml_would_misread_are_quoted(self, sample: Platform) -> None:
        """Environment names such as `no`, `123` or `null` stay strings in the generated YAML."""
        envs = {n: sample.environments["dev"].model_copy(update={"name": n, "promote_from": None}) for n in ("no", "123", "null")}
        envs["on"] = sample.environments["dev"].model_copy(update={"name": "on", "promote_from": "no"})
        text = (ROOT / "prefect.yaml").read_text()
        new = deployments.updated(text, sample.model_copy(update={"environments": envs}), "prefect.yaml")
        found = entries(new)
        assert {e["parameters"].get("env") for k, e in found.items() if k.startswith("orchestrate/")} == {"no", "123", "null", "on"}
        assert found["promote/no-to-on"]["parameters"]["source"] == "no"

    def test_per_environment_pool_anchors_are_used(self, sample: Platform) -> None:
        """An anchor `&prod-pool` under definitions gives prod's deployments that pool, and the others the shared one."""
        text = (ROOT / "prefect.yaml").read_text().replace("definitions:\n", "definitions:\n  prod-pool: &prod-pool {name: strata-prod}\n", 1)
        found = entries(deployments.updated(text, sample, "prefect.yaml"))
        assert found["orchestrate/prod"]["work_pool"] == found["promote/staging-to-prod"]["work_pool"] == {"name": "strata-prod"}
        assert found["drift/prod"]["work_pool"] == {"name": "strata-prod"}
        assert found["orchestrate/dev"]["work_pool"] == {"name": "strata"}


class TestPrefectYaml:
    def test_check_fails_on_a_hand_added_environment_until_write(self, root: Path) -> None:
        """An environment file added by hand makes `--check` exit 1 and `validate` warn, until `--write` brings its deployments."""
        config = str(root / "config")
        add_qa(root)
        check = strata("deployments", "--check", "--config", config)
        assert check.returncode == 1
        assert "+ orchestrate/qa" in check.stdout and "+ promote/dev-to-qa" in check.stdout and "+ drift/qa" in check.stdout
        validate = strata("validate", "--config", config)
        assert validate.returncode == 0 and validate.stderr.startswith("warning: ") and "strata deployments --write" in validate.stderr
        write = strata("deployments", "--write", "--config", config)
        assert write.returncode == 0, write.stderr
        assert strata("deployments", "--check", "--config", config).returncode == 0
        assert strata("validate", "--config", config).stderr == ""
        found = entries((root / "prefect.yaml").read_text())
        assert found["orchestrate/qa"]["parameters"]["env"] == "qa"
        promotion = found["promote/dev-to-qa"]["parameters"]
        assert (promotion["source"], promotion["target"]) == ("dev", "qa")

    def test_hand_added_deployments_outside_the_markers_are_kept(self, root: Path) -> None:
        """What a user wrote outside the markers (a deployment, comments) is byte for byte the same after `--write`."""
        mine = (
            "  # my own deployment, kept by strata deployments --write\n"
            "  - name: nightly-report\n"
            "    entrypoint: flows/drift.py:drift\n"
            "    work_pool: {name: reports}\n"
            "    parameters: {env: dev}\n"
        )
        path = root / "prefect.yaml"
        path.write_text(path.read_text() + mine)
        before = deployments.split(path.read_text(), str(path))
        add_qa(root)
        assert strata("deployments", "--write", "--config", str(root / "config")).returncode == 0
        after = deployments.split(path.read_text(), str(path))
        assert (after.before, after.after) == (before.before, before.after) and after.after.endswith(mine)
        assert after.current != before.current and "drift/nightly-report" in entries(path.read_text())

    def test_a_deployment_both_generated_and_hand_written_is_refused(self, root: Path) -> None:
        """A hand-written `orchestrate/qa` next to a generated one is refused (exit 2, one line), the file unchanged."""
        path = root / "prefect.yaml"
        path.write_text(path.read_text() + "  - {name: qa, entrypoint: flows/orchestrate.py:orchestrate, parameters: {env: qa}}\n")
        add_qa(root)
        before = path.read_bytes()
        ran = strata("deployments", "--write", "--config", str(root / "config"))
        assert ran.returncode == 2 and len(ran.stderr.splitlines()) == 1
        assert "deployment 'orchestrate/qa' is defined twice" in ran.stderr and path.read_bytes() == before

    def test_a_file_without_markers_is_refused_with_what_to_do(self, root: Path) -> None:
        """A prefect.yaml whose deployments: has no strataflow section is not guessed at: exit 2 saying where the markers go."""
        path = root / "prefect.yaml"
        text = "\n".join(line for line in path.read_text().splitlines() if deployments.BEGIN not in line and deployments.END not in line)
        path.write_text(text + "\n")
        ran = strata("deployments", "--write", "--config", str(root / "config"))
        assert ran.returncode == 2 and "no strataflow section" in ran.stderr and deployments.BEGIN in ran.stderr

    def test_env_new_refuses_when_prefect_yaml_cannot_follow(self, root: Path) -> None:
        """`strata env new` whose deployments would clash with a hand-written one is refused before writing anything."""
        path = root / "prefect.yaml"
        path.write_text(path.read_text() + "  - {name: qa, entrypoint: flows/orchestrate.py:orchestrate, parameters: {env: qa}}\n")
        before = path.read_bytes()
        ran = strata("env", "new", "qa", "--from", "staging", "--config", str(root / "config"))
        assert ran.returncode == 2 and "'orchestrate/qa' is defined twice" in ran.stderr and len(ran.stderr.splitlines()) == 1
        assert path.read_bytes() == before and not (root / "config" / QA).exists()

    def test_missing_anchors_are_named(self, sample: Platform) -> None:
        """A file whose definitions lost `&promote` is refused naming the anchor, not with a YAML alias error."""
        text = (ROOT / "prefect.yaml").read_text().replace("promote: &promote", "promote_x: &promote_x")
        with pytest.raises(ConfigError, match="&promote,"):
            deployments.updated(text, sample, "prefect.yaml")

    def test_env_new_updates_prefect_yaml_and_prints_without_flags(self, root: Path) -> None:
        """`strata env new` leaves prefect.yaml up to date, and `strata deployments` alone prints the section."""
        config = str(root / "config")
        assert strata("env", "new", "qa", "--from", "staging", "--promote-from", "dev", "--config", config).returncode == 0
        assert strata("deployments", "--check", "--config", config).returncode == 0
        printed = strata("deployments", "--config", config)
        assert printed.stdout == deployments.split((root / "prefect.yaml").read_text(), "prefect.yaml").current


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_prefect_deploy_all_registers_the_new_environment(tmp_path: Path) -> None:
    """After `strata env new`, `prefect deploy --all` on a fresh server registers qa's orchestrator, promotion and drift."""
    root = sample_project(tmp_path)
    for package in ("flows", "tasks", "blocks"):
        shutil.copytree(ROOT / package, root / package, ignore=shutil.ignore_patterns("__pycache__"))
    name = unique("qa")
    made = strata("env", "new", name, "--from", "staging", "--promote-from", "dev", "--set", "clouds.aws.account_id=444444444444",
                  "--config", str(root / "config"))
    assert made.returncode == 0, made.stderr
    home = tmp_path / "prefect-home"
    home.mkdir()
    with prefect_server(home, f"sqlite+aiosqlite:///{tmp_path / 'prefect.db'}", base_env(), tmp_path) as server:
        assert server.url
        env = base_env(PREFECT_API_URL=server.url, PREFECT_HOME=str(home))
        assert run(["prefect", "work-pool", "create", "strata", "--type", "process"], env, root).returncode == 0
        deployed = run(["prefect", "deploy", "--all", "--no-prompt"], env, root, timeout=400)
        assert deployed.returncode == 0, deployed.describe()
        import json
        import urllib.request

        def get(path: str) -> Any:
            with urllib.request.urlopen(f"{server.url}{path}", timeout=10) as response:
                return json.load(response)

        orchestrate = get(f"/deployments/name/orchestrate/{name}")
        assert orchestrate["parameters"]["env"] == name and orchestrate["work_pool_name"] == "strata"
        promote = get(f"/deployments/name/promote/dev-to-{name}")
        assert (promote["parameters"]["source"], promote["parameters"]["target"]) == ("dev", name)
        assert [s["schedule"]["cron"] for s in promote["schedules"]] == ["0 2 * * *"]
        drift = get(f"/deployments/name/drift/{name}")
        assert drift["parameters"]["env"] == name and len(drift["schedules"]) == 1
        assert get("/deployments/name/orchestrate/prod")["parameters"]["env"] == "prod"
