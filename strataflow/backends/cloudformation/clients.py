"""boto3 clients for CloudFormation components, cached and shared by the threads of one process.

A client is made per service, region, profile, endpoint, access key and deploy role; with a
deploy role (``role_arn``) it acts as that role, assumed again before its credentials expire.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

import boto3
from botocore.config import Config

from strataflow.backends.cloudformation.support import translated
from strataflow.config import AwsTarget

CONFIG = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=10, read_timeout=60)

cache_lock = threading.Lock()
_clients: dict[tuple[str, ...], tuple[Any, float]] = {}
"""Clients by (service, region, profile, endpoint, key id, role), with their credentials' expiry."""
verified_accounts: set[tuple[str, ...]] = set()
validated_templates: set[str] = set()


def secret_text(value: Any) -> str | None:
    """The text of a credential given as a pydantic SecretStr or a plain string."""
    getter = getattr(value, "get_secret_value", None)
    text = getter() if callable(getter) else value
    return str(text) if text else None


def client_key(target: AwsTarget, credentials: Mapping[str, Any]) -> tuple[str, ...]:
    key_id = secret_text(credentials.get("aws_access_key_id")) or ""
    return (target.region, target.profile or "", target.endpoint_url or "", key_id, target.role_arn or "")


def client(service: str, target: AwsTarget, credentials: Mapping[str, Any]) -> Any:
    """A cached boto3 client for ``target``. ``credentials`` may hold aws_access_key_id,
    aws_secret_access_key and aws_session_token (SecretStr or text); empty: the default chain.
    With ``target.role_arn`` the client acts as that role (assumed, and re-assumed before expiry)."""
    key = (service, *client_key(target, credentials))
    with cache_lock:
        cached = _clients.get(key)
        if cached is None or (target.role_arn and cached[1] < time.time() + 300):
            session, expires = _session(target, credentials)
            cached = (session.client(service, endpoint_url=target.endpoint_url, config=CONFIG), expires)
            _clients[key] = cached
        return cached[0]


def _session(target: AwsTarget, credentials: Mapping[str, Any]) -> tuple[Any, float]:
    """A boto3 session for ``target``, and when its credentials expire (inf for long-lived ones)."""
    base = boto3.session.Session(
        aws_access_key_id=secret_text(credentials.get("aws_access_key_id")),
        aws_secret_access_key=secret_text(credentials.get("aws_secret_access_key")),
        aws_session_token=secret_text(credentials.get("aws_session_token")),
        profile_name=target.profile,
        region_name=target.region,
    )
    if not target.role_arn:
        return base, float("inf")
    sts = base.client("sts", endpoint_url=target.endpoint_url, config=CONFIG)
    with translated(
        "assume the deploy role", subject=target.role_arn, secrets=frozenset(), emulator=bool(target.endpoint_url)
    ):
        assumed = sts.assume_role(RoleArn=target.role_arn, RoleSessionName="strataflow")["Credentials"]
    session = boto3.session.Session(
        aws_access_key_id=assumed["AccessKeyId"],
        aws_secret_access_key=assumed["SecretAccessKey"],
        aws_session_token=assumed["SessionToken"],
        region_name=target.region,
    )
    return session, assumed["Expiration"].timestamp()


def clear_caches(*, validated: bool = True) -> None:
    """Forget cached clients, verified accounts and (unless told not to) validated templates."""
    with cache_lock:
        _clients.clear()
        verified_accounts.clear()
        if validated:
            validated_templates.clear()


__all__ = ["CONFIG", "cache_lock", "clear_caches", "client", "client_key", "secret_text", "validated_templates", "verified_accounts"]
