"""Collecting figures and targets, printing the table, writing the JSON."""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table


@dataclass
class Figure:
    section: str
    name: str
    value: float
    unit: str
    detail: str = ""
    percent: bool = False

    def shown(self) -> str:
        return _fmt(self.value, self.unit, self.percent)


@dataclass
class Target:
    id: str
    description: str
    value: float
    op: str
    limit: float
    unit: str = ""
    note: str = ""
    percent: bool = False
    ok: bool = field(init=False)

    def __post_init__(self) -> None:
        v = self.value
        self.ok = not math.isnan(v) and {"<=": v <= self.limit, "<": v < self.limit, ">=": v >= self.limit}[self.op]


def _fmt(value: float, unit: str, percent: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if percent:
        return f"{100 * value:.1f}% {unit}".strip()
    if unit == "×":
        return f"{value:.2f}×"
    if unit == "s":
        return f"{value:.2f} s"
    if unit == "ms":
        return f"{value:.1f} ms"
    return f"{value:.1f} {unit}".strip()


@dataclass
class Results:
    meta: dict[str, Any] = field(default_factory=dict)
    sections: dict[str, Any] = field(default_factory=dict)
    figures: list[Figure] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    console: Console = field(default_factory=lambda: Console(stderr=True, soft_wrap=True))
    started: float = field(default_factory=time.perf_counter)

    def progress(self, message: str) -> None:
        elapsed = time.perf_counter() - self.started
        self.console.print(f"[dim]{elapsed:7.1f}s[/dim] {message}", highlight=False)

    def figure(
        self, section: str, name: str, value: float, unit: str = "", detail: str = "", percent: bool = False
    ) -> None:
        self.figures.append(Figure(section, name, value, unit, detail, percent))

    def target(
        self,
        id_: str,
        description: str,
        value: float,
        op: str,
        limit: float,
        unit: str = "",
        note: str = "",
        percent: bool = False,
    ) -> None:
        self.targets.append(Target(id_, description, value, op, limit, unit, note, percent))

    # --- output -------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "meta": self.meta,
            "targets": [asdict(t) for t in self.targets],
            "figures": [asdict(f) for f in self.figures],
            "problems": self.problems,
            "errors": self.errors,
            "sections": self.sections,
        }

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=2, default=str) + "\n")

    def render(self, console: Console | None = None) -> None:
        console = console or Console(file=sys.stdout, width=max(120, Console().width))
        table = Table(title="strataflow bench: figures (ratios measured in this run)", show_lines=False)
        table.add_column("section", style="cyan", no_wrap=True)
        table.add_column("figure")
        table.add_column("value", justify="right", no_wrap=True)
        table.add_column("how it was made / compared with", style="dim")
        last = None
        for f in self.figures:
            if last is not None and f.section != last:
                table.add_section()
            table.add_row(f.section if f.section != last else "", f.name, f.shown(), f.detail)
            last = f.section
        console.print(table)

        targets = Table(title="targets (2-core machine)")
        targets.add_column("", no_wrap=True)
        targets.add_column("id", no_wrap=True)
        targets.add_column("target")
        targets.add_column("measured", justify="right", no_wrap=True)
        targets.add_column("note", style="dim")
        for t in self.targets:
            mark = "[green]✓[/green]" if t.ok else "[red bold]✗[/red bold]"
            targets.add_row(mark, t.id, t.description, _fmt(t.value, t.unit, t.percent), t.note)
        console.print(targets)
        missed = [t.id for t in self.targets if not t.ok]
        summary = f"{len(self.targets) - len(missed)}/{len(self.targets)} targets met"
        if missed:
            summary += f"; MISSED: {', '.join(missed)}"
        console.print(summary, style="red" if missed else "green")
        for problem in self.problems:
            console.print(f"[red]problem:[/red] {problem}")
        for section, error in self.errors.items():
            console.print(f"[red]section {section} did not finish:[/red] {error}")
        meta = self.meta
        console.print(
            f"[dim]{meta.get('cpus')} CPUs, load at start {meta.get('loadavg_at_start')}, "
            f"prefect {meta.get('prefect')}, "
            f"git {meta.get('git')}, total {meta.get('duration_s', 0):.0f} s; JSON: {meta.get('json')}[/dim]"
        )
