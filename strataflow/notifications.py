"""Notifications: the events strataflow tells people about, and the message each one makes.

Pure: an event (a small pydantic model) in, a ``Message`` (a subject and a markdown body)
out. ``tasks.notify.notify(environment, event)`` sends it through the Prefect notification
blocks the environment names (``notify: [ops-slack]``), once per event and run.

The events:

- ``ApprovalWaiting``: a promotion (or another change) waits for an approver; the message
  names the approvers and carries the approve command and the run's link;
- ``PromotionEnded``: a promotion succeeded, failed, was rejected or timed out (one refused
  by a gate is not sent: nothing happened, and whoever started it was told);
- ``ApplyFailed``: an apply or destroy failed, naming each failed component and its cause
  (inside a promotion the promotion's end says it instead);
- ``DriftFound``: a drift check found drifted components;
- ``LockHeld``: a run has held an environment's lock longer than the environment's
  ``notify_lock_after`` (``strata metrics serve`` watches for it).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

SENT_OUTCOMES = frozenset({"succeeded", "failed", "rejected", "timed out"})
"""The promotion outcomes that are sent (a refusal by a gate is not)."""


class _Event(BaseModel):
    cloud: str
    sandbox: bool = False
    flow_run_id: str | None = None
    url: str | None = Field(default=None, description="The run in the Prefect UI (filled in when known).")

    def where(self, env: str) -> str:
        return f"{env} ({self.cloud}{', sandbox' if self.sandbox else ''})"


class ApprovalWaiting(_Event):
    """A change waits for a decision."""

    event: Literal["approval waiting"] = "approval waiting"
    target: str
    source: str | None = None
    kind: str = Field(default="promotion", description="promotion, rollback or break-glass")
    approvers: list[str] = Field(default_factory=list)
    requester: str | None = None
    deadline: datetime | None = None
    command: str | None = Field(default=None, description="The approve command, when not the plain one.")

    def approve_command(self) -> str:
        return self.command or f"strata approve {self.flow_run_id} --as NAME"


class PromotionEnded(_Event):
    """A promotion ended: succeeded, failed, rejected, timed out (or refused, which is not sent)."""

    event: Literal["promotion ended"] = "promotion ended"
    target: str
    source: str | None = None
    kind: str = "promotion"
    status: str
    reason: str | None = None
    approver: str | None = None
    components: dict[str, str] = Field(default_factory=dict, description="Each failed component and its cause.")


class ApplyFailed(_Event):
    """An apply (or destroy) run failed."""

    event: Literal["apply failed"] = "apply failed"
    env: str
    action: str = "apply"
    components: dict[str, str] = Field(description="Each failed component and its cause.")
    skipped: list[str] = Field(default_factory=list, description="Components not run because of them.")

    @classmethod
    def from_report(cls, report: Mapping[str, Any], sandbox: bool = False) -> ApplyFailed:
        """The event of a failed run's report (``RunReport.to_json()``)."""
        parts = report.get("components", {})
        return cls(
            env=report["env"],
            cloud=report["cloud"],
            action=report.get("action", "apply"),
            flow_run_id=report.get("flow_run_id"),
            sandbox=sandbox,
            components=failed_components(report),
            skipped=[n for n, c in parts.items() if c.get("status") == "skipped"],
        )


class DriftFound(_Event):
    """A drift check found components that no longer match what was applied."""

    event: Literal["drift found"] = "drift found"
    env: str
    components: dict[str, list[str]] = Field(description="Each drifted component and the resources that drifted.")


class LockHeld(_Event):
    """A run has held an environment's lock longer than the environment allows before telling people."""

    event: Literal["lock held"] = "lock held"
    env: str
    since: datetime
    held_s: float
    threshold_s: float
    actor: str | None = None


Event = Annotated[ApprovalWaiting | PromotionEnded | ApplyFailed | DriftFound | LockHeld, Field(discriminator="event")]


def failed_components(report: Mapping[str, Any]) -> dict[str, str]:
    """Each failed component of a run report (its JSON) with its cause."""
    parts = report.get("components", {})
    return {n: str(c.get("error") or "") for n, c in parts.items() if c.get("status") == "failed"}


class Message(BaseModel):
    subject: str
    body: str


def key(event: Event) -> str:
    """What makes an event the same event: its kind and run (a lock: its environment and holder)."""
    if isinstance(event, LockHeld):
        return f"lock held:{event.env}:{event.cloud}:{event.sandbox}:{event.flow_run_id or event.since.isoformat()}"
    return f"{event.event}:{event.flow_run_id or message(event).subject}"


def wanted(event: Event) -> bool:
    """Whether the event is sent at all (a promotion refused by a gate is not)."""
    return not isinstance(event, PromotionEnded) or event.status in SENT_OUTCOMES


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _causes(components: dict[str, str]) -> list[str]:
    return [f"- **{name}**: {cause or 'no cause recorded'}" for name, cause in components.items()]


def message(event: Event) -> Message:
    """The subject and markdown body of ``event``."""
    link = [f"Run: {event.url}"] if event.url else []
    if isinstance(event, ApprovalWaiting):
        what = f"{event.kind} {'from ' + event.source + ' ' if event.source else ''}into {event.where(event.target)}"
        lines = [
            f"The {what} waits for approval by one of: {', '.join(event.approvers) or 'nobody listed'}"
            + (f" (requested by {event.requester})." if event.requester else "."),
            "",
            f"Approve: `{event.approve_command()}`",
            f"Reject: `{event.approve_command().replace('strata approve', 'strata reject', 1)} --comment WHY`",
            *link,
        ]
        if event.deadline:
            lines.append(f"Decide before {event.deadline.isoformat(timespec='seconds')}.")
        return Message(subject=f"strataflow: {what} waits for approval", body="\n".join(lines))
    if isinstance(event, PromotionEnded):
        what = f"{event.kind} {'from ' + event.source + ' ' if event.source else ''}into {event.where(event.target)}"
        lines = [f"The {what} {event.status}" + (f": {event.reason}" if event.reason else ".")]
        if event.approver:
            lines.append(f"Approved by {event.approver}.")
        if event.components:
            lines += ["", *_causes(event.components)]
        return Message(subject=f"strataflow: {what} {event.status}", body="\n".join([*lines, *link]))
    if isinstance(event, ApplyFailed):
        where = event.where(event.env)
        lines = [
            f"{event.action} of {where} failed:",
            *_causes(event.components),
            *([f"Not run because of them: {', '.join(event.skipped)}."] if event.skipped else []),
            "",
            f"Fix them, then `strata {event.action} {event.env} --cloud {event.cloud}"
            + (" --sandbox" if event.sandbox else "")
            + (" --resume`." if event.action == "apply" else "`."),
            *link,
        ]
        return Message(
            subject=f"strataflow: {event.action} {where} failed: {', '.join(event.components)}", body="\n".join(lines)
        )
    if isinstance(event, DriftFound):
        where = event.where(event.env)
        lines = [f"Drift in {where}: what is deployed no longer matches what was applied."]
        for name, resources in event.components.items():
            lines.append(f"- **{name}**: {', '.join(resources) or 'drifted'}")
        again = f"strata apply {event.env} --cloud {event.cloud} --select {','.join(event.components)} --force"
        lines += ["", f"Apply it again: `{again}{' --sandbox' if event.sandbox else ''}`.", *link]
        return Message(subject=f"strataflow: drift in {where}: {', '.join(event.components)}", body="\n".join(lines))
    where = event.where(event.env)
    lines = [
        f"{where} has been locked for {_duration(event.held_s)} (more than {_duration(event.threshold_s)}) by flow run "
        f"{event.flow_run_id or 'unknown'}"
        + (f" ({event.actor})" if event.actor else "")
        + f", since {event.since.isoformat(timespec='seconds')}.",
        "",
        f"If that run is dead: `strata unlock {event.env} --cloud {event.cloud} --force`.",
        *link,
    ]
    return Message(subject=f"strataflow: {where} locked for {_duration(event.held_s)}", body="\n".join(lines))


__all__ = [
    "SENT_OUTCOMES",
    "ApplyFailed",
    "ApprovalWaiting",
    "DriftFound",
    "Event",
    "LockHeld",
    "Message",
    "PromotionEnded",
    "failed_components",
    "key",
    "message",
    "wanted",
]
