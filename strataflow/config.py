"""The configuration: pydantic models, loading a config directory, and validating it.

A config directory holds ``components.yaml`` and ``environments/<name>.yaml`` (DESIGN §2).
``load_platform`` reads both and reports every problem it finds in one pass as a
``ConfigError`` of ``Problem`` lines (file, line, what to do). References inside string
values (``${var.X}``, ``${C.outputs.K}``, ...) live in ``strataflow.refs``.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from strataflow import refs, yamlsrc
from strataflow.errors import ConfigError, Problem

Cloud = Literal["aws", "azure"]
CLOUDS: tuple[str, ...] = ("aws", "azure")
BACKENDS: tuple[str, ...] = ("cloudformation", "arm", "terraform", "command")
NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- component implementations -------------------------------------------------------


class _Impl(_Model):
    parameters: dict[str, Any] = Field(default_factory=dict, description="Inputs; may hold references.")
    timeout: int | None = Field(default=None, gt=0, description="Seconds before the component is stopped.")


class CloudFormationImpl(_Impl):
    backend: Literal["cloudformation"]
    template: str = Field(description="Template path, relative to the config directory.")
    stack_name: str | None = Field(default=None, description="Overrides strata-<env>-<component>.")
    capabilities: list[str] = Field(
        default_factory=lambda: ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]
    )
    tags: dict[str, str] = Field(default_factory=dict)


class ArmImpl(_Impl):
    backend: Literal["arm"]
    template: str = Field(description="ARM JSON (or Bicep) template, relative to the config directory.")
    resource_group: str | None = Field(default=None, description="A group this component owns.")
    deployment_name: str | None = None


class TerraformImpl(_Impl):
    backend: Literal["terraform"]
    module: str = Field(description="Module directory, relative to the config directory.")


class CommandImpl(_Impl):
    backend: Literal["command"]
    apply: str
    plan: str | None = None
    destroy: str | None = None
    outputs: Literal["json"] | None = None


Impl = Annotated[CloudFormationImpl | ArmImpl | TerraformImpl | CommandImpl, Field(discriminator="backend")]
_IMPL_TYPES: dict[str, type[_Impl]] = {
    "cloudformation": CloudFormationImpl,
    "arm": ArmImpl,
    "terraform": TerraformImpl,
    "command": CommandImpl,
}


class Component(_Model):
    """One deployable unit of the platform, implemented per cloud or once for any cloud."""

    name: str = Field(pattern=NAME_PATTERN)
    description: str | None = None
    version: str | None = None
    depends_on: list[str] = Field(default_factory=list)
    aws: Impl | None = None
    azure: Impl | None = None
    any: Impl | None = Field(default=None, description="A cloud-agnostic implementation.")

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, (int, float)) else value

    def impl(self, cloud: str) -> Impl | None:
        """The implementation used on ``cloud`` (a cloud-agnostic one serves every cloud)."""
        return self.any or getattr(self, cloud, None)


# --- environments -------------------------------------------------------------------


class AwsTarget(_Model):
    region: str = "us-east-1"
    account_id: str | None = Field(default=None, description="Refuse to deploy into any other account.")
    credentials: str | None = Field(default=None, description="Name of an AWS credentials block.")
    profile: str | None = Field(default=None, description="A named profile of the AWS config files.")
    role_arn: str | None = Field(default=None, description="A deploy role to assume in the target account.")
    template_bucket: str | None = Field(default=None, description="S3 bucket for templates over 51,200 bytes.")
    endpoint_url: str | None = Field(default=None, description="Another AWS endpoint (a local emulator).")

    @field_validator("account_id", mode="before")
    @classmethod
    def _account_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) else value


class AzureTarget(_Model):
    subscription_id: str | None = None
    location: str = "westeurope"
    resource_group: str | None = None
    tenant_id: str | None = None
    credentials: str | None = Field(default=None, description="Name of an Azure credentials block.")
    endpoint_url: str | None = Field(default=None, description="Another ARM endpoint (a local emulator).")


class Clouds(_Model):
    aws: AwsTarget | None = None
    azure: AzureTarget | None = None


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: Any) -> float:
    """Seconds in ``value``: a number of seconds or text such as ``90s``, ``30m``, ``24h``, ``2d``."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"'{value}' is not a duration; give a number of seconds >= 0, or e.g. 30m, 24h")
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"'{value}' is not a duration; write e.g. 90s, 30m, 24h or 2d")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


class Approval(_Model):
    required: bool = False
    approvers: list[str] = Field(default_factory=list)
    timeout: float = Field(default=86400.0, description="Seconds (or 30m, 24h, ...) to wait for a decision.")

    @field_validator("timeout", mode="before")
    @classmethod
    def _timeout(cls, value: Any) -> float:
        return parse_duration(value)


class FreezeWindow(_Model):
    """A period in which promotions into the environment are refused."""

    reason: str
    start: str | None = Field(default=None, description="ISO-8601 start of a one-off window.")
    end: str | None = Field(default=None, description="ISO-8601 end of a one-off window.")
    cron: str | None = Field(default=None, description="Cron expression starting a recurring window.")
    duration: float | None = Field(default=None, description="Length of each recurring window.")

    @field_validator("duration", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float | None:
        return None if value is None else parse_duration(value)

    @model_validator(mode="after")
    def _one_kind(self) -> FreezeWindow:
        one_off = self.start is not None and self.end is not None
        recurring = self.cron is not None and self.duration is not None
        if one_off == recurring:
            raise ValueError("a freeze window needs either start and end, or cron and duration")
        if one_off:
            from datetime import datetime

            try:
                begins, ends = datetime.fromisoformat(str(self.start)), datetime.fromisoformat(str(self.end))
            except ValueError as exc:
                raise ValueError(f"start and end must be ISO-8601 times: {exc}") from None
            if (begins.tzinfo is None) != (ends.tzinfo is None) or ends <= begins:
                raise ValueError("end must come after start (both with or both without a time zone)")
        elif self.cron is not None:
            from datetime import datetime

            from cronsim import CronSim, CronSimError

            try:
                CronSim(self.cron, datetime(2026, 1, 1))
            except CronSimError as exc:
                raise ValueError(f"cron '{self.cron}' is not valid: {exc}") from None
        return self


class Override(_Model):
    """Per-environment settings of one component; never promoted."""

    enabled: bool = True
    parameters: dict[str, Any] = Field(default_factory=dict)
    timeout: int | None = Field(default=None, gt=0)


class TerraformSettings(_Model):
    binary: Literal["terraform", "tofu"] = "terraform"
    backend_config: dict[str, Any] = Field(default_factory=dict)


class Environment(_Model):
    name: str = Field(pattern=NAME_PATTERN)
    clouds: Clouds = Field(default_factory=Clouds)
    default_cloud: Cloud | None = Field(default=None, description="The cloud used when --cloud is not given.")
    promote_from: str | None = None
    approval: Approval = Field(default_factory=Approval)
    variables: dict[str, Any] = Field(default_factory=dict)
    components: dict[str, Override] = Field(default_factory=dict)
    freeze: list[FreezeWindow] = Field(default_factory=list)
    terraform: TerraformSettings = Field(default_factory=TerraformSettings)
    issue_tracker: str | None = Field(
        default=None, description="A GitHub issue-tracker block that failed promotions into this environment report to."
    )

    def declared_clouds(self) -> list[str]:
        return [c for c in CLOUDS if getattr(self.clouds, c) is not None]

    def target(self, cloud: str) -> AwsTarget | AzureTarget:
        """The environment's settings for ``cloud`` (defaults when it does not declare it)."""
        found = getattr(self.clouds, cloud, None)
        if found is not None:
            return found  # type: ignore[no-any-return]
        return AwsTarget() if cloud == "aws" else AzureTarget()

    def override(self, component: str) -> Override:
        return self.components.get(component) or Override()


# --- the platform ------------------------------------------------------------------


class Platform(_Model):
    """A loaded, validated config directory."""

    root: Path
    components: dict[str, Component]
    environments: dict[str, Environment]

    def environment(self, name: str) -> Environment:
        try:
            return self.environments[name]
        except KeyError:
            known = ", ".join(sorted(self.environments)) or "none"
            hint = _suggest(name, self.environments)
            raise ConfigError(
                Problem(
                    str(self.root / "environments"),
                    None,
                    None,
                    f"unknown environment '{name}'{hint} (known: {known}); add environments/{name}.yaml",
                )
            ) from None

    def cloud_for(self, env: Environment, cloud: str | None) -> str:
        """The cloud to deploy ``env`` to: ``cloud`` if given, else the one it declares."""
        declared = env.declared_clouds()
        if cloud is not None:
            if cloud not in CLOUDS:
                raise ConfigError(f"unknown cloud '{cloud}'; use one of {', '.join(CLOUDS)}")
            return cloud
        if len(declared) > 1 and env.default_cloud:
            return env.default_cloud
        if len(declared) > 1:
            raise ConfigError(
                Problem(
                    env_file(self.root, env.name),
                    None,
                    None,
                    f"environment '{env.name}' declares clouds {', '.join(declared)}; choose one with --cloud",
                )
            )
        if declared:
            return declared[0]
        used = {c for comp in self.components.values() for c in CLOUDS if comp.impl(c) is not None}
        return "aws" if "aws" in used or not used else sorted(used)[0]

    def template_path(self, relative: str) -> Path:
        return self.root / relative


def env_file(root: Path, name: str) -> str:
    return str(root / "environments" / f"{name}.yaml")


def _suggest(word: str, options: Any) -> str:
    close = difflib.get_close_matches(str(word), [str(o) for o in options], n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


_KNOWN_KEYS = sorted(
    {
        *Component.model_fields,
        *Environment.model_fields,
        *AwsTarget.model_fields,
        *AzureTarget.model_fields,
        *Approval.model_fields,
        *FreezeWindow.model_fields,
        *Override.model_fields,
        *TerraformSettings.model_fields,
        *(f for impl in _IMPL_TYPES.values() for f in impl.model_fields),
    }
    - {"name", "any"}
)


def _yaml_loc(loc: tuple[Any, ...]) -> tuple[str | int, ...]:
    """Pydantic's error location as a path in the YAML: drop union tags and the inline 'any'."""
    path: list[str | int] = []
    previous: Any = None
    for part in loc:
        is_tag = part in BACKENDS and previous in (*CLOUDS, "any")
        previous = part
        if part == "any" or is_tag:
            continue
        path.append(part)
    return tuple(path)


def _problems_from(exc: ValidationError, file: str, data: Any, prefix: tuple[str | int, ...]) -> list[Problem]:
    """Translate pydantic's errors into one actionable Problem each."""
    problems = []
    for error in exc.errors():
        full = prefix + _yaml_loc(error["loc"])
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
            elif key in _KNOWN_KEYS:
                message = f"key '{key}' is not allowed in {parent}"
            else:
                message = f"unknown key '{key}'{_suggest(key, _KNOWN_KEYS)} in {parent}"
        elif kind == "missing":
            message = f"'{where}' is required; add it"
        elif kind == "union_tag_invalid":
            given = str(error.get("ctx", {}).get("tag", ""))
            line, column = yamlsrc.position(data, (*full, "backend"))
            message = (
                f"unknown backend '{given}'{_suggest(given, BACKENDS)} at {where}; use one of {', '.join(BACKENDS)}"
            )
        elif kind == "union_tag_not_found":
            message = f"{where} needs 'backend:' (one of {', '.join(BACKENDS)})"
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
            f"unknown top-level key '{extra[0]}'{_suggest(extra[0], ['components'])}"
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
        try:
            components[name] = Component.model_validate(model_input)
        except ValidationError as exc:
            problems.extend(_problems_from(exc, file, data, ("components", name)))
            broken.add(name)
    return components


def _load_environments(root: Path, problems: list[Problem], sources: dict[str, Any]) -> dict[str, Environment]:
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
    for path in sorted(directory.glob("*.yaml")):
        file = str(path)
        name = path.stem
        data, found = yamlsrc.load(path, file)
        problems.extend(found)
        if found and data is None:
            continue
        if data is None:
            data = yamlsrc.LineDict(line=1)
        sources[file] = data
        if not isinstance(data, dict):
            problems.append(Problem(file, 1, None, "an environment file must be a mapping ({} is valid)"))
            continue
        if "name" in data:
            line, col = yamlsrc.position(data, ("name",))
            message = "unknown key 'name' at the top level; an environment is named by its file name"
            problems.append(Problem(file, line, col, message))
        try:
            fields = {k: v for k, v in data.items() if k != "name"}
            environments[name] = Environment.model_validate({**fields, "name": name})
        except ValidationError as exc:
            problems.extend(_problems_from(exc, file, data, ()))
    return environments


def load_platform(config_dir: str | Path = "config") -> Platform:
    """Load and validate a config directory; raise ConfigError listing every problem."""
    root = Path(config_dir)
    if not root.is_dir():
        raise ConfigError(Problem(str(root), None, None, "config directory not found; pass --config DIR"))
    problems: list[Problem] = []
    sources: dict[str, Any] = {}
    broken: set[str] = set()
    components = _load_components(root, problems, sources, broken)
    environments = _load_environments(root, problems, sources)
    platform = Platform(root=root, components=components or {}, environments=environments)
    from strataflow import validate

    problems.extend(validate.check(platform, sources, broken=None if components is None else broken))
    if problems:
        raise ConfigError([_one_line(p) for p in problems])
    return platform


def _one_line(problem: Problem) -> Problem:
    """The problem with control characters (a newline in a key, say) escaped: one problem, one line."""
    file, message = (_CONTROL.sub(lambda m: repr(m.group())[1:-1], text) for text in (problem.file, problem.message))
    return Problem(file, problem.line, problem.column, message)


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


# --- digests -------------------------------------------------------------------------


def source_digest(root: Path, impl: Any) -> str:
    """A digest of the files an implementation deploys (template, module, or command text)."""
    sha = hashlib.sha256()
    relative = getattr(impl, "template", None) or getattr(impl, "module", None)
    if relative is not None:
        path = root / relative
        files = (
            sorted(p for p in path.rglob("*") if p.is_file() and ".terraform" not in p.parts)
            if path.is_dir()
            else [path]
        )
        for file in files:
            if file.suffix in (".tfstate", ".backup") or file.name == ".terraform.lock.hcl":
                continue
            sha.update(str(file.relative_to(root)).encode())
            sha.update(file.read_bytes() if file.exists() else b"")
    return sha.hexdigest()


def config_digest(
    root: Path, impl: Any, parameters: dict[str, Any], version: str | None, *, source: str | None = None
) -> str:
    """The digest that says 'this exact thing was applied': sources + resolved parameters + version.

    ``source``: the implementation's ``source_digest`` when the caller has it (it reads the files).
    """
    body = impl.model_dump(exclude={"parameters", "timeout"}, mode="json")
    source = source if source is not None else source_digest(root, impl)
    payload = json.dumps(
        {"impl": body, "parameters": parameters, "version": version, "source": source},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


__all__ = [
    "ArmImpl",
    "AwsTarget",
    "AzureTarget",
    "CloudFormationImpl",
    "CommandImpl",
    "Component",
    "Environment",
    "Impl",
    "Platform",
    "TerraformImpl",
    "config_digest",
    "load_platform",
    "refs",
]
