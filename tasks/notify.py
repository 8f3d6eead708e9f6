"""Notifications through Prefect's notification blocks: ``notify(environment, event)``, the one call the flows make.

Each block the environment names (``notify: [ops-slack, oncall-teams]``) gets one message per
event: ``SlackWebhook``, ``MicrosoftTeamsWebhook``, ``CustomWebhookNotificationBlock`` or any
other block with Prefect's ``notify`` capability. A name is a block's name (``ops-slack``,
found among the notification blocks) or ``<block-type-slug>/<name>``. The same event (its
kind and run) is sent once per process however often the flow reports it. Nothing here
raises: a missing, misconfigured or unreachable block is logged (on the run's log inside a
run) and the run goes on.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from strataflow import notifications
from strataflow.config import Environment
from strataflow.notifications import Event

_sent: set[str] = set()
_lock = threading.Lock()


def _logger() -> Any:
    """The run's logger inside a flow or task run (the message shows on the run), else strataflow's."""
    from prefect.context import FlowRunContext, TaskRunContext
    from prefect.logging import get_run_logger

    if FlowRunContext.get() is not None or TaskRunContext.get() is not None:
        return get_run_logger()
    return logging.getLogger("strataflow.notify")


def notify(environment: Environment, event: Event) -> None:
    """Tell every notification block ``environment`` names about ``event``, once per event; never raises."""
    try:
        names = list(getattr(environment, "notify", []) or [])
        if not names or not notifications.wanted(event):
            return
        seen = notifications.key(event)
        with _lock:
            if seen in _sent:
                return
            _sent.add(seen)
        if event.url is None and event.flow_run_id:
            from strataflow import state

            event = event.model_copy(update={"url": state.flow_run_url(event.flow_run_id)})
        message = notifications.message(event)
    except Exception as exc:  # noqa: BLE001 - a notification never fails the run
        _logger().error("could not prepare the %s notification: %s: %s", event.event, type(exc).__name__, exc)
        return
    for name in names:
        send(name, message.subject, message.body)


def send(name: str, subject: str, body: str) -> bool:
    """Send one message through the notification block ``name``; False (and logged) when it could not."""
    try:
        block = load_block(name)
        with block.raise_on_failure():
            block.notify(body, subject)
    except Exception as exc:  # noqa: BLE001 - a broken block is logged, never raised
        _logger().error("could not notify through block %r: %s: %s", name, type(exc).__name__, exc)
        return False
    return True


def load_block(name: str) -> Any:
    """The notification block named ``name`` (``<block-type-slug>/<name>`` or just its name)."""
    from prefect.blocks.abstract import NotificationBlock
    from prefect.blocks.core import Block

    block = Block.load(name if "/" in name else f"{_block_type(name)}/{name}")
    if not isinstance(block, NotificationBlock):
        raise TypeError(f"block {name!r} is a {type(block).__name__}, which cannot send notifications")
    return block


def _block_type(name: str) -> str:
    """The type slug of the one notification block named ``name`` (one API call)."""
    from prefect.client.orchestration import get_client

    query = {
        "block_documents": {"name": {"any_": [name]}, "is_anonymous": {"eq_": False}},
        "block_schemas": {"block_capabilities": {"all_": ["notify"]}},
        "include_secrets": False,
        "limit": 10,
    }
    with get_client(sync_client=True) as client:
        response = client.request("POST", "/block_documents/filter", json=query)
        response.raise_for_status()
        slugs = sorted({row["block_type"]["slug"] for row in response.json() if row.get("block_type")})
    if not slugs:
        raise LookupError(f"no notification block is named {name!r}; create one (docs/monitoring.md)")
    if len(slugs) > 1:
        raise LookupError(f"several notification blocks are named {name!r} ({', '.join(slugs)}); write TYPE/{name}")
    return str(slugs[0])


def forget() -> None:
    """Forget which events were sent (a test, or a long-running process that wants them again)."""
    with _lock:
        _sent.clear()


__all__ = ["forget", "load_block", "notify", "send"]
