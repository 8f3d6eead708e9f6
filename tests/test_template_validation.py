"""Issue 17, items 1, 3, 4 and 5: parameters checked against the template in validate and at run time, names
resolved per environment and never shared, every problem at file:line:column without cascades, plan's `unchanged`."""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from strataflow.backends import registry
from strataflow.backends.memory import FakeBackend, installed
from strataflow.backends.registry import BackendSpec, Implementation, SourcePath
from strataflow.errors import ConfigError
from strataflow.load import load_platform
from strataflow.records import Applied, ComponentRecord, now
from strataflow.resolve import resolve
from strataflow.runner import Job, execute
from strataflow.templateparams import Declared, TemplateParameters, cache
from tests.support.cli import ROOT, strata
from tests.support.configs import write_tree

FIXTURES = Path(__file__).parent / "fixtures" / "templateparams"
TABLE = FIXTURES / "cloudformation" / "table.yaml"
QUEUE = FIXTURES / "cloudformation" / "queue.json"
STORAGE = FIXTURES / "arm" / "storage.json"
BICEP = FIXTURES / "arm" / "storage.bicep"
MODULE = FIXTURES / "terraform" / "module"
BROKEN = FIXTURES / "cloudformation" / "broken.yaml"


def config(
    root: Path, components: str, environments: dict[str, str] | None = None, copies: dict[str, Path] | None = None
) -> Path:
    """A config directory: components.yaml, environments/<name>.yaml, and fixture templates copied in."""
    for relative, source in (copies or {}).items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            shutil.copyfile(source, target)
    files = {f"environments/{name}.yaml": text for name, text in (environments or {"dev": "{}\n"}).items()}
    return write_tree(root, {"components.yaml": textwrap.dedent(components), **files})


def at(path: Path, needle: str, occurrence: int = 1) -> str:
    """``path:LINE:COLUMN`` of the ``occurrence``-th ``needle`` in the file."""
    seen = 0
    for number, text in enumerate(path.read_text().splitlines(), start=1):
        if needle in text:
            seen += 1
            if seen == occurrence:
                return f"{path}:{number}:{text.index(needle) + 1}"
    raise AssertionError(f"{needle!r} not in {path}")


def line_of(path: Path, needle: str) -> int:
    return next(n for n, text in enumerate(path.read_text().splitlines(), start=1) if needle in text)


def refused(root: Path) -> list[str]:
    """`strata validate` on ``root``: exit 2, and the error lines (each `error: FILE:LINE...`)."""
    run = strata("validate", "--config", str(root))
    assert run.returncode == 2, f"exit {run.returncode}\n{run.stdout}{run.stderr}"
    assert "Traceback" not in run.stderr
    lines = run.stderr.splitlines()
    assert all(line.startswith(f"error: {root}") for line in lines), run.stderr
    return lines


def problems(root: Path) -> list[str]:
    """The problems ``load_platform`` finds, as text (in-process: no subprocess)."""
    with pytest.raises(ConfigError) as caught:
        load_platform(root)
    return [str(p) for p in caught.value.problems]


class TestCloudFormation:
    def test_yaml_template_misspelt_missing_and_disallowed_each_one_line(self, tmp_path: Path) -> None:
        """A misspelt name (with its suggestion, and no second line for the required name it stands for), a missing
        required one, a disallowed value and one out of range are refused with exit 2, one line each at the
        parameter's line, naming the declaration's line."""
        root = config(
            tmp_path,
            """\
            components:
              table:
                backend: cloudformation
                template: templates/table.yaml
                parameters:
                  BucketNmae: logs
                  Versioning: Maybe
                  ReadCapacity: 500
                  Subnets: [subnet-1]
                  DbPassword: a-long-enough-password
                  VpcId: vpc-1
            """,
            copies={"templates/table.yaml": TABLE},
        )
        lines = refused(root)
        components = root / "components.yaml"
        table = root / "templates" / "table.yaml"
        assert len(lines) == 4, "\n".join(lines)
        by_start = {line.split(": ", 2)[1]: line for line in lines}
        unknown = by_start[at(components, "BucketNmae")]
        assert "parameter 'BucketNmae' is not declared by templates/table.yaml (did you mean 'BucketName'?)" in unknown
        missing = by_start[at(components, "parameters:")]
        assert f"'HashKeyElementName' is required by templates/table.yaml:{line_of(table, 'HashKeyElementName:')}" in missing
        assert "'BucketName' is required" not in "\n".join(lines), "one slip, one line: the misspelt name says it"
        allowed = by_start[at(components, "Versioning")]
        assert f"'Maybe' is not one of the allowed values declared at templates/table.yaml:{line_of(table, 'Versioning:')}" in allowed
        assert "Enabled, Suspended" in allowed
        assert "above the maximum 100" in by_start[at(components, "ReadCapacity")]

    def test_json_template_types_and_allowed_values(self, tmp_path: Path) -> None:
        """A JSON template's AllowedValues and Number type are checked; quoted numbers are fine, as CloudFormation sends text."""
        root = config(
            tmp_path,
            """\
            components:
              queue:
                backend: cloudformation
                template: queue.json
                parameters: {QueueName: other, Retention: lots, Fifo: "true"}
            """,
            copies={"queue.json": QUEUE},
        )
        lines = refused(root)
        assert len(lines) == 2, lines
        assert "parameter 'QueueName' = 'other' is not one of the allowed values" in lines[0]
        assert "'Retention' = 'lots' is not a number" in lines[1]

    def test_secure_value_never_printed(self, tmp_path: Path) -> None:
        """A NoEcho parameter that is too short is refused without its value in the message."""
        root = config(
            tmp_path,
            """\
            components:
              table:
                backend: cloudformation
                template: table.yaml
                parameters: {BucketName: logs, HashKeyElementName: id, Subnets: s, VpcId: v, DbPassword: hunter2}
            """,
            copies={"table.yaml": TABLE},
        )
        lines = refused(root)
        assert len(lines) == 1 and "'DbPassword' has 7 characters" in lines[0], lines
        assert "hunter2" not in "\n".join(lines)


class TestArm:
    def test_json_with_comments_misspelt_missing_disallowed_and_typed(self, tmp_path: Path) -> None:
        """ARM JSON with comments: a misspelt name, a missing required one, a value outside allowedValues and a string
        for an int are each refused at their line (names compare regardless of case, as ARM does)."""
        root = config(
            tmp_path,
            """\
            components:
              storage:
                backend: arm
                template: storage.json
                parameters:
                  storageNmae: st1
                  ADMINPASSWORD: "${secret.admin}"
                  sku: Standard_XYZ
                  replicas: "3"
                  network: {subnetId: x}
            """,
            copies={"storage.json": STORAGE},
        )
        lines = refused(root)
        components = root / "components.yaml"
        text = "\n".join(lines)
        assert len(lines) == 4, text
        assert f"error: {at(components, 'storageNmae')}: 'storage': parameter 'storageNmae' is not declared" in text
        assert "(did you mean 'storageName'?)" in text
        assert "'storageName' is required" not in text, "the misspelt name's line says it"
        assert f"error: {at(components, 'parameters:')}: 'storage': parameter 'objectId' is required" in text
        assert f"{at(components, 'sku')}: 'storage': parameter 'sku' = 'Standard_XYZ' is not one of the allowed values" in text
        assert "Azure requires an int here and would reject it; write 3 without quotes" in text

    def test_bicep_template(self, tmp_path: Path) -> None:
        """A .bicep template's params and decorators (@allowed, @minValue) are read and checked without the bicep CLI."""
        root = config(
            tmp_path,
            """\
            components:
              storage:
                backend: arm
                template: main.bicep
                parameters:
                  storageName: st1
                  objectId: "0000"
                  adminPassword: x
                  network: {subnetId: x}
                  mode: Incremental
                  tier: Frozen
                  replicas: 9
            """,
            copies={"main.bicep": BICEP},
        )
        lines = refused(root)
        assert len(lines) == 2, lines
        assert "parameter 'tier' = 'Frozen' is not one of the allowed values" in lines[0]
        assert "'replicas' = 9 is above the maximum 5" in lines[1]


class TestTerraform:
    def test_module_variables(self, tmp_path: Path) -> None:
        """A module's variable blocks: a misspelt name, a missing required variable and a value of the wrong type."""
        root = config(
            tmp_path,
            """\
            components:
              dns:
                backend: terraform
                module: modules/dns
                parameters: {zone_nmae: example.com, ttl: soon, account_id: "1", api_token: tok-123456789}
            """,
            copies={"modules/dns": MODULE},
        )
        lines = refused(root)
        text = "\n".join(lines)
        assert len(lines) == 3, text
        assert "variable 'zone_nmae' is not declared by module modules/dns (did you mean 'zone_name'?)" in text
        assert f"variable 'untyped' is required by modules/dns/variables.tf:{line_of(MODULE / 'variables.tf', 'untyped')}" in text
        assert "variable 'ttl' = 'soon' does not fit the variable's type" in text


ENVIRONMENTS = {
    "dev": "variables: {sku: Standard_XYZ}\n",
    "prod": "variables: {sku: Premium_LRS}\ncomponents:\n  storage:\n    parameters: {objectId: '1', replicas: 0}\n",
}


class TestPerEnvironment:

    def test_overrides_and_variables_are_checked_where_they_are_written(self, tmp_path: Path) -> None:
        """Merged parameters are checked per environment: a bad override at its line in the environment file, a bad
        variable value at the parameter's line naming the variable and environment, a missing one naming where."""
        root = config(
            tmp_path,
            """\
            components:
              storage:
                backend: arm
                template: storage.json
                parameters: {storageName: "st${env.name}", adminPassword: "${secret.a}", sku: "${var.sku}", network: {}}
            """,
            ENVIRONMENTS,
            {"storage.json": STORAGE},
        )
        lines = refused(root)
        text = "\n".join(lines)
        components, prod = root / "components.yaml", root / "environments" / "prod.yaml"
        assert len(lines) == 3, text
        assert (
            f"{at(components, 'sku')}: 'storage': parameter 'sku' = 'Standard_XYZ' is not one of the allowed values"
        ) in text
        assert "(with ${var.sku} of environment 'dev')" in text
        assert f"{at(components, 'parameters:')}: 'storage': parameter 'objectId' is required" in text
        assert "(in environment 'dev')" in text
        assert f"{at(prod, 'replicas')}: 'storage': parameter 'replicas' = 0 is below the minimum 1" in text

    def test_runtime_references_skip_value_checks_but_names_count(self, tmp_path: Path) -> None:
        """A value holding an output or secret reference is not value-checked in validate; its name still is."""
        root = config(
            tmp_path,
            """\
            components:
              up: {backend: command, apply: "true", outputs: json}
              queue:
                backend: cloudformation
                template: queue.json
                parameters: {QueueName: "${up.outputs.name}", Retention: "${up.outputs.days}", Fifoo: "${secret.x}"}
            """,
            copies={"queue.json": QUEUE},
        )
        assert problems(root) == [
            f"{at(root / 'components.yaml', 'Fifoo')}: 'queue': parameter 'Fifoo' is not declared by queue.json "
            "(did you mean 'Fifo'?); declared: QueueName, Secret, Retention, Fifo"
        ]

    def test_unreadable_template_is_one_problem(self, tmp_path: Path) -> None:
        """A template that cannot be parsed is one line at its template: key, and its parameters are not also blamed."""
        root = config(
            tmp_path,
            """\
            components:
              net:
                backend: cloudformation
                template: broken.yaml
                parameters: {Anything: 1}
            """,
            copies={"broken.yaml": BROKEN},
        )
        found = problems(root)
        assert len(found) == 1, found
        assert found[0].startswith(f"{at(root / 'components.yaml', 'template:')}: 'net' template: cannot read its parameters")
        assert "broken.yaml:5:10: invalid YAML" in found[0]


class TestSeam:
    def test_a_plugin_backend_declares_its_parameters_and_validate_asks_it(self, tmp_path: Path) -> None:
        """Validation asks each backend's implementation model how its parameters are read: a plugin's are checked too."""

        class ProbeImpl(Implementation):
            backend: str
            spec: str

            def source_paths(self) -> list[SourcePath]:
                return [SourcePath("spec", self.spec, "file")]

            def template_parameters(self, root: Path) -> TemplateParameters:
                path = root / self.spec
                names = json.loads(path.read_text())
                declared = tuple(Declared(n, "string", "string", True, path, i + 1, 1) for i, n in enumerate(names))
                return TemplateParameters("cloudformation", path, declared, (path,))

        registry.register(BackendSpec(kind="probe", config=ProbeImpl, operations="strataflow.backends.memory:FakeBackend"))
        try:
            root = config(tmp_path, "components:\n  p: {backend: probe, spec: spec.json, parameters: {colour: red}}\n")
            (root / "spec.json").write_text('["color", "size"]')
            found = problems(root)
        finally:
            registry.unregister("probe")
        assert len(found) == 2, found
        assert "parameter 'colour' is not declared by" in found[0] and "did you mean 'color'" in found[0]
        assert "parameter 'size' is required by" in found[1]


# --- at run time ---------------------------------------------------------------------------------------------

QUEUE_COMPONENTS = """\
components:
  up: {backend: command, apply: "true", outputs: json}
  queue:
    backend: cloudformation
    template: queue.json
    parameters: {QueueName: "${up.outputs.name}"}
"""


def queue_job(root: Path, name: str | None, action: str = "apply", **fields: Any) -> Job:
    platform = load_platform(root)
    upstream = {"up": {"name": name}} if name is not None else {}
    return Job(platform, platform.environment("dev"), "aws", "queue", action, upstream, **fields)  # type: ignore[arg-type]


@pytest.fixture
def fake_cloudformation() -> Iterator[FakeBackend]:
    """CloudFormation components served by an in-memory backend (the spec, and so its template, stays)."""
    with installed(FakeBackend(), "cloudformation") as fake:
        yield fake


class TestAtRunTime:
    def test_value_known_only_after_apply_is_refused_before_the_backend_runs(
        self, tmp_path: Path, fake_cloudformation: FakeBackend
    ) -> None:
        """An upstream output that is not an allowed value fails the component with the template's reason, once: the
        backend is never called and the error is not retried."""
        root = config(tmp_path, QUEUE_COMPONENTS, copies={"queue.json": QUEUE})
        result = execute(queue_job(root, "holiday"))
        assert result.report.status == "failed"
        assert result.report.error is not None
        assert "parameter 'QueueName' = 'holiday' is not one of the allowed values declared at" in result.report.error
        assert fake_cloudformation.calls == []
        ok = execute(queue_job(root, "jobs"))
        assert ok.report.status == "succeeded" and fake_cloudformation.calls == [("apply", "queue")]

    def test_a_plan_skips_values_not_known_yet(self, tmp_path: Path, fake_cloudformation: FakeBackend) -> None:
        """In a plan an output not applied yet is `(known after apply)`: not judged, the component is planned."""
        root = config(tmp_path, QUEUE_COMPONENTS, copies={"queue.json": QUEUE})
        result = execute(queue_job(root, None, action="plan"))
        assert result.report.status == "planned", result.report.error
        refused_plan = execute(queue_job(root, "holiday", action="plan"))
        assert refused_plan.report.status == "failed"


class TestPlanUnchanged:
    def _record(self, root: Path) -> ComponentRecord:
        platform = load_platform(root)
        digest = resolve(platform, platform.environment("dev"), "aws", "queue", {"up": {"name": "jobs"}}).digest
        applied = Applied(digest=digest, applied_at=now(), outputs={"arn": "q"})
        return ComponentRecord(env="dev", cloud="aws", component="queue", action="apply", status="succeeded", applied=applied)

    def test_plan_shows_unchanged_for_what_is_deployed_and_planned_otherwise(
        self, tmp_path: Path, fake_cloudformation: FakeBackend
    ) -> None:
        """A component whose digest equals the deployed one (and which still exists) is `unchanged` in a plan without
        asking the backend to plan; with --force, or once its config changed, it is planned."""
        root = config(tmp_path, QUEUE_COMPONENTS, copies={"queue.json": QUEUE})
        previous = self._record(root)
        same = execute(queue_job(root, "jobs", action="plan", previous=previous))
        assert same.report.status == "unchanged" and same.report.outputs == {"arn": "q"}
        assert ("plan", "queue") not in fake_cloudformation.calls
        forced = execute(queue_job(root, "jobs", action="plan", previous=previous, force=True))
        assert forced.report.status == "planned"
        changed = execute(queue_job(root, "events", action="plan", previous=previous))
        assert changed.report.status == "planned"
        assert fake_cloudformation.count("plan", "queue") == 2


# --- names ---------------------------------------------------------------------------------------------------

PROBE = """\
components:
  probe:
    backend: arm
    template: storage.json
    resource_group: GROUP
    deployment_name: probe-${var.suffix}
    parameters: {storageName: st1, objectId: "1", adminPassword: "${secret.p}", network: {subnetId: s}}
"""
SAME_SUBSCRIPTION = {
    "dev": "clouds:\n  azure: {subscription_id: s1}\nvariables: {suffix: a}\n",
    "prod": "clouds:\n  azure: {subscription_id: s1}\nvariables: {suffix: b}\n",
}


class TestNames:
    def test_references_in_names_resolve_per_environment(self, tmp_path: Path) -> None:
        """`rg-${env.name}-probe` and `${var.X}` in names are substituted for each environment, and a new value is a
        new digest."""
        root = config(tmp_path, PROBE.replace("GROUP", "rg-${env.name}-probe"), SAME_SUBSCRIPTION, {"storage.json": STORAGE})
        platform = load_platform(root)
        dev = resolve(platform, platform.environment("dev"), "azure", "probe", {})
        prod = resolve(platform, platform.environment("prod"), "azure", "probe", {})
        assert (dev.impl.resource_group, dev.impl.deployment_name) == ("rg-dev-probe", "probe-a")  # type: ignore[attr-defined]
        assert (prod.impl.resource_group, prod.impl.deployment_name) == ("rg-prod-probe", "probe-b")  # type: ignore[attr-defined]
        (root / "environments" / "dev.yaml").write_text(SAME_SUBSCRIPTION["dev"].replace("suffix: a", "suffix: c"))
        again = load_platform(root)
        assert resolve(again, again.environment("dev"), "azure", "probe", {}).digest != dev.digest

    def test_only_environment_and_variable_references_may_name_things(self, tmp_path: Path) -> None:
        """An output or secret reference in stack_name or resource_group is refused by validate, saying what may go there."""
        components = PROBE.replace("GROUP", "rg-${secret.p}") + textwrap.indent(
            "up: {backend: command, apply: 'true', outputs: json}\n"
            "table:\n  backend: cloudformation\n  template: queue.json\n  stack_name: q-${up.outputs.id}\n"
            "  parameters: {QueueName: jobs}\n",
            "  ",
        )
        root = config(tmp_path, components, SAME_SUBSCRIPTION, {"storage.json": STORAGE, "queue.json": QUEUE})
        found = problems(root)
        assert any("resource_group: ${secret.p} cannot be part of a resource group name" in p for p in found), found
        assert any(
            p.startswith(at(root / "components.yaml", "stack_name")) and "${up.outputs.id} cannot be part of a stack name" in p
            for p in found
        ), found

    def test_a_literal_group_owned_in_two_environments_of_one_subscription_is_refused(self, tmp_path: Path) -> None:
        """`resource_group: rg-probe` would be one group for every environment (destroying one deletes the others'):
        refused at its line; `rg-${env.name}-probe` is accepted."""
        root = config(tmp_path, PROBE.replace("GROUP", "rg-probe"), SAME_SUBSCRIPTION, {"storage.json": STORAGE})
        found = problems(root)
        assert len(found) == 1, found
        assert found[0].startswith(at(root / "components.yaml", "resource_group"))
        assert "the resource group 'rg-probe' that 'probe' in environment 'prod' (azure) owns is also owned by 'probe'" in found[0]
        (root / "components.yaml").write_text(PROBE.replace("GROUP", "rg-${env.name}-probe"))
        load_platform(root)

    def test_a_group_owned_by_a_component_is_not_an_environments_shared_group(self, tmp_path: Path) -> None:
        """A component owning the environment's shared group (where the others deploy) is refused: destroying it
        would delete them all."""
        components = PROBE.replace("GROUP", "strata-${env.name}") + (
            "  other:\n    backend: arm\n    template: storage.json\n"
            "    parameters: {storageName: st1, objectId: '1', adminPassword: x, network: {subnetId: s}}\n"
        )
        root = config(tmp_path, components, {"dev": SAME_SUBSCRIPTION["dev"]}, {"storage.json": STORAGE})
        found = problems(root)
        assert len(found) == 1 and "is the shared resource group of environment 'dev'" in found[0], found


# --- performance ----------------------------------------------------------------------------------------------


def cpu_seconds(*args: str, env: dict[str, str] | None = None) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    """(CPU seconds, wall seconds, the run) of `strata ARGS` in a subprocess."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    run = strata(*args, env=env)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, wall, run


_HEAVY = textwrap.dedent(
    """\
    import json, sys
    from strataflow.cli import main
    try:
        main(sys.argv[1:])
    except SystemExit as exc:
        code = exc.code
    print(json.dumps({"code": code, "hcl2": "hcl2" in sys.modules}))
    """
)


def hcl2_imported(config_dir: Path, home: Path) -> bool:
    run = subprocess.run(
        [sys.executable, "-c", _HEAVY, "validate", "--config", str(config_dir)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False, env={**_environ(), "STRATA_HOME": str(home)},
    )
    found = json.loads(run.stdout.splitlines()[-1])
    assert found["code"] == 0, run.stderr
    return bool(found["hcl2"])


def _environ() -> dict[str, str]:
    import os

    return dict(os.environ)


class TestPerformance:
    def test_the_sample_config_validates_in_under_half_a_second(self, capsys: pytest.CaptureFixture[str]) -> None:
        """`strata validate` of the sample platform (14 templates and a Terraform module) takes < 0.5 s of CPU."""
        strata("validate", "--config", str(ROOT / "config"))  # fills the parameter cache, as any earlier command has
        best = min((cpu_seconds("validate", "--config", str(ROOT / "config")) for _ in range(3)), key=lambda r: r[0])
        assert best[2].returncode == 0, best[2].stderr
        with capsys.disabled():
            print(f"\n[timing] sample config: validate {best[0]:.3f} s CPU, {best[1]:.3f} s wall")
        assert best[0] < 0.5

    def test_hcl2_is_imported_only_for_terraform_and_only_once_per_module_content(self, tmp_path: Path) -> None:
        """Without a Terraform component python-hcl2 is never imported; with one, the first validate parses the module
        and later ones read the declarations from $STRATA_HOME/cache (0600), until a .tf file changes."""
        home = tmp_path / "home"
        no_terraform = config(tmp_path / "cfn", "components:\n  q: {backend: cloudformation, template: q.json}\n", copies={"q.json": QUEUE})
        (no_terraform / "q.json").write_text(QUEUE.read_text().replace('"AllowedValues": ["jobs", "events"]', '"Default": "jobs"'))
        assert not hcl2_imported(no_terraform, home)
        module = config(
            tmp_path / "tf",
            "components:\n  dns:\n    backend: terraform\n    module: m\n"
            "    parameters: {zone_name: z, account_id: a, api_token: tok-123456789, untyped: u}\n",
            copies={"m": MODULE},
        )
        assert hcl2_imported(module, home)
        entries = list((home / "cache" / "templateparams").glob("*.json"))
        assert entries and all(entry.stat().st_mode & 0o777 == 0o600 for entry in entries)
        assert (home / "cache" / "templateparams").stat().st_mode & 0o777 == 0o700
        assert not hcl2_imported(module, home)
        (module / "m" / "main.tf").write_text((module / "m" / "main.tf").read_text() + "\n# edited\n")
        assert hcl2_imported(module, home)

    def test_a_thousand_template_components_validate_in_under_a_second(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """1,000 CloudFormation components sharing a template, each with parameters, validate in < 1 s of CPU."""
        body = {
            f"c{i:04d}": {"backend": "cloudformation", "template": "queue.json", "parameters": {"QueueName": "jobs", "Retention": i}}
            for i in range(1000)
        }
        root = config(tmp_path, json.dumps({"components": body}), copies={"queue.json": QUEUE})
        strata("validate", "--config", str(root))
        best = min((cpu_seconds("validate", "--config", str(root)) for _ in range(3)), key=lambda r: r[0])
        assert best[2].returncode == 0, best[2].stderr
        with capsys.disabled():
            print(f"\n[timing] 1,000 template components: validate {best[0]:.3f} s CPU, {best[1]:.3f} s wall")
        assert best[0] < 1.0


def test_cache_is_keyed_by_content(tmp_path: Path) -> None:
    """The in-process cache answers again for unchanged bytes and reads an edited template again."""
    template = tmp_path / "t.json"
    shutil.copyfile(QUEUE, template)
    first = cache.read("cloudformation", template)
    assert cache.read("cloudformation", template) is first
    template.write_text(QUEUE.read_text().replace('"QueueName"', '"Name"'))
    assert cache.read("cloudformation", template).names[0] == "Name"
