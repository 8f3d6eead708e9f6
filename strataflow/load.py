"""Loading a config directory: YAML into the models of ``strataflow.config``, problems into messages.

``load_platform`` reads ``components.yaml`` and ``environments/*.yaml``, validates every
model (each implementation by its backend's model, each backend section of an environment
by its settings model), runs the cross-checks of ``strataflow.validate``, and reports every
problem it found in one pass as a ``ConfigError`` of ``Problem`` lines (file, line, column,
what to do).
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from strataflow import validate, yamlsrc
from strataflow.backends import registry
from strataflow.config import (
    CLOUDS,
    Approval,
    AwsTarget,
    AzureTarget,
    Component,
    Environment,
    FreezeWindow,
    Override,
    Platform,
)
from strataflow.errors import ConfigError, Problem
from strataflow.hints import did_you_mean


def _known_keys() -> list[str]:
    """Every key the configuration knows anywhere (an unknown key is matched against them)."""
    models: list[type[BaseModel]] = [Component, Environment, AwsTarget, AzureTarget, Approval, FreezeWindow, Override]
    for spec in registry.all_specs():
        models.append(spec.config)
        if spec.settings is not None:
            models.append(spec.settings)
    return sorted({field for model in models for field in model.model_fields} - {"name", "any", "settings"})


def _misspelt(errors: list[Any]) -> set[tuple[str | int, ...]]:
    """The locations of required keys reported missing because they are misspelt next to them (``tempalte:``).

    The unknown key's line says what to do ("did you mean 'template'?"); "'template' is required"
    would be a second line for one slip.
    """
    missing: dict[tuple[str | int, ...], list[str]] = {}
    for error in errors:
        if error["type"] == "missing" and error["loc"]:
            missing.setdefault(tuple(error["loc"][:-1]), []).append(str(error["loc"][-1]))
    explained: set[tuple[str | int, ...]] = set()
    for error in errors:
        parent = tuple(error["loc"][:-1])
        if error["type"] == "extra_forbidden" and error["loc"] and parent in missing:
            close = difflib.get_close_matches(str(error["loc"][-1]), missing[parent], n=1, cutoff=0.6)
            explained.update((*parent, field) for field in close)
    return explained


def _problems_from(exc: ValidationError, file: str, data: Any, prefix: tuple[str | int, ...]) -> list[Problem]:
    """Translate pydantic's errors into one actionable Problem each (a misspelt key is one problem, not two)."""
    problems = []
    errors = exc.errors()
    misspelt = _misspelt(errors)
    for error in errors:
        if error["type"] == "missing" and tuple(error["loc"]) in misspelt:
            continue
        full = prefix + tuple(error["loc"])
        line, column = yamlsrc.position(data, full)
        where = ".".join(str(p) for p in full)
        kind = error["type"]
        if kind == "extra_forbidden":
            key = str(full[-1])
            parent = ".".join(str(p) for p in full[:-1]) or "the top level"
            if key in CLOUDS and len(full) == 3 and full[0] == "components":
                message = (
                    f"'{key}:' in {parent} next to a top-level 'backend:'; give either one implementation "
                    "for every cloud (backend: at the top) or aws:/azure: sections, not both"
                )
            elif key in (known := _known_keys()):
                message = f"key '{key}' is not allowed in {parent}"
            else:
                message = f"unknown key '{key}'{did_you_mean(key, known)} in {parent}"
        elif kind == "missing":
            message = f"'{where}' is required; add it"
        elif kind == "string_pattern_mismatch" and full == ("name",):
            message = (
                f"'{error['input']}' (from the file name) is not a valid environment name; rename the file "
                "to lowercase letters, digits and '-'"
            )
        elif kind == "string_pattern_mismatch" and full[-1] == "name" and full[:1] == ("components",):
            message = (
                f"'{error['input']}' is not a valid component name; use lowercase letters, digits and '-' "
                "(at most 63 characters)"
            )
        elif kind == "string_pattern_mismatch":
            message = f"'{error['input']}' at {where} is not a valid name; use lowercase letters, digits and '-'"
        elif kind == "value_error":
            message = f"{where}: {error.get('ctx', {}).get('error', error['msg'])}"
        elif kind == "list_type":
            example = f"[{error['input']}]" if isinstance(error["input"], str) else "[...]"
            message = f"{where} must be a list, e.g. {example}"
        else:
            message = f"{where}: {error['msg']}"
        problems.append(Problem(file, line, column, message))
    return problems


def _component_input(name: str, raw: Any) -> dict[str, Any]:
    """The model input for one component; a top-level ``backend:`` is a cloud-agnostic impl."""
    if not isinstance(raw, dict):
        return {"name": name, "__invalid__": raw}
    if "backend" not in raw:
        return {"name": name, **raw}
    base = {k: raw[k] for k in ("description", "version", "depends_on") if k in raw}
    impl = {k: v for k, v in raw.items() if k not in base}
    return {"name": name, **base, "any": impl}


def _implementations(
    model_input: dict[str, Any], file: str, data: Any, name: str, problems: list[Problem]
) -> dict[str, Any] | None:
    """``model_input`` with each implementation validated by its backend's model; None if one is invalid."""
    ok = True
    for slot in ("any", *CLOUDS):
        raw = model_input.get(slot)
        if not isinstance(raw, dict):
            continue
        where: tuple[str | int, ...] = ("components", name) if slot == "any" else ("components", name, slot)
        kind = raw.get("backend")
        spec = registry.spec(str(kind)) if kind is not None else None
        if spec is None:
            ok = False
            known = registry.kinds()
            line, column = yamlsrc.position(data, (*where, "backend") if kind is not None else where)
            path = ".".join(str(p) for p in where)
            message = (
                f"{path} needs 'backend:' (one of {', '.join(known)})"
                if kind is None
                else f"unknown backend '{kind}'{did_you_mean(kind, known)} at {path}; use one of {', '.join(known)}"
            )
            problems.append(Problem(file, line, column, message))
            continue
        try:
            model_input = {**model_input, slot: spec.config.model_validate(raw)}
        except ValidationError as exc:
            ok = False
            problems.extend(_problems_from(exc, file, data, where))
    return model_input if ok else None


def _load_components(
    root: Path, problems: list[Problem], sources: dict[str, Any], broken: set[str]
) -> dict[str, Component] | None:
    """The valid components; None when the file gives no usable ``components:`` mapping.

    ``broken`` receives the names of components that are defined but invalid, so that the
    cross-checks do not also call them unknown.
    """
    path = root / "components.yaml"
    file = str(path)
    if not path.exists():
        problems.append(Problem(file, None, None, "missing; a config directory needs components.yaml"))
        return None
    data, found = yamlsrc.load(path, file)
    problems.extend(found)
    sources[file] = data
    if data is None:
        if not found:
            problems.append(Problem(file, None, None, "empty; add 'components:' with one entry per component"))
        return None
    if not isinstance(data, dict) or set(data) - {"components"}:
        extra = sorted(set(data) - {"components"}) if isinstance(data, dict) else []
        what = (
            f"unknown top-level key '{extra[0]}'{did_you_mean(extra[0], ['components'])}"
            if extra
            else "must be a mapping with 'components:'"
        )
        problems.append(Problem(file, getattr(data, "line", 1), None, what))
        if not isinstance(data, dict):
            return None
        if "components" not in data:
            return None
    section = data.get("components")
    if section is None or section == {}:
        line = yamlsrc.position(data, ("components",))[0]
        message = "no components defined; add one entry per component under 'components:'"
        problems.append(Problem(file, line, None, message))
        return {}
    if not isinstance(section, dict):
        problems.append(
            Problem(
                file,
                yamlsrc.position(data, ("components",))[0],
                None,
                "'components' must be a mapping of name: component",
            )
        )
        return None
    components: dict[str, Component] = {}
    for name, raw in section.items():
        model_input = _component_input(name, raw)
        if "__invalid__" in model_input:
            line, col = yamlsrc.position(data, ("components", name))
            problems.append(Problem(file, line, col, f"component '{name}' must be a mapping"))
            broken.add(name)
            continue
        if "name" in raw:
            line, col = yamlsrc.position(data, ("components", name, "name"))
            message = f"unknown key 'name' in components.{name}; a component is named by its key"
            problems.append(Problem(file, line, col, message))
            model_input = _component_input(name, {k: v for k, v in raw.items() if k != "name"})
        checked = _implementations(model_input, file, data, name, problems)
        if checked is None:
            broken.add(name)
            continue
        try:
            components[name] = Component.model_validate(checked)
        except ValidationError as exc:
            problems.extend(_problems_from(exc, file, data, ("components", name)))
            broken.add(name)
    return components


def _load_environments(
    root: Path, problems: list[Problem], sources: dict[str, Any], broken: set[str]
) -> dict[str, Environment]:
    """The valid environments; ``broken`` receives the names of environment files that exist but are invalid,
    so that the cross-checks do not also call them unknown (another file's ``promote_from: staging``)."""
    directory = root / "environments"
    environments: dict[str, Environment] = {}
    if not directory.is_dir():
        problems.append(
            Problem(str(directory), None, None, "missing; add environments/<name>.yaml (an empty {} is valid)")
        )
        return environments
    for path in sorted(directory.glob("*.yml")):
        message = f"environment files end in .yaml; rename it to {path.stem}.yaml"
        problems.append(Problem(str(path), None, None, message))
        broken.add(path.stem)
    for path in sorted(directory.glob("*.yaml")):
        file = str(path)
        data, found = yamlsrc.load(path, file)
        problems.extend(found)
        if found and data is None:
            broken.add(path.stem)
            continue
        sources[file] = data
        environment = _environment(path.stem, data, file, problems)
        if environment is not None:
            environments[path.stem] = environment
        else:
            broken.add(path.stem)
    return environments


def _environment(name: str, data: Any, file: str, problems: list[Problem]) -> Environment | None:
    """One environment from its file's YAML data; None (with problems) when it is invalid."""
    if data is None:
        data = yamlsrc.LineDict(line=1)
    if not isinstance(data, dict):
        problems.append(Problem(file, 1, None, "an environment file must be a mapping ({} is valid)"))
        return None
    if "name" in data:
        line, col = yamlsrc.position(data, ("name",))
        message = "unknown key 'name' at the top level; an environment is named by its file name"
        problems.append(Problem(file, line, col, message))
    if "settings" in data:
        line, col = yamlsrc.position(data, ("settings",))
        message = "unknown key 'settings' at the top level; a backend's settings go under its name (terraform:)"
        problems.append(Problem(file, line, col, message))
    fields = {k: v for k, v in data.items() if k not in ("name", "settings")}
    settings_ok = True
    for key in registry.settings_keys() & set(fields):
        try:
            registry.parse_settings(key, fields[key])
        except ValidationError as exc:
            settings_ok = False
            problems.extend(_problems_from(exc, file, data, (key,)))
    try:
        environment = Environment.model_validate({**fields, "name": name})
    except ValidationError as exc:
        problems.extend(_problems_from(exc, file, data, ()))
        return None
    return environment if settings_ok else None


def parse_environment(name: str, text: str, display: str) -> Environment:
    """An environment from the text of its file (a snapshot taken earlier); ConfigError when invalid."""
    problems: list[Problem] = []
    data, found = yamlsrc.loads(text, display)
    problems.extend(found)
    environment = None if found and data is None else _environment(name, data, display, problems)
    if problems or environment is None:
        raise ConfigError([_one_line(p) for p in problems] or Problem(display, None, None, "not a valid environment"))
    return environment


def check_platform(platform: Platform) -> None:
    """The cross-checks of ``validate`` on a platform built from snapshots; ConfigError when one fails."""
    problems = validate.check(platform, {})
    if problems:
        raise ConfigError([_one_line(p) for p in problems])


def load_platform(config_dir: str | Path = "config") -> Platform:
    """Load and validate a config directory; raise ConfigError listing every problem."""
    root = Path(config_dir)
    if not root.is_dir():
        raise ConfigError(Problem(str(root), None, None, "config directory not found; pass --config DIR"))
    problems: list[Problem] = []
    sources: dict[str, Any] = {}
    broken: set[str] = set()
    broken_environments: set[str] = set()
    components = _load_components(root, problems, sources, broken)
    environments = _load_environments(root, problems, sources, broken_environments)
    platform = Platform(root=root, components=components or {}, environments=environments)
    problems.extend(
        validate.check(
            platform,
            sources,
            broken=None if components is None else broken,
            broken_environments=broken_environments,
        )
    )
    if problems:
        raise ConfigError([_one_line(p) for p in problems])
    return platform


def _one_line(problem: Problem) -> Problem:
    """The problem with control characters (a newline in a key, say) escaped: one problem, one line."""
    file, message = (_CONTROL.sub(lambda m: repr(m.group())[1:-1], text) for text in (problem.file, problem.message))
    return Problem(file, problem.line, problem.column, message)


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


__all__ = ["check_platform", "load_platform", "parse_environment"]
