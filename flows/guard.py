"""What the orchestrator checks before it changes anything: the deployment it runs under, and protection.

An environment whose changes need approval (``approval.required``) is **protected**: it
changes only through a promotion or rollback that an approver approved, or a break-glass
apply that waits for one. The orchestrator enforces this itself, whoever starts it (the
command line, a deployment, the API): a protected apply from the working tree is refused;
a release deployment must carry the decision that approved it, bound to exactly what is
deployed (the digest) and, for keyed approvers, signed by the approver.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prefect.runtime import deployment

from strataflow import state
from strataflow.approvals import Answer, approval_digest, deployment_digest, judge
from strataflow.config import Environment
from strataflow.records import Decision


def other_environment(names: Mapping[str, str | None]) -> str | None:
    """Why a deployment made for one environment refuses this run's parameters, or None.

    ``names``: the run's parameters that name environments (env, source, target).
    """
    deployment_id = deployment.get_id()
    if not deployment_id:
        return None
    made_for = state.deployment_parameters(deployment_id)
    for key, value in names.items():
        expected = made_for.get(key)
        if expected is not None and value is not None and expected != value:
            return (
                f"deployment {deployment.get_name()} is made for {key}={expected}, but this run asks for {key}={value}; "
                f"run the deployment made for {value} instead"
            )
    return None


def protected_refusal(env: Environment, action: str) -> str:
    """The one-line refusal of a working-tree apply or destroy of a protected environment."""
    source = env.promote_from or "SOURCE"
    return (
        f"{env.name} is protected (approval.required): it changes only through `strata promote {source} {env.name}` "
        f"or `strata rollback {env.name}`; in an emergency, `strata {action} {env.name} --break-glass REASON` "
        "waits for an approver"
    )


def proof_refusal(
    proof: Mapping[str, Any] | None,
    env: Environment,
    cloud: str,
    sandbox: bool,
    bundles: Mapping[str, str],
    environment_sha: str | None,
    flow_run_id: str | None,
) -> tuple[str | None, Decision | None]:
    """Why ``proof`` does not allow deploying these bundles into protected ``env`` (None: it does), and the decision."""
    if not proof:
        return "no approval came with this release deployment", None
    promotion = str(proof.get("flow_run_id") or "")
    expected = approval_digest(
        deployment_digest(env.name, cloud, sandbox, bundles, environment_sha), str(proof.get("presentation", ""))
    )
    if proof.get("digest") != expected:
        return "the approval is for something else than what this run would deploy (digest mismatch)", None
    parent = state.parent_flow_run(flow_run_id) if flow_run_id else None
    if parent is None or parent["id"] != promotion or parent["flow"] != "promote":
        return "a release deployment into a protected environment must run inside the promotion that was approved", None
    found = state.read_request(promotion)
    if found is None or found[1] != "approved" or found[0].digest != expected:
        return f"promotion {promotion} has no approval recorded for this digest", None
    request = found[0].model_copy(update={"approvers": env.approval.approvers})
    answer = Answer.model_validate({k: proof.get(k, "") for k in Answer.model_fields})
    verdict = judge(request, answer)
    if not verdict.accepted or answer.decision != "approve":
        return f"the approval does not count: {verdict.reason or 'it is not an approval'}", None
    return None, Decision(
        decision="approve",
        approver=answer.approver,
        verified=verdict.verified,
        comment=answer.comment,
        digest=expected,
        flow_run_id=promotion,
    )


__all__ = ["other_environment", "proof_refusal", "protected_refusal"]
