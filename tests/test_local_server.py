"""Issue 16, item 6: `strata` only talks to the local server of its own STRATA_HOME, and STRATA_HOME is private.

The session's server (tests/conftest.py) plays the first STRATA_HOME. A second STRATA_HOME is
started whose port is taken by the first's server between being picked and being bound (the
race of two homes starting at once): it must start its own server on another port, and a run
under it must reach only its own. A server file that names another home's server is not
trusted. The second home is created world-readable, with an old world-readable file in it, and
after its server, the sandboxes, a terraform and a command apply, the home is 0700 and nothing
in it is readable by group or others.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from strataflow import server
from tests.support.cli import AS_USER, ROOT
from tests.support.configs import command, unique, write_platform
from tests.support.prefect_api import api
from tests.support.processes import stop_server
from tests.support.terraform import RECORD_MODULE, terraform_path

pytestmark = pytest.mark.usefixtures("prefect_api")

RACY_START = """
import json, sys
from strataflow import server
taken = int(sys.argv[1])
real, picked = server._free_port, []
def racy(preferred=None):  # the first port picked is bound by another server before ours binds it
    picked.append(preferred)
    return taken if len(picked) == 1 else real(preferred)
server._free_port = racy
server.ensure_api(announce=False)
print(json.dumps({"info": server.local_server(), "picked": picked}))
"""


def _own_env(home: Path) -> dict[str, str]:
    """The environment of a user of ``home`` with no Prefect API configured."""
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    return {**env, **AS_USER, "STRATA_HOME": str(home)}


def _strata(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`strata ARGS` as a user of ``home`` runs it (`tests.support.cli` would pass this process's PREFECT_API_URL)."""
    return subprocess.run(
        [sys.executable, "-m", "strataflow", *args],
        env=_own_env(home),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _prefect_home_of(url: str) -> str:
    with urllib.request.urlopen(url + "/api/admin/settings", timeout=10) as response:
        return str(json.loads(response.read())["home"])


@pytest.fixture(scope="module")
def first(strata_home: Path) -> dict[str, Any]:
    """The session server: the first STRATA_HOME's."""
    info = json.loads((strata_home / "server.json").read_text())
    assert _prefect_home_of(info["url"]) == str(strata_home / "prefect")
    return dict(info)


@pytest.fixture(scope="module")
def second(tmp_path_factory: pytest.TempPathFactory, first: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """A second STRATA_HOME, created 0755 with an old 0644 file, whose server's first pick is the first's port."""
    home = tmp_path_factory.mktemp("second") / "home"
    home.mkdir(mode=0o755)
    home.chmod(0o755)
    (home / "old.log").write_text("left by an older strataflow\n")
    (home / "old.log").chmod(0o644)
    started = subprocess.run(
        [sys.executable, "-c", RACY_START, str(first["port"])],
        env=_own_env(home),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    try:
        assert started.returncode == 0, started.stderr
        yield {"home": home, **json.loads(started.stdout.strip().splitlines()[-1])}
    finally:
        saved = home / "server.json"
        if not saved.exists() or json.loads(saved.read_text()).get("pid") != first["pid"]:  # never stop the first's
            stop_server(home)


class TestOwnServerOnly:
    def test_second_home_starts_its_own_server_when_the_first_holds_its_port(
        self, first: dict[str, Any], second: dict[str, Any]
    ) -> None:
        """The second home's server is its own (another port, its own PREFECT_HOME), not the first's that answered."""
        info = second["info"]
        assert info is not None, second
        assert second["picked"][0] is not None and len(second["picked"]) >= 2  # the port was taken: it picked again
        assert info["url"] != first["url"] and info["port"] != first["port"]
        assert _prefect_home_of(info["url"]) == str(second["home"] / "prefect")
        saved = json.loads((second["home"] / "server.json").read_text())
        assert saved["url"] == info["url"]

    def test_a_run_under_the_second_home_reaches_only_its_server(
        self, tmp_path: Path, first: dict[str, Any], second: dict[str, Any]
    ) -> None:
        """`strata apply` under the second home records its flow run there and nothing on the first's server."""
        from prefect.client.orchestration import get_client
        from prefect.exceptions import ObjectNotFound

        env = unique("h")
        config = write_platform(tmp_path / "cfg", {"one": command("true")}, {env: {}})
        result = _strata(second["home"], "apply", env, "--config", str(config), "--json")
        assert result.returncode == 0, result.stderr
        flow_run = json.loads(result.stdout)["flow_run_id"]
        with api(second["info"]["url"] + "/api"), get_client(sync_client=True) as client:
            assert str(client.read_flow_run(flow_run).id) == flow_run
        with api(first["url"] + "/api"), get_client(sync_client=True) as client, pytest.raises(ObjectNotFound):
            client.read_flow_run(flow_run)

    def test_server_file_naming_another_homes_server_is_not_trusted(
        self, tmp_path: Path, first: dict[str, Any], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A server.json whose live pid and healthy url are the first home's server is not this home's server."""
        home = tmp_path / "third"
        home.mkdir()
        (home / "server.json").write_text(json.dumps(first))
        monkeypatch.setenv("STRATA_HOME", str(home))
        assert server.local_server() is None
        assert server.status()["server"] is None


def _loose(home: Path) -> list[str]:
    """Every path under ``home`` (and itself) that group or others may read, write or enter."""
    found = []
    for path in [home, *home.rglob("*")]:
        info = path.lstat()
        if not stat.S_ISLNK(info.st_mode) and stat.S_IMODE(info.st_mode) & 0o077:
            found.append(f"{oct(stat.S_IMODE(info.st_mode))} {path.relative_to(home.parent)}")
    return found


class TestPrivateHome:
    def test_home_is_0700_and_nothing_in_it_is_readable_by_others(self, tmp_path: Path, second: dict[str, Any]) -> None:
        """After the server, both sandboxes, a terraform apply and a command apply, STRATA_HOME is 0700, its server
        files, database and logs 0600, and no file or directory in it has a permission for group or others."""
        terraform_path()
        home: Path = second["home"]
        own = _own_env(home)
        sandboxes = "from strataflow import server; server.sandbox('aws'); server.sandbox('azure')"
        started = subprocess.run(
            [sys.executable, "-c", sandboxes], env=own, cwd=ROOT, capture_output=True, text=True, timeout=240, check=False
        )
        assert started.returncode == 0, started.stderr
        env = unique("h")
        config = write_platform(
            tmp_path / "cfg",
            {
                "record": {"backend": "terraform", "module": "modules/record", "parameters": {"name": "x"}},
                "note": command("echo noted"),
            },
            {env: {}},
            files={"modules/record/main.tf": RECORD_MODULE},
        )
        applied = _strata(home, "apply", env, "--config", str(config), "--json")
        assert applied.returncode == 0, applied.stderr
        assert stat.S_IMODE(home.stat().st_mode) == 0o700
        for name in ("server.json", "server.log", "prefect.db", "services.lock", "old.log", "sandbox-aws.json"):
            assert stat.S_IMODE((home / name).stat().st_mode) == 0o600, name
        assert list((home / "terraform").rglob("terraform.tfstate")), "the terraform component left no state here"
        assert list((home / "sandbox-azure").glob("*.pem")), "the azure sandbox wrote no certificate here"
        assert not _loose(home), _loose(home)
