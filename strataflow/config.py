"""The configuration's models: components, environments and the platform they make up.

Pure data with their own checks (pydantic). Loading YAML into these models and turning
problems into messages is ``strataflow.load``; cross-checks between files are
``strataflow.validate``. A component's implementation is the model its backend declares
(``strataflow.backends.registry``); references inside string values (``${var.X}``,
``${C.outputs.K}``, ...) are ``strataflow.refs``.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from cronsim import CronSim, CronSimError
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializeAsAny,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from strataflow.backends import registry
from strataflow.backends.registry import Implementation
from strataflow.errors import ConfigError, Problem
from strataflow.hints import did_you_mean
from strataflow.sshsig import SignatureError, parse_public_key

Cloud = Literal["aws", "azure"]
CLOUDS: tuple[str, ...] = ("aws", "azure")
NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Component(_Model):
    """One deployable unit of the platform, implemented per cloud or once for any cloud."""

    name: str = Field(pattern=NAME_PATTERN)
    description: str | None = None
    version: str | None = None
    depends_on: list[str] = Field(default_factory=list)
    aws: SerializeAsAny[Implementation] | None = None
    azure: SerializeAsAny[Implementation] | None = None
    any: SerializeAsAny[Implementation] | None = Field(default=None, description="A cloud-agnostic implementation.")

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, (int, float)) else value

    @field_validator("aws", "azure", "any", mode="before")
    @classmethod
    def _implementation(cls, value: Any) -> Any:
        """A mapping becomes the model its ``backend:`` declares (the loader validates first, with positions)."""
        return None if value is None else registry.parse_implementation(value)

    def implementations(self) -> list[tuple[str | None, Implementation]]:
        """Each implementation with the cloud it is for (None: any cloud)."""
        found: list[tuple[str | None, Implementation]] = [(None, self.any)] if self.any is not None else []
        return found + [(cloud, impl) for cloud in CLOUDS if (impl := getattr(self, cloud)) is not None]

    def impl(self, cloud: str) -> Implementation | None:
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


class Approver(_Model):
    """Someone who may approve changes to an environment; with a public SSH key, their decisions must be signed."""

    name: str = Field(min_length=1)
    key: str | None = Field(default=None, description="A public SSH key ('ssh-ed25519 AAAA... alice@laptop').")

    @field_validator("key")
    @classmethod
    def _key(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parse_public_key(value)
            except SignatureError as exc:
                raise ValueError(f"not a usable public SSH key: {exc}") from None
        return value


class Approval(_Model):
    required: bool = False
    approvers: list[Approver] = Field(default_factory=list, description="Names, or {name, key} for signed approvals.")
    timeout: float = Field(default=86400.0, description="Seconds (or 30m, 24h, ...) to wait for a decision.")

    @field_validator("approvers", mode="before")
    @classmethod
    def _names(cls, value: Any) -> Any:
        """A plain name is an approver without a key."""
        return [{"name": item} if isinstance(item, str) else item for item in value] if isinstance(value, list) else value

    @field_validator("timeout", mode="before")
    @classmethod
    def _timeout(cls, value: Any) -> float:
        return parse_duration(value)

    @model_validator(mode="after")
    def _all_or_none_keyed(self) -> Approval:
        keyed = {a.key is not None for a in self.approvers}
        if len(keyed) > 1:
            unkeyed = ", ".join(a.name for a in self.approvers if a.key is None)
            raise ValueError(
                f"approvers mix signed and unsigned approvals ({unkeyed} without a key); give every approver a key, "
                "or none"
            )
        names = [a.name for a in self.approvers]
        if len(set(names)) != len(names):
            raise ValueError("an approver is listed twice")
        return self

    @property
    def names(self) -> list[str]:
        return [a.name for a in self.approvers]

    @property
    def signed(self) -> bool:
        """Whether decisions must carry an SSH signature by the approver's key."""
        return bool(self.approvers) and all(a.key is not None for a in self.approvers)

    def key_of(self, name: str) -> str | None:
        return next((a.key for a in self.approvers if a.name == name), None)


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
            try:
                begins, ends = datetime.fromisoformat(str(self.start)), datetime.fromisoformat(str(self.end))
            except ValueError as exc:
                raise ValueError(f"start and end must be ISO-8601 times: {exc}") from None
            if (begins.tzinfo is None) != (ends.tzinfo is None) or ends <= begins:
                raise ValueError("end must come after start (both with or both without a time zone)")
        elif self.cron is not None:
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


class Budget(_Model):
    """What a promotion into the environment may add to its monthly cost without an approver (``strata cost``)."""

    monthly_increase: float = Field(ge=0, description="Monthly increase (USD, the price lists') allowed unapproved.")


class Environment(_Model):
    name: str = Field(pattern=NAME_PATTERN)
    clouds: Clouds = Field(default_factory=Clouds)
    default_cloud: Cloud | None = Field(default=None, description="The cloud used when --cloud is not given.")
    promote_from: str | None = None
    approval: Approval = Field(default_factory=Approval)
    variables: dict[str, Any] = Field(default_factory=dict)
    components: dict[str, Override] = Field(default_factory=dict)
    freeze: list[FreezeWindow] = Field(default_factory=list)
    issue_tracker: str | None = Field(
        default=None, description="A GitHub issue-tracker block that failed promotions into this environment report to."
    )
    budget: Budget | None = Field(
        default=None, description="A promotion raising the monthly cost by more than this needs an approver."
    )
    notify: list[str] = Field(
        default_factory=list,
        description="Prefect notification blocks (Slack, Microsoft Teams, custom webhook, ...) told when a promotion "
        "waits or ends, an apply fails, drift is found or the lock is held too long (docs/monitoring.md).",
    )
    notify_lock_after: float = Field(
        default=1800.0, description="Seconds (or 30m, 2h, ...) a run may hold the lock before the notify blocks are told."
    )
    settings: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Each backend's section of the environment file (``terraform: {binary: tofu}``), by backend.",
    )

    @field_validator("notify_lock_after", mode="before")
    @classmethod
    def _lock_after(cls, value: Any) -> float:
        return parse_duration(value)

    @model_validator(mode="before")
    @classmethod
    def _backend_sections(cls, data: Any) -> Any:
        """A backend's section is a top-level key of the file, kept under ``settings``."""
        if not isinstance(data, dict):
            return data
        keys = registry.settings_keys() & set(data)
        if not keys:
            return data
        rest = {k: v for k, v in data.items() if k not in keys}
        return {**rest, "settings": {**rest.get("settings", {}), **{k: data[k] or {} for k in keys}}}

    @model_serializer(mode="wrap")
    def _flat(self, handler: SerializerFunctionWrapHandler) -> Any:
        """Dumped as written: each backend's section at the top level."""
        data = handler(self)
        if isinstance(data, dict) and "settings" in data:
            data = {**{k: v for k, v in data.items() if k != "settings"}, **data["settings"]}
        return data

    def settings_for(self, kind: str) -> BaseModel | None:
        """The settings of backend ``kind`` in this environment (its defaults when the file has none)."""
        found = registry.spec(kind)
        if found is None or found.settings is None:
            return None
        return registry.parse_settings(kind, self.settings.get(kind))

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
    roots: dict[str, Path] = Field(
        default_factory=dict,
        description="Where a component's files are when not under root (a release's bundle snapshots).",
    )

    def root_of(self, component: str) -> Path:
        """The directory the component's files are in (relative paths in its definition start there)."""
        return self.roots.get(component, self.root)

    def environment(self, name: str) -> Environment:
        try:
            return self.environments[name]
        except KeyError:
            known = ", ".join(sorted(self.environments)) or "none"
            hint = did_you_mean(name, self.environments)
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


def env_file(root: Path, name: str) -> str:
    return str(root / "environments" / f"{name}.yaml")


__all__ = [
    "CLOUDS",
    "Approval",
    "Approver",
    "AwsTarget",
    "AzureTarget",
    "Budget",
    "Clouds",
    "Component",
    "Environment",
    "FreezeWindow",
    "Override",
    "Platform",
    "env_file",
    "parse_duration",
]
