"""A backend strataflow has never heard of: its own module and one registration are enough."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from strataflow.errors import ConfigError
from strataflow.graph import component_graph
from strataflow.load import load_platform
from strataflow.releases import bundle_of
from tests.support import plugin_backend
from tests.support.configs import unique, write_tree

COMPONENTS = """\
components:
  base:
    backend: command
    apply: echo '{"name":"base-1"}'
    outputs: json
  note:
    backend: notes
    manifest: notes/manifest.txt
    parameters: {greeting: "hello from ${base.outputs.name}"}
"""


@pytest.fixture
def notes() -> Iterator[None]:
    plugin_backend.register()
    try:
        yield
    finally:
        plugin_backend.unregister()


def _config(root: Path, env: str) -> Path:
    return write_tree(
        root,
        {"components.yaml": COMPONENTS, f"environments/{env}.yaml": "{}\n", "notes/manifest.txt": "v1\n"},
    )


class TestMadeUpBackend:
    def test_without_its_registration_the_backend_is_unknown(self, tmp_path: Path) -> None:
        """Before it is registered, `backend: notes` is a validation error naming the known backends."""
        with pytest.raises(ConfigError) as caught:
            load_platform(_config(tmp_path, "dev"))
        assert "unknown backend 'notes'" in str(caught.value)

    def test_validate_checks_its_own_fields_and_paths(self, tmp_path: Path, notes: None) -> None:
        """Its model's fields and the paths it declares are validated like a built-in backend's."""
        config = _config(tmp_path, "dev")
        (config / "notes/manifest.txt").unlink()
        (config / "components.yaml").write_text(COMPONENTS.replace("manifest: notes", "manifets: notes"))
        with pytest.raises(ConfigError) as caught:
            load_platform(config)
        assert "unknown key 'manifets' (did you mean 'manifest'?)" in str(caught.value)
        (config / "components.yaml").write_text(COMPONENTS)
        with pytest.raises(ConfigError) as caught:
            load_platform(config)
        assert "manifest 'notes/manifest.txt' not found" in str(caught.value)

    def test_graph_and_digest_follow_its_declarations(self, tmp_path: Path, notes: None) -> None:
        """The reference adds the edge, and the digest follows the file the backend declares as its source."""
        config = _config(tmp_path, "dev")
        platform = load_platform(config)
        graph = component_graph(platform, platform.environment("dev"), "aws")
        assert graph.upstream["note"] == {"base"}
        before = bundle_of(platform, "note", "aws").manifest
        assert set(before.files) == {"notes/manifest.txt"}
        (config / "notes/manifest.txt").write_text("v2\n")
        assert bundle_of(platform, "note", "aws").manifest.digest != before.digest

    def test_apply_deploys_it_through_the_orchestrator(
        self, tmp_path: Path, notes: None, prefect_api: str, strata_home: Path
    ) -> None:
        """A real apply runs it with its upstream's output resolved, and a second apply finds it unchanged."""
        from flows.orchestrate import orchestrate

        env = unique("plug")
        config = _config(tmp_path / "cfg", env)
        first = orchestrate(env=env, config_dir=str(config), return_state=True).result()
        second = orchestrate(env=env, config_dir=str(config), return_state=True).result()
        state_dir = strata_home
        assert first["components"]["note"]["status"] == "succeeded", first
        written = json.loads((state_dir / "notes" / env / "note.json").read_text())
        assert written == {"parameters": {"greeting": "hello from base-1"}, "manifest": "v1\n"}
        assert second["components"]["note"]["status"] == "unchanged"
