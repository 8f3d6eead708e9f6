"""Drift made out of band: `strata drift` finds it, status shows it, promotion of that environment refuses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from strataflow.backends.terraform.backend import working_dir
from tests.support.cli import strata
from tests.support.configs import unique
from tests.support.terraform import RECORD_MODULE, edit_state, instance_attributes, make_run, terraform_path

pytestmark = pytest.mark.usefixtures("prefect_api")


def ok(*args: str) -> str:
    result = strata(*args)
    assert result.returncode == 0, result.stderr
    return result.stdout


class TestTerraformDrift:
    """A Terraform component whose state is edited behind strataflow's back."""

    def test_drift_is_reported_recorded_and_blocks_promotion(self, tmp_path: Path, strata_home: Path) -> None:
        """`strata drift` exits 0 in sync, then 6 naming the drifted output; status records it, and promoting that
        environment exits 5."""
        terraform_path()
        (tmp_path / "modules" / "record").mkdir(parents=True)
        (tmp_path / "modules" / "record" / "main.tf").write_text(RECORD_MODULE)
        component = {"backend": "terraform", "module": "modules/record", "parameters": {"name": "${var.name}"}}
        (tmp_path / "components.yaml").write_text(yaml.safe_dump({"components": {"record": component}}))
        dev, staging = unique("d"), unique("s")
        (tmp_path / "environments").mkdir()
        (tmp_path / "environments" / f"{dev}.yaml").write_text(yaml.safe_dump({"variables": {"name": "alpha"}}))
        (tmp_path / "environments" / f"{staging}.yaml").write_text(
            yaml.safe_dump({"promote_from": dev, "variables": {"name": "beta"}})
        )
        config = str(tmp_path)
        ok("apply", dev, "--config", config)
        clean = json.loads(ok("drift", dev, "--config", config, "--json"))
        assert clean["drifted"] == []

        state_file = working_dir(make_run(tmp_path, strata_home, "modules/record", env=dev)) / "terraform.tfstate"
        assert state_file.exists(), state_file

        def rename(state: dict[str, Any]) -> None:
            instance_attributes(state, "terraform_data.record")["output"]["value"] = {"name": "hijacked"}

        edit_state(state_file, rename)
        drifted = strata("drift", dev, "--config", config, "--json")
        assert drifted.returncode == 6, drifted.stderr  # like terraform plan -detailed-exitcode: drift is not success
        assert f"{dev} (aws) drifted: record" in drifted.stderr
        found = json.loads(drifted.stdout)
        assert found["drifted"] == ["record"]
        assert found["components"]["record"]["resources"] == ["output.name (update)"]
        status = json.loads(ok("status", dev, "--config", config, "--json"))
        assert status["components"]["record"]["drift"]["drifted"] is True
        refused = strata("promote", dev, staging, "--config", config)
        assert refused.returncode == 5, refused.stderr
        assert "gate no_drift refused" in refused.stderr and "record" in refused.stderr
