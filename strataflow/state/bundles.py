"""Bundles stored through Prefect, so that any machine on the same Prefect API can deploy them.

A bundle's manifest is an artifact keyed ``strata-bundle-<digest>``; each file's bytes are
a blob keyed by its sha256. Both are content-addressed: storing what is already there
writes nothing, so identical bytes are stored once. By default blobs are artifacts too
(``strata-blob-<sha256>``, base64) in the Prefect database; for large modules or many
machines, name a Prefect filesystem block (``remote-file-system/strata-bundles`` pointing
at ``s3://bucket/strata`` or ``az://container/strata``, a prefect-aws ``s3-bucket``, ...)
in the Prefect Variable ``strata_bundle_storage`` (or ``STRATA_BUNDLE_STORAGE``): blobs then
go to ``blobs/<sha256>`` in it. Reads fall back to the database, so switching loses nothing.
Every byte read back is checked against its digest.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterable
from typing import Any

from strataflow.releases import SHORT, Bundle, BundleContent, BundleError, sha256
from strataflow.state._api import api, connection, create_artifact

BUNDLE_ARTIFACT = "strata-bundle"
BLOB_ARTIFACT = "strata-blob"
STORAGE_VARIABLE = "strata_bundle_storage"
_CHUNK = 200


def bundle_key(digest: str) -> str:
    return f"strata-bundle-{digest}"


def blob_key(digest: str) -> str:
    return f"strata-blob-{digest}"


def _latest(keys: Iterable[str]) -> dict[str, Any]:
    """The latest artifact of each key that exists: key -> its data."""
    from prefect.client.schemas.filters import ArtifactCollectionFilter, ArtifactCollectionFilterKey

    wanted = sorted(set(keys))
    found: dict[str, Any] = {}
    with connection() as client:
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            for artifact in client.read_latest_artifacts(
                artifact_filter=ArtifactCollectionFilter(key=ArtifactCollectionFilterKey(any_=chunk)), limit=len(chunk)
            ):
                found[artifact.key] = artifact.data
    return found


def _storage() -> Any:
    """The filesystem block blobs go to, or None for the Prefect database."""
    name = os.environ.get("STRATA_BUNDLE_STORAGE")
    if not name:
        from prefect.variables import Variable

        value = Variable.get(STORAGE_VARIABLE, default=None)
        name = str(value) if value else None
    if not name:
        return None
    from prefect.blocks.core import Block

    return Block.load(name)


def store(contents: Iterable[BundleContent]) -> list[str]:
    """Store the bundles not stored yet (blobs first, then manifests); returns the digests written."""
    pending = {c.manifest.digest: c for c in contents}
    if not pending:
        return []
    with api("store the release's bundles"):
        existing = _latest(bundle_key(d) for d in pending)
        missing = [c for d, c in pending.items() if bundle_key(d) not in existing]
        if not missing:
            return []
        blobs = {digest: data for c in missing for digest, data in c.blobs.items()}
        storage = _storage()
        if storage is None:
            known = _latest(blob_key(d) for d in blobs)
            for digest, data in sorted(blobs.items()):
                if blob_key(digest) not in known:
                    create_artifact(
                        blob_key(digest),
                        BLOB_ARTIFACT,
                        {"sha256": digest, "size": len(data), "base64": base64.b64encode(data).decode()},
                        f"strataflow bundle file {digest[:SHORT]} ({len(data)} bytes)",
                        None,
                    )
        else:
            for digest, data in sorted(blobs.items()):
                storage.write_path(f"blobs/{digest}", data)
        for content in missing:
            manifest = content.manifest
            create_artifact(
                bundle_key(manifest.digest),
                BUNDLE_ARTIFACT,
                manifest.model_dump(mode="json"),
                f"strataflow bundle of **{manifest.component}** {manifest.version or ''} `{manifest.digest[:SHORT]}`",
                None,
            )
    return [c.manifest.digest for c in missing]


def fetch(digests: Iterable[str]) -> dict[str, BundleContent]:
    """The bundles of ``digests`` with their files, each checked against its digest."""
    wanted = sorted(set(digests))
    with api("read the release's bundles"):
        manifests = _latest(bundle_key(d) for d in wanted)
        bundles: dict[str, Bundle] = {}
        for digest in wanted:
            data = manifests.get(bundle_key(digest))
            if not isinstance(data, dict):
                raise BundleError(f"bundle {digest[:SHORT]} is not stored at this Prefect API; it cannot be deployed")
            bundle = Bundle.model_validate(data)
            bundle.check()
            if bundle.digest != digest:
                raise BundleError(f"bundle {digest[:SHORT]} is stored under another digest; refused")
            bundles[digest] = bundle
        shas = {sha for b in bundles.values() for sha in b.files.values()}
        blobs = _read_blobs(shas)
    return {d: BundleContent(b, {sha: blobs[sha] for sha in b.files.values()}) for d, b in bundles.items()}


def _read_blobs(shas: set[str]) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    storage = _storage()
    if storage is not None:
        for sha in sorted(shas):
            try:
                found[sha] = bytes(storage.read_path(f"blobs/{sha}"))
            except Exception:  # noqa: BLE001, S112 - missing there: read from the database below
                continue
    rest = shas - set(found)
    for key, data in _latest(blob_key(sha) for sha in rest).items():
        if isinstance(data, dict) and isinstance(data.get("base64"), str):
            found[key.removeprefix("strata-blob-")] = base64.b64decode(data["base64"])
    for sha in sorted(shas):
        if sha not in found:
            raise BundleError(f"a file of a bundle ({sha[:SHORT]}) is missing from the bundle storage")
        if sha256(found[sha]) != sha:
            raise BundleError(f"a file of a bundle ({sha[:SHORT]}) was altered in the bundle storage; refused")
    return found


def store_text(data: bytes, what: str) -> str:
    """Store one file's bytes as a blob (an environment file snapshot, say); returns its sha256."""
    digest = sha256(data)
    with api(f"store {what}"):
        storage = _storage()
        if storage is not None:
            storage.write_path(f"blobs/{digest}", data)
        elif blob_key(digest) not in _latest([blob_key(digest)]):
            create_artifact(
                blob_key(digest),
                BLOB_ARTIFACT,
                {"sha256": digest, "size": len(data), "base64": base64.b64encode(data).decode()},
                f"strataflow {what} {digest[:SHORT]}",
                None,
            )
    return digest


def fetch_text(digest: str) -> bytes:
    """One blob's bytes, checked against its sha256."""
    with api("read a stored snapshot"):
        return _read_blobs({digest})[digest]


__all__ = ["STORAGE_VARIABLE", "bundle_key", "fetch", "fetch_text", "store", "store_text"]
