"""The AWS sandbox runs templates as users write them: short tags with mapping operands, imports by Fn::Join."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import cli
from tests.support.configs import unique, write_platform

pytestmark = pytest.mark.usefixtures("prefect_api")

EXPORTER = """\
AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  Prefix: {Type: String}
Resources:
  Topic:
    Type: AWS::SNS::Topic
Outputs:
  FirstZone:
    Value: !Select [0, !GetAZs {Ref: "AWS::Region"}]
  TopicArn:
    Value: !Ref Topic
    Export:
      Name: !Join ["-", [!Ref Prefix, topic]]
"""

IMPORTER = """\
AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  Prefix: {Type: String}
Resources:
  Setting:
    Type: AWS::SSM::Parameter
    Properties:
      Name: !Sub "/strata-test/${AWS::StackName}"
      Type: String
      Value: !ImportValue {"Fn::Join": ["-", [!Ref Prefix, topic]]}
Outputs:
  Setting:
    Value: !Ref Setting
"""


def _config(root: Path, env: str) -> Path:
    def stack(template: str, **extra: object) -> dict[str, object]:
        return {"aws": {"backend": "cloudformation", "template": template, "parameters": {"Prefix": env}}, **extra}

    return write_platform(
        root,
        {"exporter": stack("templates/exporter.yaml"), "importer": stack("templates/importer.yaml", depends_on=["exporter"])},
        {env: {"clouds": {"aws": {"region": "us-east-1"}}}},
        files={"templates/exporter.yaml": EXPORTER, "templates/importer.yaml": IMPORTER},
    )


class TestShortTags:
    def test_mapping_operands_of_short_tags_deploy_on_the_sandbox(self, tmp_path: Path) -> None:
        """`!GetAZs {Ref: ...}` and `!ImportValue {Fn::Join: ...}` apply on moto, with the right outputs."""
        env = unique("sb")
        config = _config(tmp_path / "cfg", env)
        result = cli("apply", env, "--config", str(config), "--sandbox", "--json")
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        assert report["components"]["exporter"]["outputs"]["FirstZone"] == "us-east-1a"
        assert report["components"]["importer"]["outputs"]["Setting"] == f"/strata-test/strata-{env}-importer"

    def test_an_export_imported_through_fn_join_blocks_destroying_its_stack(self, tmp_path: Path) -> None:
        """Destroying the exporter alone is refused, naming the stack that imports it through Fn::Join."""
        env = unique("sj")
        config = _config(tmp_path / "cfg", env)
        assert cli("apply", env, "--config", str(config), "--sandbox").returncode == 0
        result = cli("destroy", env, "--config", str(config), "--sandbox", "--select", "exporter", "--json")
        assert result.returncode == 1, result.stderr
        error = json.loads(result.stdout)["components"]["exporter"]["error"]
        assert "imported by" in error and f"strata-{env}-importer" in error
        assert cli("destroy", env, "--config", str(config), "--sandbox").returncode == 0


LINT_WARNINGS = """\
AWSTemplateFormatVersion: "2010-09-09"
Resources:
  Role:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Statement: [{Effect: Allow, Principal: {Service: lambda.amazonaws.com}, Action: "sts:AssumeRole"}]
  Handler:
    Type: AWS::Lambda::Function
    DependsOn: Role
    Properties:
      Runtime: python3.7
      Handler: index.handler
      Role: !GetAtt Role.Arn
      Code: {ZipFile: "def handler(event, context): return None"}
Outputs:
  Handler:
    Value: !Ref Handler
"""
"""What AWS deploys and cfn-lint warns about: a retired Lambda runtime, a DependsOn a GetAtt implies."""

UNRESOLVED = """\
AWSTemplateFormatVersion: "2010-09-09"
Resources:
  Topic:
    Type: AWS::SNS::Topic
    Properties:
      TopicName: !Ref NotDeclared
"""


class TestValidateTemplateAsStrictAsAws:
    def _apply(self, root: Path, template: str) -> tuple[int, dict[str, object], str]:
        env = unique("sv")
        config = write_platform(
            root,
            {"fn": {"aws": {"backend": "cloudformation", "template": "templates/fn.yaml"}}},
            {env: {"clouds": {"aws": {"region": "us-east-1"}}}},
            files={"templates/fn.yaml": template},
        )
        result = cli("apply", env, "--config", str(config), "--sandbox", "--json")
        return result.returncode, json.loads(result.stdout or "{}"), result.stderr

    def test_cfn_lint_warnings_do_not_refuse_a_template_aws_deploys(self, tmp_path: Path) -> None:
        """moto alone refuses this at ValidateTemplate (W2531, W3005); the sandbox, like AWS, deploys it."""
        code, report, stderr = self._apply(tmp_path / "cfg", LINT_WARNINGS)
        assert code == 0, stderr
        assert report["components"]["fn"]["outputs"]["Handler"]  # type: ignore[index]

    def test_a_reference_to_nothing_is_still_refused_at_validate_template(self, tmp_path: Path) -> None:
        """What AWS refuses as a template format error, the sandbox refuses too, before any stack call."""
        code, report, _ = self._apply(tmp_path / "cfg", UNRESOLVED)
        assert code == 1
        error = report["components"]["fn"]["error"]  # type: ignore[index]
        assert "NotDeclared" in error and "CreateStack" not in error
