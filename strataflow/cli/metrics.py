"""`strata metrics [serve]`: Prometheus metrics computed from the records in Prefect.

``strata metrics`` reads every record once (``strataflow.state.scan``) and prints the
families of ``strataflow.metrics`` in the Prometheus text format. ``strata metrics serve``
answers ``/metrics`` from memory (prometheus-client's HTTP server and a collector returning
the cached families) while a thread reads the records again every ``--interval`` seconds; a
failed refresh keeps the last good values and counts in ``strata_exporter_refresh_errors_total``.
The same thread tells each environment's ``notify`` blocks when a run has held its lock
longer than its ``notify_lock_after``.

The working config (``--config``, when the directory exists) adds ``pending_change`` and the
components never run; without it the records alone are shown.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from strataflow.cli.common import add_config, prefect_session
from strataflow.config import CLOUDS, Platform, parse_duration
from strataflow.errors import StrataError, UsageError
from strataflow.load import load_platform

if TYPE_CHECKING:
    from collections.abc import Iterator

    from prometheus_client.core import Metric

    from strataflow.metrics import Snapshot

log = logging.getLogger("strataflow.metrics")


def add(commands: Any) -> None:
    p = commands.add_parser("metrics", help="Prometheus metrics from the records (serve: an exporter on /metrics)")
    p.add_argument("op", nargs="?", choices=["serve"], help="serve /metrics over HTTP instead of printing once")
    p.add_argument("--env", metavar="ENV", help="only this environment's series")
    add_config(p, "the config directory, for pending changes (default ./config; skipped when missing)")
    p.add_argument("--sandbox", action="store_true", help="only the sandbox's records (default: both)")
    p.add_argument("--window", default="30d", metavar="DURATION", help="window of the delivery keys (default 30d)")
    p.add_argument("--port", type=int, default=9464, help="serve: the port (default 9464)")
    p.add_argument("--host", default="127.0.0.1", help="serve: the address to bind (default 127.0.0.1)")
    p.add_argument("--interval", default="30s", metavar="DURATION", help="serve: read the records every (default 30s)")
    p.add_argument("--no-notify", action="store_true", help="serve: do not send lock-held notifications")
    p.set_defaults(handler=run)


def _duration(value: str, option: str) -> float:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise UsageError(f"{option}: {exc}") from None


def run(args: argparse.Namespace) -> int:
    window = timedelta(seconds=_duration(args.window, "--window"))
    if window.total_seconds() <= 0:
        raise UsageError("--window must be longer than 0s")
    platform = _platform(args.config)
    prefect_session()
    if args.op == "serve":
        return serve(args, window)
    from strataflow import metrics

    _, found = collect(platform, args.env, args.sandbox or None, window)
    sys.stdout.write(metrics.exposition(found))
    return 0


def _platform(config: str) -> Platform | None:
    """The working config, or None when the directory does not exist (an exporter beside the server)."""
    if not Path(config).is_dir():
        return None
    return load_platform(config)


def collect(
    platform: Platform | None, env: str | None, sandbox: bool | None, window: timedelta
) -> tuple[Snapshot, list[Metric]]:
    """Read the records once and compute every family (with the working config's pending changes)."""
    from strataflow import metrics
    from strataflow.state import scan

    snapshot = scan.snapshot(env)
    if platform is not None:
        snapshot.working = working(platform, snapshot, env, sandbox)
    return snapshot, metrics.families(snapshot, window, env, sandbox)


def working(platform: Platform, snapshot: Snapshot, env: str | None, sandbox: bool | None) -> list[Any]:
    """Each environment's pending changes: for its clouds, and for the sandbox where it has records there."""
    from strataflow import status
    from strataflow.metrics import WorkingConfig, sandboxed

    found = []
    for name, environment in sorted(platform.environments.items()):
        if env is not None and name != env:
            continue
        records: dict[tuple[str, bool], dict[str, Any]] = {}
        for record in snapshot.components:
            if record.env == name:
                records.setdefault((record.cloud, sandboxed(record)), {})[record.component] = record
        clouds = set(environment.declared_clouds())
        if not clouds:
            try:
                clouds = {platform.cloud_for(environment, None)}
            except StrataError:
                clouds = set(CLOUDS)
        places = {(c, bool(sandbox)) for c in clouds} | set(records)
        for cloud, on_sandbox in sorted(places):
            if sandbox is not None and on_sandbox != sandbox:
                continue
            try:
                pending = status.pending_changes(platform, name, cloud, records.get((cloud, on_sandbox), {}))
            except StrataError as exc:
                log.warning("no pending changes for %s (%s): %s", name, cloud, exc)
                continue
            found.append(WorkingConfig(env=name, cloud=cloud, sandbox=on_sandbox, pending=pending))
    return found


class Exporter:
    """The collector of `strata metrics serve`: cached families, refreshed by a thread, scraped from memory."""

    def __init__(self, args: argparse.Namespace, window: timedelta) -> None:
        self.args = args
        self.window = window
        self.notify = not args.no_notify
        self._families: list[Metric] = []
        self._lock = threading.Lock()
        self._refreshed: Any = None
        self._took: float | None = None
        self._errors = 0
        self._platform: Platform | None = None

    def collect(self) -> Iterator[Metric]:
        from strataflow import metrics

        with self._lock:
            found = [*self._families, *metrics.exporter_families(self._refreshed, self._took, self._errors)]
        yield from found

    def refresh(self) -> None:
        """Read the records again; on failure keep the last good families and count the error."""
        from strataflow.records import now

        started = time.monotonic()
        try:
            try:
                self._platform = _platform(self.args.config)
            except StrataError as exc:
                log.error("the config does not load; using the last one that did: %s", exc)
            snapshot, found = collect(self._platform, self.args.env, self.args.sandbox or None, self.window)
        except Exception as exc:  # noqa: BLE001 - the exporter serves the last good values
            log.error("could not refresh the metrics: %s: %s", type(exc).__name__, exc)
            with self._lock:
                self._errors += 1
            return
        with self._lock:
            self._families, self._refreshed, self._took = found, now(), time.monotonic() - started
        if self.notify and self._platform is not None:
            lock_alerts(self._platform, snapshot)

    def loop(self, stop: threading.Event, every: float) -> None:
        while not stop.wait(every):
            self.refresh()


def lock_alerts(platform: Platform, snapshot: Snapshot) -> None:
    """Tell an environment's notify blocks about each run holding its lock longer than ``notify_lock_after``."""
    from strataflow import metrics
    from strataflow.notifications import LockHeld
    from tasks.notify import notify

    for (env, cloud, on_sandbox), holder in metrics.lock_holders(snapshot).items():
        environment = platform.environments.get(env)
        if environment is None or not environment.notify or holder is None or holder.started_at is None:
            continue
        held = (snapshot.taken_at - holder.started_at).total_seconds()
        if held >= environment.notify_lock_after:
            event = LockHeld(
                env=env,
                cloud=cloud,
                sandbox=on_sandbox,
                flow_run_id=holder.flow_run_id,
                actor=holder.actor,
                since=holder.started_at,
                held_s=held,
                threshold_s=environment.notify_lock_after,
            )
            notify(environment, event)


def serve(args: argparse.Namespace, window: timedelta) -> int:
    """Serve /metrics until interrupted (SIGINT or SIGTERM)."""
    from prometheus_client import start_http_server
    from prometheus_client.registry import CollectorRegistry

    every = _duration(args.interval, "--interval")
    if every <= 0:
        raise UsageError("--interval must be longer than 0s")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    exporter = Exporter(args, window)
    exporter.refresh()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(exporter)
    try:
        server, _ = start_http_server(args.port, addr=args.host, registry=registry)
    except OSError as exc:
        raise UsageError(f"cannot serve on {args.host}:{args.port}: {exc}") from None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    refresher = threading.Thread(target=exporter.loop, args=(stop, every), name="strata-metrics", daemon=True)
    refresher.start()
    print(f"strata: serving metrics on http://{args.host}:{server.server_port}/metrics", file=sys.stderr, flush=True)
    try:
        while not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        stop.set()
    server.shutdown()
    return 0


__all__ = ["Exporter", "add", "collect", "lock_alerts", "run", "serve", "working"]
