"""State and audit trail, kept in Prefect's run history: the only code that reads or writes it.

- ``components``: each component's state is a keyed artifact ``strata-<env>-<cloud>-<component>``;
  every finished task writes a new version, so the Prefect UI shows the versions and the
  latest one is the state.
- ``runs``: each run writes ``strata-runs-<env>-<cloud>`` when it starts, changes and ends:
  that is the history (and what ``--resume`` reads).
- ``lock``: the environment lock, a Prefect global concurrency limit held with a lease.
- ``approvals``: a waiting run's approval request, decisions recorded, the run resumed.
- ``bundles``: release bundles stored content-addressed; ``releases``: the releases an
  environment reached.
- ``flow_runs``: reading and tagging flow runs, their UI links and progress artifacts.
- ``scan``: every record of every environment in a few calls, for ``strata metrics``.

The record models themselves are plain data in ``strataflow.records``.
"""

from strataflow.state import bundles, scan
from strataflow.state.approvals import paused, read_request, record_decision, record_stray, resume, write_request
from strataflow.state.components import all_components, component_history, latest_components, write_component
from strataflow.state.flow_runs import (
    ProgressArtifact,
    deployment_parameters,
    flow_run_url,
    parent_flow_run,
    read_flow_run,
    tag_flow_run,
)
from strataflow.state.lock import LEASE_SECONDS, environment_lock, force_unlock, lock_holder, lock_holder_if_held
from strataflow.state.releases import releases, write_release
from strataflow.state.runs import resume_plan, run_history, write_run
from strataflow.state.scan import snapshot
from strataflow.state.secrets import ensure_secrets

__all__ = [
    "LEASE_SECONDS",
    "ProgressArtifact",
    "all_components",
    "bundles",
    "component_history",
    "deployment_parameters",
    "ensure_secrets",
    "environment_lock",
    "flow_run_url",
    "force_unlock",
    "latest_components",
    "lock_holder",
    "lock_holder_if_held",
    "parent_flow_run",
    "paused",
    "read_flow_run",
    "read_request",
    "record_decision",
    "record_stray",
    "releases",
    "resume",
    "resume_plan",
    "run_history",
    "scan",
    "snapshot",
    "tag_flow_run",
    "write_component",
    "write_release",
    "write_request",
    "write_run",
]
