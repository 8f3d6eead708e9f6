"""The drift flow: ask each component's backend whether what is deployed still matches what was applied.

It holds the environment's lock while it reads the records and writes the drift back, as an
apply does: a concurrent apply waits (or the check does, with ``wait_lock``), so no record it
writes is ever replaced by the copy the check read.
"""

from __future__ import annotations

import concurrent.futures
from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact
from prefect.context import FlowRunContext
from prefect.futures import PrefectFuture
from prefect.runtime import flow_run as current_flow_run
from prefect.utilities.annotations import quote

from strataflow import graph as graphs
from strataflow import server, state
from strataflow.actor import resolve_actor
from strataflow.load import load_platform
from strataflow.notifications import DriftFound
from strataflow.records import RunRecord, applied_outputs, now, sensitive_keys
from strataflow.runner import Job
from tasks.drift import check_component
from tasks.notify import notify


def _run_name() -> str:
    params = current_flow_run.parameters
    return f"drift {params.get('env')} ({params.get('cloud') or 'default cloud'})"


@flow(name="drift", flow_run_name=_run_name, persist_result=False)
def drift(
    env: str,
    cloud: str | None = None,
    select: str | None = None,
    config_dir: str = "config",
    sandbox: bool = False,
    actor: str | None = None,
    max_parallel: int = 8,
    wait_lock: float = 0.0,
) -> dict[str, Any]:
    """Check every applied component of ``env`` for drift; publish the drifted ones as an artifact.

    Takes the environment's lock (waiting up to ``wait_lock`` seconds for another run); raises
    LockedError when it is held.
    """
    graphs.check_parallelism(max_parallel)
    platform = load_platform(config_dir)
    environment = platform.environment(env)
    cloud = platform.cloud_for(environment, cloud)
    graph, selected = graphs.select_components(platform, env, cloud, select)
    names = [n for n in graph.order() if n in selected]
    context = FlowRunContext.get()
    flow_run_id = str(context.flow_run.id) if context and context.flow_run else None
    state.tag_flow_run(flow_run_id, ["strata", "drift", f"env:{env}", f"cloud:{cloud}"])
    who = resolve_actor(actor)
    started = now()
    sandbox_info = server.sandbox(cloud) if sandbox else None
    with state.environment_lock(env, cloud, flow_run_id, who, wait_lock, sandbox):
        records = state.latest_components(env, cloud, graph.nodes, sandbox)  # read under the lock: the latest
        outputs, sensitive = applied_outputs(records), sensitive_keys(records)
        futures: dict[str, PrefectFuture[dict[str, Any]]] = {}
        for name in names:
            ups = [d for d in graph.upstream[name] if d in outputs]
            job = Job(
                platform=platform,
                env=environment,
                cloud=cloud,
                name=name,
                action="plan",
                upstream_outputs={d: outputs[d] for d in ups},
                sensitive_upstream={d: sensitive[d] for d in ups if d in sensitive},
                previous=records.get(name),
                flow_run_id=flow_run_id,
                actor=who,
                sandbox=sandbox_info,
                state_dir=server.home(),
            )
            _wait_for_a_slot(futures, max_parallel)
            futures[name] = check_component.with_options(task_run_name=f"drift-{name}").submit(quote(job))  # type: ignore[call-overload]  # quote() wraps the job
        results = {name: future.result() for name, future in futures.items()}
    drifted = [n for n, r in results.items() if r["status"] == "drifted"]
    lines = [
        f"# Drift in {env} ({cloud}): {', '.join(drifted) or 'none'}",
        "",
        "| component | result | resources |",
        "|---|---|---|",
    ]
    lines += [
        f"| {n} | {r['status']} | {'<br>'.join(r.get('resources', [])) or r.get('error', '')} |"
        for n, r in results.items()
    ]
    create_markdown_artifact("\n".join(lines), key=f"strata-drift-{env}-{cloud}".lower(), description=f"drift {env}")
    state.write_run(
        RunRecord(
            kind="drift",
            env=env,
            cloud=cloud,
            action="drift",
            status="drifted" if drifted else "in sync",
            flow_run_id=flow_run_id,
            actor=who,
            started_at=started,
            finished_at=now(),
            components={n: r["status"] for n, r in results.items()},
            sandbox=sandbox,
        )
    )
    if drifted:  # the environment's notify blocks (issue 18); never fails the run
        found = {n: list(results[n].get("resources", [])) for n in drifted}
        notify(environment, DriftFound(env=env, cloud=cloud, sandbox=sandbox, flow_run_id=flow_run_id, components=found))
    return {"env": env, "cloud": cloud, "flow_run_id": flow_run_id, "drifted": drifted, "components": results}


def _wait_for_a_slot(futures: dict[str, PrefectFuture[dict[str, Any]]], max_parallel: int) -> None:
    """Block until fewer than ``max_parallel`` of the checks submitted so far are still running."""
    while True:
        pending = [f.wrapped_future for f in futures.values() if not f.wrapped_future.done()]  # type: ignore[attr-defined]
        if len(pending) < max_parallel:
            return
        concurrent.futures.wait(pending, return_when=concurrent.futures.FIRST_COMPLETED)
