"""The CloudFormation backend against moto: real boto3/botocore, AWS emulated in-process.

moto's gaps are worked around, never asserted: it creates resources synchronously and never
rolls back (``fail_create_like_aws`` puts a stack where AWS would leave it), has no drift
detection and no ListImports, and its change-set diff names odd resources.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError
from hypothesis import given
from hypothesis import strategies as st
from moto.cloudformation.parsing import get_model_map
from pydantic import SecretStr

from strataflow.backends.cloudformation import backend as cfn
from strataflow.backends.cloudformation.backend import CloudFormationBackend
from strataflow.backends.cloudformation.support import (
    STATUS,
    SUCCEEDED,
    StackAction,
    Standing,
    load_template,
    result_of,
)
from strataflow.config import AwsTarget
from strataflow.errors import (
    AccountMismatch,
    BackendError,
    DeploymentFailed,
    ResourceBusy,
    TemplateError,
    TransientError,
)
from strataflow.refs import KNOWN_AFTER_APPLY
from tests.support.aws import (
    ACCOUNT,
    BUCKET_TEMPLATE,
    EXPORTING_TEMPLATE,
    IMPORTING_TEMPLATE,
    PARAMETER_TEMPLATE,
    REGION,
    SAMPLE_CONFIG,
    TWO_RESOURCE_TEMPLATE,
    answer_with_error,
    client_of,
    count_calls,
    fail_create_like_aws,
    make_run,
    moto_aws,
    put_stack_in,
    sample_run,
    stack_status,
)

SAMPLE_TEMPLATES = ["network", "identity", "registry", "clusters", "observability", "addons", "platform"]
SMOKE = SAMPLE_CONFIG / "scripts" / "smoke.sh"
ACTIONS: tuple[StackAction, ...] = ("create", "update", "delete")


@pytest.fixture(autouse=True)
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test runs inside moto with no profile from the environment."""
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with moto_aws():
        yield


@pytest.fixture
def backend() -> CloudFormationBackend:
    return CloudFormationBackend(poll_interval=0.01, backoff=0.01, attempts=3)


class TestStatusTable:
    def test_every_status_in_botocore_is_mapped(self) -> None:
        """Every StackStatus in botocore's model has a meaning, and ends each action in a result or a typed error."""
        enum = boto3.client("cloudformation", region_name=REGION).meta.service_model.shape_for("StackStatus").enum
        assert set(enum) <= set(STATUS), sorted(set(enum) - set(STATUS))
        for status in enum:
            for action in ACTIONS:
                try:
                    result_of(action, status, stack="s")
                except (DeploymentFailed, ResourceBusy) as exc:
                    assert (type(exc) is ResourceBusy) == (STATUS[status] is Standing.BUSY)
                else:
                    assert status == SUCCEEDED[action]

    def test_only_the_actions_own_completion_succeeds(self) -> None:
        """A create succeeds only in CREATE_COMPLETE, an update only in UPDATE_COMPLETE, a delete in DELETE_COMPLETE."""
        for action, good in zip(ACTIONS, ("CREATE_COMPLETE", "UPDATE_COMPLETE", "DELETE_COMPLETE"), strict=True):
            result_of(action, good)
            with pytest.raises(DeploymentFailed, match="UPDATE_ROLLBACK_COMPLETE: because"):
                result_of(action, "UPDATE_ROLLBACK_COMPLETE", "because")

    def test_unknown_future_statuses_are_judged_by_suffix(self) -> None:
        """A status newer than the table waits when in progress and needs a human when failed."""
        assert cfn.standing("MOVE_IN_PROGRESS") is Standing.BUSY
        assert cfn.standing("MOVE_FAILED") is Standing.STUCK


class TestApply:
    def test_create_then_update_then_no_changes(self, tmp_path: Path, backend: CloudFormationBackend) -> None:
        """A new stack is created, a changed parameter updates it, and the same input again is a no-changes result."""
        run = make_run(tmp_path, PARAMETER_TEMPLATE, parameters={"Greeting": "hi"})
        created = backend.apply(run)
        assert (created.changes, created.no_changes) == (1, False)
        assert created.summary == ["+ Add Setting (AWS::SSM::Parameter)"]
        assert created.outputs == {"SettingName": "/strata-test/strata-dev-settings/greeting", "Greeting": "hi"}

        updated = backend.apply(make_run(tmp_path, PARAMETER_TEMPLATE, parameters={"Greeting": "hey"}))
        assert updated.no_changes is False and updated.changes >= 1
        assert updated.outputs["Greeting"] == "hey"
        assert stack_status(client_of(run), "strata-dev-settings") == "UPDATE_COMPLETE"

        again = backend.apply(make_run(tmp_path, PARAMETER_TEMPLATE, parameters={"Greeting": "hey"}, flow_run_id="r2"))
        assert again.no_changes is True
        assert again.outputs["Greeting"] == "hey"

    def test_no_updates_answer_is_a_result(self, tmp_path: Path, backend: CloudFormationBackend) -> None:
        """CloudFormation's 'No updates are to be performed' becomes Outcome(no_changes=True) with the outputs."""
        backend.apply(make_run(tmp_path, PARAMETER_TEMPLATE))
        run = make_run(tmp_path, PARAMETER_TEMPLATE)
        run.impl = run.impl.model_copy(update={"tags": {"team": "platform"}})
        answer_with_error(client_of(run), "UpdateStack", "ValidationError", "No updates are to be performed.")
        outcome = backend.apply(run)
        assert outcome.no_changes is True
        assert outcome.outputs["Greeting"] == "hello"

    def test_parameters_tags_and_capabilities(self, tmp_path: Path, backend: CloudFormationBackend) -> None:
        """Lists are comma-joined, bools and numbers written as text, strata tags set, and impl tags kept."""
        template = PARAMETER_TEMPLATE.replace(
            "Parameters:\n",
            "Parameters:\n  Zones:\n    Type: CommaDelimitedList\n  Count:\n    Type: Number\n"
            "  Enabled:\n    Type: String\n    AllowedValues: ['true', 'false']\n",
        ).replace(
            "Value: !Ref Greeting",
            "Value: !Join ['-', [!Ref Greeting, !Ref Count, !Ref Enabled, !Join [',', !Ref Zones]]]",
        )
        run = make_run(
            tmp_path, template, parameters={"Zones": ["a", "b"], "Count": 3, "Enabled": True}, flow_run_id="flow-1"
        )
        run.impl = run.impl.model_copy(update={"tags": {"team": "platform"}})
        outcome = backend.apply(run)
        assert outcome.outputs["Greeting"] == "hello-3-true-a,b"
        stack = client_of(run).describe_stacks(StackName="strata-dev-settings")["Stacks"][0]
        tags = {t["Key"]: t["Value"] for t in stack["Tags"]}
        assert tags == {
            "strata:env": "dev",
            "strata:component": "settings",
            "strata:flow-run": "flow-1",
            "team": "platform",
        }

    def test_stack_events_are_logged(self, tmp_path: Path, backend: CloudFormationBackend) -> None:
        """Stack events reach run.log as 'STATUS LogicalId Type' lines."""
        lines: list[str] = []
        backend.apply(make_run(tmp_path, PARAMETER_TEMPLATE, log=lines))
        assert "CREATE_COMPLETE strata-dev-settings AWS::CloudFormation::Stack" in lines

    def test_outputs_and_exists(self, tmp_path: Path, backend: CloudFormationBackend) -> None:
        """outputs() reads the stack's outputs and exists() is True only while the stack is deployed."""
        run = make_run(tmp_path, PARAMETER_TEMPLATE)
        assert backend.exists(run) is False
        assert backend.outputs(run) == {}
        backend.apply(run)
        assert backend.exists(run) is True
        assert backend.outputs(run)["Greeting"] == "hello"

    def test_large_template_goes_through_the_bucket(self, tmp_path: Path, backend: CloudFormationBackend) -> None:
        """A template over 51,200 bytes is uploaded to the template bucket and passed as TemplateURL."""
        big = PARAMETER_TEMPLATE + "".join(f"# padding line {i:05d} {'x' * 60}\n" for i in range(800))
        boto3.client("s3", region_name=REGION).create_bucket(Bucket="strata-templates")
        run = make_run(tmp_path, big, target=AwsTarget(region=REGION, template_bucket="strata-templates"))
        assert backend.apply(run).outputs["Greeting"] == "hello"
        keys = [
            o["Key"]
            for o in boto3.client("s3", region_name=REGION).list_objects_v2(Bucket="strata-templates")["Contents"]
        ]
        assert len(keys) == 1 and keys[0].startswith("strataflow/strata-dev-settings/")

    def test_large_template_without_a_bucket_is_a_template_error(
        self, tmp_path: Path, backend: CloudFormationBackend
    ) -> None:
        """Without template_bucket a template over the inline limit is refused, saying what to set."""
        big = PARAMETER_TEMPLATE + "#" * 52_000 + "\n"
        with pytest.raises(TemplateError, match="template_bucket"):
            backend.apply(make_run(tmp_path, big))


class TestTemplateErrors:
    def test_unresolved_reference_is_a_template_error_not_retried(
        self, tmp_path: Path, backend: CloudFormationBackend
    ) -> None:
        """An unresolved !Ref fails validation with CloudFormation's (cfn-lint's) message, once, before stack calls."""
        run = make_run(tmp_path, PARAMETER_TEMPLATE.replace("Value: !Ref Greeting", "Value: !Ref Nowhere", 1))
        validations = count_calls(client_of(run), "ValidateTemplate")
        creates = count_calls(client_of(run), "CreateStack")
        with pytest.raises(TemplateError) as caught:
            backend.apply(run)
        cause = caught.value.__cause__
        assert isinstance(cause, ClientError) and cause.response["Error"]["Code"] == "ValidationError"
        assert cause.response["Error"]["Message"] in str(caught.value)
        assert "Nowhere" in str(caught.value)
        assert (len(validations), len(creates)) == (1, 0)

    def test_yaml_syntax_error_is_a_template_error(self, tmp_path: Path, backend: CloudFormationBackend) -> None:
        """A template that is not YAML is refused by validation as a TemplateError."""
        with pytest.raises(TemplateError, match=r"templates/settings\.yaml"):
            backend.apply(make_run(tmp_path, "Resources: [unclosed\n"))

    def test_missing_template_file(self, tmp_path: Path, backend: CloudFormationBackend) -> None:
        """A template path that does not exist is a TemplateError naming it."""
        run = make_run(tmp_path, PARAMETER_TEMPLATE)
        run.path.unlink()
        with pytest.raises(TemplateError, match="cannot read template"):
            backend.apply(run)


class TestFailures:
    def test_failed_create_reports_the_resource_reason_and_next_apply_recreates(
        self, tmp_path: Path, backend: CloudFormationBackend
    ) -> None:
        """A create AWS rolled back is DeploymentFailed with the resource's reason; the next apply recreates it."""
        run = make_run(tmp_path, PARAMETER_TEMPLATE)
        reason = 'Resource handler returned message: "Parameter name is reserved" (HandlerErrorCode: InvalidRequest)'
        fail_create_like_aws(client_of(run), logical_id="Setting", resource_type="AWS::SSM::Parameter", reason=reason)
        with pytest.raises(DeploymentFailed) as caught:
            backend.apply(run)
        assert "ROLLBACK_COMPLETE" in str(caught.value)
        assert f"Setting (AWS::SSM::Parameter) CREATE_FAILED: {reason}" in str(caught.value)
        assert stack_status(client_of(run), "strata-dev-settings") == "ROLLBACK_COMPLETE"

        lines: list[str] = []
        outcome = backend.apply(make_run(tmp_path, PARAMETER_TEMPLATE, log=lines))
        assert outcome.outputs["Greeting"] == "hello"
        assert stack_status(client_of(run), "strata-dev-settings") == "CREATE_COMPLETE"
        assert any("ROLLBACK_COMPLETE" in line and "created again" in line for line in lines)

    def test_resource_failing_inside_moto_is_a_deployment_failure_and_recovers(
        self, tmp_path: Path, backend: CloudFormationBackend
    ) -> None:
        """moto fails a taken bucket name synchronously: DeploymentFailed with its reason; later apply works."""
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket="strata-test-taken-bucket")
        run = make_run(tmp_path, BUCKET_TEMPLATE)
        with pytest.raises(DeploymentFailed, match="bucket name is not available"):
            backend.apply(run)
        assert stack_status(client_of(run), "strata-dev-settings") is None
        s3.delete_bucket(Bucket="strata-test-taken-bucket")
        assert backend.apply(run).changes == 1

    def test_delete_failed_stack_is_refused_with_its_reason(
        self, tmp_path: Path, backend: CloudFormationBackend
    ) -> None:
        """A stack in DELETE_FAILED is not touched: DeploymentFailed names the status and the resource's reason."""
        run = make_run(tmp_path, PARAMETER_TEMPLATE)
        backend.apply(run)
        put_stack_in("strata-dev-settings", "DELETE_FAILED", "Parameter is in use")
        with pytest.raises(DeploymentFailed, match=r"DELETE_FAILED: Setting .*Parameter is in use"):
            backend.apply(run)

    def test_update_rollback_complete_is_updated(self, tmp_path: Path, backend: CloudFormationBackend) -> None:
        """A stack whose last update rolled back is usable: the next apply updates it."""
        backend.apply(make_run(tmp_path, PARAMETER_TEMPLATE))
        put_stack_in("strata-dev-settings", "UPDATE_ROLLBACK_COMPLETE")
        outcome = backend.apply(make_run(tmp_path, PARAMETER_TEMPLATE, parameters={"Greeting": "again"}))
        assert outcome.outputs["Greeting"] == "again"

    def test_stack_busy_with_another_actor_times_out(self, tmp_path: Path, backend: CloudFormationBackend) -> None:
        """A stack another actor keeps UPDATE_IN_PROGRESS is waited for, up to the run's timeout, then ResourceBusy."""
        backend.apply(make_run(tmp_path, PARAMETER_TEMPLATE))
        put_stack_in("strata-dev-settings", "UPDATE_IN_PROGRESS")
        lines: list[str] = []
        with pytest.raises(ResourceBusy, match="UPDATE_IN_PROGRESS"):
            backend.apply(make_run(tmp_path, PARAMETER_TEMPLATE, timeout=0.2, log=lines))
        assert any("waiting for another operation" in line for line in lines)

    def test_stack_busy_with_another_actor_is_waited_for(self, tmp_path: Path, backend: CloudFormationBackend) -> None:
        """When the other actor's operation finishes while we wait, apply proceeds."""
        backend.apply(make_run(tmp_path, PARAMETER_TEMPLATE))
        put_stack_in("strata-dev-settings", "UPDATE_IN_PROGRESS")
        run = make_run(tmp_path, PARAMETER_TEMPLATE, parameters={"Greeting": "later"}, timeout=5)
        polls = count_calls(client_of(run), "DescribeStacks")

        def finish(**kwargs: Any) -> None:
            if len(polls) == 3:
                put_stack_in("strata-dev-settings", "UPDATE_COMPLETE")

        client_of(run).meta.events.register("before-call.cloudformation.DescribeStacks", finish)
        assert backend.apply(run).outputs["Greeting"] == "later"


class TestAccount:
    def test_other_account_is_refused_before_any_stack_is_touched(
        self, tmp_path: Path, backend: CloudFormationBackend
    ) -> None:
        """Credentials reaching another account raise AccountMismatch naming both; no stack call is made."""
        run = make_run(tmp_path, PARAMETER_TEMPLATE, target=AwsTarget(region=REGION, account_id="111111111111"))
        creates = count_calls(client_of(run), "CreateStack")
        with pytest.raises(AccountMismatch) as caught:
            backend.apply(run)
        assert "111111111111" in str(caught.value) and ACCOUNT in str(caught.value)
        assert creates == [] and stack_status(client_of(run), "strata-dev-settings") is None

    def test_matching_account_is_checked_once_per_process(self, tmp_path: Path, backend: CloudFormationBackend) -> None:
        """The caller identity is asked once per client and account, not on every apply."""
        target = AwsTarget(region=REGION, account_id=ACCOUNT)
        run = make_run(tmp_path, PARAMETER_TEMPLATE, target=target)
        asked = count_calls(client_of(run, "sts"), "GetCallerIdentity")
        backend.apply(run)
        backend.apply(make_run(tmp_path, PARAMETER_TEMPLATE, target=target, parameters={"Greeting": "x"}))
        assert len(asked) == 1

    def test_deploy_role_in_the_target_account_is_assumed(self, tmp_path: Path, backend: CloudFormationBackend) -> None:
        """With role_arn the stack is created as that role, in the role's account, which must be the environment's."""
        target = AwsTarget(region=REGION, account_id="111111111111", role_arn="arn:aws:iam::111111111111:role/strata-deploy")
        run = make_run(tmp_path, PARAMETER_TEMPLATE, target=target)
        backend.apply(run)
        assert stack_status(client_of(run), "strata-dev-settings") == "CREATE_COMPLETE"

    def test_deploy_role_of_another_account_is_refused(self, tmp_path: Path, backend: CloudFormationBackend) -> None:
        """A role in another account than the environment's is refused before any stack is touched."""
        target = AwsTarget(region=REGION, account_id="222222222222", role_arn="arn:aws:iam::111111111111:role/strata-deploy")
        run = make_run(tmp_path, PARAMETER_TEMPLATE, target=target)
        with pytest.raises(AccountMismatch) as caught:
            backend.apply(run)
        assert "222222222222" in str(caught.value) and "111111111111" in str(caught.value)
        assert stack_status(client_of(run), "strata-dev-settings") is None

    def test_plan_does_not_check_the_account(self, tmp_path: Path, backend: CloudFormationBackend) -> None:
        """A plan changes nothing, so it does not ask who the credentials belong to."""
        run = make_run(tmp_path, PARAMETER_TEMPLATE, target=AwsTarget(region=REGION, account_id="111111111111"))
        assert backend.plan(run).changes == 1


class TestRetries:
    def test_throttling_is_retried_with_backoff(self, tmp_path: Path, backend: CloudFormationBackend) -> None:
        """Two Throttling answers to CreateStack are retried and the third attempt creates the stack."""
        lines: list[str] = []
        run = make_run(tmp_path, PARAMETER_TEMPLATE, log=lines)
        creates = count_calls(client_of(run), "CreateStack")
        answer_with_error(client_of(run), "CreateStack", "Throttling", "Rate exceeded", times=2)
        assert backend.apply(run).outputs["Greeting"] == "hello"
        assert len(creates) == 3
        assert sum("retrying in" in line for line in lines) == 2

    def test_retries_are_bounded(self, tmp_path: Path, backend: CloudFormationBackend) -> None:
        """Throttling that never stops ends in TransientError after the configured attempts."""
        run = make_run(tmp_path, PARAMETER_TEMPLATE)
        creates = count_calls(client_of(run), "CreateStack")
        answer_with_error(client_of(run), "CreateStack", "ThrottlingException", "Rate exceeded", times=10)
        with pytest.raises(TransientError, match="Rate exceeded"):
            backend.apply(run)
        assert len(creates) == 3

    def test_server_errors_are_transient(self, tmp_path: Path, backend: CloudFormationBackend) -> None:
        """An HTTP 503 is retried like throttling."""
        run = make_run(tmp_path, PARAMETER_TEMPLATE)
        answer_with_error(client_of(run), "DescribeStacks", "ServiceUnavailable", "try later", times=1, status=503)
        assert backend.apply(run).changes == 1

    def test_permanent_error_is_not_retried(self, tmp_path: Path, backend: CloudFormationBackend) -> None:
        """AccessDenied is a BackendError raised at once, without retries."""
        run = make_run(tmp_path, PARAMETER_TEMPLATE)
        creates = count_calls(client_of(run), "CreateStack")
        answer_with_error(
            client_of(run), "CreateStack", "AccessDenied", "not authorized to perform CreateStack", times=5
        )
        with pytest.raises(BackendError, match="AccessDenied") as caught:
            backend.apply(run)
        assert not isinstance(caught.value, TransientError)
        assert len(creates) == 1

    def test_credentials_never_appear_in_messages(self, tmp_path: Path, backend: CloudFormationBackend) -> None:
        """A credential echoed in an AWS error message is masked in the raised error."""
        secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
        run = make_run(
            tmp_path,
            PARAMETER_TEMPLATE,
            credentials={
                "aws_access_key_id": SecretStr("AKIAIOSFODNN7EXAMPLE"),
                "aws_secret_access_key": SecretStr(secret),
            },
        )
        answer_with_error(client_of(run), "CreateStack", "AccessDenied", f"bad signature for {secret}")
        with pytest.raises(BackendError) as caught:
            backend.apply(run)
        assert secret not in str(caught.value) and "***" in str(caught.value)

    @pytest.mark.parametrize(
        ("code", "status", "operation", "expected"),
        [
            ("Throttling", 400, "DescribeStacks", TransientError),
            ("RequestLimitExceeded", 400, "DescribeStacks", TransientError),
            ("TooManyRequestsException", 400, "DescribeStacks", TransientError),
            ("InternalFailure", 500, "CreateStack", TransientError),
            ("ValidationError", 400, "ValidateTemplate", TemplateError),
            ("InsufficientCapabilitiesException", 400, "CreateStack", TemplateError),
            ("ValidationError", 400, "UpdateStack", ResourceBusy),
            ("AccessDenied", 403, "CreateStack", BackendError),
            ("BucketAlreadyExists", 409, "CreateStack", DeploymentFailed),
        ],
    )
    def test_error_mapping(self, code: str, status: int, operation: str, expected: type[BackendError]) -> None:
        """Each botocore ClientError maps to the strataflow error its code and operation mean, chained from it."""
        message = "Stack is in UPDATE_IN_PROGRESS state and can not be updated." if expected is ResourceBusy else "no"
        error = ClientError(
            {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}, operation
        )
        with pytest.raises(BackendError) as caught, cfn.translated(operation, subject="s"):
            raise error
        assert type(caught.value) is expected
        assert caught.value.__cause__ is error


class TestPlan:
    def test_plan_of_a_new_stack(self, tmp_path: Path, backend: CloudFormationBackend) -> None:
        """A plan of a new stack lists the resources to add and leaves no stack or change set behind."""
        run = make_run(tmp_path, TWO_RESOURCE_TEMPLATE, action="plan")
        outcome = backend.plan(run)
        assert (outcome.changes, outcome.no_changes) == (2, False)
        assert sorted(outcome.summary) == ["+ Add Setting (AWS::SSM::Parameter)", "+ Add Topic (AWS::SNS::Topic)"]
        assert stack_status(client_of(run), "strata-dev-settings") is None
        assert not client_of(run).list_change_sets(StackName="strata-dev-settings")["Summaries"]

    def test_plan_of_a_changed_parameter(self, tmp_path: Path, backend: CloudFormationBackend) -> None:
        """A changed parameter plans a modification, deletes its change set and leaves the stack as it was."""
        backend.apply(make_run(tmp_path, TWO_RESOURCE_TEMPLATE))
        run = make_run(tmp_path, TWO_RESOURCE_TEMPLATE, parameters={"Greeting": "changed"}, action="plan")
        outcome = backend.plan(run)
        assert outcome.no_changes is False and outcome.changes >= 1
        assert all(line.startswith("~ Modify ") for line in outcome.summary)  # moto's diff names odd resources
        assert stack_status(client_of(run), "strata-dev-settings") == "CREATE_COMPLETE"
        assert backend.outputs(run)["Greeting"] == "hello"
        assert not client_of(run).list_change_sets(StackName="strata-dev-settings")["Summaries"]

    def test_plan_of_an_added_resource(self, tmp_path: Path, backend: CloudFormationBackend) -> None:
        """A resource added to the template is planned as '+ Add'."""
        backend.apply(make_run(tmp_path, PARAMETER_TEMPLATE))
        outcome = backend.plan(make_run(tmp_path, TWO_RESOURCE_TEMPLATE, action="plan"))
        assert outcome.summary == ["+ Add Topic (AWS::SNS::Topic)"]

    def test_plan_without_changes(self, tmp_path: Path, backend: CloudFormationBackend) -> None:
        """Planning what is deployed is a no-changes result."""
        backend.apply(make_run(tmp_path, PARAMETER_TEMPLATE, parameters={"Greeting": "same"}))
        outcome = backend.plan(make_run(tmp_path, PARAMETER_TEMPLATE, parameters={"Greeting": "same"}, action="plan"))
        assert outcome.no_changes is True and outcome.changes == 0

    def test_plan_with_unknown_parameters_of_a_new_stack(self, tmp_path: Path, backend: CloudFormationBackend) -> None:
        """Parameters known only after apply cannot reach CloudFormation: the plan lists the template's resources."""
        run = make_run(tmp_path, TWO_RESOURCE_TEMPLATE, parameters={"Greeting": KNOWN_AFTER_APPLY}, action="plan")
        change_sets = count_calls(client_of(run), "CreateChangeSet")
        outcome = backend.plan(run)
        assert (
            outcome.summary[0] == "stack strata-dev-settings will be created (parameters known after apply: Greeting)"
        )
        assert outcome.summary[1:] == ["+ Add Setting (AWS::SSM::Parameter)", "+ Add Topic (AWS::SNS::Topic)"]
        assert outcome.changes == 2 and change_sets == []

    def test_plan_with_unknown_parameters_uses_previous_values(
        self, tmp_path: Path, backend: CloudFormationBackend
    ) -> None:
        """For an existing stack an unknown parameter keeps its previous value in the change set."""
        backend.apply(make_run(tmp_path, PARAMETER_TEMPLATE, parameters={"Greeting": "before"}))
        run = make_run(
            tmp_path, TWO_RESOURCE_TEMPLATE, parameters={"Greeting": f"x-{KNOWN_AFTER_APPLY}"}, action="plan"
        )
        assert backend.plan(run).summary == ["+ Add Topic (AWS::SNS::Topic)"]

    def test_plan_of_a_rolled_back_stack(self, tmp_path: Path, backend: CloudFormationBackend) -> None:
        """A stack whose create rolled back is planned as deleted and created again."""
        run = make_run(tmp_path, PARAMETER_TEMPLATE)
        fail_create_like_aws(client_of(run), logical_id="Setting", resource_type="AWS::SSM::Parameter", reason="no")
        with pytest.raises(DeploymentFailed):
            backend.apply(run)
        outcome = backend.plan(run)
        assert outcome.summary[0].endswith("is ROLLBACK_COMPLETE: it will be deleted and created again")
        assert outcome.changes == 1


class TestDestroy:
    def test_destroy(self, tmp_path: Path, backend: CloudFormationBackend) -> None:
        """Destroy deletes the stack, waits for it and lists what it removed."""
        run = make_run(tmp_path, PARAMETER_TEMPLATE)
        backend.apply(run)
        outcome = backend.destroy(run)
        assert outcome.summary == ["- Remove Setting (AWS::SSM::Parameter)"] and outcome.changes == 1
        assert stack_status(client_of(run), "strata-dev-settings") is None
        assert backend.exists(run) is False

    def test_destroy_of_a_missing_stack_is_no_changes(self, tmp_path: Path, backend: CloudFormationBackend) -> None:
        """Destroying what does not exist is a no-changes result that says the stack does not exist."""
        outcome = backend.destroy(make_run(tmp_path, PARAMETER_TEMPLATE))
        assert outcome.no_changes is True
        assert outcome.summary == ["stack strata-dev-settings does not exist: nothing to destroy"]

    def test_destroy_refused_while_exports_are_imported(self, tmp_path: Path, backend: CloudFormationBackend) -> None:
        """A stack whose export another stack imports is not deleted; the error names the importer."""
        exporter = make_run(tmp_path, EXPORTING_TEMPLATE, component="exporter")
        backend.apply(exporter)
        backend.apply(
            make_run(tmp_path, IMPORTING_TEMPLATE, component="importer", parameters={"Source": "strata-dev-exporter"})
        )
        with pytest.raises(DeploymentFailed, match="imported by strata-dev-importer"):
            backend.destroy(exporter)
        assert stack_status(client_of(exporter), "strata-dev-exporter") == "CREATE_COMPLETE"
        backend.destroy(make_run(tmp_path, IMPORTING_TEMPLATE, component="importer"))
        assert backend.destroy(exporter).changes == 1

    def test_destroy_asks_list_imports_where_aws_has_it(self, tmp_path: Path, backend: CloudFormationBackend) -> None:
        """Against AWS the importers come from ListImports."""
        exporter = make_run(tmp_path, EXPORTING_TEMPLATE, component="exporter")
        backend.apply(exporter)

        def imports(**kwargs: Any) -> tuple[AWSResponse, dict[str, Any]]:
            body = {"Imports": ["team-stack"], "ResponseMetadata": {"HTTPStatusCode": 200}}
            return AWSResponse("https://cloudformation.amazonaws.com/", 200, {}, None), body

        client_of(exporter).meta.events.register("before-call.cloudformation.ListImports", imports)
        with pytest.raises(DeploymentFailed, match="imported by team-stack"):
            backend.destroy(exporter)


MEANING_TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  Names: {Type: CommaDelimitedList}
  Zones: {Type: "List<String>"}
  Count: {Type: Number}
  Ratio: {Type: Number}
  Token: {Type: String, Default: none}
  Hidden: {Type: String, NoEcho: true, Default: none}
Resources:
  Setting:
    Type: AWS::SSM::Parameter
    Properties:
      Name: !Sub /strata-test/${AWS::StackName}/values
      Type: String
      Value: !Join ["-", [!Join [",", !Ref Names], !Join [",", !Ref Zones], !Ref Count, !Ref Ratio, !Ref Token, !Ref Hidden]]
"""


class TestDrift:
    def test_endpoint_without_drift_detection(self, tmp_path: Path, backend: CloudFormationBackend) -> None:
        """moto has no drift detection: drift() compares the stack's parameters only, and finds none changed."""
        run = make_run(tmp_path, PARAMETER_TEMPLATE, parameters={"Greeting": "hi"})
        backend.apply(run)
        assert (backend.drift(run).supported, backend.drift(run).drifted) == (True, False)

    def test_parameter_changed_behind_our_back_is_drift(self, tmp_path: Path, backend: CloudFormationBackend) -> None:
        """An update-stack by hand with another parameter value shows as drift naming the parameter."""
        run = make_run(tmp_path, PARAMETER_TEMPLATE, parameters={"Greeting": "hi"})
        backend.apply(run)
        client_of(run).update_stack(
            StackName="strata-dev-settings",
            UsePreviousTemplate=True,
            Parameters=[{"ParameterKey": "Greeting", "ParameterValue": "tampered"}],
        )
        drift = backend.drift(run)
        assert drift.drifted is True
        assert drift.resources == ["parameter Greeting (AWS::CloudFormation::Stack): applied 'hi', deployed 'tampered'"]

    def test_parameters_are_compared_by_meaning(self, tmp_path: Path, backend: CloudFormationBackend) -> None:
        """A list given as a list or as 'a, b', and a number, are in sync with how the stack spells them back."""
        parameters = {"Names": ["a", "b"], "Zones": "x, y", "Count": 3, "Ratio": "1.50"}
        run = make_run(tmp_path, MEANING_TEMPLATE, parameters=parameters)
        backend.apply(run)
        deployed = client_of(run).describe_stacks(StackName="strata-dev-settings")["Stacks"][0]["Parameters"]
        assert {p["ParameterKey"]: p["ParameterValue"] for p in deployed}["Names"] != "a,b"  # moto: "['a', 'b']"
        drift = backend.drift(run)
        assert (drift.drifted, drift.resources) == (False, [])
        changed = make_run(tmp_path, MEANING_TEMPLATE, parameters={**parameters, "Names": ["a", "c"]})
        assert backend.drift(changed).resources == [
            "parameter Names (AWS::CloudFormation::Stack): applied 'a,c', deployed \"['a', 'b']\""
        ]

    def test_secret_and_noecho_parameter_values_are_never_shown(self, tmp_path: Path, backend: CloudFormationBackend) -> None:
        """A secret parameter (not NoEcho) and a NoEcho one changed by hand are drift, named without either value."""
        secret = "it's a \"secret\" $x"
        parameters = {"Names": "a", "Zones": "x", "Count": 1, "Ratio": "1", "Token": secret, "Hidden": "hidden-1"}
        run = make_run(tmp_path, MEANING_TEMPLATE, parameters=parameters, secrets=frozenset({secret}))
        backend.apply(run)
        assert backend.drift(run).drifted is False
        client_of(run).update_stack(
            StackName="strata-dev-settings",
            UsePreviousTemplate=True,
            Parameters=[
                *({"ParameterKey": k, "UsePreviousValue": True} for k in ("Names", "Zones", "Count", "Ratio")),
                {"ParameterKey": "Token", "ParameterValue": "tampered-token"},
                {"ParameterKey": "Hidden", "ParameterValue": "tampered-hidden"},
            ],
        )
        drift = backend.drift(run)
        assert drift.drifted is True
        assert drift.resources == [
            f"parameter {key} (AWS::CloudFormation::Stack): the deployed value differs from the applied one "
            "(secret: not shown)"
            for key in ("Hidden", "Token")
        ]

    def test_drifted_resources_are_listed(self, tmp_path: Path, backend: CloudFormationBackend) -> None:
        """AWS's drift answers become 'LogicalId (Type): STATUS' lines."""
        run = make_run(tmp_path, PARAMETER_TEMPLATE)
        backend.apply(run)
        answers: dict[str, dict[str, Any]] = {
            "DetectStackDrift": {"StackDriftDetectionId": "d-1"},
            "DescribeStackDriftDetectionStatus": {
                "DetectionStatus": "DETECTION_COMPLETE",
                "StackDriftStatus": "DRIFTED",
            },
            "DescribeStackResourceDrifts": {
                "StackResourceDrifts": [
                    {
                        "LogicalResourceId": "Setting",
                        "ResourceType": "AWS::SSM::Parameter",
                        "StackResourceDriftStatus": "MODIFIED",
                    }
                ]
            },
        }
        for operation, body in answers.items():

            def answer(body: dict[str, Any] = body, **kwargs: Any) -> tuple[AWSResponse, dict[str, Any]]:
                return AWSResponse("https://cloudformation.amazonaws.com/", 200, {}, None), body

            client_of(run).meta.events.register(f"before-call.cloudformation.{operation}", answer)
        drift = backend.drift(run)
        assert (drift.supported, drift.drifted) == (True, True)
        assert drift.resources == ["Setting (AWS::SSM::Parameter): MODIFIED"]

    def test_missing_stack_has_drifted(self, tmp_path: Path, backend: CloudFormationBackend) -> None:
        """A stack deleted out of band is reported as drift."""
        drift = backend.drift(make_run(tmp_path, PARAMETER_TEMPLATE))
        assert drift.drifted is True and drift.resources == [
            "strata-dev-settings (AWS::CloudFormation::Stack): DELETED"
        ]


class TestTemplateLoader:
    def test_short_forms_load(self) -> None:
        """CloudFormation's short-form tags load as their long forms."""
        text = "A: !Ref X\nB: !GetAtt R.Arn\nC: !Select [0, !GetAZs '']\nD: !Sub '${X}'\n"
        text += "E: !If [C, {a: 1}, !Ref AWS::NoValue]\n"
        assert load_template(text) == {
            "A": {"Ref": "X"},
            "B": {"Fn::GetAtt": ["R", "Arn"]},
            "C": {"Fn::Select": [0, {"Fn::GetAZs": ""}]},
            "D": {"Fn::Sub": "${X}"},
            "E": {"Fn::If": ["C", {"a": 1}, {"Ref": "AWS::NoValue"}]},
        }

    @given(tag=st.from_regex(r"[A-Z][A-Za-z]{0,15}", fullmatch=True), value=st.text(max_size=20))
    def test_any_tag_loads(self, tag: str, value: str) -> None:
        """Any !Tag with a scalar loads as {'Fn::Tag': value} (or {'Ref': value})."""
        loaded = load_template(yaml.safe_dump({"k": value}).replace("k: ", f"k: !{tag} ", 1))
        key = "Ref" if tag == "Ref" else f"Fn::{tag}"
        assert loaded["k"] == {key: value.split(".", 1) if tag == "GetAtt" else value}

    def test_not_a_mapping_is_a_template_error(self) -> None:
        """A template that is a list or broken YAML is a TemplateError."""
        for text in ("- a\n", "a: [b\n"):
            with pytest.raises(TemplateError):
                load_template(text)


class TestSampleTemplates:
    @pytest.mark.parametrize("name", SAMPLE_TEMPLATES)
    def test_template_validates_and_plans(self, name: str, backend: CloudFormationBackend) -> None:
        """Each sample template passes CloudFormation's validation (cfn-lint in moto) and plans its resources."""
        declared = load_template((SAMPLE_CONFIG / "templates" / "aws" / f"{name}.yaml").read_text())
        required = {
            key: KNOWN_AFTER_APPLY for key, spec in declared.get("Parameters", {}).items() if "Default" not in spec
        }
        outcome = backend.plan(sample_run(name, required))
        assert outcome.changes == len(declared["Resources"])
        assert f"+ Add {next(iter(declared['Resources']))} " in "\n".join(outcome.summary)

    @pytest.mark.parametrize("name", SAMPLE_TEMPLATES)
    def test_every_resource_type_is_really_created_by_moto(self, name: str) -> None:
        """moto 'creates' unknown types by doing nothing, so every type used must be one moto implements."""
        resources = load_template((SAMPLE_CONFIG / "templates" / "aws" / f"{name}.yaml").read_text())["Resources"]
        unknown = {spec["Type"] for spec in resources.values()} - set(get_model_map())
        assert not unknown

    def test_platform_deploys_in_dependency_order(self, backend: CloudFormationBackend) -> None:
        """The seven templates create in moto, each fed its upstreams' outputs; the smoke test accepts the Endpoint."""
        out: dict[str, dict[str, Any]] = {}

        def apply(name: str, parameters: dict[str, Any] | None = None) -> dict[str, Any]:
            run = sample_run(name, parameters)
            out[name] = backend.apply(run).outputs
            assert stack_status(client_of(run), f"strata-dev-{name}") == "CREATE_COMPLETE"
            return out[name]

        network = apply(
            "network",
            {
                "VpcCidr": "10.1.0.0/16",
                "PublicSubnetCidrs": "10.1.0.0/20,10.1.16.0/20",
                "PrivateSubnetCidrs": "10.1.128.0/20,10.1.144.0/20",
            },
        )
        identity = apply("identity")
        registry = apply("registry")
        clusters = apply(
            "clusters",
            {
                "SubnetIds": network["PrivateSubnetIds"].split(","),
                "SecurityGroupId": network["SecurityGroupId"],
                "ClusterRoleArn": identity["ClusterRoleArn"],
                "NodeInstanceProfileArn": identity["NodeInstanceProfileArn"],
                "NodeCount": 2,
            },
        )
        apply("observability", {"VpcId": network["VpcId"]})
        addons = apply("addons", {"ClusterName": clusters["ClusterName"]})
        platform = apply(
            "platform",
            {
                "ClusterName": addons["ClusterName"],
                "AddonsSettingsPath": addons["SettingsPath"],
                "VpcId": network["VpcId"],
                "PublicSubnetIds": network["PublicSubnetIds"],
                "PrivateSubnetIds": network["PrivateSubnetIds"],
                "SecurityGroupId": network["SecurityGroupId"],
                "RepositoryUri": registry["RepositoryUri"],
                "ExecutionRoleArn": clusters["ExecutionRoleArn"],
                "DesiredCount": 1,
            },
        )
        assert set(out["network"]) >= {"VpcId", "PrivateSubnetIds", "SecurityGroupId"}
        assert set(identity) >= {"ClusterRoleArn", "NodeRoleArn"} and set(registry) >= {
            "RepositoryUri",
            "RepositoryArn",
        }
        assert set(clusters) >= {"ClusterName", "ClusterArn"} and set(out["observability"]) >= {
            "LogGroupName",
            "AlarmTopicArn",
        }
        assert platform["Endpoint"].startswith("http://")
        ecs = boto3.client("ecs", region_name=REGION)
        assert ecs.list_services(cluster=clusters["ClusterName"])["serviceArns"]
        groups = boto3.client("autoscaling", region_name=REGION).describe_auto_scaling_groups()["AutoScalingGroups"]
        assert [g["DesiredCapacity"] for g in groups] == [2]

        result = subprocess.run([str(SMOKE), platform["Endpoint"]], capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout.strip().splitlines()[-1])["checked"] == platform["Endpoint"] + "/healthz"


class TestSmokeScript:
    @pytest.mark.parametrize("endpoint", ["", "not a url", "ftp://host", "http://", 'http://a"b'])
    def test_bad_endpoints_fail(self, endpoint: str) -> None:
        """An empty or non-URL Endpoint fails the smoke test with a message on stderr."""
        result = subprocess.run([str(SMOKE), endpoint], capture_output=True, text=True, check=False)
        assert result.returncode == 1 and "smoke test failed" in result.stderr

    def test_url_with_path_passes(self) -> None:
        """A URL passes; the last stdout line is a JSON object naming the checked URL."""
        result = subprocess.run(
            ["sh", str(SMOKE), "https://platform.example.com/", "ready"], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0
        outputs = json.loads(result.stdout.strip().splitlines()[-1])
        assert outputs == {
            "checked": "https://platform.example.com/ready",
            "endpoint": "https://platform.example.com/",
            "fetched": False,
        }

    def test_usage(self) -> None:
        """Without arguments the script prints its usage and exits 2."""
        result = subprocess.run([str(SMOKE)], capture_output=True, text=True, check=False)
        assert result.returncode == 2 and "usage" in result.stderr
