"""What a deployment reads: bundle snapshots, never the working tree as it is while the run goes on.

``working_tree`` snapshots the components a run deploys from the config directory: each
bundle is stored through Prefect (content-addressed, once) and materialized under
``$STRATA_HOME/bundles/<digest>/``, and the platform the run uses points every component at
its snapshot. ``from_release`` builds the platform of a promotion or rollback: the promoted
components from their stored bundles, the environment from the snapshot of its file taken
when the promotion started; nothing of the working tree is deployed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from strataflow import state
from strataflow.config import Component, Platform
from strataflow.load import check_platform, parse_environment
from strataflow.paths import strata_home
from strataflow.releases import Bundle, BundleContent, bundle_of, materialize, secure_names, secured


def cache_dir() -> str:
    return str(strata_home() / "bundles")


def _with_roots(platform: Platform, contents: Mapping[str, BundleContent], components: Mapping[str, Component]) -> Platform:
    from pathlib import Path

    cache = Path(cache_dir())
    roots = {name: materialize(content, cache) for name, content in contents.items()}
    return platform.model_copy(update={"components": dict(components), "roots": {**platform.roots, **roots}})


def working_tree(platform: Platform, cloud: str, names: Iterable[str]) -> tuple[Platform, dict[str, Bundle]]:
    """The platform with ``names`` snapshotted from the config directory, and their bundles."""
    contents = {
        name: bundle_of(platform, name, cloud) for name in names if platform.components[name].impl(cloud) is not None
    }
    state.ensure_secrets({k: v for content in contents.values() for k, v in content.secrets.items()})
    state.bundles.store(contents.values())
    snapped = _with_roots(platform, contents, platform.components)
    return snapped, {name: content.manifest for name, content in contents.items()}


def from_release(
    platform: Platform, env: str, release: Mapping[str, str], environment: str | None
) -> tuple[Platform, dict[str, Bundle]]:
    """The platform that deploys ``release`` (component -> bundle digest) into ``env``.

    The released components are defined by their bundles, the environment by the snapshot
    of its file (digest ``environment``; the working tree's when None); the other
    components keep their definitions only so the graph knows their edges: they are not
    deployed.
    """
    contents = state.bundles.fetch(release.values())
    by_name = {name: contents[digest] for name, digest in release.items()}
    for name, content in by_name.items():
        if content.manifest.component != name:
            from strataflow.releases import BundleError

            raise BundleError(f"bundle {release[name][:12]} is the bundle of {content.manifest.component}, not {name}")
    components = {**platform.components, **{name: c.manifest.to_component() for name, c in by_name.items()}}
    target = platform.environment(env)
    if environment is not None:
        text = state.bundles.fetch_text(environment).decode()
        target = parse_environment(env, text, f"environments/{env}.yaml (snapshot {environment[:12]})")
    environments = {**platform.environments, env: target}
    snapped = _with_roots(platform.model_copy(update={"environments": environments}), by_name, components)
    check_platform(snapped)
    return snapped, {name: content.manifest for name, content in by_name.items()}


def environment_snapshot(platform: Platform, env: str, cloud: str) -> str:
    """Store the environment file as it is now; its sha256 names the snapshot.

    A secure parameter written as text in an override is stored as the secret reference it
    becomes (the value goes to a Secret block): the snapshot never holds it.
    """
    path = platform.root / "environments" / f"{env}.yaml"
    data = path.read_bytes()
    document = yaml.safe_load(data) or {}
    secrets: dict[str, Any] = {}
    overrides = document.get("components") if isinstance(document, dict) else None
    for name, override in (overrides or {}).items():
        component = platform.components.get(name)
        impl = component.impl(cloud) if component else None
        if impl is None or not isinstance(override, dict) or not isinstance(override.get("parameters"), dict):
            continue
        secure = secure_names(impl, platform.root_of(name), override["parameters"])
        override["parameters"], found = secured(name, override["parameters"], secure)
        secrets.update(found)
    if secrets:
        state.ensure_secrets(secrets)
        data = yaml.safe_dump(document, sort_keys=False).encode()
    return state.bundles.store_text(data, f"environment file {env}.yaml")


__all__ = ["cache_dir", "environment_snapshot", "from_release", "working_tree"]
