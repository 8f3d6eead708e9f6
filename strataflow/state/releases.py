"""Release records: the releases an environment reached, one version of a keyed artifact per release."""

from __future__ import annotations

from strataflow.records import release_key
from strataflow.releases import Release
from strataflow.state._api import api, connection, create_artifact, parse_records, read_paged

RELEASE_ARTIFACT = "strata-release"


def write_release(release: Release) -> None:
    """Record that ``release.env`` reached ``release`` (a new version of its releases artifact)."""
    lines = [f"**{release.env}** ({release.cloud}) runs release `{release.short}`: {release.describe()}"]
    lines += [f"- {name} {release.versions.get(name) or ''} `{digest[:12]}`" for name, digest in release.components.items()]
    with api(f"record the release of {release.env}"):
        create_artifact(
            release_key(release.env, release.cloud, release.sandbox),
            RELEASE_ARTIFACT,
            release.model_dump(mode="json"),
            "\n".join(lines),
            release.flow_run_id,
        )


def releases(env: str, cloud: str, limit: int = 50, sandbox: bool = False) -> list[Release]:
    """The releases ``env`` reached, newest first (a release reached twice is listed each time)."""
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    with api(f"read the releases of {env}"), connection() as client:
        found = read_paged(
            client,
            ArtifactFilter(key=ArtifactFilterKey(any_=[release_key(env, cloud, sandbox)])),
            ArtifactSort.CREATED_DESC,
            limit,
        )
    return [r for r in parse_records(found, Release) if r.env == env and r.cloud == cloud and r.sandbox == sandbox]


__all__ = ["RELEASE_ARTIFACT", "releases", "write_release"]
