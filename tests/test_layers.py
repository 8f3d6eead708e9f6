"""The layers of the tree, checked from the source: what the pure core may import, and no cycles.

``make lint`` runs this file too. The pure core is plain functions over pydantic models: it
imports no Prefect, no cloud SDK, no process module and not ``strataflow.state``; only
``strataflow/backends/`` talks to clouds or runs programs and only ``strataflow/server.py``
starts services; no two modules import each other, not even from inside a function.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("strataflow", "flows", "tasks", "blocks")
PURE_CORE = (
    "strataflow/config.py",
    "strataflow/records.py",
    "strataflow/graph.py",
    "strataflow/refs.py",
    "strataflow/resolve.py",
    "strataflow/diff.py",
    "strataflow/gates.py",
    "strataflow/report.py",
    "strataflow/errors.py",
    "strataflow/hints.py",
    "strataflow/releases.py",
    "strataflow/approvals.py",
    "strataflow/load.py",
    "strataflow/validate.py",
    "strataflow/yamlsrc.py",
    "strataflow/events.py",
    "strataflow/handoff.py",
    "strataflow/paths.py",
    "strataflow/metrics.py",
    "strataflow/notifications.py",
    "strataflow/backends/registry.py",
    "strataflow/backends/*/__init__.py",
    "strataflow/cidrs.py",
    "strataflow/blueprints.py",
    "strataflow/newenv.py",
    "strataflow/copyenv.py",
    "strataflow/deployments.py",
    "strataflow/cost/*.py",
    "strataflow/shellrefs.py",
    "strataflow/sshsig.py",
    "strataflow/cancel.py",
    "strataflow/templateparams/*.py",
    "strataflow/actor.py",
    "strataflow/threads.py",
    "strataflow/runner.py",
)
"""Modules that must stay pure (globs relative to the repository)."""
IMPURE = ("prefect", "boto3", "botocore", "azure", "subprocess", "strataflow.state", "strataflow.server")
SDK = ("boto3", "botocore", "azure", "subprocess")
SDK_ALLOWED = ("strataflow/backends/", "strataflow/server.py", "strataflow/sandbox/")


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _imports(path: Path) -> Iterator[tuple[str, int, bool]]:
    """Every module ``path`` imports: (name, line, inside a function)."""
    tree = ast.parse(path.read_text())
    functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    local = {id(n) for f in functions for n in ast.walk(f) if isinstance(n, ast.Import | ast.ImportFrom)}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.module, node.lineno, id(node) in local
            for alias in node.names:
                yield f"{node.module}.{alias.name}", node.lineno, id(node) in local
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno, id(node) in local


def _is(name: str, banned: tuple[str, ...]) -> bool:
    return any(name == b or name.startswith(b + ".") for b in banned)


def _pure_files() -> list[Path]:
    return sorted({path for pattern in PURE_CORE for path in ROOT.glob(pattern)})


class TestPureCore:
    def test_the_pure_core_is_where_it_is_said_to_be(self) -> None:
        """Every pattern of the pure core names at least one file (a renamed module is noticed)."""
        assert all(list(ROOT.glob(pattern)) for pattern in PURE_CORE)

    @pytest.mark.parametrize("path", _pure_files(), ids=lambda p: str(p.relative_to(ROOT)))
    def test_a_pure_module_imports_no_prefect_cloud_sdk_process_or_state(self, path: Path) -> None:
        """The pure core imports neither Prefect, a cloud SDK, subprocess nor strataflow.state, at any level."""
        found = [f"line {line}: {name}" for name, line, _ in _imports(path) if _is(name, IMPURE)]
        assert not found, f"{path.relative_to(ROOT)} is pure core but imports " + ", ".join(found)


class TestSeams:
    def test_only_backends_and_server_talk_to_clouds_or_run_programs(self) -> None:
        """boto3, botocore, azure and subprocess are imported only under strataflow/backends/ and by server.py."""
        found = [
            f"{path.relative_to(ROOT)}:{line} imports {name}"
            for path in _modules().values()
            if not str(path.relative_to(ROOT)).startswith(SDK_ALLOWED)
            for name, line, _ in _imports(path)
            if _is(name, SDK)
        ]
        assert not found, found

    def test_no_import_cycle_even_through_imports_inside_functions(self) -> None:
        """No two project modules import each other at any depth, counting imports inside functions too."""
        modules = _modules()
        edges: dict[str, set[str]] = {}
        for name, path in modules.items():
            edges[name] = {
                imported
                for imported, _, _ in _imports(path)
                if imported in modules
                and imported != name
                and not imported.startswith(name + ".")
                and not name.startswith(imported + ".")
            }

        def reaches(start: str, goal: str) -> bool:
            seen, stack = set(), [start]
            while stack:
                node = stack.pop()
                if node == goal:
                    return True
                if node not in seen:
                    seen.add(node)
                    stack.extend(edges[node])
            return False

        cycles = sorted({" <-> ".join(sorted((a, b))) for a in edges for b in edges[a] if reaches(b, a)})
        assert not cycles, cycles
