"""The one place the pricing and billing clients' exceptions become one-line strataflow errors.

``aws_errors`` maps botocore's (no credentials, access denied, Cost Explorer not enabled,
throttling, an endpoint that is down), ``azure_errors`` the Azure SDK's and ``http_errors``
httpx's (the Retail Prices API). Each message says what was asked and what to do.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ServiceRequestError
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError

from strataflow.errors import BackendError, TransientError


class PricingError(BackendError):
    """Prices or costs could not be read."""


_DENIED = frozenset({"AccessDeniedException", "AccessDenied", "UnauthorizedOperation", "UnrecognizedClientException"})
_BAD_KEY = frozenset({"InvalidClientTokenId", "ExpiredToken", "ExpiredTokenException", "SignatureDoesNotMatch"})
_THROTTLED = frozenset({"ThrottlingException", "Throttling", "LimitExceededException", "TooManyRequestsException"})
_PERMISSIONS = {
    "the AWS price list": "pricing:GetProducts",
    "AWS Cost Explorer": "ce:GetCostAndUsage",
}


def _permission(what: str) -> str:
    return next((perm for prefix, perm in _PERMISSIONS.items() if what.startswith(prefix)), "the needed permission")


@contextmanager
def aws_errors(what: str) -> Iterator[None]:
    """Map botocore's exceptions while asking ``what`` (``AWS Cost Explorer``, ``the AWS price list (AmazonEC2)``)."""
    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code, message = str(error.get("Code", "")), str(error.get("Message") or "").strip()
        if code in _DENIED:
            raise PricingError(f"AWS refused {what} ({code}): grant {_permission(what)} to these credentials") from exc
        if code in _BAD_KEY:
            raise PricingError(f"AWS did not accept the credentials for {what} ({code}): {message}") from exc
        if code == "DataUnavailableException":
            raise PricingError(
                f"{what} has no data for this account: enable Cost Explorer in the Billing console "
                "(its data appears within 24 hours)"
            ) from exc
        if code in _THROTTLED:
            raise TransientError(f"{what} is throttling requests ({code}); try again in a minute") from exc
        raise PricingError(f"{what} failed ({code or 'error'}): {message or exc}") from exc
    except NoCredentialsError as exc:
        raise PricingError(f"no AWS credentials to ask {what}: configure a profile, environment or block") from exc
    except EndpointConnectionError as exc:
        raise TransientError(f"cannot reach {what}: {exc}") from exc
    except BotoCoreError as exc:
        raise PricingError(f"{what} failed: {exc}") from exc


@contextmanager
def azure_errors(what: str) -> Iterator[None]:
    """Map the Azure SDK's exceptions while asking ``what`` (``Azure Cost Management for strata-dev``)."""
    try:
        yield
    except ClientAuthenticationError as exc:
        raise PricingError(f"Azure did not accept the credentials for {what}: {_first_line(exc)}") from exc
    except HttpResponseError as exc:
        code = str(getattr(exc.error, "code", "") or f"HTTP {exc.status_code}")
        status = exc.status_code or 0
        if status in (401, 403) or "Authoriz" in code or "RBAC" in code:
            raise PricingError(
                f"Azure refused {what} ({code}): assign the Cost Management Reader role on that scope"
            ) from exc
        if status == 429 or status >= 500:
            raise TransientError(f"{what} failed ({code}); try again in a minute") from exc
        raise PricingError(f"{what} failed ({code}): {_first_line(exc)}") from exc
    except ServiceRequestError as exc:
        raise TransientError(f"cannot reach {what}: {_first_line(exc)}") from exc


@contextmanager
def http_errors(what: str) -> Iterator[None]:
    """Map httpx's exceptions (and error statuses) while asking ``what``."""
    try:
        yield
    except httpx.HTTPStatusError as exc:
        status = exc.response.status_code
        text = exc.response.text.strip().splitlines()[0][:200] if exc.response.text.strip() else ""
        if status == 429 or status >= 500:
            raise TransientError(f"{what} answered HTTP {status}; try again in a minute") from exc
        raise PricingError(f"{what} answered HTTP {status}: {text}") from exc
    except httpx.HTTPError as exc:
        raise TransientError(f"cannot reach {what}: {exc}") from exc


def _first_line(exc: Exception) -> str:
    text = str(getattr(exc, "message", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


__all__ = ["PricingError", "aws_errors", "azure_errors", "http_errors"]
