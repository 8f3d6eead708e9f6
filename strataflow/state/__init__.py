"""State and audit trail, kept in Prefect's run history: the only code that reads or writes it.

- ``components``: each component's state is a keyed artifact ``strata-<env>-<cloud>-<component>``;
  every finished task writes a new version, so the Prefect UI shows the versions and the
  latest one is the state.
- ``runs``: each run writes ``strata-runs-<env>-<cloud>`` when it starts, changes and ends:
  that is the history (and what ``--resume`` reads).
- ``lock``: the environment lock, a Prefect global concurrency limit held with a lease.
- ``approvals``: a paused promotion's request, decisions recorded, the run resumed.
- ``flow_runs``: reading and tagging flow runs, their UI links and progress artifacts.

The record models themselves are plain data in ``strataflow.records``.
"""

from strataflow.state.approvals import promotion_request, record_decision, resume_promotion
from strataflow.state.components import component_history, latest_components, write_component
from strataflow.state.flow_runs import ProgressArtifact, flow_run_url, read_flow_run, tag_flow_run
from strataflow.state.lock import LEASE_SECONDS, environment_lock, force_unlock, lock_holder, lock_holder_if_held
from strataflow.state.runs import resume_plan, run_history, write_run

__all__ = [
    "LEASE_SECONDS",
    "ProgressArtifact",
    "component_history",
    "environment_lock",
    "flow_run_url",
    "force_unlock",
    "latest_components",
    "lock_holder",
    "lock_holder_if_held",
    "promotion_request",
    "read_flow_run",
    "record_decision",
    "resume_plan",
    "resume_promotion",
    "run_history",
    "tag_flow_run",
    "write_component",
    "write_run",
]
