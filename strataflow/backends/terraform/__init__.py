"""Terraform (or OpenTofu) components: a module applied with its own working copy and state.

This module is the backend's spec (pure): the implementation model, which files of the
module directory make up its source, and the per-environment ``terraform:`` settings.
``backend.py`` drives the CLI.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from strataflow.backends.registry import BackendSpec, Implementation, SourcePath

if TYPE_CHECKING:
    from strataflow.templateparams.model import TemplateParameters

GENERATED_FILES = re.compile(r"^(terraform\.tfstate.*|\.terraform\.tfstate\.lock\.info|.*\.tfplan|strata\..*|\.strata-.*)$")
"""Files in a module directory that are terraform's working files or strataflow's, never the source."""


class TerraformImpl(Implementation):
    backend: Literal["terraform"]
    module: str = Field(description="Module directory, relative to the config directory.")

    def template_parameters(self, root: Path) -> TemplateParameters:
        from strataflow.templateparams import cache

        return cache.read("terraform", root / self.module)

    def source_paths(self) -> list[SourcePath]:
        return [SourcePath("module", self.module, "dir")]

    skip_dirs: ClassVar[frozenset[str]] = frozenset({".terraform", ".git", "terraform.tfstate.d"})

    def _skipped(self, name: str) -> bool:
        return bool(GENERATED_FILES.match(name))


class TerraformSettings(BaseModel):
    """An environment's ``terraform:`` section."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    binary: Literal["terraform", "tofu"] = Field(default="terraform", description="The CLI to run.")
    backend_config: dict[str, Any] = Field(
        default_factory=dict, description="Backend configuration (an S3 or azurerm backend for shared state)."
    )


SPEC = BackendSpec(
    kind="terraform",
    config=TerraformImpl,
    operations="strataflow.backends.terraform.backend:TerraformBackend",
    settings=TerraformSettings,
    description="a Terraform or OpenTofu module",
)

__all__ = ["GENERATED_FILES", "SPEC", "TerraformImpl", "TerraformSettings"]
