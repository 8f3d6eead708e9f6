"""What a template or module declares as its parameters, and given parameters checked against that.

Pure: no cloud SDK, no subprocess, no Prefect. The API::

    read_cloudformation(path) -> TemplateParameters   # YAML (short-form tags) or JSON
    read_arm(path) -> TemplateParameters              # ARM JSON (comments, trailing commas) or .bicep
    read_terraform(module_dir) -> TemplateParameters  # variable blocks of *.tf / *.tf.json
    read(backend, path) -> TemplateParameters         # one of the above by backend name
    check(declared, given, *, backend=None, root=None, unknown=None) -> list[Issue]
    secure_names(declared) -> frozenset[str]
    cache.read(backend, path) -> TemplateParameters   # read() once per content, kept on disk too

``TemplateParameters`` holds the ``Declared`` parameters in declaration order; an
unreadable template raises ``TemplateParamsError`` (``.file``, ``.line``, ``.column``).
``Issue.kind`` is one of unknown, missing, not_allowed, pattern, length, range, type.
"""

from __future__ import annotations

from pathlib import Path

from strataflow.templateparams.arm import read_arm
from strataflow.templateparams.check import check, has_reference
from strataflow.templateparams.cloudformation import read_cloudformation
from strataflow.templateparams.model import (
    BACKENDS,
    Backend,
    Declared,
    Issue,
    IssueKind,
    ParamType,
    TemplateParameters,
    TemplateParamsError,
    secure_names,
)
from strataflow.templateparams.terraform import read_terraform

__all__ = [
    "BACKENDS",
    "Backend",
    "Declared",
    "Issue",
    "IssueKind",
    "ParamType",
    "TemplateParameters",
    "TemplateParamsError",
    "check",
    "has_reference",
    "read",
    "read_arm",
    "read_cloudformation",
    "read_terraform",
    "secure_names",
]


def read(backend: str, path: Path | str) -> TemplateParameters:
    """The parameters declared by ``path`` for ``backend`` (cloudformation, arm or terraform)."""
    if backend == "cloudformation":
        return read_cloudformation(path)
    if backend == "arm":
        return read_arm(path)
    if backend == "terraform":
        return read_terraform(path)
    raise ValueError(f"no template parameters for backend '{backend}'; use one of {', '.join(BACKENDS)}")
