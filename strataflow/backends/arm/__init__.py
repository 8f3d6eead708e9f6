"""Azure Resource Manager components: an ARM (or Bicep) template deployed into a resource group.

This module is the backend's spec (pure); ``backend.py`` holds the azure-mgmt-resource
operations and ``support.py`` the clients, error mapping and template helpers.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field

from strataflow.backends.registry import BackendSpec, Implementation, SourcePath

if TYPE_CHECKING:
    from strataflow.templateparams.model import TemplateParameters


class ArmImpl(Implementation):
    backend: Literal["arm"]
    template: str = Field(description="ARM JSON (or Bicep) template, relative to the config directory.")
    resource_group: str | None = Field(default=None, description="A group this component owns.")
    deployment_name: str | None = None

    name_fields: ClassVar[dict[str, str]] = {"deployment_name": "deployment", "resource_group": "resource group"}

    def template_parameters(self, root: Path) -> TemplateParameters:
        from strataflow.templateparams import cache

        return cache.read("arm", root / self.template)

    def source_paths(self) -> list[SourcePath]:
        return [SourcePath("template", self.template, "file")]


SPEC = BackendSpec(
    kind="arm",
    config=ArmImpl,
    operations="strataflow.backends.arm.backend:ArmBackend",
    description="an Azure Resource Manager deployment",
)

__all__ = ["SPEC", "ArmImpl"]
