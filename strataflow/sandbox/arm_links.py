"""Linked templates (``templateLink``, ``parametersLink``) for the sandbox emulator.

The sandbox has no network beyond this machine, so it follows a link only to a loopback
host (``127.0.0.1``, ``localhost``, ``[::1]``): serve the templates' folder locally (e.g.
``python -m http.server -b 127.0.0.1``) and pass its URL as ``_artifactsLocation``. Any
other host, and template specs (``templateLink.id``), are refused with
``SandboxUnsupported``. ``relativePath`` resolves against the parent deployment's link.
"""

from __future__ import annotations

import ssl
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from strataflow.sandbox.arm_json import loads_lenient
from strataflow.sandbox.arm_templates import InvalidTemplate

_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
_TIMEOUT = 10.0
MAX_BYTES = 4 * 1024 * 1024


def link_uri(link: dict[str, Any], parent_uri: str | None) -> str:
    """The absolute URI a ``templateLink`` points at (``uri``, or ``relativePath`` on the parent's)."""
    if link.get("id"):
        raise InvalidTemplate(
            "A template spec link (templateLink.id) is not supported by the strataflow sandbox.", "SandboxUnsupported"
        )
    if link.get("uri"):
        return str(link["uri"])
    if link.get("relativePath"):
        if not parent_uri:
            raise InvalidTemplate(
                "The 'relativePath' of a templateLink can only be used when the parent deployment is itself "
                "deployed from a templateLink."
            )
        return urllib.parse.urljoin(parent_uri, str(link["relativePath"]))
    raise InvalidTemplate("The templateLink must have a 'uri', a 'relativePath' or an 'id'.")


def fetch_json(uri: str) -> Any:
    """The JSON document at a loopback ``http(s)`` URI (lenient JSON, as ARM reads templates)."""
    parsed = urllib.parse.urlsplit(uri)
    host = (parsed.hostname or "").lower()
    if parsed.scheme not in ("http", "https") or host not in _LOOPBACK:
        raise InvalidTemplate(
            f"A templateLink to a host outside this machine ('{parsed.scheme}://{parsed.netloc}') is not "
            "supported by the strataflow sandbox; serve linked templates on 127.0.0.1 instead.",
            "SandboxUnsupported",
        )
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # loopback only: the sandbox serves itself
    try:
        with urllib.request.urlopen(uri, timeout=_TIMEOUT, context=context) as answer:  # noqa: S310 - loopback http(s) only
            data = answer.read(MAX_BYTES + 1)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise InvalidTemplate(f"Unable to download the linked template '{uri}': {exc}.", "InvalidContentLink") from exc
    if len(data) > MAX_BYTES:
        raise InvalidTemplate(f"The linked template '{uri}' is larger than 4 MB.", "InvalidContentLink")
    try:
        return loads_lenient(data)
    except ValueError as exc:
        raise InvalidTemplate(f"The linked template '{uri}' is not valid JSON: {exc}.", "InvalidContentLink") from exc
