"""Cross-checks of a loaded platform: dependencies, cycles, references, paths, environments.

Each check returns Problems instead of raising, so ``strata validate`` reports everything
wrong in one pass. Positions come from the YAML data the models were loaded from.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Set
from pathlib import Path
from typing import Any

from strataflow import refs, yamlsrc
from strataflow.backends.registry import Implementation, SourcePath
from strataflow.config import CLOUDS, Component, Environment, Platform, env_file
from strataflow.errors import Problem
from strataflow.graph import edges_of, find_cycle
from strataflow.hints import did_you_mean

Sources = Mapping[str, Any]
"""The YAML data of each file, by path: for line numbers."""


Exists = Callable[[str], bool]
"""Whether a component name is defined (valid or not): only the others are 'unknown'."""


def check(platform: Platform, sources: Sources, *, broken: Set[str] | None = frozenset()) -> list[Problem]:
    """Every cross-check's problems.

    ``broken`` names the components that are defined but failed to load (their own problems
    are already reported), so that nothing else calls them unknown; None means
    components.yaml itself could not be read, so no component name is called unknown.
    """

    def exists(name: str) -> bool:
        return broken is None or name in platform.components or name in broken

    problems: list[Problem] = []
    problems += _dependencies(platform, sources, exists)
    problems += _references(platform, sources, exists)
    problems += _paths(platform, sources)
    problems += _environments(platform, sources, exists)
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


def _paths(platform: Platform, sources: Sources) -> list[Problem]:
    """Every path an implementation names exists and stays inside the config directory (no .., absolute, symlink escapes)."""
    file = _components_file(platform)
    root = platform.root.resolve()
    problems = []
    for name, component in platform.components.items():
        for prefix, impl in _impls(component):
            for source in impl.source_paths():
                line, col = _at(sources, file, name, *prefix, source.key)
                message = _path_problem(platform.root, root, source)
                if message:
                    problems.append(Problem(file, line, col, message))
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


def _environments(platform: Platform, sources: Sources, exists: Exists) -> list[Problem]:
    problems = []
    for env in platform.environments.values():
        efile = env_file(platform.root, env.name)
        if env.promote_from is not None:
            if env.promote_from == env.name:
                line, col = _at(sources, efile, "promote_from")
                problems.append(Problem(efile, line, col, f"'{env.name}' cannot promote from itself"))
            elif env.promote_from not in platform.environments:
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
