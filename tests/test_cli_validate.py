"""`strata validate` and `strata graph` as a user runs them: exit codes, messages, shape, speed."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support.cli import ROOT, strata
from tests.support.configs import corpus_cases, dag_config, expected_lines, random_dag, sample_config

CASES = corpus_cases()
TIME_LIMIT_S = 3.0
"""Three times the target (validate and graph of 1,000 components in under a second, measured
alone by `make bench`): the tests share 2 cores with two other workers and their servers."""


@pytest.fixture(scope="module")
def corpus_runs() -> dict[str, subprocess.CompletedProcess[str]]:
    """`strata validate --config CASE` for every corpus case, run a few at a time."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        runs = pool.map(lambda case: strata("validate", "--config", str(case), timeout=60), CASES)
        return {case.name: run for case, run in zip(CASES, runs, strict=True)}


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sample_config(tmp_path_factory.mktemp("sample"))


def _graph_json(config: Path, env: str, *extra: str) -> dict[str, object]:
    run = strata("graph", env, "--config", str(config), "--format", "json", *extra)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)  # type: ignore[no-any-return]


class TestCorpus:
    def test_corpus_is_large_enough(self) -> None:
        """The corpus holds at least 35 broken configurations, each with an expected.txt."""
        assert len(CASES) >= 35
        for case in CASES:
            assert expected_lines(case)[0], f"{case.name}/expected.txt lists nothing"

    @pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
    def test_case_is_refused_with_its_message(
        self, case: Path, corpus_runs: dict[str, subprocess.CompletedProcess[str]]
    ) -> None:
        """A broken config exits 2 with one `error: FILE...` line per problem, the expected words, no traceback."""
        run = corpus_runs[case.name]
        wanted, unwanted = expected_lines(case)
        assert run.returncode == 2, f"exit {run.returncode}\nstdout: {run.stdout}\nstderr: {run.stderr}"
        assert "Traceback" not in run.stdout + run.stderr
        lines = run.stderr.splitlines()
        assert lines, "no error printed"
        for line in lines:
            assert line.startswith("error: "), line
            assert str(case) in line, f"does not name a file of the case: {line}"
        for text in wanted:
            assert text in run.stderr, f"{text!r} missing from:\n{run.stderr}"
        for text in unwanted:
            assert text not in run.stderr, f"{text!r} should not be in:\n{run.stderr}"


class TestValidate:
    def test_valid_sample_passes(self, sample: Path) -> None:
        """The valid sample config exits 0 and says how many components and which environments it has."""
        run = strata("validate", "--config", str(sample))
        assert run.returncode == 0, run.stderr
        assert run.stdout.strip() == "ok: 5 components, environments: dev, prod"
        assert run.stderr == ""

    def test_json_summary(self, sample: Path) -> None:
        """`validate --json` prints a machine-readable summary."""
        run = strata("validate", "--config", str(sample), "--json")
        assert run.returncode == 0, run.stderr
        assert json.loads(run.stdout) == {"valid": True, "components": 5, "environments": ["dev", "prod"]}

    def test_missing_config_directory(self, tmp_path: Path) -> None:
        """A config directory that does not exist exits 2 naming it and --config."""
        missing = tmp_path / "nowhere"
        run = strata("validate", "--config", str(missing))
        assert run.returncode == 2
        assert run.stderr.startswith(f"error: {missing}: ")
        assert "--config" in run.stderr

    def test_every_problem_is_reported_in_one_pass(self, tmp_path: Path) -> None:
        """Problems in several files are all reported at once, sorted by file and line."""
        config = sample_config(
            tmp_path,
            {
                "environments/dev.yaml": "variables: {}\n",
                "environments/prod.yaml": "promote_from: qa\nvariables: {vpc_cidr: 10.1.0.0/16}\n",
                "environments/test.yaml": "variabels: {}\n",
            },
        )
        run = strata("validate", "--config", str(config))
        assert run.returncode == 2
        lines = run.stderr.splitlines()
        assert len(lines) == 4, run.stderr
        assert "components.yaml:8:" in lines[0] and "environment 'dev' does not define it" in lines[0]
        assert "components.yaml:12:" in lines[1] and "environment 'dev' does not define it" in lines[1]
        assert "prod.yaml:1:1: promote_from names unknown environment 'qa'" in lines[2]
        assert "test.yaml:1:1: unknown key 'variabels'" in lines[3]


    def test_one_stack_name_in_accounts_that_differ_is_accepted(self, tmp_path: Path) -> None:
        """A component's own stack_name is used in every environment: only where two may share an account and region
        is that a collision (the corpus's name-collision-* cases are the refused ones)."""
        stack = "    backend: cloudformation\n    template: stack.yaml\n    stack_name: network\n"
        files = {
            "components.yaml": f"components:\n  network:\n{stack}",
            "stack.yaml": "Resources: {}\n",
            "environments/dev.yaml": "clouds:\n  aws: {account_id: '111111111111'}\n",
            "environments/prod.yaml": "clouds:\n  aws: {account_id: '222222222222'}\n",
        }
        config = tmp_path / "accounts"
        for relative, text in files.items():
            (config / relative).parent.mkdir(parents=True, exist_ok=True)
            (config / relative).write_text(text)
        assert strata("validate", "--config", str(config)).returncode == 0
        (config / "environments" / "qa.yaml").write_text("clouds:\n  aws: {}\n")  # any account: it may meet both
        run = strata("validate", "--config", str(config))
        assert run.returncode == 2
        assert "the stack name 'network' of 'network' in environment 'qa' (aws) is also that of" in run.stderr


class TestGraphCommand:
    def test_json_shape(self, sample: Path) -> None:
        """`graph --format json` gives env, cloud, components with phase, an order respecting every edge."""
        doc = _graph_json(sample, "dev")
        assert set(doc) == {"env", "cloud", "components", "order", "phases", "edges"}
        assert (doc["env"], doc["cloud"]) == ("dev", "aws")
        components = doc["components"]
        assert isinstance(components, dict)
        assert set(components) == {"network", "identity", "clusters", "dns", "smoke-test"}
        assert components["clusters"] == {"depends_on": ["identity", "network"], "phase": 1}
        order = doc["order"]
        assert isinstance(order, list)
        assert sorted(order) == sorted(components)
        position = {name: i for i, name in enumerate(order)}
        edges = doc["edges"]
        assert isinstance(edges, list)
        assert sorted(map(tuple, edges)) == sorted(
            (dep, name) for name, info in components.items() for dep in info["depends_on"]
        )
        for dep, name in edges:
            assert position[dep] < position[name]
            assert components[dep]["phase"] < components[name]["phase"]
        assert [n for phase in doc["phases"] for n in phase] == order  # type: ignore[attr-defined]

    def test_disabled_component_left_out(self, sample: Path) -> None:
        """A component disabled in an environment is not in that environment's graph."""
        doc = _graph_json(sample, "prod")
        assert "dns" not in doc["components"]  # type: ignore[operator]

    def test_output_reference_is_an_edge(self, tmp_path: Path) -> None:
        """A `${X.outputs.K}` reference makes X an upstream even without depends_on."""
        config = dag_config(tmp_path, {"a": [], "b": []})
        (config / "components.yaml").write_text(
            textwrap.dedent(
                """\
                components:
                  a: {backend: command, apply: "true"}
                  b: {backend: command, apply: "echo ${a.outputs.id}"}
                """
            )
        )
        assert _graph_json(config, "dev")["edges"] == [["a", "b"]]

    def test_mermaid_shape(self, sample: Path) -> None:
        """`graph --format mermaid` is a flowchart with one node line per component and one arrow per edge."""
        run = strata("graph", "dev", "--config", str(sample), "--format", "mermaid")
        assert run.returncode == 0, run.stderr
        lines = run.stdout.splitlines()
        assert lines[0] == "flowchart LR"
        assert '  c_smoke_test["smoke-test"]' in lines
        arrows = {line.strip() for line in lines if "-->" in line}
        assert arrows == {"c_network --> c_clusters", "c_identity --> c_clusters", "c_clusters --> c_smoke_test"}

    def test_text_shape(self, sample: Path) -> None:
        """`graph` as text lists phases in order, each component with its upstreams."""
        run = strata("graph", "dev", "--config", str(sample))
        assert run.returncode == 0, run.stderr
        assert run.stdout.splitlines() == [
            "dev (aws): 5 components",
            "phase 0:",
            "  dns",
            "  identity",
            "  network",
            "phase 1:",
            "  clusters  <- identity, network",
            "phase 2:",
            "  smoke-test  <- clusters",
        ]

    def test_select_upstream_and_downstream(self, sample: Path) -> None:
        """`--select +clusters` adds its upstream; `--select network+` adds its downstream."""
        assert set(_graph_json(sample, "dev", "--select", "+clusters")["order"]) == {  # type: ignore[arg-type]
            "clusters", "network", "identity"
        }
        assert set(_graph_json(sample, "dev", "--select", "network+")["order"]) == {  # type: ignore[arg-type]
            "network", "clusters", "smoke-test"
        }

    def test_select_unknown_name(self, sample: Path) -> None:
        """`--select` with an unknown name exits 2 and suggests the closest component."""
        run = strata("graph", "dev", "--config", str(sample), "--select", "network,clustres")
        assert run.returncode == 2
        assert "Traceback" not in run.stderr
        assert run.stderr.startswith("error: ")
        assert "unknown component 'clustres'" in run.stderr
        assert "did you mean 'clusters'" in run.stderr

    def test_select_disabled_component(self, sample: Path) -> None:
        """`--select` of a component disabled in the environment exits 2 saying so."""
        run = strata("graph", "prod", "--config", str(sample), "--select", "dns")
        assert run.returncode == 2
        assert "'dns', which is disabled in prod" in run.stderr

    def test_unknown_environment(self, sample: Path) -> None:
        """An unknown environment exits 2 listing the known ones and the file to add."""
        run = strata("graph", "staging", "--config", str(sample))
        assert run.returncode == 2
        assert "Traceback" not in run.stderr
        assert "unknown environment 'staging'" in run.stderr
        assert "(known: dev, prod)" in run.stderr
        assert "environments/staging.yaml" in run.stderr

    def test_graph_of_broken_config(self, tmp_path: Path) -> None:
        """`graph` on an invalid config exits 2 with the same problem lines as validate."""
        config = sample_config(tmp_path, {"components.yaml": "components: [a]\n"})
        run = strata("graph", "dev", "--config", str(config))
        assert run.returncode == 2
        assert "'components' must be a mapping" in run.stderr


def _timed(run: Callable[[], subprocess.CompletedProcess[str]], attempts: int = 3) -> float:
    """The fastest of up to ``attempts`` wall times of ``run`` (stopping once under the limit)."""
    best = float("inf")
    for _ in range(attempts):
        start = time.perf_counter()
        result = run()
        elapsed = time.perf_counter() - start
        assert result.returncode == 0, result.stderr
        best = min(best, elapsed)
        if best < TIME_LIMIT_S:
            break
    return best


class TestPerformance:
    @pytest.mark.parametrize("size", [500, 1000])
    def test_validate_and_graph_are_fast(
        self, size: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`validate` and `graph dev --format json` on a large random DAG answer within TIME_LIMIT_S (no quadratic walk)."""
        config = dag_config(tmp_path, random_dag(size, seed=size), seed=size)
        validate = _timed(lambda: strata("validate", "--config", str(config)))
        graph = _timed(lambda: strata("graph", "dev", "--config", str(config), "--format", "json"))
        with capsys.disabled():
            print(f"\n[timing] {size} components: validate {validate:.3f} s, graph --format json {graph:.3f} s")
        assert validate < TIME_LIMIT_S
        assert graph < TIME_LIMIT_S

    def test_large_graph_is_complete(self, tmp_path: Path) -> None:
        """The 1,000-component graph lists every component once, in an order respecting every edge."""
        edges = random_dag(1000, seed=7)
        doc = _graph_json(dag_config(tmp_path, edges, seed=7), "dev")
        order = doc["order"]
        assert isinstance(order, list) and len(order) == 1000
        position = {name: i for i, name in enumerate(order)}
        for name, deps in edges.items():
            assert all(position[d] < position[name] for d in deps)


_PROBE = textwrap.dedent(
    """\
    import json, sys
    from strataflow.cli import main
    try:
        main(sys.argv[1:])
    except SystemExit as exc:
        code = exc.code
    heavy = sorted({m.split(".")[0] for m in sys.modules} & {"prefect", "boto3", "botocore", "azure", "moto"})
    print(json.dumps({"code": code, "heavy": heavy}))
    """
)


class TestNoPrefect:
    @pytest.mark.parametrize(
        "args",
        [["validate"], ["graph", "dev"], ["graph", "dev", "--format", "json"], ["graph", "dev", "--format", "mermaid"]],
        ids=["validate", "graph-text", "graph-json", "graph-mermaid"],
    )
    def test_command_does_not_import_prefect(self, args: list[str], sample: Path) -> None:
        """`validate` and `graph` import neither Prefect nor a cloud SDK."""
        run = subprocess.run(
            [sys.executable, "-c", _PROBE, *args, "--config", str(sample)],
            cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
        )
        probe = json.loads(run.stdout.splitlines()[-1])
        assert probe == {"code": 0, "heavy": []}, run.stderr

    def test_failing_validate_does_not_import_prefect(self) -> None:
        """Even on a broken config, `validate` stays free of Prefect."""
        case = next(c for c in CASES if c.name == "cycle-three")
        run = subprocess.run(
            [sys.executable, "-c", _PROBE, "validate", "--config", str(case)],
            cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
        )
        assert json.loads(run.stdout.splitlines()[-1]) == {"code": 2, "heavy": []}
