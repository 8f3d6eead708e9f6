"""Resolving a component for one environment and cloud: parameters, commands, digest.

Pure: the caller supplies upstream outputs and, inside the task only, a secret lookup.
The digest is computed with secrets left as their reference text, so a secret's value
never reaches a state record, while a change of template, parameter, upstream output or
version changes it.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from strataflow import refs
from strataflow.backends.registry import Implementation
from strataflow.config import Environment, Platform
from strataflow.digest import config_digest, source_digest
from strataflow.errors import MissingOutput, NeverApplied, StrataError

SecretLookup = Callable[[str], str]


@dataclass(frozen=True)
class Resolved:
    """A component ready to hand to its backend."""

    impl: Implementation
    parameters: dict[str, Any]
    shown_parameters: dict[str, Any]
    """The parameters with secrets left as their reference text: safe to record and diff."""
    digest: str
    source_digest: str
    """The digest of the template/module files alone (part of ``digest``)."""
    secrets: frozenset[str]
    timeout: float | None


def merged_parameters(platform: Platform, env: Environment, name: str, cloud: str) -> dict[str, Any]:
    """The implementation's parameters with the environment's overrides on top."""
    impl = platform.components[name].impl(cloud)
    assert impl is not None
    return {**impl.parameters, **env.override(name).parameters}


def resolve(
    platform: Platform,
    env: Environment,
    cloud: str,
    name: str,
    outputs: Mapping[str, Mapping[str, Any]],
    *,
    planning: bool = False,
    secret: SecretLookup | None = None,
    sensitive: Mapping[str, Collection[str]] | None = None,
) -> Resolved:
    """Resolve component ``name``: references substituted, commands quoted, digest computed.

    ``outputs`` holds each upstream's outputs. When planning, an output not known yet
    becomes ``(known after apply)``; when applying it is an error naming what to do.
    Without ``secret`` (outside the task), secrets stay as their reference text.
    ``sensitive`` names each upstream's sensitive output keys: like secrets, they are left as
    their reference text in the shown parameters and the digest, and masked in the run.
    """
    component = platform.components[name]
    impl = component.impl(cloud)
    if impl is None:
        raise StrataError(f"'{name}' has no implementation for {cloud}", component=name)
    parameters = merged_parameters(platform, env, name, cloud)
    used: set[str] = set()

    def lookup(ref: refs.Ref, *, reveal: bool) -> Any:
        if ref.kind == "var":
            return env.variables[ref.name]
        if ref.kind == "env":
            return env.name if ref.name == "name" else cloud
        if ref.kind == "secret":
            if not reveal or secret is None:
                return ref.text
            value = secret(ref.name)
            used.add(value)
            return value
        upstream = outputs.get(ref.name)
        if upstream is None or ref.key not in upstream:
            if planning:
                return refs.KNOWN_AFTER_APPLY
            if upstream is None:
                raise NeverApplied(
                    f"{name} needs {ref.name}.outputs.{ref.key} but {ref.name} has never been applied in "
                    f"{env.name} ({cloud}); use --select +{name}",
                    component=name,
                    env=env.name,
                )
            have = ", ".join(sorted(upstream)) or "none"
            raise MissingOutput(
                f"{name} needs {ref.name}.outputs.{ref.key} but {ref.name} has no output '{ref.key}' (it has: {have})",
                component=name,
            )
        value = upstream[str(ref.key)]
        if ref.key in (sensitive or {}).get(ref.name, ()):
            if not reveal:
                return ref.text
            if refs.as_text(value):
                used.add(refs.as_text(value))
        return value

    def shown(ref: refs.Ref) -> Any:
        return lookup(ref, reveal=False)

    def real(ref: refs.Ref) -> Any:
        return lookup(ref, reveal=True)

    shown_parameters = refs.render(parameters, shown)
    source = source_digest(platform.root, impl)
    digest = config_digest(_render_impl(impl, shown), shown_parameters, component.version, source=source)
    return Resolved(
        impl=_render_impl(impl, real),
        parameters=refs.render(parameters, real),
        shown_parameters=shown_parameters,
        digest=digest,
        source_digest=source,
        secrets=frozenset(used),
        timeout=env.override(name).timeout or impl.timeout,
    )


def _render_impl(impl: Implementation, lookup: refs.Lookup) -> Implementation:
    """Fields holding shell commands get their references substituted, each value shell-quoted."""
    if not impl.script_fields:
        return impl
    update = {
        key: refs.render(getattr(impl, key), lookup, quote=shlex.quote)
        for key in impl.script_fields
        if getattr(impl, key) is not None
    }
    return impl.model_copy(update=update)
