"""What CloudFormation's answers mean: stack statuses, botocore errors, templates, change sets.

``STATUS`` says what every stack status means for the next operation and ``result_of`` turns
the status an operation ended in into success or the typed error it means. ``translated`` is
the one place botocore's exceptions become strataflow's. Templates load from YAML with
short-form tags or JSON. The backend (cloudformation.py) does the calls.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from enum import Enum
from typing import Any, Literal

import yaml
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError, NoCredentialsError, ProfileNotFound
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.parsers import ResponseParserError

from strataflow.backends.base import mask
from strataflow.errors import BackendError, DeploymentFailed, ResourceBusy, TemplateError, TransientError

StackAction = Literal["create", "update", "delete"]
Json = dict[str, Any]


class Standing(Enum):
    """What a stack status means for the next operation."""

    BUSY = "an operation is in progress"
    READY = "complete and can be updated"
    REVERTED = "its last change failed and was undone; it can be updated"
    STILLBORN = "it was never created successfully; it is deleted and created again"
    GONE = "deleted"
    STUCK = "it needs a human: continue the rollback or delete it, then apply again"


STATUS: dict[str, Standing] = {
    "CREATE_IN_PROGRESS": Standing.BUSY,
    "CREATE_FAILED": Standing.STILLBORN,  # a create with rollback disabled
    "CREATE_COMPLETE": Standing.READY,
    "ROLLBACK_IN_PROGRESS": Standing.BUSY,
    "ROLLBACK_FAILED": Standing.STILLBORN,
    "ROLLBACK_COMPLETE": Standing.STILLBORN,
    "DELETE_IN_PROGRESS": Standing.BUSY,
    "DELETE_FAILED": Standing.STUCK,
    "DELETE_COMPLETE": Standing.GONE,
    "UPDATE_IN_PROGRESS": Standing.BUSY,
    "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS": Standing.BUSY,
    "UPDATE_COMPLETE": Standing.READY,
    "UPDATE_FAILED": Standing.REVERTED,  # an update with rollback disabled: may be updated again
    "UPDATE_ROLLBACK_IN_PROGRESS": Standing.BUSY,
    "UPDATE_ROLLBACK_FAILED": Standing.STUCK,
    "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS": Standing.BUSY,
    "UPDATE_ROLLBACK_COMPLETE": Standing.REVERTED,
    "REVIEW_IN_PROGRESS": Standing.STILLBORN,  # the empty stack a CREATE change set makes
    "IMPORT_IN_PROGRESS": Standing.BUSY,
    "IMPORT_COMPLETE": Standing.READY,
    "IMPORT_ROLLBACK_IN_PROGRESS": Standing.BUSY,
    "IMPORT_ROLLBACK_FAILED": Standing.STUCK,
    "IMPORT_ROLLBACK_COMPLETE": Standing.REVERTED,
}
SUCCEEDED: dict[StackAction, str] = {
    "create": "CREATE_COMPLETE",
    "update": "UPDATE_COMPLETE",
    "delete": "DELETE_COMPLETE",
}


def standing(status: str | None) -> Standing:
    """What ``status`` means (``None``: no stack); a status newer than the table is judged by its suffix."""
    if status is None:
        return Standing.GONE
    return STATUS.get(status) or (Standing.BUSY if status.endswith("_IN_PROGRESS") else Standing.STUCK)


def result_of(action: StackAction, status: str, reason: str = "", **context: Any) -> None:
    """Return if ``action`` ended well in ``status``; raise the typed error it means otherwise."""
    if standing(status) is Standing.BUSY:
        raise ResourceBusy(f"stack {context.get('stack', '')} is still {status}", status=status, **context)
    if status != SUCCEEDED[action]:
        why = f": {reason}" if reason else ""
        raise DeploymentFailed(f"{action} of stack {context.get('stack', '')} ended {status}{why}", **context)


# --- errors ---------------------------------------------------------------------------


class Missing(BackendError):
    """The stack, or an import of an export, does not exist."""


class NoChanges(BackendError):
    """CloudFormation has nothing to do."""


class Unsupported(BackendError):
    """The endpoint does not implement the operation (an emulator)."""


_THROTTLED = ("Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException", "SlowDown")
_UNAVAILABLE = ("ServiceUnavailable", "InternalFailure", "InternalError", "RequestTimeout", "RequestTimeoutException")
TRANSIENT_CODES = frozenset((*_THROTTLED, *_UNAVAILABLE, "RequestThrottled"))
_DENIED = ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthFailure", "InvalidAccessKeyId")
_BAD_KEY = ("InvalidClientTokenId", "ExpiredToken", "ExpiredTokenException", "SignatureDoesNotMatch")
ACCESS_CODES = frozenset((*_DENIED, *_BAD_KEY, "UnrecognizedClientException"))
_UNSUPPORTED_CODES = frozenset(("NotImplemented", "InvalidAction", "UnknownOperationException"))
_CFN_CODES = ("ValidationError", "AlreadyExistsException", "LimitExceededException", "TokenAlreadyExistsException")
_CLOUDFORMATION_CODES = frozenset((*_CFN_CODES, "InsufficientCapabilitiesException", "InvalidOperationException"))
_DEPLOY_OPERATIONS = frozenset(("CreateStack", "UpdateStack", "ExecuteChangeSet", "DeleteStack"))


def says_no_changes(message: str) -> bool:
    """CloudFormation's only way of saying 'nothing to do' (UpdateStack, CreateChangeSet)."""
    return "No updates are to be performed" in message or "didn't contain changes" in message


@contextmanager
def translated(
    operation: str, *, subject: str, secrets: frozenset[str] = frozenset(), emulator: bool = False, **context: Any
) -> Iterator[None]:
    """Map botocore's exceptions for ``operation`` on ``subject`` to strataflow's: the only place that does."""
    try:
        yield
    except ClientError as exc:
        raise _from_client_error(operation, subject, exc, secrets, context) from exc
    except NotImplementedError as exc:  # moto in-process: an action it lacks
        raise Unsupported(f"{operation} is not implemented by this endpoint", **context) from exc
    except ResponseParserError as exc:  # moto's server answers an HTML 500 when it fails
        if emulator and operation in _DEPLOY_OPERATIONS:
            raise DeploymentFailed(f"{subject}: {operation} failed inside the endpoint (HTTP 500)", **context) from exc
        if emulator:
            raise Unsupported(f"{operation}: the endpoint's answer is not CloudFormation's", **context) from exc
        raise TransientError(f"{subject}: {operation}: unreadable response from AWS", **context) from exc
    except (BotoConnectionError, HTTPClientError) as exc:
        raise TransientError(f"{subject}: {operation}: {mask(str(exc), secrets)}", **context) from exc
    except (NoCredentialsError, ProfileNotFound) as exc:
        raise BackendError(f"{subject}: no usable AWS credentials ({exc})", **context) from exc
    except BotoCoreError as exc:
        raise BackendError(f"{subject}: {operation}: {mask(str(exc), secrets)}", **context) from exc


def _from_client_error(
    operation: str, subject: str, exc: ClientError, secrets: frozenset[str], context: Json
) -> BackendError:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    message = mask(str(error.get("Message") or code), secrets)
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    text = f"{subject}: {message}"
    if code in _UNSUPPORTED_CODES or status == 501:
        return Unsupported(text, **context)
    if code in TRANSIENT_CODES or status >= 500:
        return TransientError(f"{subject}: {operation}: {code}: {message}", **context)
    if code in ACCESS_CODES:
        return BackendError(f"{subject}: AWS refused {operation} ({code}): {message}", **context)
    if code == "ValidationError" and says_no_changes(message):
        return NoChanges(text, **context)
    if operation == "ValidateTemplate" or code == "InsufficientCapabilitiesException":
        return TemplateError(text, **context)
    if code == "ValidationError" and (operation == "ListImports" or "does not exist" in message):
        return Missing(text, **context)
    if code == "ValidationError" and re.search(r"IN_PROGRESS state|state and can ?not be", message):
        return ResourceBusy(text, **context)
    if code == "ValidationError":
        return TemplateError(text, **context)
    if operation in _DEPLOY_OPERATIONS and code not in _CLOUDFORMATION_CODES:
        return DeploymentFailed(f"{subject}: {code}: {message}", **context)  # a resource failed synchronously
    return BackendError(f"{subject}: {operation} failed ({code}): {message}", **context)


# --- templates ------------------------------------------------------------------------


_UNPREFIXED = frozenset(("Ref", "Condition"))
"""The short forms whose long form has no ``Fn::`` prefix."""


class _TemplateLoader(yaml.SafeLoader):
    """CloudFormation YAML: any short-form ``!Tag value`` loads as ``{"Fn::Tag": value}`` (``!Ref``: ``Ref``,
    ``!Condition``: ``Condition``, as their long forms are spelt)."""


def _short_form(loader: _TemplateLoader, suffix: str, node: yaml.Node) -> Json:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {suffix if suffix in _UNPREFIXED else f"Fn::{suffix}": value}


_TemplateLoader.add_multi_constructor("!", _short_form)


def load_template(text: str) -> Json:
    """A template (YAML with short-form tags, or JSON) as a mapping; TemplateError when it is not one."""
    try:
        data = yaml.load(text, Loader=_TemplateLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise TemplateError(f"template is not YAML or JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise TemplateError("a template must be a mapping with Resources")
    return data


def template_imports(value: Any) -> Iterator[Any]:
    """Every value of an ``Fn::ImportValue`` inside a template."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        if key == "Fn::ImportValue":
            yield item
        yield from template_imports(item)


def substitute(text: str, values: Mapping[str, str]) -> str:
    """``text`` with each ``${Name}`` of an Fn::Sub replaced from ``values`` (unknown names stay)."""
    return re.sub(r"\$\{([^}!]+)\}", lambda m: values.get(m.group(1), m.group(0)), text)


def for_emulator(value: Any, region: str) -> Any:
    """The parsed template as an emulator evaluates it right: ``Fn::GetAZs`` of the stack's region given literally
    (moto reads ``{"Fn::GetAZs": {"Ref": "AWS::Region"}}`` as the text of the mapping)."""
    if isinstance(value, list):
        return [for_emulator(item, region) for item in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Fn::GetAZs"} and value["Fn::GetAZs"] in ("", {"Ref": "AWS::Region"}):
        return {"Fn::GetAZs": region}
    return {key: for_emulator(item, region) for key, item in value.items()}


def import_name(name: Any, values: Mapping[str, str]) -> Any:
    """The export name an ``Fn::ImportValue`` operand evaluates to: text, ``Fn::Sub``, ``Fn::Join``, ``Ref``."""
    if isinstance(name, str):
        return name
    if not isinstance(name, dict) or len(name) != 1:
        return None
    (function, operand), = name.items()
    if function == "Ref":
        return values.get(str(operand))
    if function == "Fn::Sub":
        text = operand[0] if isinstance(operand, list) and operand else operand
        extra = operand[1] if isinstance(operand, list) and len(operand) > 1 and isinstance(operand[1], dict) else {}
        resolved = {**values, **{k: import_name(v, values) for k, v in extra.items()}}
        return substitute(str(text), {k: str(v) for k, v in resolved.items() if v is not None})
    if function == "Fn::Join" and isinstance(operand, list) and len(operand) == 2 and isinstance(operand[1], list):
        parts = [import_name(part, values) for part in operand[1]]
        return None if any(p is None for p in parts) else str(operand[0]).join(str(p) for p in parts)
    return None


def change_line(change: Mapping[str, Any]) -> str:
    resource = change.get("ResourceChange", {})
    action = str(resource.get("Action", "Modify"))
    sign = {"Add": "+", "Remove": "-", "Import": "<"}.get(action, "~")
    line = f"{sign} {action} {resource.get('LogicalResourceId')} ({resource.get('ResourceType')})"
    replacement = resource.get("Replacement") if action == "Modify" else None
    return f"{line} replacement: {replacement}" if replacement else line


def stack_outputs(stack: Mapping[str, Any] | None) -> Json:
    return {o["OutputKey"]: o.get("OutputValue") for o in (stack or {}).get("Outputs", [])}


__all__ = [
    "ACCESS_CODES",
    "STATUS",
    "SUCCEEDED",
    "TRANSIENT_CODES",
    "Json",
    "Missing",
    "NoChanges",
    "StackAction",
    "Standing",
    "Unsupported",
    "change_line",
    "load_template",
    "result_of",
    "says_no_changes",
    "stack_outputs",
    "standing",
    "substitute",
    "template_imports",
    "translated",
]
