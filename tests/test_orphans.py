"""Components removed from the config while deployed: `strata status` lists them, `strata destroy --orphans` removes them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.support.cli import cli
from tests.support.configs import command, count, marked, unique, write_platform

pytestmark = pytest.mark.usefixtures("prefect_api")


class TestOrphans:
    def test_status_lists_orphans_and_destroy_orphans_removes_them(self, tmp_path: Path) -> None:
        """After `b` leaves components.yaml, status shows it as an orphan; `destroy --orphans` runs its own destroy."""
        env, marks = unique("o"), tmp_path / "marks"
        marks.mkdir()
        components = {
            "a": command(marked("a", marks)),
            "b": command(marked("b", marks), destroy=marked("b-destroyed", marks)),
        }
        config = write_platform(tmp_path / "cfg", components, {env: {}})
        assert cli("apply", env, "--config", str(config)).returncode == 0
        (config / "components.yaml").write_text(yaml.safe_dump({"components": {"a": components["a"]}}))
        doc = json.loads(cli("status", env, "--config", str(config), "--json").stdout)
        assert set(doc["orphans"]) == {"b"} and doc["orphans"]["b"]["why"] == "not in the config"
        assert "strata destroy" in cli("status", env, "--config", str(config)).stdout
        refused = cli("destroy", env, "--config", str(config), "--orphans", "--select", "a")
        assert refused.returncode == 2
        result = cli("destroy", env, "--config", str(config), "--orphans", "--json")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["components"] == {"b": json.loads(result.stdout)["components"]["b"]}
        assert count(marks, "b-destroyed") == 1 and count(marks, "a") == 1
        after = json.loads(cli("status", env, "--config", str(config), "--json").stdout)
        assert after["orphans"] == {} and after["components"]["a"]["state"] == "applied"
        nothing = cli("destroy", env, "--config", str(config), "--orphans")
        assert nothing.returncode == 2 and "no orphans" in nothing.stderr
