"""Approvals: what is asked, what counts as an answer, and what an answer is bound to.

A change that needs approval (a promotion or rollback into an environment that requires it,
a break-glass apply) waits with an ``ApprovalRequest``: who asked, who may decide, and the
``digest`` of exactly what is approved. The digest covers the deployment (target, cloud,
each component's bundle, the environment file's snapshot) and what the approver is shown
(gates, diff, plan): an answer naming another digest is refused, so nobody approves one
thing and gets another.

``judge`` decides whether an answer counts: the approver is listed, is not the requester,
names the digest; and where the approvers carry public SSH keys, the answer carries a valid
SSH signature by the approver's key over ``signed_text`` (which names the flow run, the
decision, the approver, the target and the digest, so a signature cannot be replayed on
another run or another plan). Without keys, the approver's name is taken as given: reports
say "not verified".

Pure: the flows pause and resume; this module only decides.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from strataflow.config import Approver
from strataflow.releases import SHORT, canonical, sha256
from strataflow.sshsig import SignatureError, parse_public_key, verify

Kind = Literal["promotion", "rollback", "break-glass"]


def deployment_digest(
    target: str, cloud: str, sandbox: bool, bundles: Mapping[str, str], environment: str | None, action: str = "apply"
) -> str:
    """What will be deployed: the target, its cloud, each component's bundle and the environment file snapshot."""
    return sha256(
        canonical(
            {
                "target": target,
                "cloud": cloud,
                "sandbox": sandbox,
                "action": action,
                "bundles": dict(sorted(bundles.items())),
                "environment": environment,
            }
        )
    )


def presentation_digest(presentation: Any) -> str:
    """The digest of what the approver is shown (gates, diff, plan)."""
    return sha256(canonical(presentation))


def approval_digest(deployment: str, presentation: str) -> str:
    """The digest an approver approves: the deployment's digest and the digest of what they were shown."""
    return sha256(canonical({"deployment": deployment, "presentation": presentation}))


def signed_text(flow_run_id: str, decision: str, approver: str, target: str, digest: str) -> bytes:
    """The exact text an approver's SSH signature covers."""
    return (
        "strataflow approval v1\n"
        f"flow-run: {flow_run_id}\n"
        f"decision: {decision}\n"
        f"approver: {approver}\n"
        f"target: {target}\n"
        f"digest: {digest}\n"
    ).encode()


class ApprovalRequest(BaseModel):
    """A change waiting for a decision, recorded where `strata approve` and the UI find it."""

    flow_run_id: str
    kind: Kind
    env: str = Field(description="The environment the change goes into.")
    cloud: str
    sandbox: bool = False
    source: str | None = Field(default=None, description="The environment promoted from.")
    requester: str
    approvers: list[Approver]
    digest: str
    summary: str = Field(default="", description="What is approved, in a few lines.")
    created_at: datetime
    deadline: datetime
    url: str | None = Field(default=None, description="The waiting run in the Prefect UI.")
    break_glass: str | None = Field(default=None, description="Why the protection is bypassed (break-glass only).")

    @property
    def signed(self) -> bool:
        return bool(self.approvers) and all(a.key is not None for a in self.approvers)

    @property
    def names(self) -> list[str]:
        return [a.name for a in self.approvers]

    def command(self, decision: str = "approve") -> str:
        return f"strata {decision} {self.flow_run_id} --as NAME" + (" --key PATH" if self.signed else "")

    def who_may_decide(self) -> str:
        listed = ", ".join(self.names) or "nobody"
        signed = "; each decision signed with the approver's SSH key (`strata sign`)" if self.signed else ""
        return f"one of {listed}, not the requester {self.requester}{signed}"


class Answer(BaseModel):
    """A decision as submitted (from `strata approve|reject` or the Prefect UI's form)."""

    decision: Literal["approve", "reject"]
    approver: str
    comment: str = ""
    digest: str = ""
    signature: str = ""


class Verdict(BaseModel):
    accepted: bool
    reason: str | None = None
    verified: bool = False


def judge(request: ApprovalRequest, answer: Answer) -> Verdict:
    """Whether ``answer`` decides ``request``, why not, and whether the approver's identity was verified."""
    if answer.approver not in request.names:
        listed = ", ".join(request.names)
        return Verdict(accepted=False, reason=f"{answer.approver} is not an approver of {request.env} (approvers: {listed})")
    if answer.approver == request.requester:
        return Verdict(accepted=False, reason=f"{answer.approver} requested this change and cannot decide on it")
    if answer.digest.strip() != request.digest:
        given = answer.digest.strip()[:SHORT] or "none"
        return Verdict(
            accepted=False,
            reason=f"the decision names digest {given}, but what waits for approval is {request.digest[:SHORT]}",
        )
    if not request.signed:
        return Verdict(accepted=True, verified=False)
    key = next(a.key for a in request.approvers if a.name == answer.approver)
    if not answer.signature.strip():
        return Verdict(
            accepted=False,
            reason=f"{request.env} requires signed decisions and this one carries no signature; "
            f"use `strata {answer.decision} {request.flow_run_id} --as {answer.approver} --key PATH`",
        )
    assert key is not None
    text = signed_text(request.flow_run_id, answer.decision, answer.approver, request.env, request.digest)
    try:
        verify(text, answer.signature, parse_public_key(key))
    except SignatureError as exc:
        return Verdict(accepted=False, reason=f"the signature is not {answer.approver}'s over this decision: {exc}")
    return Verdict(accepted=True, verified=True)


__all__ = [
    "Answer",
    "ApprovalRequest",
    "Verdict",
    "approval_digest",
    "deployment_digest",
    "judge",
    "presentation_digest",
    "signed_text",
]
