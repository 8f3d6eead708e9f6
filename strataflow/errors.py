"""The exception tree of strataflow.

Every error strataflow raises on purpose is a ``StrataError``; each carries keyword
context (``env=``, ``component=``, ...) and knows the command-line exit code it maps to::

    StrataError                       exit 1
    ├── ConfigError                   exit 2  one or more Problems (file, line, message)
    │   └── CycleError                exit 2  a dependency cycle, printed as its path
    ├── UsageError                    exit 2  bad command-line input (unknown environment, bad --select, ...)
    ├── BackendError                  exit 1  a component could not be deployed
    │   ├── TemplateError             exit 1  the template or module is invalid (never retried)
    │   ├── DeploymentFailed          exit 1  the cloud rolled the deployment back / it failed
    │   ├── TransientError            exit 1  throttling, 5xx, timeouts (retried with backoff)
    │   ├── AccountMismatch           exit 1  credentials reach another account/subscription
    │   ├── ResourceBusy              exit 1  another actor is changing the object (lock held)
    │   └── CommandTimeout            exit 1  the component ran past its timeout
    ├── MissingOutput                 exit 1  an upstream has no output of the name a component uses
    ├── StateError                    exit 1  the run history cannot answer
    │   └── NeverApplied              exit 2  an upstream's outputs were never recorded (--select +NAME)
    ├── ServerError                   exit 1  the local Prefect server or a sandbox could not be started
    ├── LockedError                   exit 4  another run holds the environment
    │   └── LockLost                  exit 4  the run could not prove it still held it: it started nothing more
    ├── ApprovalRejected              exit 3  a promotion was rejected
    │   └── ApprovalTimeout           exit 3  ... or nobody decided in time
    ├── GateRefused                   exit 5  a promotion gate refused
    ├── DriftFound                    exit 6  `strata drift` found drift (like terraform plan -detailed-exitcode)
    └── Cancelled                     exit 130  the run was interrupted (Ctrl-C; 143 after SIGTERM): see cancel.py

Backends may raise private subclasses of BackendError as signals inside their own module
(the CloudFormation backend's ``NoChanges``, say); none of them leaves the backend.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar


class StrataError(Exception):
    """Base of every error strataflow raises on purpose."""

    exit_code: ClassVar[int] = 1

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message)
        self.message = message
        self.context = {k: v for k, v in context.items() if v is not None}

    def __str__(self) -> str:
        return self.message

    def lines(self) -> list[str]:
        """The lines the command line prints for this error."""
        return [f"error: {self.message}"]


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with the configuration, located as precisely as known."""

    file: str
    line: int | None
    column: int | None
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {self.message}"


class ConfigError(StrataError):
    """The configuration (or a command's reference to it) is invalid."""

    exit_code = 2

    def __init__(self, problems: list[Problem] | Problem | str, **context: Any) -> None:
        if isinstance(problems, str):
            problems = [Problem("config", None, None, problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems = sorted(set(problems), key=lambda p: (p.file, p.line or 0, p.message))
        super().__init__("; ".join(str(p) for p in self.problems), **context)

    def lines(self) -> list[str]:
        return [f"error: {p}" for p in self.problems]


class CycleError(ConfigError):
    """The components' dependencies form a cycle."""


class UsageError(StrataError):
    """The command line was used wrongly (unknown environment, bad --select, ...)."""

    exit_code = 2


class BackendError(StrataError):
    """A component could not be planned, applied, destroyed or inspected."""

    retryable: ClassVar[bool] = False


class TemplateError(BackendError):
    """The template, module or command definition is invalid; retrying cannot help."""


class DeploymentFailed(BackendError):
    """The cloud accepted the deployment, then it failed (and usually rolled back)."""


class TransientError(BackendError):
    """Throttling, a 5xx or a dropped connection: worth retrying with backoff."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **context: Any) -> None:
        super().__init__(message, **context)
        self.retry_after = retry_after


class AccountMismatch(BackendError):
    """The credentials reach a different account or subscription than the environment's."""


class ResourceBusy(BackendError):
    """Another actor is changing the object (a stack in progress, a held state lock)."""


class CommandTimeout(BackendError):
    """The component ran longer than its timeout and was stopped."""


class StateError(StrataError):
    """The run history could not be read or written."""


class NeverApplied(StateError):
    """A component needs outputs of an upstream that was never applied in this environment."""

    exit_code = 2


class MissingOutput(StrataError):
    """An upstream's output a component needs is not (yet) known."""


class ServerError(StrataError):
    """The local Prefect server or a sandbox could not be started."""


class LockedError(StrataError):
    """Another run holds the environment's lock."""

    exit_code = 4


class LockLost(LockedError):
    """The run can no longer prove it holds its environment's lock: it starts nothing more."""


class ApprovalRejected(StrataError):
    """The promotion was rejected by an approver."""

    exit_code = 3


class ApprovalTimeout(ApprovalRejected):
    """Nobody approved the promotion before the environment's approval timeout."""


class GateRefused(StrataError):
    """A promotion gate refused: the promotion stops before approval and deployment."""

    exit_code = 5


class DriftFound(StrataError):
    """``strata drift`` found what is deployed differing from what was applied (exit 6, as ``plan -detailed-exitcode``)."""

    exit_code = 6


class Cancelled(StrataError):
    """The run was cancelled (Ctrl-C, SIGTERM): the work stopped where it was, and the message says where.

    Not a BackendError: nothing retries it or turns it into a component failure; a component
    that raises it is recorded ``cancelled`` (strataflow/cancel.py).
    """

    exit_code = 130
