"""Cross-checks of a loaded platform: dependencies, cycles, references, commands, paths, environments, names,
and each component's parameters against what its template or module declares.

Each check returns Problems instead of raising, so ``strata validate`` reports everything
wrong in one pass. Positions come from the YAML data the models were loaded from. A problem
is reported once, where it is: a component or environment that is defined but invalid (its
own problems already reported) is never called unknown elsewhere, and a template that cannot
be found is not also checked.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Iterator, Mapping, Set
from pathlib import Path
from typing import Any

from strataflow import refs, shellrefs, templateparams, yamlsrc
from strataflow.backends.registry import Implementation, SourcePath
from strataflow.config import CLOUDS, Component, Environment, Platform, env_file
from strataflow.errors import Problem
from strataflow.graph import edges_of, find_cycle
from strataflow.hints import did_you_mean
from strataflow.records import component_key, release_key, run_key
from strataflow.resolve import resolved_names
from strataflow.templateparams import TemplateParameters, TemplateParamsError

Sources = Mapping[str, Any]
"""The YAML data of each file, by path: for line numbers."""


Exists = Callable[[str], bool]
"""Whether a component name is defined (valid or not): only the others are 'unknown'."""


def check(
    platform: Platform,
    sources: Sources,
    *,
    broken: Set[str] | None = frozenset(),
    broken_environments: Set[str] = frozenset(),
) -> list[Problem]:
    """Every cross-check's problems.

    ``broken`` names the components that are defined but failed to load (their own problems
    are already reported), so that nothing else calls them unknown; None means
    components.yaml itself could not be read, so no component name is called unknown.
    ``broken_environments`` names the environment files that exist but failed to load, for
    the same reason (``promote_from: staging`` is not unknown when staging.yaml is invalid).
    """

    def exists(name: str) -> bool:
        return broken is None or name in platform.components or name in broken

    unusable: set[tuple[str, tuple[str, ...]]] = set()
    problems: list[Problem] = []
    problems += _dependencies(platform, sources, exists)
    problems += _references(platform, sources, exists)
    problems += _commands(platform, sources)
    problems += _paths(platform, sources, unusable)
    problems += _environments(platform, sources, exists, broken_environments)
    problems += _names(platform, sources)
    problems += _template_parameters(platform, sources, unusable)
    if not problems:
        problems += _cycles(platform, sources)
    return problems


def _components_file(platform: Platform) -> str:
    return str(platform.root / "components.yaml")


def _at(sources: Sources, file: str, *loc: str | int) -> tuple[int | None, int | None]:
    return (
        yamlsrc.position(sources.get(file), ("components", *loc))
        if file.endswith("components.yaml")
        else yamlsrc.position(sources.get(file), loc)
    )


def _impls(component: Component) -> Iterator[tuple[tuple[str, ...], Implementation]]:
    """Each implementation with its YAML location inside the component."""
    for cloud, impl in component.implementations():
        yield ((cloud,) if cloud else ()), impl


def _dependencies(platform: Platform, sources: Sources, exists: Exists) -> list[Problem]:
    file = _components_file(platform)
    problems = []
    for name, component in platform.components.items():
        if component.any is None and component.aws is None and component.azure is None:
            line, col = _at(sources, file, name)
            problems.append(
                Problem(
                    file,
                    line,
                    col,
                    f"component '{name}' has no implementation; add 'aws:', 'azure:' or a top-level 'backend:'",
                )
            )
        for index, dep in enumerate(component.depends_on):
            line, col = _at(sources, file, name, "depends_on", index)
            if dep == name:
                problems.append(
                    Problem(file, line, col, f"component '{name}' depends on itself; remove it from depends_on")
                )
            elif not exists(dep):
                hint = did_you_mean(dep, platform.components)
                problems.append(
                    Problem(file, line, col, f"component '{name}' depends on unknown component '{dep}'{hint}")
                )
    return problems


def _references(platform: Platform, sources: Sources, exists: Exists) -> list[Problem]:
    """References in components (checked against every environment) and in overrides."""
    file = _components_file(platform)
    problems = []
    for name, component in platform.components.items():
        for prefix, impl in _impls(component):
            for path, ref in refs.find(impl.model_dump(exclude_defaults=True)):
                line, col = _at(sources, file, name, *prefix, *path)
                problems += _check_ref(platform, exists, name, ref, file, line, col)
                if path and path[0] in impl.name_fields and isinstance(ref, refs.Ref) and ref.kind not in NAME_REFS:
                    what = impl.name_fields[str(path[0])]
                    problems.append(
                        Problem(
                            file,
                            line,
                            col,
                            f"'{name}' {path[0]}: {ref.text} cannot be part of a {what} name, which must be known "
                            "before anything runs; use ${env.name}, ${env.cloud} or ${var.NAME} there",
                        )
                    )
                if isinstance(ref, refs.Ref) and ref.kind == "var":
                    for env in platform.environments.values():
                        if ref.name not in env.variables and _uses(env, component, prefix):
                            where = env_file(platform.root, env.name)
                            problems.append(
                                Problem(
                                    file,
                                    line,
                                    col,
                                    f"'{name}' uses ${{var.{ref.name}}} but environment '{env.name}' "
                                    f"does not define it; add it under variables: in {where}",
                                )
                            )
    for env in platform.environments.values():
        efile = env_file(platform.root, env.name)
        for cname, override in env.components.items():
            for path, ref in refs.find(override.parameters):
                line, col = _at(sources, efile, "components", cname, "parameters", *path)
                problems += _check_ref(platform, exists, cname, ref, efile, line, col)
                if isinstance(ref, refs.Ref) and ref.kind == "var" and ref.name not in env.variables:
                    problems.append(
                        Problem(
                            efile,
                            line,
                            col,
                            f"unknown variable '{ref.name}'{did_you_mean(ref.name, env.variables)}; define it under variables:",
                        )
                    )
    return problems


NAME_REFS = frozenset({"env", "var"})
"""The references a name field (``stack_name``, ``resource_group``, ``deployment_name``) may hold."""


def _uses(env: Environment, component: Component, prefix: tuple[str, ...]) -> bool:
    """Whether ``env`` deploys this implementation (its cloud, or any cloud when undeclared)."""
    if not env.override(component.name).enabled:
        return False
    declared = env.declared_clouds()
    return not prefix or not declared or prefix[0] in declared


def _check_ref(
    platform: Platform,
    exists: Exists,
    owner: str,
    ref: refs.Ref | refs.RefSyntaxError,
    file: str,
    line: int | None,
    col: int | None,
) -> list[Problem]:
    if isinstance(ref, refs.RefSyntaxError):
        return [Problem(file, line, col, str(ref))]
    if ref.kind == "output":
        if ref.name == owner:
            return [
                Problem(
                    file, line, col, f"'{owner}' references its own outputs; a component cannot use what it produces"
                )
            ]
        if not exists(ref.name):
            hint = did_you_mean(ref.name, platform.components)
            return [Problem(file, line, col, f"'{owner}' references outputs of unknown component '{ref.name}'{hint}")]
    return []


def _commands(platform: Platform, sources: Sources) -> list[Problem]:
    """References where no quoting keeps their value from being run as code (``shellrefs.check``)."""
    file = _components_file(platform)
    problems = []
    for name, component in platform.components.items():
        for prefix, impl in _impls(component):
            for key in impl.script_fields:
                command = getattr(impl, key, None)
                if not isinstance(command, str):
                    continue
                line, col = _at(sources, file, name, *prefix, key)
                for message in shellrefs.check(command):
                    problems.append(
                        Problem(
                            file,
                            line,
                            col,
                            f"'{name}' {key}: {message} (a value is only ever passed to the command as data, "
                            "through an environment variable, never as script text)",
                        )
                    )
    return problems


def _names(platform: Platform, sources: Sources) -> list[Problem]:
    """Two environment x component pairs must not share a stack, a deployment or an owned resource group, nor an artifact key.

    ``strata-<env>-<component>`` of ``dev`` + ``eu-network`` is that of ``dev-eu`` + ``network``:
    one would update or delete the other's stack. A name set with ``stack_name:``,
    ``deployment_name:`` or ``resource_group:`` is compared as it resolves in each environment
    (``rg-${env.name}`` differs per environment, ``rg-probe`` does not). A resource group a
    component owns is deleted with it: nothing else may own it or deploy into it as an
    environment's shared group. Names clash only where they can meet (the same account and
    region, subscription and resource group; an undeclared one may be any); artifact keys clash
    on the one Prefect server. A name that does not resolve (an undefined variable) is reported
    by the reference checks, not here.
    """
    file = _components_file(platform)
    problems: list[Problem] = []
    deployed: dict[tuple[str, str], list[tuple[tuple[str | None, ...], str, tuple[str, str]]]] = {}
    owned: dict[str, list[tuple[str | None, str, tuple[str | int, ...], tuple[str, str]]]] = {}
    shared: dict[str, list[tuple[str | None, str]]] = {}
    reported: set[tuple[frozenset[tuple[str, str]], str]] = set()  # each clash once, whichever cloud finds it
    keys: dict[str, str] = {}

    def claim(key: str, owner: str, where: tuple[str, ...]) -> None:
        if key in keys and keys[key] != owner:
            line, col = _at(sources, file, *where) if where else (None, None)
            problems.append(
                Problem(
                    file,
                    line,
                    col,
                    f"the artifact key '{key}' of {owner} is also that of {keys[key]}; "
                    "rename the environment or the component",
                )
            )
        keys.setdefault(key, owner)

    for env in sorted(platform.environments.values(), key=lambda e: e.name):
        for cloud in env.declared_clouds() or list(CLOUDS):
            for kind, key in (
                ("history", run_key(env.name, cloud)),
                ("releases", release_key(env.name, cloud)),
                ("run report", f"strata-report-{env.name}-{cloud}".lower()),
                ("drift report", f"strata-drift-{env.name}-{cloud}".lower()),
            ):
                claim(key, f"the {kind} of environment '{env.name}' ({cloud})", ())
            for name, component in platform.components.items():
                impl = component.impl(cloud)
                if impl is None:
                    continue
                pair = f"'{name}' in environment '{env.name}' ({cloud})"
                claim(component_key(env.name, cloud, name), f"the state record of {pair}", (name,))
                if not env.override(name).enabled:
                    continue
                named = _deployed_name(env, cloud, name, impl)
                if named is None:
                    continue
                what, field, value, scope, group = named
                identity = (env.name, name)  # one object, whichever of the environment's clouds deploys it
                if group is not None:
                    subscription, group_name, is_owned = group
                    if is_owned:
                        where = (name, *_slot(component, cloud), "resource_group")
                        owned.setdefault(group_name, []).append((subscription, pair, where, identity))
                    else:
                        shared.setdefault(group_name, []).append((subscription, env.name))
                if value is None:
                    continue
                for other_scope, other_pair, other in deployed.get((what, value), []):
                    clash = (frozenset({identity, other}), what)
                    if other != identity and _may_meet(scope, other_scope) and clash not in reported:
                        reported.add(clash)
                        line, col = _at(sources, file, name)
                        problems.append(
                            Problem(
                                file,
                                line,
                                col,
                                f"the {what} name '{value}' of {pair} is also that of {other_pair}; one would "
                                f"overwrite or delete the other: set {field}: on one of them, or rename one",
                            )
                        )
                        break
                deployed.setdefault((what, value), []).append((scope, pair, identity))
    problems += _group_collisions(file, sources, owned, shared)
    return problems


def _slot(component: Component, cloud: str) -> tuple[str, ...]:
    """Where the implementation used on ``cloud`` is inside the component's YAML."""
    return () if component.any is not None else (cloud,)


def _group_collisions(
    file: str,
    sources: Sources,
    owned: Mapping[str, list[tuple[str | None, str, tuple[str | int, ...], tuple[str, str]]]],
    shared: Mapping[str, list[tuple[str | None, str]]],
) -> list[Problem]:
    """A resource group a component owns (and deletes when destroyed) must be nobody else's."""
    problems = []
    reported: set[tuple[str, str]] = set()
    for group, owners in owned.items():
        for index, (subscription, pair, where, identity) in enumerate(owners):
            if identity in reported:
                continue
            others = [
                other
                for other_sub, other, _, other_identity in owners[:index]
                if other_identity != identity and _may_meet((subscription,), (other_sub,))
            ]
            users = [
                f"environment '{env}'"
                for env_sub, env in dict.fromkeys(shared.get(group, []))
                if _may_meet((subscription,), (env_sub,))
            ]
            if not others and not users:
                continue
            reported.add(identity)
            line, col = _at(sources, file, *where)
            if others:
                message = (
                    f"the resource group '{group}' that {pair} owns is also owned by {others[0]}; destroying one "
                    "deletes the group with the other's resources: give each its own resource_group: "
                    "(e.g. rg-${env.name}-<component>)"
                )
            else:
                message = (
                    f"the resource group '{group}' that {pair} owns is the shared resource group of {users[0]}; "
                    "destroying the component would delete it with every deployment in it: name another group "
                    "in resource_group:, or leave it out to deploy into the shared one"
                )
            problems.append(Problem(file, line, col, message))
    return problems


def _deployed_name(
    env: Environment, cloud: str, name: str, impl: Implementation
) -> tuple[str, str, str | None, tuple[str | None, ...], tuple[str | None, str, bool] | None] | None:
    """What an implementation is deployed as in ``env``: (stack|deployment, its field, the name, where it lives, its group).

    The name is None when it does not resolve; the group is (subscription, name, owned by the
    component) for a backend that deploys into resource groups.
    """
    fields = {kind: field for field, kind in impl.name_fields.items()}
    if "stack" not in fields and "deployment" not in fields:
        return None
    names = resolved_names(impl, env, cloud)
    group: tuple[str | None, str, bool] | None = None
    if "stack" in fields:  # a stack lives in the environment's AWS account and region
        what, field = "stack", fields["stack"]
        aws = env.target("aws")
        scope: tuple[str | None, ...] = (getattr(aws, "account_id", None), getattr(aws, "region", None))
    else:  # a deployment in its Azure subscription
        what, field = "deployment", fields["deployment"]
        target = env.target("azure")
        subscription = getattr(target, "subscription_id", None)
        group_field = fields.get("resource group")
        own = getattr(impl, group_field, None) if group_field else None
        group_name = names.get(group_field) if own and group_field else None
        if own and group_name is None:  # it does not resolve: its deployments cannot be placed either
            return what, field, None, (subscription, None), None
        if group_name is not None:
            group = (subscription, group_name, True)
        else:
            group = (subscription, getattr(target, "resource_group", None) or f"strata-{env.name}", False)
        scope = (subscription, group[1])
    value = names.get(field) if getattr(impl, field, None) else f"strata-{env.name}-{name}"
    return what, field, value, scope, group


def _may_meet(one: tuple[str | None, ...], other: tuple[str | None, ...]) -> bool:
    """Whether two places may be the same: each part equal, or unknown on either side."""
    return all(a is None or b is None or a == b for a, b in zip(one, other, strict=True))


def _paths(platform: Platform, sources: Sources, unusable: set[tuple[str, tuple[str, ...]]]) -> list[Problem]:
    """Every path an implementation names exists and stays inside its directory (no .., absolute, symlink escapes).

    ``unusable`` receives (component, implementation prefix) of each implementation with a bad path.
    """
    file = _components_file(platform)
    problems = []
    for name, component in platform.components.items():
        config = platform.root_of(name)
        root = config.resolve()
        for prefix, impl in _impls(component):
            for source in impl.source_paths():
                line, col = _at(sources, file, name, *prefix, source.key)
                message = _path_problem(config, root, source)
                if message:
                    problems.append(Problem(file, line, col, message))
                    unusable.add((name, prefix))
    return problems


def _path_problem(config: Path, root: Path, source: SourcePath) -> str | None:
    key, relative = source.key, source.relative
    if "\x00" in relative:
        return f"{key} '{relative!r}' holds a NUL character; give a plain relative path"
    if os.path.isabs(relative):
        return f"{key} '{relative}' is absolute; give a path relative to the config directory"
    target = (config / relative).resolve()
    if root != target and root not in target.parents:
        return f"{key} '{relative}' is outside the config directory {config}; move it inside"
    if not target.exists():
        return f"{key} '{relative}' not found under {config}"
    if source.kind == "dir" and not target.is_dir():
        return f"{key} '{relative}' must be a directory"
    if source.kind == "file" and not target.is_file():
        return f"{key} '{relative}' must be a file"
    if target.is_dir() and (link := _link_outside(target, root)) is not None:
        return (
            f"{key} '{relative}' holds '{link}', a link to outside the config directory {config}; "
            "put the file itself there"
        )
    return None


def _link_outside(module: Path, root: Path) -> str | None:
    """The first entry of ``module`` (walked as the terraform backend copies it) that leads outside ``root``."""
    for folder, dirs, files in os.walk(module):
        dirs[:] = sorted(d for d in dirs if d not in (".terraform", ".git"))
        for name in [*dirs, *sorted(files)]:
            path = Path(folder) / name
            target = path.resolve()
            if path.is_symlink() and root != target and root not in target.parents:
                return path.relative_to(module).as_posix()
    return None


def _environments(platform: Platform, sources: Sources, exists: Exists, broken: Set[str]) -> list[Problem]:
    problems = []
    for env in platform.environments.values():
        efile = env_file(platform.root, env.name)
        if env.promote_from is not None:
            if env.promote_from == env.name:
                line, col = _at(sources, efile, "promote_from")
                problems.append(Problem(efile, line, col, f"'{env.name}' cannot promote from itself"))
            elif env.promote_from not in platform.environments and env.promote_from not in broken:
                line, col = _at(sources, efile, "promote_from")
                hint = did_you_mean(env.promote_from, platform.environments)
                problems.append(
                    Problem(efile, line, col, f"promote_from names unknown environment '{env.promote_from}'{hint}")
                )
        if env.approval.required and not env.approval.approvers:
            line, col = _at(sources, efile, "approval")
            problems.append(
                Problem(efile, line, col, "approval.required needs at least one name under approval.approvers")
            )
        for cname in env.components:
            if not exists(cname):
                line, col = _at(sources, efile, "components", cname)
                problems.append(
                    Problem(
                        efile,
                        line,
                        col,
                        f"override for unknown component '{cname}'{did_you_mean(cname, platform.components)}",
                    )
                )
        problems += _disabled_outputs(platform, env, efile, sources)
    return problems


def _disabled_outputs(platform: Platform, env: Environment, efile: str, sources: Sources) -> list[Problem]:
    """An enabled component must not need the outputs of a disabled one, nor of one missing on a declared cloud."""
    problems = []
    file = _components_file(platform)
    disabled = {n for n, o in env.components.items() if not o.enabled}
    declared = env.declared_clouds()
    for cloud in declared or list(CLOUDS):
        for name, component in platform.components.items():
            impl = component.impl(cloud)
            if impl is None or name in disabled:
                continue
            used = refs.outputs_used(impl.model_dump()) | refs.outputs_used(env.override(name).parameters)
            for needed in sorted(used & disabled):
                line, col = _at(sources, efile, "components", needed)
                problems.append(
                    Problem(
                        efile,
                        line,
                        col,
                        f"'{name}' uses outputs of '{needed}', which is disabled here; enable it or disable '{name}' too",
                    )
                )
            if cloud not in declared:
                continue
            for needed in sorted(used - disabled):
                upstream = platform.components.get(needed)
                if upstream is not None and upstream.impl(cloud) is None:
                    line, col = _at(sources, file, name)
                    problems.append(
                        Problem(
                            file,
                            line,
                            col,
                            f"'{name}' uses outputs of '{needed}', which has no {cloud} implementation, but environment "
                            f"'{env.name}' deploys to {cloud}; add '{cloud}:' to '{needed}' or disable '{name}' in {efile}",
                        )
                    )
    return problems


def _cycles(platform: Platform, sources: Sources) -> list[Problem]:
    """A cycle of components.yaml alone is reported there; one closed by an environment's
    overrides is reported in that environment's file (each environment is checked alone)."""
    file = _components_file(platform)
    cycle = find_cycle(edges_of(platform, None, None))
    if cycle is not None:
        line, col = _at(sources, file, cycle[0])
        return [
            Problem(file, line, col, "dependency cycle: " + " -> ".join(cycle) + "; remove one of these dependencies")
        ]
    problems = []
    for env in platform.environments.values():
        cycle = find_cycle(edges_of(platform, env, None))
        if cycle is None:
            continue
        efile = env_file(platform.root, env.name)
        member = next((name for name in cycle if name in env.components), cycle[0])
        line, col = _at(sources, efile, "components", member)
        problems.append(
            Problem(
                efile,
                line,
                col,
                f"dependency cycle in environment '{env.name}': "
                + " -> ".join(cycle)
                + "; remove the output reference of an override, or one of these dependencies",
            )
        )
    return problems


# --- parameters against the template ------------------------------------------------------------


class _Where:
    """Where each given parameter of one implementation stands: its line in components.yaml or in an override."""

    def __init__(self, platform: Platform, sources: Sources, name: str, prefix: tuple[str, ...], impl: Implementation):
        self.platform, self.sources, self.name, self.prefix, self.impl = platform, sources, name, prefix, impl
        self.file = _components_file(platform)

    def parameter(self, env: Environment | None, key: str) -> tuple[str, int | None, int | None, bool]:
        """(file, line, column, whether it is the environment's override) of parameter ``key``."""
        if env is not None and key in env.override(self.name).parameters:
            efile = env_file(self.platform.root, env.name)
            return (efile, *_at(self.sources, efile, "components", self.name, "parameters", key), True)
        return (self.file, *_at(self.sources, self.file, self.name, *self.prefix, "parameters", key), False)

    def missing(self) -> tuple[str, int | None, int | None, bool]:
        """Where a parameter that is not given is reported: the ``parameters:`` key, else the template's."""
        if self.impl.parameters:
            return (self.file, *_at(self.sources, self.file, self.name, *self.prefix, "parameters"), False)
        key = next((source.key for source in self.impl.source_paths()), None)
        where = (self.name, *self.prefix, key) if key else (self.name, *self.prefix)
        return (self.file, *_at(self.sources, self.file, *where), False)


def _known_values(value: Any, env: Environment, cloud: str | None) -> tuple[Any, list[str]]:
    """``value`` with the references known before anything runs substituted for ``env`` (``${var.X}``,
    ``${env.name}``, ``${env.cloud}``), and the text of those substituted; others stay as written."""
    substituted: list[str] = []

    def lookup(ref: refs.Ref) -> Any:
        if ref.kind == "var" and ref.name in env.variables:
            found = env.variables[ref.name]
        elif ref.kind == "env" and (ref.name == "name" or cloud is not None):
            found = env.name if ref.name == "name" else cloud
        else:
            return ref.text
        if ref.text not in substituted:
            substituted.append(ref.text)
        return found

    try:
        return refs.render(value, lookup), substituted
    except refs.RefSyntaxError:  # reported by the reference checks; the value stays unchecked
        return value, []


def _template_parameters(
    platform: Platform, sources: Sources, unusable: set[tuple[str, tuple[str, ...]]]
) -> list[Problem]:
    """Each implementation's parameters against what its template or module declares, in each environment deploying it.

    Given = the implementation's parameters with the environment's override on top; unknown
    names, missing required ones, and values against allowed values, patterns, lengths, ranges
    and types. ``${var.X}`` and ``${env.*}`` are substituted per environment first; a value
    holding any other reference is known only at run time (the runner checks it then). A
    problem is reported at the parameter's line (components.yaml, or the override in the
    environment file), once, naming the environments it holds in when not all of them.
    """
    problems: list[Problem] = []
    for name, component in platform.components.items():
        config = platform.root_of(name)
        for prefix, impl in _impls(component):
            if (name, prefix) in unusable:
                continue  # its path is reported already
            where = _Where(platform, sources, name, prefix, impl)
            try:
                declared = impl.template_parameters(config)
            except TemplateParamsError as exc:
                source = next(iter(impl.source_paths()), None)
                key = source.key if source else "parameters"
                line, col = _at(sources, where.file, name, *prefix, key)
                shown = str(exc).replace(f"{config}/", "", 1) if str(exc).startswith(f"{config}/") else str(exc)
                problems.append(Problem(where.file, line, col, f"'{name}' {key}: cannot read its parameters: {shown}"))
                continue
            if declared is None:
                continue
            problems += _parameters_of(platform, component, prefix, impl, declared, where, config)
    return problems


def _parameters_of(
    platform: Platform,
    component: Component,
    prefix: tuple[str, ...],
    impl: Implementation,
    declared: TemplateParameters,
    where: _Where,
    config: Path,
) -> list[Problem]:
    """One implementation's problems against ``declared``: each once, with the environments it holds in."""
    contexts: list[tuple[Environment | None, str | None]] = []
    for candidate in sorted(platform.environments.values(), key=lambda e: e.name):
        if _uses(candidate, component, prefix):
            clouds = candidate.declared_clouds()
            contexts.append((candidate, prefix[0] if prefix else (clouds[0] if len(clouds) == 1 else None)))
    if not contexts:  # deployed nowhere: still, a misspelt name is misspelt
        contexts.append((None, None))
    found: dict[tuple[str, int | None, int | None, str], tuple[bool, list[str], list[str]]] = {}
    for env, cloud in contexts:
        given: dict[str, Any] = dict(impl.parameters)
        substituted: dict[str, list[str]] = {}
        if env is not None:
            given.update(env.override(component.name).parameters)
        if env is not None:
            for parameter, value in given.items():
                given[parameter], substituted[parameter] = _known_values(value, env, cloud)
        for issue in _one_per_slip(declared, templateparams.check(declared, given, root=config)):
            key = _given_key(declared, given, issue.parameter)
            if issue.kind == "missing" or key is None:
                file, line, col, own = where.missing()
            else:
                file, line, col, own = where.parameter(env, key)
            refs_used = substituted.get(key, []) if key is not None and issue.kind not in ("unknown", "missing") else []
            entry = found.setdefault((file, line, col, issue.message), (own, [], []))
            if env is not None and env.name not in entry[1]:
                entry[1].append(env.name)
            entry[2].extend(text for text in refs_used if text not in entry[2])
    everywhere = sorted(env.name for env, _ in contexts if env is not None)
    problems = []
    for (file, line, col, message), (own, envs, used) in found.items():
        text = f"'{component.name}': {message}"
        if used:
            text += f" (with {', '.join(used)} of {_environments_named(envs)})"
        elif envs and not own and sorted(envs) != everywhere:
            text += f" (in {_environments_named(envs)})"
        problems.append(Problem(file, line, col, text))
    return problems


def _one_per_slip(declared: TemplateParameters, issues: list[templateparams.Issue]) -> list[templateparams.Issue]:
    """``issues`` without a required parameter's "not given" when a misspelt name given for it says "did you mean"."""
    missing = [issue.parameter for issue in issues if issue.kind == "missing"]
    if not missing:
        return issues
    names = list(declared.names)
    meant: set[str] = set()
    for issue in issues:
        if issue.kind == "unknown":
            word = issue.parameter.casefold() if declared.case_insensitive else issue.parameter
            options = {(n.casefold() if declared.case_insensitive else n): n for n in names}
            close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
            meant.update(options[c] for c in close)
    return [issue for issue in issues if not (issue.kind == "missing" and issue.parameter in meant)]


def _given_key(declared: TemplateParameters, given: Mapping[str, Any], parameter: str) -> str | None:
    """The key of ``given`` an issue about ``parameter`` is about (ARM names match regardless of case)."""
    if parameter in given:
        return parameter
    for key in given:
        found = declared.get(key)
        if found is not None and found.name == parameter:
            return key
    return None


def _environments_named(names: list[str]) -> str:
    return f"environment '{names[0]}'" if len(names) == 1 else f"environments {', '.join(names)}"
