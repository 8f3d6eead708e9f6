"""The AWS sandbox: moto's server, with CloudFormation's ValidateTemplate as strict as AWS's.

moto's ValidateTemplate refuses a template on any cfn-lint finding, warnings included: a
Lambda runtime past its deprecation date, an engine version AWS has retired, a ``DependsOn``
a ``Ref`` already implies, a ``Fn::GetAZs`` cfn-lint cannot resolve. AWS's own
ValidateTemplate refuses only a template it cannot read: its format, its sections, resource
types it does not know, references to what the template does not declare, a dependency
cycle. The sandbox keeps cfn-lint's findings of those rules and drops the others, so a
public sample that deploys on AWS deploys here (``bench/cfn_samples.py`` measures it).

Run as ``python -m strataflow.sandbox.aws -H HOST -p PORT`` (what ``strataflow.server``
starts); every other AWS API is moto's, unchanged.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

AWS_REFUSES = frozenset(
    {
        "E0000",  # the template cannot be parsed
        "E0001",  # a transform or template error
        "E1001",  # an unknown top-level section, or a section of the wrong shape
        "E1010",  # Fn::GetAtt of a resource the template does not declare
        "E1012",  # Ref to a parameter or resource the template does not declare (cfn-lint 0.x)
        "E1020",  # Ref to a parameter or resource the template does not declare
        "E2001",  # a parameter without the keys a parameter needs
        "E2002",  # a parameter type CloudFormation does not know
        "E3001",  # a resource without a Type, or with keys a resource cannot have
        "E3004",  # a dependency cycle
        "E3005",  # DependsOn a resource the template does not declare
        "E3006",  # a resource type CloudFormation does not know
        "E6002",  # an output without a Value
    }
)
"""cfn-lint rules whose findings AWS's ValidateTemplate also refuses ("Template format error")."""


def refused_by_aws(match: Any) -> bool:
    """Whether AWS's ValidateTemplate would refuse what cfn-lint ``match`` found."""
    rule = getattr(match, "rule", None)
    return getattr(rule, "id", None) in AWS_REFUSES


def as_strict_as_aws(validate: Callable[[Any, str], list[Any]]) -> Callable[[Any, str], list[Any]]:
    """moto's ``CloudFormationBackend.validate_template`` keeping only what AWS refuses."""

    def validate_template(backend: Any, template: str) -> list[Any]:
        return [match for match in validate(backend, template) if refused_by_aws(match)]

    return validate_template


def main(argv: list[str] | None = None) -> None:
    from moto.cloudformation.models import CloudFormationBackend
    from moto.server import main as serve

    CloudFormationBackend.validate_template = as_strict_as_aws(CloudFormationBackend.validate_template)  # type: ignore[method-assign,assignment]
    serve(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
