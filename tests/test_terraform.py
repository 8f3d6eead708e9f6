"""The terraform backend against the real terraform CLI, on modules that need no provider download."""

from __future__ import annotations

import hashlib
import json
import stat
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from strataflow.backends.terraform import TerraformSettings
from strataflow.backends.terraform.backend import PLAN_FILE, TFVARS, TerraformBackend, working_dir
from strataflow.errors import BackendError, CommandTimeout, DeploymentFailed, ResourceBusy, TemplateError
from strataflow.refs import KNOWN_AFTER_APPLY
from tests.support.terraform import (
    NOISY_MODULE,
    RECORD_MODULE,
    SAMPLE_CONFIG,
    SLOW_MODULE,
    edit_state,
    hold_state_lock,
    instance_attributes,
    make_run,
    read_state,
    terraform_path,
    write_module,
)


class Env:
    """A temporary config directory and state directory, and a backend to run in them."""

    def __init__(self, root: Path) -> None:
        self.config = root / "config"
        self.state = root / "state"
        self.backend = TerraformBackend(kill_grace=3.0)
        self.logs: list[str] = []

    def module(self, name: str, main_tf: str, **files: str) -> str:
        return write_module(self.config, name, main_tf, **files)

    def run(self, module: str, **kwargs: Any) -> Any:
        kwargs.setdefault("log", self.logs.append)
        return make_run(self.config, self.state, module, **kwargs)


@pytest.fixture
def tf(tmp_path: Path) -> Env:
    terraform_path()
    return Env(tmp_path)


@pytest.fixture
def record(tf: Env) -> str:
    return tf.module("record", RECORD_MODULE)


class TestTerraformCli:
    def test_terraform_is_installed(self) -> None:
        """The terraform CLI is on PATH: every other test here needs it, and its absence fails, never skips."""
        assert Path(terraform_path()).is_file()

    def test_missing_binary_is_a_backend_error_saying_how_to_install(
        self, tf: Env, record: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without the binary on PATH the backend names it and says where to install it from."""
        monkeypatch.setenv("PATH", str(tmp_path / "empty"))
        with pytest.raises(BackendError, match=r"'tofu' command was not found.*opentofu\.org"):
            tf.backend.plan(tf.run(record, parameters={"name": "a"}, terraform=TerraformSettings(binary="tofu")))


class TestApply:
    def test_apply_creates_and_reports_outputs(self, tf: Env, record: str) -> None:
        """A first apply creates the resource and returns every output, sensitive ones listed as such."""
        run = tf.run(record, parameters={"name": "alpha", "token": "t0ken"})
        outcome = tf.backend.apply(run)
        assert (outcome.changes, outcome.no_changes) == (1, False)
        assert outcome.summary == ["+ create terraform_data.record"]
        assert outcome.outputs["name"] == "alpha"
        assert outcome.outputs["token_hash"] == hashlib.sha256(b"t0ken").hexdigest()
        assert len(outcome.outputs["record_id"]) == 36
        assert outcome.sensitive == frozenset({"token_hash"})
        assert tf.backend.exists(run)

    def test_second_apply_changes_nothing(self, tf: Env, record: str) -> None:
        """Applying the same module and parameters again is a no-change result with the same outputs."""
        run = tf.run(record, parameters={"name": "alpha"})
        first = tf.backend.apply(run)
        second = tf.backend.apply(run)
        assert (second.changes, second.no_changes, second.summary) == (0, True, [])
        assert second.outputs == first.outputs

    def test_outputs_reads_the_state(self, tf: Env, record: str) -> None:
        """``outputs`` returns the applied outputs unwrapped to name: value."""
        run = tf.run(record, parameters={"name": "alpha"})
        applied = tf.backend.apply(run)
        assert tf.backend.outputs(run) == applied.outputs

    def test_secrets_never_reach_the_log_or_the_command_line(self, tf: Env) -> None:
        """A secret parameter is masked in every log line, travels only in the tfvars file, and that file is gone once
        each command ends (plan, apply, destroy): nothing in the working copy but terraform's state holds it."""
        secret = "hunter2-very-secret"
        run = tf.run(tf.module("noisy", NOISY_MODULE), parameters={"token": secret}, secrets=frozenset({secret}))
        for operation in (tf.backend.plan, tf.backend.apply, tf.backend.plan):
            operation(run)
            assert not (working_dir(run) / TFVARS).exists(), operation
        assert any("the token is ***" in line for line in tf.logs)  # the value reached terraform
        assert not any(secret in line for line in tf.logs)
        holding = [p.name for p in working_dir(run).rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]
        assert set(holding) <= {"terraform.tfstate", "terraform.tfstate.backup"}, holding
        tf.backend.destroy(run)
        assert not (working_dir(run) / TFVARS).exists()

    def test_working_copy_is_the_users_alone(self, tf: Env, record: str) -> None:
        """After an apply no file or directory of the working copy (state, .terraform/) is open to group or others."""
        run = tf.run(record, parameters={"name": "alpha"})
        tf.backend.apply(run)
        loose = [
            f"{oct(stat.S_IMODE(p.lstat().st_mode))} {p}"
            for p in [working_dir(run), *working_dir(run).rglob("*")]
            if not p.is_symlink() and stat.S_IMODE(p.lstat().st_mode) & 0o077
        ]
        assert not loose, loose


class TestPlan:
    def test_first_plan_lists_creates_and_changes_nothing(self, tf: Env, record: str) -> None:
        """A plan of a new component lists what it would create, unknown outputs as placeholders, and saves no state."""
        run = tf.run(record, parameters={"name": "alpha"})
        outcome = tf.backend.plan(run)
        assert (outcome.changes, outcome.no_changes) == (1, False)
        assert outcome.summary == ["+ create terraform_data.record"]
        assert outcome.outputs["record_id"] == KNOWN_AFTER_APPLY
        assert outcome.outputs["token_hash"] == hashlib.sha256(b"not-a-secret").hexdigest()
        assert outcome.sensitive == frozenset({"token_hash"})
        assert not tf.backend.exists(run)
        assert not (working_dir(run) / PLAN_FILE).exists()

    def test_plan_after_apply_has_no_changes(self, tf: Env, record: str) -> None:
        """Once applied, planning the same inputs reports no changes."""
        run = tf.run(record, parameters={"name": "alpha"})
        tf.backend.apply(run)
        outcome = tf.backend.plan(run)
        assert (outcome.changes, outcome.no_changes, outcome.summary) == (0, True, [])
        assert outcome.outputs["name"] == "alpha"

    def test_changed_variable_plans_an_update(self, tf: Env, record: str) -> None:
        """A changed input of the resource plans an in-place update of that address."""
        tf.backend.apply(tf.run(record, parameters={"name": "alpha"}))
        outcome = tf.backend.plan(tf.run(record, parameters={"name": "beta"}))
        assert outcome.changes == 1
        assert outcome.summary == ["~ update terraform_data.record"]

    def test_changed_trigger_plans_a_replacement(self, tf: Env, record: str) -> None:
        """A changed triggers_replace plans a delete-then-create replacement."""
        tf.backend.apply(tf.run(record, parameters={"name": "alpha"}))
        outcome = tf.backend.plan(tf.run(record, parameters={"name": "alpha", "rotation": "2"}))
        assert outcome.changes == 1
        assert outcome.summary == ["-/+ replace terraform_data.record"]

    def test_known_after_apply_placeholder_is_passed_as_a_string(self, tf: Env, record: str) -> None:
        """An upstream output not known yet is planned with the placeholder text as its value."""
        outcome = tf.backend.plan(tf.run(record, parameters={"name": KNOWN_AFTER_APPLY}))
        assert outcome.changes == 1

    def test_module_edits_are_picked_up_and_init_runs_only_when_needed(self, tf: Env, record: str) -> None:
        """init runs on first use and after a module edit only; files removed from the module leave the copy."""
        run = tf.run(record, parameters={"name": "alpha"})
        module_dir = tf.config / record
        (module_dir / "extra.tf").write_text('output "extra" {\n  value = "x"\n}\n')
        tf.backend.apply(run)
        tf.backend.plan(run)
        assert sum(line.startswith("$ terraform init") for line in tf.logs) == 1
        (module_dir / "extra.tf").unlink()
        outcome = tf.backend.plan(run)
        assert sum(line.startswith("$ terraform init") for line in tf.logs) == 2
        assert outcome.summary == ["- delete output.extra"]  # only outputs change: they are listed
        assert not (working_dir(run) / "extra.tf").exists()


class TestDrift:
    def test_fresh_apply_has_no_drift(self, tf: Env, record: str) -> None:
        """Right after an apply a refresh-only plan finds nothing."""
        run = tf.run(record, parameters={"name": "alpha"})
        tf.backend.apply(run)
        assert tf.backend.drift(run).drifted is False

    def test_attribute_changed_out_of_band_drifts_through_outputs(self, tf: Env, record: str) -> None:
        """A resource attribute changed in the state out of band shows as drift of the outputs derived from it."""
        run = tf.run(record, parameters={"name": "alpha"})
        tf.backend.apply(run)

        def rename(state: dict[str, Any]) -> None:
            instance_attributes(state, "terraform_data.record")["output"]["value"] = {"name": "hijacked"}

        edit_state(working_dir(run) / "terraform.tfstate", rename)
        drift = tf.backend.drift(run)
        assert (drift.supported, drift.drifted) == (True, True)
        assert drift.resources == ["output.name (update)"]

    def test_terraform_data_input_edit_is_invisible_to_refresh(self, tf: Env, record: str) -> None:
        """terraform_data refreshes to its prior state, so an edited ``input`` alone is no drift (a plan shows it)."""
        run = tf.run(record, parameters={"name": "alpha"})
        tf.backend.apply(run)

        def retarget(state: dict[str, Any]) -> None:
            instance_attributes(state, "terraform_data.record")["input"]["value"] = {"name": "other"}

        edit_state(working_dir(run) / "terraform.tfstate", retarget)
        assert tf.backend.drift(run).drifted is False
        assert tf.backend.plan(run).summary[0] == "~ update terraform_data.record"

    def test_never_applied_component_has_no_drift(self, tf: Env, record: str) -> None:
        """A component without state has nothing to drift and gets no working copy."""
        run = tf.run(record, parameters={"name": "alpha"})
        assert tf.backend.drift(run).drifted is False
        assert not working_dir(run).exists()


class TestDestroy:
    def test_destroy_removes_everything(self, tf: Env, record: str) -> None:
        """Destroy deletes every resource and leaves no outputs behind."""
        run = tf.run(record, parameters={"name": "alpha"})
        tf.backend.apply(run)
        outcome = tf.backend.destroy(run)
        assert (outcome.changes, outcome.no_changes) == (1, False)
        assert outcome.summary == ["- delete terraform_data.record"]
        assert not tf.backend.exists(run)
        assert tf.backend.outputs(run) == {}

    def test_destroy_without_state_is_no_changes(self, tf: Env, record: str) -> None:
        """Destroying a component that was never applied does nothing and says so."""
        run = tf.run(record, parameters={"name": "alpha"})
        outcome = tf.backend.destroy(run)
        assert (outcome.changes, outcome.no_changes) == (0, True)
        assert not working_dir(run).exists()

    def test_second_destroy_is_no_changes(self, tf: Env, record: str) -> None:
        """Destroying an already destroyed component is a no-change result."""
        run = tf.run(record, parameters={"name": "alpha"})
        tf.backend.apply(run)
        tf.backend.destroy(run)
        assert tf.backend.destroy(run).no_changes


class TestErrors:
    def test_held_lock_is_resource_busy_naming_the_holder(self, tf: Env, record: str) -> None:
        """A state lock held by another terraform process is ResourceBusy naming who holds it and since when."""
        run = tf.run(record, parameters={"name": "alpha"})
        tf.backend.apply(run)
        with hold_state_lock(working_dir(run) / "terraform.tfstate") as info, pytest.raises(ResourceBusy) as caught:
            tf.backend.apply(run)
        message = str(caught.value)
        assert info["Who"] in message and info["ID"] in message and "2026-01-02 03:04:05" in message
        assert caught.value.context["holder"] == info["Who"]
        assert "force-unlock" in message

    def test_lock_held_by_a_running_apply_is_resource_busy(self, tf: Env) -> None:
        """While one apply runs, a second operation on the component fails fast with ResourceBusy."""
        run = tf.run(tf.module("slow", SLOW_MODULE), parameters={"seconds": 3})
        lock_info = working_dir(run) / ".terraform.tfstate.lock.info"
        errors: list[BaseException] = []

        def first() -> None:
            try:
                tf.backend.apply(run)
            except BaseException as exc:  # reported by the assertion below
                errors.append(exc)

        worker = threading.Thread(target=first)
        worker.start()
        deadline = time.monotonic() + 10
        while not lock_info.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        try:
            with pytest.raises(ResourceBusy, match="OperationTypeApply"):
                tf.backend.drift(run)
            with pytest.raises(ResourceBusy, match="OperationTypeApply"):
                tf.backend.destroy(run)
        finally:
            worker.join()
        assert errors == []

    def test_unsupported_argument_is_a_template_error(self, tf: Env) -> None:
        """An argument the resource does not have is a TemplateError with terraform's summary and location."""
        module = tf.module("bad", 'resource "terraform_data" "x" {\n  bogus = 1\n}\n')
        with pytest.raises(TemplateError, match=r"Unsupported argument.*main\.tf:2:3"):
            tf.backend.plan(tf.run(module))

    def test_undeclared_reference_is_a_template_error(self, tf: Env) -> None:
        """A reference to an undeclared variable is a TemplateError."""
        module = tf.module("bad", 'resource "terraform_data" "x" {\n  input = var.nope\n}\n')
        with pytest.raises(TemplateError, match="Reference to undeclared input variable"):
            tf.backend.apply(tf.run(module))

    def test_syntax_error_is_a_template_error(self, tf: Env) -> None:
        """A module that does not parse fails init with a TemplateError."""
        module = tf.module("bad", 'resource "terraform_data" "x" {\n  input = \n}\n')
        with pytest.raises(TemplateError, match=r"init failed.*Invalid expression"):
            tf.backend.plan(tf.run(module))

    def test_missing_required_variable_is_a_template_error(self, tf: Env, record: str) -> None:
        """A required variable the component does not set is a TemplateError."""
        with pytest.raises(TemplateError, match=r'No value for required variable.*"name"'):
            tf.backend.plan(tf.run(record))

    def test_failure_while_applying_is_deployment_failed(self, tf: Env) -> None:
        """A resource that fails after terraform started changing things is DeploymentFailed."""
        module = tf.module(
            "failing",
            'resource "terraform_data" "x" {\n  input = "a"\n  lifecycle {\n    postcondition {\n'
            '      condition     = self.id == "never"\n      error_message = "the record did not converge"\n'
            "    }\n  }\n}\n",
        )
        with pytest.raises(DeploymentFailed, match="did not converge"):
            tf.backend.apply(tf.run(module))

    def test_timeout_stops_terraform_and_releases_the_lock(self, tf: Env) -> None:
        """A run past its timeout is stopped (its process group interrupted) and the state is left unlocked."""
        run = tf.run(tf.module("slow", SLOW_MODULE), parameters={"seconds": 30}, timeout=1.5)
        started = time.monotonic()
        with pytest.raises(CommandTimeout, match=r"1\.5s timeout"):
            tf.backend.apply(run)
        assert time.monotonic() - started < 10
        after = tf.backend.plan(tf.run(tf.module("slow", SLOW_MODULE), parameters={"seconds": 0}))
        assert after.summary == ["-/+ replace terraform_data.slow"]  # interrupted mid-create: tainted


class TestWorkingCopy:
    def test_one_working_copy_and_state_per_env_cloud_component(self, tf: Env, record: str) -> None:
        """Each environment, cloud and component gets its own working copy and state."""
        dev = tf.run(record, parameters={"name": "alpha"}, env="dev")
        prod = tf.run(record, parameters={"name": "alpha"}, env="prod", cloud="azure")
        assert working_dir(dev) == tf.state / "terraform" / "dev" / "aws" / "record"
        assert working_dir(prod) == tf.state / "terraform" / "prod" / "azure" / "record"
        first, second = tf.backend.apply(dev), tf.backend.apply(prod)
        assert first.outputs["record_id"] != second.outputs["record_id"]
        assert tf.backend.destroy(dev).changes == 1
        assert tf.backend.exists(prod)

    def test_state_home_is_the_default_root(self, tf: Env, record: str, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without a state directory the working copy lives under $STRATA_HOME."""
        monkeypatch.setenv("STRATA_HOME", str(tf.state / "home"))
        run = tf.run(record, parameters={"name": "alpha"})
        run.state_dir = None
        assert working_dir(run) == tf.state / "home" / "terraform" / "dev" / "aws" / "record"

    def test_state_and_terraform_dirs_in_the_module_are_never_copied(self, tf: Env, record: str) -> None:
        """A developer's local state or .terraform/ inside the module directory stays out of the working copy."""
        module_dir = tf.config / record
        (module_dir / "terraform.tfstate").write_text("not a state")
        (module_dir / ".terraform").mkdir()
        (module_dir / ".terraform" / "junk").write_text("x")
        run = tf.run(record, parameters={"name": "alpha"})
        assert tf.backend.apply(run).changes == 1
        assert read_state(working_dir(run) / "terraform.tfstate")["resources"]
        assert not (working_dir(run) / ".terraform" / "junk").exists()

    def test_manifest_entries_outside_the_copied_module_are_never_deleted(self, tf: Env, tmp_path: Path) -> None:
        """A manifest naming paths outside the working copy, through a link, or terraform's own files deletes none of
        them; a module file that left the module is still removed from the copy."""
        module = tf.module("record", RECORD_MODULE, **{"extra.tf": "# goes away\n"})
        run = tf.run(module, parameters={"name": "alpha"})
        tf.backend.apply(run)
        work = working_dir(run)
        outside = tmp_path / "outside"
        outside.mkdir()
        victims = {name: outside / name for name in ("dotdot.txt", "absolute.txt", "linked.txt")}
        for path in victims.values():
            path.write_text("keep me")
        (work / "escape").symlink_to(outside, target_is_directory=True)
        relative_up = Path(*[".."] * len(work.relative_to(tmp_path).parts)) / "outside" / "dotdot.txt"
        entries = [
            str(relative_up),
            str(victims["absolute.txt"]),
            "escape/linked.txt",
            "terraform.tfstate",
            ".terraform/terraform.tfstate",
            "extra.tf",
        ]
        (work / ".strata-files.json").write_text(json.dumps(entries))
        (tf.config / module / "extra.tf").unlink()
        assert tf.backend.plan(run).no_changes
        assert all(path.read_text() == "keep me" for path in victims.values())
        assert read_state(work / "terraform.tfstate")["resources"]
        assert not (work / "extra.tf").exists()
        warned = [line for line in tf.logs if "it is not deleted" in line]
        assert len(warned) == 5, warned

    def test_backend_config_goes_to_init_through_a_file(self, tf: Env, tmp_path: Path) -> None:
        """backend_config configures the module's backend block, kept off the command line."""
        module = tf.module("remote", RECORD_MODULE, **{"backend.tf": 'terraform {\n  backend "local" {}\n}\n'})
        elsewhere = tmp_path / "shared-state" / "record.tfstate"
        settings = TerraformSettings(backend_config={"path": str(elsewhere)})
        run = tf.run(module, parameters={"name": "alpha"}, terraform=settings)
        assert tf.backend.apply(run).changes == 1
        assert read_state(elsewhere)["resources"]
        assert not (working_dir(run) / "terraform.tfstate").exists()
        assert tf.backend.exists(run)
        assert tf.backend.outputs(run)["name"] == "alpha"
        assert not any(str(elsewhere) in line for line in tf.logs if line.startswith("$ "))


class TestSampleDnsModule:
    def test_sample_dns_module_applies_offline(self, tf: Env) -> None:
        """config/modules/dns applies with built-ins only and outputs the record, its id and a sensitive token hash."""
        params = {"env": "dev", "zone": "platform.example.com.", "endpoint": "10.0.0.10"}
        run = make_run(SAMPLE_CONFIG, tf.state, "modules/dns", parameters=params, component="dns")
        outcome = TerraformBackend().apply(run)
        assert outcome.changes == 3
        assert outcome.outputs["fqdn"] == "dev.platform.example.com"
        assert outcome.outputs["record_type"] == "A"
        assert len(outcome.outputs["record_id"]) == 36
        assert outcome.sensitive == frozenset({"api_token_hash"})
        assert len(outcome.outputs["api_token_hash"]) == 64

    def test_sample_dns_module_replaces_the_record_for_a_new_kind_of_endpoint(self, tf: Env) -> None:
        """Pointing the record at a host name instead of an address replaces it (and rotates the token)."""
        params = {"env": "dev", "zone": "platform.example.com", "endpoint": "10.0.0.10"}
        backend = TerraformBackend()
        backend.apply(make_run(SAMPLE_CONFIG, tf.state, "modules/dns", parameters=params, component="dns"))
        params["endpoint"] = "lb-1.elb.example.com"
        outcome = backend.plan(make_run(SAMPLE_CONFIG, tf.state, "modules/dns", parameters=params, component="dns"))
        assert "-/+ replace terraform_data.record" in outcome.summary
        assert "-/+ replace terraform_data.api_token" in outcome.summary
