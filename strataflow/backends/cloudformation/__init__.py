"""AWS CloudFormation components: a template deployed as one stack (``strata-<env>-<component>``).

This module is the backend's spec (pure); ``backend.py`` holds the boto3 operations and
``support.py`` the stack status table, error mapping and template loading.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field

from strataflow.backends.registry import BackendSpec, Implementation, SourcePath

if TYPE_CHECKING:
    from strataflow.templateparams.model import TemplateParameters


class CloudFormationImpl(Implementation):
    backend: Literal["cloudformation"]
    template: str = Field(description="Template path, relative to the config directory.")
    stack_name: str | None = Field(default=None, description="Overrides strata-<env>-<component>.")
    capabilities: list[str] = Field(
        default_factory=lambda: ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]
    )
    tags: dict[str, str] = Field(default_factory=dict)

    name_fields: ClassVar[dict[str, str]] = {"stack_name": "stack"}

    def template_parameters(self, root: Path) -> TemplateParameters:
        from strataflow.templateparams import cache

        return cache.read("cloudformation", root / self.template)

    def source_paths(self) -> list[SourcePath]:
        return [SourcePath("template", self.template, "file")]


SPEC = BackendSpec(
    kind="cloudformation",
    config=CloudFormationImpl,
    operations="strataflow.backends.cloudformation.backend:CloudFormationBackend",
    description="an AWS CloudFormation stack",
)

__all__ = ["SPEC", "CloudFormationImpl"]
