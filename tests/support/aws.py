"""Helpers for tests of the CloudFormation backend against moto (``mock_aws``), never a mocked botocore.

``make_run`` builds a ``ComponentRun`` for a template written into a temporary config
directory (``sample_run`` for the sample platform's templates). The rest uses botocore's
own event system on the backend's (cached) clients: ``count_calls`` counts requests,
``answer_with_error`` makes AWS answer the next requests with an error response (throttling,
no updates, ...). moto creates resources synchronously and never rolls back, so
``fail_create_like_aws`` makes the next CreateStack end the way AWS ends a failed create and
``put_stack_in`` leaves a stack in a status only AWS reaches (DELETE_FAILED, ..._IN_PROGRESS).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from botocore.awsrequest import AWSResponse
from moto import mock_aws
from moto.cloudformation.models import Event, cloudformation_backends

from strataflow.backends.base import Action, ComponentRun
from strataflow.backends.cloudformation import CloudFormationImpl
from strataflow.backends.cloudformation import clients as cloudformation
from strataflow.config import AwsTarget

REPO = Path(__file__).resolve().parents[2]
SAMPLE_CONFIG = REPO / "config"
ACCOUNT = "123456789012"
"""The account moto answers for."""
REGION = "us-east-1"

PARAMETER_TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Description: one SSM parameter
Parameters:
  Greeting:
    Type: String
    Default: hello
Resources:
  Setting:
    Type: AWS::SSM::Parameter
    Properties:
      Name: !Sub /strata-test/${AWS::StackName}/greeting
      Type: String
      Value: !Ref Greeting
Outputs:
  SettingName:
    Value: !Ref Setting
  Greeting:
    Value: !Ref Greeting
"""

TWO_RESOURCE_TEMPLATE = PARAMETER_TEMPLATE.replace(
    "Outputs:",
    """  Topic:
    Type: AWS::SNS::Topic
Outputs:""",
)

EXPORTING_TEMPLATE = (
    PARAMETER_TEMPLATE
    + """\
    Export:
      Name: !Sub ${AWS::StackName}-greeting
"""
)

IMPORTING_TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  Source:
    Type: String
Resources:
  Copy:
    Type: AWS::SSM::Parameter
    Properties:
      Name: !Sub /strata-test/${AWS::StackName}/copy
      Type: String
      Value:
        Fn::ImportValue: !Sub ${Source}-greeting
"""

BUCKET_TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Resources:
  Bucket:
    Type: AWS::S3::Bucket
    Properties:
      BucketName: strata-test-taken-bucket
"""


@contextmanager
def moto_aws() -> Iterator[None]:
    """moto for every AWS service; the backend's clients and verified accounts are forgotten before and after
    (validated templates are kept: validation does not depend on what moto holds, and costs cfn-lint's time)."""
    cloudformation.clear_caches(validated=False)
    with mock_aws():
        yield
    cloudformation.clear_caches(validated=False)


def make_run(
    config_dir: Path,
    template: str,
    *,
    component: str = "settings",
    env: str = "dev",
    action: Action = "apply",
    parameters: dict[str, Any] | None = None,
    target: AwsTarget | None = None,
    log: list[str] | None = None,
    **fields: Any,
) -> ComponentRun:
    """A run of ``template`` (written to ``config_dir/templates/<component>.yaml``) in ``env``."""
    relative = f"templates/{component}.yaml"
    (config_dir / "templates").mkdir(parents=True, exist_ok=True)
    (config_dir / relative).write_text(template, encoding="utf-8")
    impl = CloudFormationImpl(backend="cloudformation", template=relative, parameters=parameters or {})
    return ComponentRun(
        env=env,
        cloud="aws",
        component=component,
        action=action,
        impl=impl,
        parameters=dict(parameters or {}),
        config_dir=config_dir,
        target=target or AwsTarget(region=REGION),
        log=log.append if log is not None else (lambda line: None),
        **fields,
    )


def sample_run(component: str, parameters: dict[str, Any] | None = None, *, env: str = "dev") -> ComponentRun:
    """A run of the sample platform's ``config/templates/aws/<component>.yaml``."""
    relative = f"templates/aws/{component}.yaml"
    impl = CloudFormationImpl(backend="cloudformation", template=relative, parameters=parameters or {})
    return ComponentRun(
        env=env,
        cloud="aws",
        component=component,
        action="apply",
        impl=impl,
        parameters=dict(parameters or {}),
        config_dir=SAMPLE_CONFIG,
        target=AwsTarget(region=REGION),
    )


def client_of(run: ComponentRun, service: str = "cloudformation") -> Any:
    """The very client the backend uses for ``run`` (its events are where tests hook in)."""
    assert isinstance(run.target, AwsTarget)
    return cloudformation.client(service, run.target, run.credentials)


def count_calls(client: Any, operation: str) -> list[str]:
    """A list that grows by one entry per ``operation`` request the client makes."""
    calls: list[str] = []

    def record(**kwargs: Any) -> None:
        calls.append(operation)

    client.meta.events.register(f"before-call.{_service(client)}.{operation}", record)
    return calls


def answer_with_error(
    client: Any, operation: str, code: str, message: str, *, times: int = 1, status: int = 400
) -> None:
    """Make AWS answer the next ``times`` ``operation`` requests with error ``code`` (botocore raises ClientError)."""
    remaining = [times]

    def answer(**kwargs: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        if remaining[0] <= 0:
            return None
        remaining[0] -= 1
        body = {
            "Error": {"Code": code, "Message": message, "Type": "Sender"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        }
        return AWSResponse("https://cloudformation.amazonaws.com/", status, {}, None), body

    client.meta.events.register(f"before-call.{_service(client)}.{operation}", answer)


def fail_create_like_aws(client: Any, *, logical_id: str, resource_type: str, reason: str) -> None:
    """Make the next CreateStack end as AWS ends a failed create: the resource CREATE_FAILED, then ROLLBACK_COMPLETE."""
    done = [False]

    def after(parsed: dict[str, Any], **kwargs: Any) -> None:
        if done[0] or "StackId" not in parsed:
            return
        done[0] = True
        stack = cloudformation_backends[ACCOUNT][REGION].stacks[parsed["StackId"]]
        for resource, kind, status, why in (
            (logical_id, resource_type, "CREATE_FAILED", reason),
            (
                stack.name,
                "AWS::CloudFormation::Stack",
                "ROLLBACK_IN_PROGRESS",
                "The following resource(s) failed to create: [" + logical_id + "]. Rollback requested by user.",
            ),
            (logical_id, resource_type, "DELETE_COMPLETE", None),
            (stack.name, "AWS::CloudFormation::Stack", "ROLLBACK_COMPLETE", None),
        ):
            physical = stack.stack_id if kind == "AWS::CloudFormation::Stack" else ""
            stack.events.append(Event(stack.stack_id, stack.name, resource, physical, kind, status, why, None))
        stack.events = [e for e in stack.events if e.resource_status != "CREATE_COMPLETE"]  # moto's own
        stack.status = "ROLLBACK_COMPLETE"

    client.meta.events.register("after-call.cloudformation.CreateStack", after)


def put_stack_in(name: str, status: str, reason: str | None = None) -> None:
    """Put moto's stack ``name`` into ``status`` (a failed resource event says ``reason``), as AWS may leave it."""
    stack = next(s for s in cloudformation_backends[ACCOUNT][REGION].stacks.values() if s.name == name)
    if reason:
        stack.events.append(Event(stack.stack_id, name, "Setting", "x", "AWS::SSM::Parameter", status, reason, None))
    stack.status = status


def stack_status(client: Any, name: str) -> str | None:
    """The stack's status, or None when there is no such stack."""
    for stack in client.list_stacks()["StackSummaries"]:
        if stack["StackName"] == name and stack["StackStatus"] != "DELETE_COMPLETE":
            return str(stack["StackStatus"])
    return None


def _service(client: Any) -> str:
    return str(client.meta.service_model.service_id.hyphenize())
