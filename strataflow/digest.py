"""Digests that say "this exact thing was deployed": a component's source files, and its whole config.

Pure: an implementation's source files are what its backend's model says they are
(``Implementation.source_files``); the config digest adds the resolved parameters (secrets
as their reference text) and the version, so a change of any of them changes it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from strataflow.backends.registry import Implementation


def source_digest(root: Path, impl: Implementation) -> str:
    """A digest of the files an implementation deploys (template, module, ...), by path and content."""
    sha = hashlib.sha256()
    for file in impl.source_files(root):
        sha.update(str(file.relative_to(root)).encode())
        sha.update(file.read_bytes())
    return sha.hexdigest()


def config_digest(impl: Implementation, parameters: dict[str, Any], version: str | None, *, source: str) -> str:
    """The digest of what an apply deploys: the implementation, resolved parameters, version and source."""
    body = impl.model_dump(exclude={"parameters", "timeout"}, mode="json")
    payload = json.dumps(
        {"impl": body, "parameters": parameters, "version": version, "source": source},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


__all__ = ["config_digest", "source_digest"]
