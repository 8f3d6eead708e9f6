"""Config directories: a small valid sample, platforms of command components, random DAGs, the corpus."""

from __future__ import annotations

import random
import shutil
import textwrap
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

CORPUS = Path(__file__).resolve().parents[1] / "corpus"

SAMPLE_COMPONENTS = textwrap.dedent(
    """\
    components:
      network:
        description: VPC, subnets and routing
        version: "1.4.0"
        aws:
          backend: cloudformation
          template: templates/aws/network.yaml
          parameters: {VpcCidr: "${var.vpc_cidr}"}
        azure:
          backend: arm
          template: templates/azure/network.json
          parameters: {addressPrefix: "${var.vpc_cidr}"}
      identity:
        backend: command
        apply: "echo identity"
        outputs: json
      clusters:
        depends_on: [network, identity]
        version: 2
        aws:
          backend: cloudformation
          template: templates/aws/clusters.yaml
          parameters: {SubnetIds: "${network.outputs.PrivateSubnetIds}", NodeCount: 1}
      dns:
        aws:
          backend: terraform
          module: modules/dns
          parameters: {zone: example.com}
      smoke-test:
        depends_on: [clusters]
        backend: command
        apply: "./scripts/smoke.sh ${clusters.outputs.Endpoint} ${secret.smoke_token}"
        destroy: "true"
        plan: "echo would run the smoke test"
        outputs: json
        timeout: 600
    """
)

SAMPLE_ENVIRONMENTS = {
    "dev": textwrap.dedent(
        """\
        clouds:
          aws: {region: us-east-1, account_id: "111111111111"}
        variables: {vpc_cidr: 10.0.0.0/16}
        components:
          clusters: {parameters: {NodeCount: 3}, timeout: 900}
        """
    ),
    "prod": textwrap.dedent(
        """\
        clouds:
          aws: {region: eu-west-1}
        promote_from: dev
        approval:
          required: true
          approvers: [alice, bob]
          timeout: 24h
        variables: {vpc_cidr: 10.1.0.0/16}
        components:
          dns: {enabled: false}
        """
    ),
}

SAMPLE_FILES = {
    "templates/aws/network.yaml": "Parameters:\n  VpcCidr: {Type: String}\nResources: {}\n",
    "templates/azure/network.json": '{"parameters": {"addressPrefix": {"type": "string"}}}\n',
    "templates/aws/clusters.yaml": (
        "Parameters:\n  SubnetIds: {Type: CommaDelimitedList}\n  NodeCount: {Type: Number, Default: 1}\nResources: {}\n"
    ),
    "modules/dns/main.tf": 'variable "zone" {\n  type = string\n}\n\noutput "zone" { value = "example.com" }\n',
    "scripts/smoke.sh": "#!/bin/sh\necho '{}'\n",
}
"""The sample's templates and module: each declares the parameters the sample gives it (validation checks them)."""


def write_tree(root: Path, files: Mapping[str, str | bytes]) -> Path:
    """Write ``files`` (relative path -> text or bytes) under ``root``; return ``root``."""
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return root


def sample_config(root: Path, changes: Mapping[str, str | bytes] | None = None) -> Path:
    """The valid sample platform under ``root``, with ``changes`` (relative path -> content) on top."""
    files: dict[str, str | bytes] = {
        "components.yaml": SAMPLE_COMPONENTS,
        **{f"environments/{name}.yaml": text for name, text in SAMPLE_ENVIRONMENTS.items()},
        **SAMPLE_FILES,
        **(changes or {}),
    }
    return write_tree(root, files)


def random_dag(n: int, seed: int, max_deps: int = 3) -> dict[str, list[str]]:
    """A random DAG of ``n`` components: each depends on up to ``max_deps`` earlier ones."""
    rng = random.Random(seed)
    names = [f"c{i:04d}" for i in range(n)]
    return {name: sorted(rng.sample(names[:i], min(i, rng.randint(0, max_deps)))) for i, name in enumerate(names)}


def dag_config(root: Path, edges: Mapping[str, list[str]], env: str = "dev", seed: int = 0) -> Path:
    """A config directory of ``command`` components wired as ``edges``.

    Every third component takes one of its upstreams through an output reference instead of
    ``depends_on``, so the references count as edges too.
    """
    rng = random.Random(seed)
    components: dict[str, dict[str, object]] = {}
    for index, (name, deps) in enumerate(edges.items()):
        listed = list(deps)
        apply = f"echo {name}"
        if listed and index % 3 == 0:
            via_ref = rng.choice(listed)
            listed.remove(via_ref)
            apply += f" ${{{via_ref}.outputs.id}}"
        components[name] = {"backend": "command", "apply": apply, "outputs": "json"}
        if listed:
            components[name]["depends_on"] = listed
    return write_tree(
        root,
        {
            "components.yaml": yaml.safe_dump({"components": components}, sort_keys=False),
            f"environments/{env}.yaml": "{}\n",
        },
    )


def corpus_cases() -> list[Path]:
    """Every broken-config case directory of tests/corpus."""
    return sorted(p for p in CORPUS.iterdir() if p.is_dir())


def expected_lines(case: Path) -> tuple[list[str], list[str]]:
    """A case's substrings that must appear, and those (marked ``!``) that must not."""
    lines = [line for line in (case / "expected.txt").read_text(encoding="utf-8").splitlines() if line.strip()]
    return [line for line in lines if not line.startswith("!")], [line[1:] for line in lines if line.startswith("!")]


def unique(prefix: str = "r") -> str:
    """A fresh environment name (tests share one Prefect server)."""
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def write_platform(
    root: Path, components: dict[str, Any], environments: dict[str, Any], files: dict[str, str] | None = None
) -> Path:
    """A config directory: ``components.yaml``, ``environments/<name>.yaml`` and extra ``files``."""
    (root / "environments").mkdir(parents=True, exist_ok=True)
    (root / "components.yaml").write_text(yaml.safe_dump({"components": components}, sort_keys=False))
    for name, body in environments.items():
        (root / "environments" / f"{name}.yaml").write_text(yaml.safe_dump(body or {}) if body else "{}\n")
    for relative, text in (files or {}).items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def command(apply: str, depends_on: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    """A ``command`` component."""
    found: dict[str, Any] = {"backend": "command", "apply": apply, **extra}
    if depends_on:
        found["depends_on"] = depends_on
    return found


def marked(name: str, marks: Path, before: str = "", after: str = "") -> str:
    """A command that appends a line to ``marks/<name>`` when it has done its work."""
    return f"{before}{'; ' if before else ''}echo $STRATA_ENV >> {marks / name}{'; ' if after else ''}{after}"


def count(marks: Path, name: str) -> int:
    path = marks / name
    return len(path.read_text().splitlines()) if path.exists() else 0


def sample_project(tmp_path: Path) -> Path:
    """A copy of the sample project: config/ (with its blueprints) and prefect.yaml."""
    root = tmp_path / "project"
    repository = CORPUS.parents[1]
    shutil.copytree(repository / "config", root / "config", ignore=shutil.ignore_patterns(".terraform"))
    shutil.copy(repository / "prefect.yaml", root / "prefect.yaml")
    return root
