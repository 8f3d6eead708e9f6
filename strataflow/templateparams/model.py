"""What a template declares (``Declared``, ``TemplateParameters``), what is wrong with given values (``Issue``).

Pure data: no I/O here. Paths are kept as the caller gave them, so messages name files the
way the caller does (``check(..., root=...)`` can shorten them further).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Backend = Literal["cloudformation", "arm", "terraform"]
BACKENDS: tuple[Backend, ...] = ("cloudformation", "arm", "terraform")

ParamType = Literal["string", "number", "int", "bool", "list", "object", "secure-string", "secure-object", "any"]
IssueKind = Literal["unknown", "missing", "not_allowed", "pattern", "length", "range", "type"]


class TemplateParamsError(Exception):
    """A template or module that cannot be read: missing, not text, a syntax error, a malformed declaration."""

    def __init__(self, message: str, file: Path | str, line: int | None = None, column: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.file = Path(file)
        self.line = line
        self.column = column

    def __str__(self) -> str:
        where = str(self.file)
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class Declared:
    """One parameter (CloudFormation, ARM, Bicep) or input variable (Terraform) as its template declares it.

    ``type`` is normalized across backends; ``raw_type`` is the template's own spelling
    (``List<AWS::EC2::Subnet::Id>``, ``secureString``, ``map(object({...}))``, ``'a' | 'b'``).
    ``required`` means no default (and, for ARM/Bicep, not nullable). ``default`` is the
    literal default, or the expression's source text when the default is an expression
    (``[resourceGroup().location]``, ``resourceGroup().location``); CloudFormation defaults
    are kept as the template's text (``"5"``, ``"true"``), as CloudFormation itself sees them.
    ``line``/``column`` (1-based) locate the parameter's name in ``file``.
    """

    name: str
    type: ParamType
    raw_type: str
    required: bool
    file: Path
    line: int | None = None
    column: int | None = None
    default: Any = field(default=None, hash=False)
    allowed: tuple[Any, ...] | None = field(default=None, hash=False)
    pattern: str | None = None
    min_length: int | None = None
    max_length: int | None = None
    min_value: float | None = None
    max_value: float | None = None
    secure: bool = False
    nullable: bool = False
    validations: int = 0
    description: str | None = None
    constraint_description: str | None = None

    @property
    def where(self) -> str:
        """``file:line`` of the declaration (just the file when the line is unknown)."""
        return f"{self.file}:{self.line}" if self.line is not None else str(self.file)


@dataclass(frozen=True)
class TemplateParameters:
    """Every parameter one template (or Terraform module directory) declares, in declaration order."""

    backend: Backend
    source: Path
    parameters: tuple[Declared, ...]
    files: tuple[Path, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.parameters)

    @property
    def case_insensitive(self) -> bool:
        """ARM matches parameter names regardless of case; CloudFormation and Terraform do not."""
        return self.backend == "arm"

    def get(self, name: str) -> Declared | None:
        """The declaration ``name`` refers to (ignoring case for ARM), or None."""
        for declared in self.parameters:
            if declared.name == name:
                return declared
        if self.case_insensitive:
            folded = name.casefold()
            for declared in self.parameters:
                if declared.name.casefold() == folded:
                    return declared
        return None


@dataclass(frozen=True)
class Issue:
    """One thing wrong with the given parameters.

    ``message`` is one line saying what is wrong and what to do; it never contains the value
    of a secure parameter. ``file``/``line``/``column`` locate the *declaration* in the
    template (None for an unknown name, which has none).
    """

    kind: IssueKind
    parameter: str
    message: str
    file: Path | None = None
    line: int | None = None
    column: int | None = None


def secure_names(declared: TemplateParameters) -> frozenset[str]:
    """The parameter names the template declares secure (CFN NoEcho, ARM secure types, Bicep @secure(), TF sensitive)."""
    return frozenset(d.name for d in declared.parameters if d.secure)
