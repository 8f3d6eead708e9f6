"""`strata approve|reject|sign FLOW_RUN_ID --as NAME`: decide on a waiting change, signed where keys are required.

The waiting run recorded what it waits for (target, approvers, digest). `approve` and
`reject` fill in the digest, sign the decision with the approver's SSH key when the
environment's approvers carry keys (``--key PATH``, else the key in ``ssh-agent`` that
matches the approver's), check it as the flow will, and resume the run; the flow judges it
again. `sign` prints the signature block to paste into the Prefect UI's form instead.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

from strataflow.cli.common import add_config, prefect_session
from strataflow.errors import UsageError

if TYPE_CHECKING:
    from strataflow.approvals import ApprovalRequest

APPROVE_WAIT_SECONDS = 20.0
"""How long `strata approve` waits to see the run leave its pause."""


def add(commands: Any) -> None:
    for decision in ("approve", "reject"):
        p = commands.add_parser(decision, help=f"{decision} a change waiting for approval")
        _common(p)
        p.add_argument("--comment", default="", metavar="TEXT")
        p.add_argument("--digest", metavar="DIGEST", help="the digest you reviewed (refused if another one waits)")
        p.add_argument("--json", action="store_true")
        p.set_defaults(handler=run, decision=decision)
    p = commands.add_parser("sign", help="print a signed decision to paste into the Prefect UI's approval form")
    _common(p)
    p.add_argument("--decision", choices=["approve", "reject"], default="approve")
    p.set_defaults(handler=sign)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("flow_run_id", metavar="FLOW_RUN_ID")
    p.add_argument("--as", dest="actor", required=True, metavar="NAME")
    p.add_argument("--key", metavar="PATH", help="your SSH private key (default: the matching key in ssh-agent)")
    add_config(p, "accepted for symmetry; approvals need no config")


def _waiting(args: argparse.Namespace, decision: str) -> ApprovalRequest:
    """The request the run recorded; a run that asked for none refuses the decision (recorded in its environment)."""
    try:
        flow_run_id = str(UUID(args.flow_run_id))
    except ValueError:
        raise UsageError(f"'{args.flow_run_id}' is not a flow run id") from None
    prefect_session()
    from strataflow import state
    from strataflow.approvals import Answer

    found = state.read_request(flow_run_id)
    if found is None:
        reason = f"flow run {flow_run_id} is not waiting for approval (it asked for none)"
        answer = Answer(decision=decision, approver=args.actor, comment=getattr(args, "comment", ""))
        state.record_stray(flow_run_id, answer, reason)
        raise UsageError(reason)
    return found[0]


def _signature(request: ApprovalRequest, decision: str, approver: str, key: str | None) -> str:
    """The approver's signature over the decision, or "" where the environment's approvers have no keys."""
    from strataflow.approvals import signed_text
    from strataflow.sshsig import SignatureError, agent_keys, parse_public_key, sign_with_agent, sign_with_file

    if not request.signed:
        return ""
    public = next((a.key for a in request.approvers if a.name == approver), None)
    if public is None:
        return ""
    text = signed_text(request.flow_run_id, decision, approver, request.env, request.digest)
    try:
        if key:
            return sign_with_file(text, Path(key).expanduser())
        wanted = parse_public_key(public)
        if not any(k.blob == wanted.blob for k in agent_keys()):
            raise UsageError(
                f"{request.env} requires signed decisions: ssh-agent does not hold {approver}'s key "
                f"{wanted.fingerprint}; ssh-add it or pass --key PATH"
            )
        return sign_with_agent(text, wanted)
    except SignatureError as exc:
        raise UsageError(f"cannot sign the decision: {exc}") from None


def run(args: argparse.Namespace) -> int:
    """Resume a waiting run with a decision, after the checks the flow makes."""
    from strataflow import state
    from strataflow.approvals import Answer, judge

    decision = args.decision
    request = _waiting(args, decision)
    digest = request.digest
    if args.digest and not (len(args.digest) >= 12 and request.digest.startswith(args.digest.lower())):
        digest = args.digest
    answer = Answer(
        decision=decision,
        approver=args.actor,
        comment=args.comment,
        digest=digest,
        signature=_signature(request, decision, args.actor, args.key) if digest == request.digest else "",
    )
    current = state.paused(request.flow_run_id) or {"type": None, "name": "gone"}
    found = state.read_request(request.flow_run_id)
    reason = None
    if current["type"] != "PAUSED" or found is None or found[1] != "waiting":
        reason = f"flow run {request.flow_run_id} is not waiting for approval (it is {current['name']})"
    verdict = judge(request, answer)
    reason = reason or verdict.reason
    if reason:
        state.record_decision(request, answer, reason)
        raise UsageError(f"{decision} refused: {reason}")
    state.resume(request.flow_run_id, answer)
    deadline = time.monotonic() + APPROVE_WAIT_SECONDS
    while time.monotonic() < deadline:
        current = state.paused(request.flow_run_id) or current
        if current["type"] != "PAUSED":
            break
        time.sleep(0.5)
    who = f"{args.actor} ({'verified' if verdict.verified else 'not verified'})"
    result = {
        "flow_run_id": request.flow_run_id,
        "decision": decision,
        "approver": args.actor,
        "verified": verdict.verified,
        "state": current["name"],
    }
    print(json.dumps(result) if args.json else f"{decision}d {request.kind} {request.flow_run_id} as {who}; it is now {current['name']}")
    return 0


def sign(args: argparse.Namespace) -> int:
    """Print the signature block of a decision, for the approval form's signature field."""
    request = _waiting(args, args.decision)
    if not request.signed:
        raise UsageError(f"{request.env}'s approvers have no SSH keys: decisions there need no signature")
    if args.actor not in request.names:
        raise UsageError(f"{args.actor} is not an approver of {request.env} (approvers: {', '.join(request.names)})")
    print(_signature(request, args.decision, args.actor, args.key), end="")
    return 0
