"""Releases: what an environment runs, as content-addressed bundles of exact bytes.

A component's **bundle** is everything that determines its deployment apart from the
per-environment values: its definition in ``components.yaml`` (for one cloud) and the bytes
of every file its backend declares as its source (template; module directory with its lock
file; a command's ``inputs:`` and the files its commands name). Its digest (sha256) covers
the definition and each file's path and sha256, so identical bytes give identical digests.

A **release** is the set of bundles an environment ran (component -> bundle digest), with an
id: the sha256 of that set. A deployment reads only bundle snapshots (``materialize``) and
checks every file's bytes against the bundle before a backend sees them (``verify_tree``),
so what is recorded as deployed is what was deployed, whatever happens to the working tree.

Pure: bytes and models in, digests and files out; storing bundles through Prefect is
``strataflow.state.bundles``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from strataflow.backends.registry import Implementation
from strataflow.config import Component, Platform
from strataflow.errors import StrataError
from strataflow.templateparams import TemplateParamsError

SHORT = 12
"""Hex digits shown of a release id or bundle digest."""
How = Literal["apply", "destroy", "promotion", "rollback", "break-glass"]


class BundleError(StrataError):
    """A bundle's bytes are not what its digest says, or it cannot be read."""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def canonical(value: Any) -> bytes:
    """The one JSON text of ``value`` that digests are computed over."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()


class Bundle(BaseModel):
    """The manifest of a component's bundle: its definition and the sha256 of each of its files."""

    component: str
    definition: dict[str, Any] = Field(description="The component as components.yaml defines it, for one cloud.")
    files: dict[str, str] = Field(default_factory=dict, description="Path (relative to the config dir) -> sha256.")
    digest: str

    @classmethod
    def of(cls, component: str, definition: dict[str, Any], files: Mapping[str, str]) -> Bundle:
        body = {"component": component, "definition": definition, "files": dict(sorted(files.items()))}
        return cls(component=component, definition=definition, files=dict(files), digest=sha256(canonical(body)))

    def check(self) -> None:
        """Raise BundleError unless the digest is the digest of this manifest's content."""
        expected = Bundle.of(self.component, self.definition, self.files).digest
        if expected != self.digest:
            raise BundleError(
                f"bundle of {self.component} does not match its digest ({self.digest[:SHORT]} claimed, "
                f"{expected[:SHORT]} computed); it was altered",
                component=self.component,
            )

    @property
    def version(self) -> str | None:
        version = self.definition.get("version")
        return None if version is None else str(version)

    def to_component(self) -> Component:
        """The component this bundle defines (with its one implementation under ``any``)."""
        body = {k: v for k, v in self.definition.items() if k != "impl"}
        return Component.model_validate({**body, "name": self.component, "any": self.definition["impl"]})


@dataclass(frozen=True)
class BundleContent:
    """A bundle's manifest and its files' bytes."""

    manifest: Bundle
    blobs: dict[str, bytes] = field(default_factory=dict, repr=False)
    """sha256 -> bytes of every file of the bundle."""
    secrets: dict[str, Any] = field(default_factory=dict, repr=False)
    """Secret block name -> value of each secure parameter given as text: stored as a Prefect Secret, never in the bundle."""


SECURE_BLOCK_PREFIX = "strata-secure-"
"""Secret blocks strataflow makes for secure parameter values written as text in the configuration."""


def secure_reference(component: str, parameter: str, value: Any) -> str:
    """The ``${secret.NAME}`` a secure parameter's text value is stored as (the name follows the value)."""
    digest = sha256(canonical({"component": component, "parameter": parameter, "value": value}))[:24]
    return "${secret." + SECURE_BLOCK_PREFIX + digest + "}"


def is_literal(value: Any) -> bool:
    """A value written out in the configuration: no ``${...}`` reference anywhere in it."""
    return "${" not in canonical(value).decode()


def secured(component: str, parameters: Mapping[str, Any], secure: Collection[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``parameters`` with each secure text value replaced by its secret reference, and those secrets by block name."""
    found: dict[str, Any] = {}
    result = dict(parameters)
    for key in secure:
        if key in result and is_literal(result[key]):
            reference = secure_reference(component, key, result[key])
            found[reference[len("${secret.") : -1]] = result[key]
            result[key] = reference
    return result, found


def definition(component: Component, impl: Implementation) -> dict[str, Any]:
    """What ``components.yaml`` says of ``component`` on one cloud (its implementation there).

    The description is documentation, not part of what is deployed: it is left out.
    """
    body = component.model_dump(
        mode="json", exclude={"name", "description", "aws", "azure", "any"}, exclude_defaults=True
    )
    return {**body, "impl": impl.model_dump(mode="json", exclude_defaults=True)}


def bundle_of(platform: Platform, name: str, cloud: str) -> BundleContent:
    """The bundle of component ``name`` on ``cloud`` as the platform's files are now."""
    component = platform.components[name]
    impl = component.impl(cloud)
    if impl is None:
        raise StrataError(f"'{name}' has no implementation for {cloud}", component=name)
    root = platform.root_of(name)
    files: dict[str, str] = {}
    blobs: dict[str, bytes] = {}
    for path in impl.source_files(root):
        data = path.read_bytes()
        digest = sha256(data)
        files[path.relative_to(root).as_posix()] = digest
        blobs[digest] = data
    parameters, secrets = secured(name, impl.parameters, secure_names(impl, root, impl.parameters))
    stored = impl.model_copy(update={"parameters": parameters}) if secrets else impl
    return BundleContent(Bundle.of(name, definition(component, stored), files), blobs, secrets)


def secure_names(impl: Implementation, root: Path, given: Mapping[str, Any]) -> set[str]:
    """The names in ``given`` that the template declares secure (none when it cannot be read: validate says why)."""
    try:
        declared = impl.template_parameters(root)
    except (TemplateParamsError, OSError):
        return set()
    if declared is None:
        return set()
    return {key for key in given if (found := declared.get(key)) is not None and found.secure}


def config_digest(bundle: str, parameters: Mapping[str, Any]) -> str:
    """What an apply deploys in one environment: the bundle and the resolved parameters (secrets as references)."""
    return sha256(canonical({"bundle": bundle, "parameters": dict(parameters)}))[:16]


# --- snapshots on disk --------------------------------------------------------------------------


def materialize(content: BundleContent, cache: Path) -> Path:
    """The bundle's files under ``cache/<digest>/`` (written once, then only verified); its root."""
    manifest = content.manifest
    manifest.check()
    root = cache / manifest.digest
    if root.is_dir():
        try:
            verify_tree(manifest, root)
            return root
        except BundleError:  # a damaged cache: written again from the bytes the digest vouches for
            _remove_tree(root)
    cache.mkdir(parents=True, exist_ok=True, mode=0o700)
    staging = Path(tempfile.mkdtemp(dir=cache, prefix=f".{manifest.digest[:SHORT]}-"))
    for relative, digest in manifest.files.items():
        data = content.blobs.get(digest)
        if data is None or sha256(data) != digest:
            raise BundleError(f"bundle of {manifest.component}: the bytes of {relative} are missing or altered")
        target = _inside(staging, relative)
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        target.write_bytes(data)
        if relative.endswith(".sh") or data.startswith(b"#!"):
            target.chmod(0o700)
    try:
        staging.rename(root)
    except OSError:  # another process put it there first: theirs is verified like ours
        _remove_tree(staging)
    verify_tree(manifest, root)
    return root


def verify_tree(manifest: Bundle, root: Path) -> None:
    """Raise BundleError unless ``root`` holds exactly the bundle's files with their bytes."""
    for relative, digest in manifest.files.items():
        path = _inside(root, relative)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise BundleError(f"bundle of {manifest.component}: {relative} cannot be read: {exc.strerror}") from None
        if sha256(data) != digest:
            raise BundleError(
                f"bundle of {manifest.component}: {relative} was changed after it was snapshotted "
                f"(sha256 {sha256(data)[:SHORT]}, bundle says {digest[:SHORT]}); nothing was deployed",
                component=manifest.component,
            )


def _inside(root: Path, relative: str) -> Path:
    """``root/relative``, refusing a path that would leave ``root`` (a hostile manifest)."""
    path = (root / relative).resolve()
    base = root.resolve()
    if relative.startswith("/") or ".." in Path(relative).parts or base not in path.parents:
        raise BundleError(f"bundle path '{relative}' leaves the bundle; refused")
    return root / relative


def _remove_tree(root: Path) -> None:
    for folder, dirs, files in os.walk(root, topdown=False):
        for name in files:
            (Path(folder) / name).unlink(missing_ok=True)
        for name in dirs:
            (Path(folder) / name).rmdir()
    root.rmdir()


# --- releases --------------------------------------------------------------------------------------


def release_id(bundles: Mapping[str, str]) -> str:
    """The id of a release: the sha256 of its component -> bundle digest map."""
    return sha256(canonical(dict(sorted(bundles.items()))))


class Release(BaseModel):
    """What an environment ran after one run: its bundles, and how it got there."""

    id: str
    env: str
    cloud: str
    components: dict[str, str] = Field(description="Component -> bundle digest.")
    versions: dict[str, str | None] = Field(default_factory=dict)
    created_at: datetime
    actor: str | None = None
    how: How = "apply"
    source: str | None = Field(default=None, description="The environment promoted from (promotions).")
    flow_run_id: str | None = None
    environment: str | None = Field(default=None, description="sha256 of the environment file the run used.")
    sandbox: bool = False

    @property
    def short(self) -> str:
        return self.id[:SHORT]

    def describe(self) -> str:
        how = {"promotion": f"promotion from {self.source}", "rollback": "rollback"}.get(self.how, self.how)
        return f"{self.short} {how}"


__all__ = [
    "SECURE_BLOCK_PREFIX",
    "SHORT",
    "Bundle",
    "BundleContent",
    "BundleError",
    "Release",
    "bundle_of",
    "canonical",
    "config_digest",
    "definition",
    "is_literal",
    "materialize",
    "release_id",
    "secure_names",
    "secure_reference",
    "secured",
    "sha256",
    "verify_tree",
]
