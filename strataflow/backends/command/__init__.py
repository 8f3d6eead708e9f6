"""Command components: plain commands (helm, kubectl, scripts) run with ``sh -c``.

This module is the backend's spec (pure); ``backend.py`` runs the commands. A command
component's source is what it names in ``inputs:`` (files or directories in the config
directory) plus every file or directory inside the config directory that its commands name
(``./scripts/smoke.sh``, ``charts/app``): a change to any of them changes its digest and is
part of its release.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

from strataflow.backends.registry import BackendSpec, Implementation, SourcePath

_REFERENCE = re.compile(r"\$\{[^{}]*\}")


class CommandImpl(Implementation):
    backend: Literal["command"]
    apply: str
    plan: str | None = None
    destroy: str | None = None
    outputs: Literal["json"] | None = None
    sensitive_outputs: list[str] = Field(
        default_factory=list,
        description="Output keys whose values are masked in reports, records, status and logs (downstream gets them).",
    )
    inputs: list[str] = Field(
        default_factory=list,
        description="Files or directories in the config directory the commands use (part of the component's release).",
    )

    script_fields: ClassVar[tuple[str, ...]] = ("apply", "plan", "destroy")

    def source_paths(self) -> list[SourcePath]:
        return [SourcePath(f"inputs[{i}]", path, "any") for i, path in enumerate(self.inputs)]

    def source_files(self, root: Path) -> list[Path]:
        """The ``inputs:`` and every file inside ``root`` that the commands run."""
        return sorted({*super().source_files(root), *(root / relative for relative in self.invoked(root))})

    def invoked(self, root: Path) -> list[str]:
        """Paths (relative to ``root``) of existing files inside it that the commands run.

        A file is run when it stands where a command does (``./scripts/smoke.sh ...``,
        ``cd x && bin/tool``) or is the script an interpreter is given (``sh x.sh``,
        ``python3 tools/check.py``, ``. ./lib.sh``); files the commands only read or write
        belong in ``inputs:``.
        """
        base = root.resolve()
        named: set[str] = set()
        for command in (self.apply, self.plan, self.destroy):
            for word in _run_words(command or ""):
                if _REFERENCE.search(word):
                    continue
                candidate = (root / word).resolve()
                if base in candidate.parents and candidate.is_file():
                    named.add(candidate.relative_to(base).as_posix())
        return sorted(named)


_INTERPRETERS = frozenset(
    {"sh", "bash", "dash", "zsh", "python", "python3", "node", "ruby", "perl", ".", "source", "exec", "env", "nohup"}
)
"""Programs whose first argument that is not an option is the program (or script) they run."""
_SEPARATORS = frozenset(
    {";", "&&", "||", "|", "&", "(", ")", "{", "}", "if", "then", "elif", "else", "while", "until", "do", "!", "time"}
)
"""Words after which a command starts."""
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


def _run_words(command: str) -> list[str]:
    """The words of a command that name programs it runs: command positions and interpreters' scripts."""
    words = _words(command)
    found: list[str] = []
    expect_command = True
    after_interpreter = False
    for word in words:
        if word in _SEPARATORS:
            expect_command, after_interpreter = True, False
            continue
        if expect_command and _ASSIGNMENT.match(word):
            continue
        if after_interpreter and not word.startswith("-") and not _ASSIGNMENT.match(word):
            found.append(word)
            after_interpreter = Path(word).name in _INTERPRETERS
            continue
        if expect_command:
            found.append(word)
            after_interpreter = Path(word).name in _INTERPRETERS
            expect_command = False
    return found


def _words(command: str) -> list[str]:
    """The words of a command, as the shell would split them (best effort: an unbalanced quote splits on spaces)."""
    try:
        lexer = shlex.shlex(command.replace("\n", " ; "), posix=True, punctuation_chars=";&|()")
        lexer.whitespace_split = True
        return list(lexer)
    except ValueError:
        return command.split()


SPEC = BackendSpec(
    kind="command",
    config=CommandImpl,
    operations="strataflow.backends.command.backend:CommandBackend",
    description="shell commands",
)

__all__ = ["SPEC", "CommandImpl"]
