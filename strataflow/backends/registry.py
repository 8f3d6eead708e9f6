"""The backend registry: what each kind of component is made of, and who deploys it.

Pure: no cloud SDK is imported here. Each backend lives in its own package under
``strataflow/backends/`` and declares a ``BackendSpec``:

- ``config``: the pydantic model of its implementation in ``components.yaml`` (a subclass of
  ``Implementation``), which also says which files make up the component's source, how the
  parameters its template or module declares are read (``template_parameters``: validation
  and the runner check given parameters against them, and keep secure ones secret) and which
  of its fields name what it is deployed as (``name_fields``);
- ``settings``: optionally, the model of its per-environment section (the environment
  file's ``<kind>:`` key, e.g. ``terraform: {binary: tofu}``);
- ``operations``: where its operations class is (``"module:Class"``), imported only when a
  component of that kind is deployed, so ``strata validate`` never loads a cloud SDK.

The core (loading, validation, digests, the runner) asks this registry instead of keeping
lists of backends. Adding a backend is its package, one line in ``BUILTIN`` (or a
``register`` call from a plugin or a test), and its tests.
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from strataflow.templateparams.model import TemplateParameters

BUILTIN: dict[str, str] = {
    "cloudformation": "strataflow.backends.cloudformation:SPEC",
    "arm": "strataflow.backends.arm:SPEC",
    "terraform": "strataflow.backends.terraform:SPEC",
    "command": "strataflow.backends.command:SPEC",
}
"""The built-in backends: kind -> where its spec is (imported on first use)."""

class SourcePath(NamedTuple):
    """One path an implementation names: the key it is under, the path, and what it must be."""

    key: str
    relative: str
    kind: Literal["file", "dir", "any"]


class Implementation(BaseModel):
    """The base of every backend's implementation model (one per cloud, or one for any cloud)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    backend: str
    parameters: dict[str, Any] = Field(default_factory=dict, description="Inputs; may hold references.")
    timeout: int | None = Field(default=None, gt=0, description="Seconds before the component is stopped.")

    script_fields: ClassVar[tuple[str, ...]] = ()
    """Fields holding shell commands: references in them are substituted as shell-safe text."""
    skip_files: ClassVar[frozenset[str]] = frozenset()
    """File names inside a source directory that are not part of the source (state, caches)."""
    skip_dirs: ClassVar[frozenset[str]] = frozenset({".terraform", ".git", "__pycache__"})
    """Directories inside a source directory that are not part of the source."""
    name_fields: ClassVar[dict[str, str]] = {}
    """Fields naming what the component is deployed as, and what they name (``{"stack_name": "stack"}``).

    They may hold ``${env.name}``, ``${env.cloud}`` and ``${var.NAME}`` only (a name is known
    before anything runs): ``strataflow.resolve`` substitutes them per environment, and
    validation refuses two components (or environments) that would share one.
    """

    def template_parameters(self, root: Path) -> TemplateParameters | None:
        """The parameters its template or module (under ``root``) declares; None: there is nothing to check against.

        Raises ``strataflow.templateparams.TemplateParamsError`` when the template cannot be
        read. Validation checks given parameters against the declarations, the runner checks
        the resolved values again before the backend runs, and a parameter declared secure
        (NoEcho, securestring/secureObject, ``sensitive``) is masked like a secret.
        """
        del root
        return None

    def source_paths(self) -> list[SourcePath]:
        """The paths (relative to the config directory) this implementation deploys from."""
        return []

    def source_files(self, root: Path) -> list[Path]:
        """Every file of the source, sorted: files as named, directories walked (caches skipped)."""
        found: set[Path] = set()
        for source in self.source_paths():
            path = root / source.relative
            if path.is_dir():
                found.update(self._walk(path))
            elif path.is_file():
                found.add(path)
        return sorted(found)

    def _walk(self, directory: Path) -> Iterator[Path]:
        for folder, dirs, files in os.walk(directory):
            dirs[:] = sorted(d for d in dirs if d not in self.skip_dirs)
            for name in sorted(files):
                if not self._skipped(name):
                    yield Path(folder) / name

    def _skipped(self, name: str) -> bool:
        return name in self.skip_files


@dataclass(frozen=True)
class BackendSpec:
    """Everything the core knows about one kind of backend."""

    kind: str
    config: type[Implementation]
    operations: str
    """``"module:attribute"`` of the class implementing ``strataflow.backends.base.Backend``."""
    settings: type[BaseModel] | None = None
    """The per-environment settings model (the environment file's ``<kind>:`` section), if any."""
    description: str = ""


_specs: dict[str, BackendSpec] = {}
_instances: dict[str, Any] = {}
"""The operations object of each kind (a ``strataflow.backends.base.Backend``), made on first use."""
_lock = threading.Lock()


def register(spec: BackendSpec) -> None:
    """Make ``spec.kind`` a backend components may use (a plugin or a test registers its own)."""
    with _lock:
        _specs[spec.kind] = spec
        _instances.pop(spec.kind, None)


def unregister(kind: str) -> None:
    """Forget a backend registered with ``register`` (tests clean up with it)."""
    with _lock:
        _specs.pop(kind, None)
        _instances.pop(kind, None)


def spec(kind: str) -> BackendSpec | None:
    """The spec of ``kind``, or None when no backend of that name exists."""
    found = _specs.get(kind)
    if found is None and kind in BUILTIN:
        module, _, attribute = BUILTIN[kind].partition(":")
        found = getattr(importlib.import_module(module), attribute)
        assert isinstance(found, BackendSpec)
        with _lock:
            found = _specs.setdefault(kind, found)
    return found


def kinds() -> list[str]:
    """Every backend name a component may use."""
    return sorted({*BUILTIN, *_specs})


def all_specs() -> list[BackendSpec]:
    return [found for kind in kinds() if (found := spec(kind)) is not None]


def settings_keys() -> frozenset[str]:
    """The environment-file keys that hold a backend's settings."""
    return frozenset(s.kind for s in all_specs() if s.settings is not None)


def parse_implementation(data: Any) -> Implementation:
    """An implementation model from its YAML mapping, by its ``backend:`` (raises ValueError otherwise)."""
    if isinstance(data, Implementation):
        return data
    if not isinstance(data, dict) or "backend" not in data:
        raise ValueError(f"an implementation needs 'backend:' (one of {', '.join(kinds())})")
    found = spec(str(data["backend"]))
    if found is None:
        raise ValueError(f"unknown backend '{data['backend']}'; use one of {', '.join(kinds())}")
    return found.config.model_validate(data)


def parse_settings(kind: str, data: Any) -> BaseModel:
    """The settings model of backend ``kind`` from the environment file's section."""
    found = spec(kind)
    if found is None or found.settings is None:
        raise ValueError(f"backend '{kind}' has no per-environment settings")
    return found.settings.model_validate(data or {})


def backend(kind: str) -> Any:
    """The operations of ``kind``, a ``strataflow.backends.base.Backend`` (one per process, imported on first use)."""
    with _lock:
        existing = _instances.get(kind)
    if existing is not None:
        return existing
    found = spec(kind)
    if found is None:
        raise KeyError(kind)
    module, _, attribute = found.operations.partition(":")
    made = getattr(importlib.import_module(module), attribute)()
    with _lock:
        return _instances.setdefault(kind, made)


def use(kind: str, operations: Any) -> Any:
    """Serve ``kind`` with ``operations`` in this process (None: back to the spec's); returns the previous one."""
    with _lock:
        previous = _instances.pop(kind, None)
        if operations is not None:
            _instances[kind] = operations
    return previous


__all__ = [
    "BUILTIN",
    "BackendSpec",
    "Implementation",
    "SourcePath",
    "all_specs",
    "backend",
    "kinds",
    "parse_implementation",
    "parse_settings",
    "register",
    "settings_keys",
    "spec",
    "unregister",
    "use",
]
