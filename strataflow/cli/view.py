"""The view of a run on the terminal: a live table on a tty, one plain line per change on a pipe.

It listens to ``strataflow.events`` while a flow runs in this process.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import IO, Any

from strataflow import events


def _nothing() -> None:
    return None


_STYLE = {
    "running": "cyan",
    "succeeded": "green",
    "unchanged": "dim",
    "planned": "blue",
    "failed": "bold red",
    "skipped": "yellow",
    "cancelled": "magenta",
}


class RunView:
    """Watches ``strataflow.events`` while a flow runs in this process."""

    def __init__(self, components: list[str], stream: IO[str] | None = None, live: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self.status: dict[str, str] = dict.fromkeys(components, "waiting")
        self.started: dict[str, float] = {}
        self.elapsed: dict[str, float] = {}
        self.summaries: dict[str, list[str]] = {}
        """What each component's backend said it did or would do (plan lines)."""
        self._lock = threading.Lock()
        self._unsubscribe: Callable[[], None] = _nothing
        self._live: Any = None

    def __enter__(self) -> RunView:
        if self.live:
            from rich.console import Console
            from rich.live import Live

            self._live = Live(self._table(), console=Console(file=self.stream), refresh_per_second=4, transient=False)
            self._live.__enter__()
        self._unsubscribe = events.subscribe(self._on_event)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._unsubscribe()
        if self._live is not None:
            self._live.update(self._table())
            self._live.__exit__(kind, exc, tb)

    def _on_event(self, component: str, status: str, details: dict[str, Any]) -> None:
        with self._lock:
            self.status[component] = status
            if status == "running":
                self.started[component] = time.monotonic()
            else:
                if details.get("summary"):
                    self.summaries[component] = list(details["summary"])
                report = details.get("report")
                duration = getattr(report, "duration_s", None)
                if duration is None and component in self.started:
                    duration = time.monotonic() - self.started[component]
                if duration is not None:
                    self.elapsed[component] = duration
        if self._live is not None:
            self._live.update(self._table())
        else:
            took = f" {self.elapsed[component]:.1f}s" if component in self.elapsed and status != "running" else ""
            because = ""
            report = details.get("report")
            if status == "skipped" and report is not None:
                because = f" (because {report.skipped_because} failed)"
            elif status == "failed" and report is not None and report.error:
                because = f": {report.error}"
            print(f"{time.strftime('%H:%M:%S')} {component} {status}{took}{because}", file=self.stream, flush=True)

    def _table(self) -> Any:
        from rich.table import Table

        table = Table(box=None, show_header=True, header_style="bold")
        table.add_column("component")
        table.add_column("state")
        table.add_column("elapsed", justify="right")
        now = time.monotonic()
        with self._lock:
            for name, status in self.status.items():
                seconds = now - self.started.get(name, now) if status == "running" else self.elapsed.get(name, 0.0)
                elapsed = (
                    f"{seconds:.1f}s" if (status != "waiting" and name in self.started) or name in self.elapsed else ""
                )
                table.add_row(name, f"[{_STYLE.get(status, 'white')}]{status}[/]", elapsed)
        return table


def approval_notices(component: str, status: str, details: dict[str, Any]) -> None:
    """Print, on stderr, that a run waits for approval (how to approve, the UI link) and each refused answer."""
    if component != "approval":
        return
    if status == "waiting":
        request = details["request"]
        print(f"waiting for approval by {request.who_may_decide()} (flow run {request.flow_run_id}):", file=sys.stderr)
        print(f"  {request.command()}", file=sys.stderr)
        if request.url:
            print(f"  or in the UI: {request.url}", file=sys.stderr)
        sys.stderr.flush()
    elif status == "refused":
        answer = details["answer"]
        print(f"refused {answer.decision} by {answer.approver}: {details['reason']}", file=sys.stderr, flush=True)
