"""Resolving a component for one environment and cloud: parameters, commands, digest.

Pure: the caller supplies upstream outputs and, inside the task only, a secret lookup.
The digest is computed with secrets left as their reference text, so a secret's value
never reaches a state record, while a change of template, parameter, upstream output or
version changes it.

Commands are never rendered with values: each command field becomes a ``shellrefs.Prepared``
script that reads every reference from an environment variable, and ``script_values`` holds
the values (``strataflow.shellrefs``), so a hostile upstream output cannot become code.

A parameter its template declares secure (CloudFormation ``NoEcho``, ARM ``securestring`` /
``secureObject`` or Bicep ``@secure()``, a Terraform ``sensitive`` variable) is kept like a
secret: its value joins ``secrets`` (masked wherever the run writes), the shown parameters hold
``***``, and the digest sees a salted, stretched hash of it (so a new value is a change, and
the digest cannot be read back to the value). Name fields (``stack_name``, ``resource_group``,
``deployment_name``) are resolved with ``${env.name}``, ``${env.cloud}`` and ``${var.NAME}``.
"""

from __future__ import annotations

import functools
import hashlib
import shlex
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from strataflow import refs, shellrefs
from strataflow.backends.registry import Implementation
from strataflow.config import Environment, Platform
from strataflow.errors import MissingOutput, NeverApplied, StrataError, TemplateError
from strataflow.records import MASK
from strataflow.releases import bundle_of, canonical, config_digest, is_literal, secure_reference
from strataflow.templateparams import TemplateParameters, TemplateParamsError

SecretLookup = Callable[[str], Any]
SECURE_ROUNDS = 100_000
"""PBKDF2-SHA256 rounds of the hash a secure parameter's value enters the digest as."""


@dataclass(frozen=True)
class Resolved:
    """A component ready to hand to its backend."""

    impl: Implementation
    """The implementation as configured (command fields keep their references: see ``scripts``)."""
    parameters: dict[str, Any]
    shown_parameters: dict[str, Any]
    """The parameters with secrets left as their reference text: safe to record and diff."""
    digest: str
    """What this apply deploys here: the bundle, the resolved parameters and commands (secrets as references)."""
    bundle: str
    """The digest of the component's bundle (its definition and files: ``strataflow.releases``)."""
    secrets: frozenset[str]
    timeout: float | None
    scripts: dict[str, shellrefs.Prepared] = field(default_factory=dict)
    """Each command field as a script reading its references from variables (``shellrefs.prepare``)."""
    script_values: dict[str, str] = field(default_factory=dict, repr=False)
    """The text value of each reference in ``scripts``, by reference body (secrets revealed when looked up)."""
    declared: TemplateParameters | None = field(default=None, repr=False)
    """What the template or module declares (None: the backend takes any parameters)."""
    secure: frozenset[str] = frozenset()
    """The given parameters the template declares secure: masked like secrets."""


def merged_parameters(platform: Platform, env: Environment, name: str, cloud: str) -> dict[str, Any]:
    """The implementation's parameters with the environment's overrides on top."""
    impl = platform.components[name].impl(cloud)
    assert impl is not None
    return {**impl.parameters, **env.override(name).parameters}


class _Unresolved(Exception):
    """A reference a name cannot hold (or an undefined variable)."""


def resolved_names(impl: Implementation, env: Environment, cloud: str | None) -> dict[str, str | None]:
    """Each name field the implementation sets, with ``${env.name}``, ``${env.cloud}`` and ``${var.NAME}`` substituted.

    None for a field that does not resolve: another kind of reference, an undefined variable,
    or ``${env.cloud}`` when ``cloud`` is not known.
    """

    def lookup(ref: refs.Ref) -> Any:
        if ref.kind == "env" and (ref.name == "name" or cloud is not None):
            return env.name if ref.name == "name" else cloud
        if ref.kind == "var" and ref.name in env.variables:
            return env.variables[ref.name]
        raise _Unresolved(ref.text)

    found: dict[str, str | None] = {}
    for key in impl.name_fields:
        value = getattr(impl, key, None)
        if value is None:
            continue
        try:
            found[key] = refs.as_text(refs.render(str(value), lookup))
        except (_Unresolved, refs.RefSyntaxError):
            found[key] = None
    return found


def declared_parameters(platform: Platform, name: str, impl: Implementation) -> TemplateParameters | None:
    """What the component's template or module declares (TemplateError when it cannot be read)."""
    try:
        return impl.template_parameters(platform.root_of(name))
    except TemplateParamsError as exc:
        raise TemplateError(f"{name}: {exc}", component=name) from None


def secure_parameters(declared: TemplateParameters | None, given: Collection[str]) -> frozenset[str]:
    """The names in ``given`` that the template declares secure (ARM matches names regardless of case)."""
    if declared is None:
        return frozenset()
    return frozenset(key for key in given if (found := declared.get(key)) is not None and found.secure)


@functools.lru_cache(maxsize=256)
def _stretched(text: str, salt: str) -> str:
    return hashlib.pbkdf2_hmac("sha256", text.encode("utf-8", "surrogatepass"), salt.encode(), SECURE_ROUNDS).hex()


def secure_digest(value: Any, env: str, cloud: str, component: str, parameter: str) -> str:
    """What a secure parameter's (shown) value enters the digest as: a salted PBKDF2 hash, never the value."""
    salt = f"strataflow secure parameter\0{env}\0{cloud}\0{component}\0{parameter}"
    return _stretched(canonical(value).decode("utf-8", "surrogatepass"), salt)


def secret_texts(value: Any) -> set[str]:
    """The texts of a secure value to mask: the whole (as text and as JSON) and each string inside it."""
    if value is None:
        return set()
    found = {refs.as_text(value)}
    if isinstance(value, (dict, list)):
        found.add(canonical(value).decode("utf-8", "surrogatepass"))
        found.update(text for _, text in refs.walk(value))
    return {text for text in found if text and refs.KNOWN_AFTER_APPLY not in text and not refs.PATTERN.fullmatch(text)}


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
    bundle: str | None = None,
) -> Resolved:
    """Resolve component ``name``: references substituted, commands prepared, digest computed.

    ``outputs`` holds each upstream's outputs. When planning, an output not known yet
    becomes ``(known after apply)``; when applying it is an error naming what to do.
    Without ``secret`` (outside the task), secrets stay as their reference text.
    ``sensitive`` names each upstream's sensitive output keys: like secrets, they are left as
    their reference text in the shown parameters and the digest, and masked in the run.
    ``bundle``: the digest of the bundle being deployed (computed from the files under the
    platform's root when not given).
    """
    component = platform.components[name]
    impl = component.impl(cloud)
    if impl is None:
        raise StrataError(f"'{name}' has no implementation for {cloud}", component=name)
    parameters = merged_parameters(platform, env, name, cloud)
    used: set[str] = set()
    names = resolved_names(impl, env, cloud)
    for key, value in names.items():
        if value is None:
            raise TemplateError(
                f"{name}: {key} '{getattr(impl, key)}' does not resolve in environment '{env.name}': a name may use "
                "${env.name}, ${env.cloud} and variables the environment defines (${var.NAME}) only",
                component=name,
            )
    renamed = {key: value for key, value in names.items() if value != getattr(impl, key)}
    if renamed:
        impl = impl.model_copy(update=renamed)
    declared = declared_parameters(platform, name, impl)
    secure = secure_parameters(declared, parameters)

    def lookup(ref: refs.Ref, *, reveal: bool) -> Any:
        if ref.kind == "var":
            return env.variables[ref.name]
        if ref.kind == "env":
            return env.name if ref.name == "name" else cloud
        if ref.kind == "secret":
            if not reveal or secret is None:
                return ref.text
            value = secret(ref.name)
            used.update(secret_texts(value))
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
            if refs.as_text(value) not in ("", MASK):  # MASK: recorded masked and not readable again
                used.add(refs.as_text(value))
        return value

    def shown(ref: refs.Ref) -> Any:
        return lookup(ref, reveal=False)

    def real(ref: refs.Ref) -> Any:
        return lookup(ref, reveal=True)

    shown_parameters = refs.render(parameters, shown)
    real_parameters = refs.render(parameters, real)
    digested = dict(shown_parameters)
    for key in secure:  # the digest gets a salted hash of what is shown (secrets stay references), the record ***
        # a value written as text is stored (in bundles) as the secret reference it becomes: digest that
        stored = secure_reference(name, key, parameters[key]) if is_literal(parameters[key]) else shown_parameters[key]
        digested[key] = {"secure": secure_digest(stored, env.name, cloud, name, key)}
        shown_parameters[key] = MASK
        used.update(secret_texts(real_parameters[key]))
    bundle = bundle or bundle_of(platform, name, cloud).manifest.digest
    # the digest sees each command with its shown values quoted in: it changes when a referenced
    # upstream output does, never with a secret (that text is never run: see _prepare_scripts)
    shown_scripts = {key: _shown_script(getattr(impl, key), shown) for key in impl.script_fields}
    inputs: dict[str, Any] = {"parameters": digested, "scripts": shown_scripts}
    if renamed:  # only names with references: a literal name is in the bundle already
        inputs["names"] = renamed
    digest = config_digest(bundle, inputs)
    scripts, script_values = _prepare_scripts(impl, name, real)
    return Resolved(
        impl=impl,
        parameters=real_parameters,
        shown_parameters=shown_parameters,
        digest=digest,
        bundle=bundle,
        secrets=frozenset(used),
        timeout=env.override(name).timeout or impl.timeout,
        scripts=scripts,
        script_values=script_values,
        declared=declared,
        secure=secure,
    )


def _shown_script(command: str | None, lookup: refs.Lookup) -> str | None:
    """A command with its references' shown values quoted in: for the digest only, never run."""
    return None if command is None else refs.render(command, lookup, quote=shlex.quote)


def _prepare_scripts(
    impl: Implementation, name: str, lookup: refs.Lookup
) -> tuple[dict[str, shellrefs.Prepared], dict[str, str]]:
    """Each command field as a ``sh -c`` script reading its references from variables, and their text values."""
    scripts: dict[str, shellrefs.Prepared] = {}
    values: dict[str, str] = {}
    for key in impl.script_fields:
        command = getattr(impl, key)
        if command is None:
            continue
        try:
            prepared = shellrefs.prepare(command)
        except shellrefs.RefusedReference as exc:
            raise TemplateError(f"{name}: {key}: {exc}", component=name) from None
        for _, body in prepared.refs:
            if body not in values:
                values[body] = refs.as_text(lookup(refs.parse(body)))
        scripts[key] = prepared
    return scripts, values
