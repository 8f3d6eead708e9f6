"""A made-up backend, as a plugin author would write one: its own module and one registration.

``notes`` components write their ``message`` parameter into a file under the run's state
directory (so a test can see what was deployed) and take their source from a ``manifest``
file in the config directory. Nothing in strataflow knows this backend until
``register()`` is called.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from strataflow.backends import registry
from strataflow.backends.base import ComponentRun, Drift, Outcome
from strataflow.backends.registry import BackendSpec, Implementation, SourcePath

KIND = "notes"


class NotesImpl(Implementation):
    backend: Literal["notes"]
    manifest: str = Field(description="A file in the config directory: the component's source.")

    def source_paths(self) -> list[SourcePath]:
        return [SourcePath("manifest", self.manifest, "file")]


class NotesBackend:
    """Deploys a note: ``<state_dir>/notes/<env>/<component>.json`` holds the parameters and the manifest."""

    def _file(self, run: ComponentRun) -> Path:
        assert run.state_dir is not None
        return run.state_dir / "notes" / run.env / f"{run.component}.json"

    def plan(self, run: ComponentRun) -> Outcome:
        return Outcome(changes=1, summary=[f"would write {run.parameters}"])

    def apply(self, run: ComponentRun) -> Outcome:
        path = self._file(run)
        path.parent.mkdir(parents=True, exist_ok=True)
        manifest = (run.config_dir / run.impl.manifest).read_text()  # type: ignore[attr-defined]
        path.write_text(json.dumps({"parameters": run.parameters, "manifest": manifest}))
        return Outcome(changes=1, outputs={"path": str(path)})

    def destroy(self, run: ComponentRun) -> Outcome:
        self._file(run).unlink(missing_ok=True)
        return Outcome(changes=1)

    def outputs(self, run: ComponentRun) -> dict[str, Any]:
        return {"path": str(self._file(run))}

    def exists(self, run: ComponentRun) -> bool:
        return self._file(run).exists()

    def drift(self, run: ComponentRun) -> Drift:
        del run
        return Drift(supported=False)


SPEC = BackendSpec(kind=KIND, config=NotesImpl, operations=f"{__name__}:NotesBackend", description="a note in a file")


def register() -> None:
    registry.register(SPEC)


def unregister() -> None:
    registry.unregister(KIND)
