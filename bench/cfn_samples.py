"""Apply a directory of AWS CloudFormation sample templates on the sandbox moto server and report the share that work.

Usage::

    .venv/bin/python -m bench.cfn_samples DIR [--limit N] [--only SUBSTRING] [--json FILE] [--show-failures N]

Every ``*.yaml``, ``*.yml``, ``*.json`` and ``*.template`` file under ``DIR`` is read (YAML with
short-form tags such as ``!Ref``/``!Sub``/``!GetAtt``/``!If``, or JSON). Files that are not
templates (no ``Resources`` mapping, or not YAML/JSON at all) are skipped, and so are templates
that need a processor before CloudFormation's own engine sees them: SAM (``Transform:
AWS::Serverless-…``), other transforms and macros (a ``Transform`` section, ``Fn::Transform``,
``AWS::Include``) and Rain directives (``!Rain::Module`` …, expanded by ``rain pkg``).

"moto supports" a template when moto's CloudFormation implementation can create every
resource type it declares: the type is in moto's own model map
(``moto.cloudformation.parsing.get_model_map()``, read from the installed moto, never a list
kept here) or is a ``Custom::`` resource (moto's ``CustomModel``). The other templates are
counted, and the unsupported types they declare are listed, most frequent first.

Each supported template is applied, its text unmodified, through strataflow's real
CloudFormation backend against the sandbox moto server, as ``strata apply --sandbox`` does: a
config directory (outside the project) holding one component whose template is the sample's
text, loaded and validated by ``strataflow.load.load_platform``, then
``strataflow.runner.execute(Job(..., sandbox=server.sandbox("aws")))`` (parameter checks,
ValidateTemplate, CreateStack, polling). The moto server is this bench's own (a temporary
``STRATA_HOME``), reset before each template and stopped at the end (``server.stop()``).

Parameters: defaults are taken; required ones are generated from their declaration
(``AllowedValues``, ``AllowedPattern``, ``Min``/``MaxLength``, ``Min``/``MaxValue``, and what
their name asks for: a password, an e-mail, a CIDR, a bucket name). Parameters of AWS-specific
types name objects that must exist, so those objects are created in moto first with boto3 (a
VPC, two subnets, a security group, a key pair, an AMI, a hosted zone, a KMS key, an IAM role,
a route table and a VPC peering connection), and an ``AWS::SSM::Parameter::Value<…>``
parameter's SSM parameter is put when moto lacks it (an AMI id for image parameters). That is
setup, not a change of the template. A string parameter whose ``AllowedPattern`` matches one
of those objects' ids or ARNs (``^vpc-[0-9a-f]{17}$``) gets it.

A template counts as **applied** when the backend reports success **and** every resource it
declares (but those whose ``Condition`` is false with the parameters given) is listed by
``DescribeStackResources`` with a physical id, ``CREATE_COMPLETE``.

Every failure is then tried again as a plain client would: the original text and the same
parameters straight to moto (ValidateTemplate, then CreateStack) on a reset moto. Where that
works, the failure is strataflow's (``strataflow: …``: its translation for the emulator,
parameter checks, template reading); where it fails too, it is moto's (``moto: …``: a
resource its model cannot create, an error it raises, cfn-lint warnings its ValidateTemplate
refuses). A failure before the cloud is reached (config validation, parameter checks) is
strataflow's unless the control run fails the same way. The reasons are the backend's error
and, for moto's HTTP 500s, the last exception in the moto server's log. Nothing here copies a
template into the project: DIR is read where it is.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import hashlib
import json
import logging
import os
import re
import sys
import tempfile
import time
import urllib.request
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REGION = "us-east-1"
ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")
ACCOUNT = "123456789012"
"""The account moto answers for."""
TIMEOUT = 45
"""Seconds a stack may take (moto creates synchronously; a custom resource waits for a Lambda that never answers)."""
SUFFIXES = (".yaml", ".yml", ".json", ".template")
SAM = "sam"
MACRO = "transform/macro"
RAIN = "rain"
NOT_TEMPLATE = "not a template"
_CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]
_PASSWORD = "Bench1pass2word3"
_SSH_KEY = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC" + "x" * 300 + " sandbox@strataflow"


@dataclass
class Outcome:
    """One template's result."""

    path: str
    status: str
    """skipped, unsupported, applied or failed."""
    reason: str = ""
    category: str = ""
    control: str = ""
    """Why the original text failed straight on moto (failures only; empty: it worked)."""
    unsupported: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    seconds: float = 0.0


# --- reading templates ------------------------------------------------------------------------


def read(path: Path) -> dict[str, Any] | None:
    """The template in ``path`` (YAML with short tags or JSON, read as strataflow reads it), or None when it is neither."""
    from strataflow.backends.cloudformation.support import load_template
    from strataflow.errors import TemplateError

    try:
        return load_template(path.read_text(encoding="utf-8-sig"))
    except (TemplateError, UnicodeDecodeError, ValueError):
        return None


def _walk(value: Any) -> Any:
    """Every key and scalar in ``value``."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item)
    else:
        yield value


def skip_reason(template: dict[str, Any] | None) -> tuple[str, str] | None:
    """(kind, detail) when the file is not a template CloudFormation's engine deploys as it is; None otherwise."""
    if template is None:
        return NOT_TEMPLATE, "not YAML or JSON (or not one document)"
    if not isinstance(template.get("Resources"), dict) or not template["Resources"]:
        return NOT_TEMPLATE, "no Resources"
    transform = template.get("Transform")
    names = [transform] if isinstance(transform, str) else list(transform) if isinstance(transform, list) else []
    if any(str(name).startswith("AWS::Serverless") for name in names):
        return SAM, "Transform: AWS::Serverless"
    if transform:
        return MACRO, f"Transform: {', '.join(map(str, names)) or transform}"
    found = {str(item) for item in _walk(template) if isinstance(item, str)}
    if "Fn::Transform" in found:
        return MACRO, "Fn::Transform (a macro or AWS::Include)"
    if any(text.startswith(("Fn::Rain::", "Rain::")) for text in found):
        return RAIN, "Rain directives (expanded by `rain pkg`)"
    return None


def supported_types() -> set[str]:
    """The resource types moto's CloudFormation implementation creates: its own model map."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import moto.cloudformation.models  # noqa: F401 - imports every model the map is built from
        from moto.cloudformation.parsing import get_model_map

    return {kind for kind in get_model_map() if kind.count("::") == 2}


def declared_types(template: dict[str, Any]) -> set[str]:
    return {str(r.get("Type")) for r in template["Resources"].values() if isinstance(r, dict)}


def unsupported_types(template: dict[str, Any], supported: set[str]) -> list[str]:
    return sorted(t for t in declared_types(template) if t not in supported and not t.startswith("Custom::"))


# --- parameters -------------------------------------------------------------------------------


def _pick(items: Any) -> str:
    """A character of an ``re`` character set (its ``IN`` items), preferring letters and digits."""
    from re import _constants as c  # type: ignore[attr-defined]

    negate = any(op is c.NEGATE for op, _ in items)

    def member(char: str) -> bool:
        code = ord(char)
        for op, arg in items:
            if (
                (op is c.LITERAL and arg == code)
                or (op is c.RANGE and arg[0] <= code <= arg[1])
                or (op is c.CATEGORY and arg is c.CATEGORY_DIGIT and char.isdigit())
                or (op is c.CATEGORY and arg is c.CATEGORY_WORD and (char.isalnum() or char == "_"))
                or (op is c.CATEGORY and arg is c.CATEGORY_SPACE and char.isspace())
            ):
                return True
        return False

    for char in "abcdef123ABC-_./:@ ,xyz":
        if member(char) != negate:
            return char
    for op, arg in items:
        if op is c.LITERAL and not negate:
            return chr(arg)
        if op is c.RANGE and not negate:
            return chr(arg[0])
    return "a"


def _from_regex(parsed: Any, extra: int) -> str:
    """A string an ``re`` parse tree matches (lookarounds ignored): repeats their minimum (at least
    one when allowed) plus ``extra``; the first branch of each alternation."""
    from re import _constants as c  # type: ignore[attr-defined]

    out = []
    for op, arg in parsed:
        if op is c.LITERAL:
            out.append(chr(arg))
        elif op is c.NOT_LITERAL:
            out.append("a" if arg != ord("a") else "b")
        elif op is c.ANY:
            out.append("a")
        elif op is c.IN:
            out.append(_pick(arg))
        elif op in (c.MAX_REPEAT, c.MIN_REPEAT, getattr(c, "POSSESSIVE_REPEAT", None)):
            low, high, sub = arg
            count = max(low, 1) + extra if high is c.MAXREPEAT else min(high, max(low, 1) + extra)
            out.append("".join(_from_regex(sub, extra) for _ in range(count)))
        elif op is c.SUBPATTERN:
            out.append(_from_regex(arg[-1], extra))
        elif op is c.BRANCH:
            out.append(_from_regex(arg[1][0], extra))
        elif op is c.GROUPREF:
            out.append("")
    return "".join(out)


def pattern_examples(pattern: str) -> list[str]:
    """Strings ``pattern`` may match, one per branch of its top-level alternation and repeat length."""
    from re import _constants as c  # type: ignore[attr-defined]
    from re import _parser as sre  # type: ignore[attr-defined]

    try:
        parsed = sre.parse(pattern)
    except re.error:
        return []
    branches = [list(parsed)]
    items = list(parsed)
    for index, (op, arg) in enumerate(items):
        if op is c.BRANCH:
            branches = [items[:index] + list(branch) + items[index + 1 :] for branch in arg[1]]
            break
    return [_from_regex(branch, extra) for extra in (0, 2, 7) for branch in branches]


def _fits(spec: dict[str, Any], value: str) -> bool:
    low, high = int(spec.get("MinLength", 0)), int(spec.get("MaxLength", 4096))
    if not low <= len(value) <= high:
        return False
    pattern = spec.get("AllowedPattern")
    if pattern is None:
        return True
    try:
        return re.fullmatch(str(pattern), value) is not None
    except re.error:
        return True  # a Java-only construct: CloudFormation judges it


def _sized(spec: dict[str, Any], value: str) -> str:
    low, high = int(spec.get("MinLength", 0)), int(spec.get("MaxLength", 4096))
    if len(value) < low:
        value += "x" * (low - len(value))
    return value[:high]


def _hints(name: str, seed: str) -> list[str]:
    """Values a parameter's name asks for, best first."""
    lowered, token = name.lower(), hashlib.sha256(seed.encode()).hexdigest()[:8]
    found = []
    if "password" in lowered or "secret" in lowered:
        found.append(_PASSWORD)
    if "mail" in lowered:
        found.append("ops@example.com")
    if "cidr" in lowered or lowered.endswith(("location", "range")):
        found += ["10.1.0.0/16", "0.0.0.0/0"]
    if lowered.endswith("ip") or "ipaddress" in lowered:
        found.append("10.1.0.10")
    if "bucket" in lowered:
        found.append(f"strata-bench-{token}")
    if "domain" in lowered or "dns" in lowered or lowered.endswith("zonename"):
        found.append("bench.example.com")
    if "ssh" in lowered and "key" in lowered:
        found.append(_SSH_KEY)
    if "arn" in lowered:
        found.append(f"arn:aws:iam::{ACCOUNT}:role/strata-bench")
    if "account" in lowered or "owner" in lowered:
        found.append(ACCOUNT)
    if lowered.endswith(("user", "username")):
        found.append("benchuser")
    found += [f"bench{token}", f"bench-{token}", "bench"]
    return found


def string_value(name: str, spec: dict[str, Any], seed: str, objects: dict[str, str]) -> str:
    """A value for a required String parameter that its declaration accepts."""
    pattern = str(spec.get("AllowedPattern", ""))
    by_pattern = [value for value in objects.values() if pattern and _marker(value) in pattern]
    candidates = [*by_pattern, *_hints(name, seed), *pattern_examples(pattern)]
    for candidate in candidates:
        for value in (candidate, _sized(spec, candidate)):
            if _fits(spec, value):
                return value
    return _sized(spec, candidates[0] if candidates else "bench")


def _marker(value: str) -> str:
    """What identifies an object's id or ARN in an ``AllowedPattern``: ``vpc-``, ``:kms:``, ``:role``."""
    if value.startswith("arn:"):
        service = value.split(":")[2]
        return ":role" if service == "iam" else f":{service}:"
    return value.split("-", maxsplit=1)[0] + "-" if "-" in value else "\0"


AWS_TYPES = {
    "AWS::EC2::AvailabilityZone::Name": "zone",
    "AWS::EC2::Image::Id": "image",
    "AWS::EC2::Instance::Id": "instance",
    "AWS::EC2::KeyPair::KeyName": "key",
    "AWS::EC2::SecurityGroup::GroupName": "group_name",
    "AWS::EC2::SecurityGroup::Id": "group",
    "AWS::EC2::Subnet::Id": "subnet",
    "AWS::EC2::Volume::Id": "volume",
    "AWS::EC2::VPC::Id": "vpc",
    "AWS::Route53::HostedZone::Id": "zone_id",
}
"""AWS-specific parameter types: the setup object each names (``List<...>`` of them: two, where there are two)."""


def parameters_for(template: dict[str, Any], seed: str, objects: dict[str, str], aws: Any) -> dict[str, Any]:
    """The parameters to give: required ones generated, AWS-specific ones naming setup objects,
    SSM-typed ones' parameters put into moto when missing (defaults are taken as they are)."""
    values: dict[str, Any] = {}
    handed: collections.Counter[str] = collections.Counter()
    for name, raw in (template.get("Parameters") or {}).items():
        spec = raw if isinstance(raw, dict) else {}
        kind = str(spec.get("Type", "String"))
        if kind.startswith("AWS::SSM::Parameter::Value<"):
            values[name] = _ssm_parameter(name, spec, kind, objects, aws)
            continue
        if "Default" in spec:
            continue
        allowed = spec.get("AllowedValues")
        inner = kind[5:-1] if kind.startswith("List<") else kind
        if allowed:
            values[name] = str(allowed[0])
        elif inner in AWS_TYPES:  # the first parameter of a type names the first object, the next the second ...
            key = AWS_TYPES[inner]
            several = [objects[k] for k in (key, f"{key}2", f"{key}3") if k in objects]
            values[name] = ",".join(several[:2]) if kind.startswith("List<") else several[handed[key] % len(several)]
            handed[key] += 1
        elif kind in ("Number", "List<Number>"):
            low = spec.get("MinValue")
            high = spec.get("MaxValue")
            number = float(low) if low is not None else min(1.0, float(high)) if high is not None else 1.0
            values[name] = int(number) if number.is_integer() else number
            values[name] = str(values[name]) if kind == "List<Number>" else values[name]
        else:
            values[name] = string_value(name, spec, seed + name, objects)
    return values


def _ssm_parameter(name: str, spec: dict[str, Any], kind: str, objects: dict[str, str], aws: Any) -> str:
    """The name of an SSM parameter for ``name``: its default, put into moto when missing."""
    parameter = str(spec.get("Default") or f"/strata-bench/{name}")
    try:
        aws["ssm"].get_parameter(Name=parameter)
    except aws["ssm"].exceptions.ParameterNotFound:
        inner = kind[len("AWS::SSM::Parameter::Value<") : -1]
        value = objects.get(AWS_TYPES.get(inner.removeprefix("List<").removesuffix(">"), ""), "bench")
        kind_of = "StringList" if inner.startswith("List") or inner == "CommaDelimitedList" else "String"
        with contextlib.suppress(aws["ssm"].exceptions.ClientError):  # moto reserves /aws/ names
            aws["ssm"].put_parameter(Name=parameter, Value=value, Type=kind_of)
    return parameter


def setup_objects(aws: Any, seed: str) -> dict[str, str]:
    """What AWS-specific parameters name, created in moto: their ids and ARNs by key."""
    ec2 = aws["ec2"]
    vpc = ec2.create_vpc(CidrBlock="10.99.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.99.{i}.0/24", AvailabilityZone=zone)["Subnet"]["SubnetId"]
        for i, zone in enumerate(ZONES)
    ]
    groups = [
        ec2.create_security_group(GroupName=f"strata-bench{i}", Description="bench", VpcId=vpc)["GroupId"]
        for i in range(2)
    ]
    ec2.create_key_pair(KeyName="strata-bench")
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    instance = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, SubnetId=subnets[0])["Instances"][0]
    volume = ec2.create_volume(AvailabilityZone=ZONES[0], Size=8)["VolumeId"]
    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    peer = ec2.create_vpc(CidrBlock="10.98.0.0/16")["Vpc"]["VpcId"]
    peering = ec2.create_vpc_peering_connection(VpcId=vpc, PeerVpcId=peer)["VpcPeeringConnection"]
    zone = aws["route53"].create_hosted_zone(Name="bench.example.com", CallerReference=seed)["HostedZone"]["Id"]
    key = aws["kms"].create_key()["KeyMetadata"]["Arn"]
    trust = {"Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    role = aws["iam"].create_role(RoleName="strata-bench", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    return {
        "vpc": vpc,
        "vpc2": peer,
        "subnet": subnets[0],
        "subnet2": subnets[1],
        "subnet3": subnets[2],
        "group": groups[0],
        "group2": groups[1],
        "group_name": "strata-bench0",
        "key": "strata-bench",
        "image": image,
        "instance": instance["InstanceId"],
        "volume": volume,
        "route_table": table,
        "peering": peering["VpcPeeringConnectionId"],
        "zone": ZONES[0],
        "zone2": ZONES[1],
        "zone3": ZONES[2],
        "zone_id": zone.split("/")[-1],
        "kms_key": key,
        "role": role,
    }


# --- which resources must exist ---------------------------------------------------------------


class _Unknown(Exception):
    """A condition this bench cannot evaluate: its resources are expected."""


def _evaluate(value: Any, context: dict[str, Any]) -> Any:
    """A condition's value (the intrinsic functions conditions use), with ``context``'s parameters."""
    if isinstance(value, list):
        return [_evaluate(item, context) for item in value]
    if not isinstance(value, dict):
        return value
    if len(value) != 1:
        raise _Unknown(str(value))
    (function, operand), = value.items()
    if function == "Ref":
        if operand not in context["values"]:
            raise _Unknown(operand)
        return context["values"][operand]
    if function in ("Condition", "Fn::Condition"):
        return condition(str(operand), context)
    args = _evaluate(operand, context)
    if function == "Fn::Equals":
        return str(args[0]) == str(args[1])
    if function == "Fn::Not":
        return not args[0]
    if function == "Fn::And":
        return all(args)
    if function == "Fn::Or":
        return any(args)
    if function == "Fn::FindInMap":
        return context["mappings"][args[0]][args[1]][args[2]]
    if function == "Fn::Join":
        return str(args[0]).join(str(a) for a in args[1])
    if function == "Fn::Select":
        return args[1][int(args[0])]
    if function == "Fn::Split":
        return str(args[1]).split(str(args[0]))
    if function == "Fn::Sub" and isinstance(args, str):
        return re.sub(r"\$\{([^}!]+)\}", lambda m: str(context["values"].get(m.group(1), m.group(0))), args)
    raise _Unknown(function)


def condition(name: str, context: dict[str, Any]) -> bool:
    cache = context.setdefault("conditions", {})
    if name not in cache:
        cache[name] = bool(_evaluate(context["template"].get("Conditions", {})[name], context))
    return bool(cache[name])


def expected_resources(template: dict[str, Any], given: dict[str, Any], stack: str) -> list[str]:
    """The logical ids the stack must hold: every resource but those whose Condition is false."""
    values: dict[str, Any] = {
        "AWS::Region": REGION,
        "AWS::AccountId": ACCOUNT,
        "AWS::StackName": stack,
        "AWS::Partition": "aws",
        "AWS::URLSuffix": "amazonaws.com",
    }
    for name, spec in (template.get("Parameters") or {}).items():
        value = given.get(name, spec.get("Default") if isinstance(spec, dict) else None)
        if value is not None:
            is_list = isinstance(spec, dict) and (str(spec.get("Type", "")).startswith("List<") or spec.get("Type") == "CommaDelimitedList")
            values[name] = str(value).split(",") if is_list and isinstance(value, str) else value
    context = {"template": template, "values": values, "mappings": template.get("Mappings") or {}}
    expected = []
    for logical, resource in template["Resources"].items():
        when = resource.get("Condition") if isinstance(resource, dict) else None
        try:
            if when is not None and not condition(str(when), context):
                continue
        except (_Unknown, KeyError, IndexError, TypeError, ValueError):
            pass
        expected.append(str(logical))
    return expected


# --- the run ----------------------------------------------------------------------------------


class Bench:
    """Applies templates through strataflow's backend to one moto server, and again straight to it."""

    def __init__(self, root: Path, work: Path, sandbox: dict[str, Any], log: Path) -> None:
        import boto3

        self.root, self.work, self.sandbox, self.log = root, work, sandbox, log
        self.url = str(sandbox["endpoint_url"])
        session = boto3.session.Session(region_name=REGION, **sandbox["credentials"])
        self.aws = {
            name: session.client(name, endpoint_url=self.url)
            for name in ("cloudformation", "ec2", "ssm", "route53", "kms", "iam")
        }

    def reset(self, seed: str) -> tuple[dict[str, str], str]:
        """Moto emptied, the setup objects created again; they, and where moto's log is now."""
        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=30):
            pass
        return setup_objects(self.aws, seed), str(self.log.stat().st_size if self.log.exists() else 0)

    def moto_error(self, since: str) -> str:
        """The last exception moto's server logged after offset ``since``."""
        with contextlib.suppress(OSError), self.log.open("rb") as handle:
            handle.seek(int(since))
            lines = handle.read().decode("utf-8", "replace").splitlines()
            errors = [line for line in lines if re.match(r"^[\w.]+(Error|Exception|NotImplemented)\b", line)]
            if errors:
                return errors[-1][:300]
        return ""

    def apply(self, path: Path, index: int, template: dict[str, Any]) -> Outcome:
        from strataflow.backends.cloudformation import clients
        from strataflow.config import AwsTarget
        from strataflow.errors import ConfigError
        from strataflow.load import load_platform
        from strataflow.runner import Job, execute

        relative = str(path.relative_to(self.root))
        env, seed = f"s{index:04d}", relative
        stack = f"strata-{env}-sample"
        objects, since = self.reset(seed)
        given = parameters_for(template, seed, objects, self.aws)
        config = self.work / env
        (config / "environments").mkdir(parents=True)
        (config / "templates").mkdir()
        (config / "templates" / path.name).write_bytes(path.read_bytes())  # the sample's text, as it is
        template_file = f"templates/{path.name}"
        component = {"aws": {"backend": "cloudformation", "template": template_file, "parameters": given, "timeout": TIMEOUT}}
        (config / "components.yaml").write_text(yaml.safe_dump({"components": {"sample": component}}))
        (config / "environments" / f"{env}.yaml").write_text(yaml.safe_dump({"clouds": {"aws": {"region": REGION}}}))
        calls: list[str] = []
        target = AwsTarget(region=REGION, endpoint_url=self.url)
        strata_client = clients.client("cloudformation", target, self.sandbox["credentials"])
        hook = lambda model, **kwargs: calls.append(model.name)  # noqa: E731
        strata_client.meta.events.register("before-call.cloudformation", hook)
        lines: list[str] = []
        try:
            platform = load_platform(config)
            result = execute(
                Job(platform, platform.environment(env), "aws", "sample", "apply", {}, sandbox=self.sandbox, force=True),
                log=lines.append,
            )
            error = None if result.report.status == "succeeded" else str(result.report.error)
        except ConfigError as exc:
            error = f"config refused: {exc}"
        finally:
            strata_client.meta.events.unregister("before-call.cloudformation", hook)
        if error is None:
            missing = self.missing(stack, expected_resources(template, given, stack))
            if not missing:
                return Outcome(relative, "applied")
            error = f"declared resources missing after success: {', '.join(missing)}"
        else:
            missing = []
        stage = "create" if "CreateStack" in calls else "validate" if "ValidateTemplate" in calls else "before"
        if "HTTP 500" in error:
            error += f" [{self.moto_error(since) or 'no exception in the moto log'}]"
            lacking = self.public_ssm_lacking(template)
            if lacking:  # moto answers a missing public parameter with an AttributeError
                error += f" [moto lacks the public SSM parameter {', '.join(lacking)}]"
        checked, control = self.direct(path, template, index)
        category = categorise(template, stage, error, checked, control)
        return Outcome(relative, "failed", _one_line(error), category, _one_line(control or checked or ""), missing=missing)

    def public_ssm_lacking(self, template: dict[str, Any]) -> list[str]:
        """The public (``/aws/...``) SSM parameters the template's parameters default to that moto does not hold."""
        lacking = []
        for raw in (template.get("Parameters") or {}).values():
            spec = raw if isinstance(raw, dict) else {}
            name = str(spec.get("Default") or "")
            if str(spec.get("Type", "")).startswith("AWS::SSM::Parameter::Value<") and name.startswith("/aws/"):
                try:
                    self.aws["ssm"].get_parameter(Name=name)
                except self.aws["ssm"].exceptions.ParameterNotFound:
                    lacking.append(name)
        return lacking

    def missing(self, stack: str, expected: list[str]) -> list[str]:
        """The expected logical ids the stack does not hold, created, with a physical id."""
        found = self.aws["cloudformation"].describe_stack_resources(StackName=stack)["StackResources"]
        there = {
            r["LogicalResourceId"]
            for r in found
            if r.get("PhysicalResourceId") and r.get("ResourceStatus") == "CREATE_COMPLETE"
        }
        return [logical for logical in expected if logical not in there]

    def direct(self, path: Path, template: dict[str, Any], index: int) -> tuple[str | None, str | None]:
        """The original text and the same parameters straight to moto, on a reset moto: what ValidateTemplate
        said, and why CreateStack failed (None: the stack holds every expected resource)."""
        import botocore.exceptions
        from botocore.parsers import ResponseParserError

        failed = (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError, ResponseParserError)
        seed = str(path.relative_to(self.root))
        objects, since = self.reset(seed)
        given = parameters_for(template, seed, objects, self.aws)
        body = path.read_bytes().decode("utf-8-sig")
        stack = f"direct-{index:04d}"
        cloudformation = self.aws["cloudformation"]
        checked = None
        try:
            cloudformation.validate_template(TemplateBody=body)
        except failed as exc:
            checked = f"ValidateTemplate: {exc}"
        try:
            cloudformation.create_stack(
                StackName=stack,
                TemplateBody=body,
                Parameters=[{"ParameterKey": k, "ParameterValue": str(v)} for k, v in given.items()],
                Capabilities=_CAPABILITIES,
            )
            status = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]
            if status != "CREATE_COMPLETE":
                return checked, f"CreateStack ended {status}"
            missing = self.missing(stack, expected_resources(template, given, stack))
        except failed as exc:
            return checked, f"CreateStack: {exc} [{self.moto_error(since)}]"
        return checked, f"declared resources missing: {', '.join(missing)}" if missing else None


_PREREQUISITES = {
    "No export named": "prerequisite: imports another stack's exports",
    "NoSuchBucket": "prerequisite: an S3 bucket holding nested templates or code",
    "NoSuchEntity": "prerequisite: an IAM object the template names",
}


def categorise(template: dict[str, Any], stage: str, error: str, checked: str | None, control: str | None) -> str:
    """Whose fault a failure is. ``stage``: how far strataflow got (before the cloud, ValidateTemplate,
    CreateStack); ``checked``/``control``: what moto said to the original text (ValidateTemplate, CreateStack)."""
    if stage == "validate":
        if checked is not None:
            return "moto: ValidateTemplate (cfn-lint) refuses the template as written"
        return "strataflow: its translation for the emulator is refused by ValidateTemplate"
    if control is None:
        return "strataflow: before the cloud" if stage == "before" else "strataflow: deploys as written, not through strataflow"
    if stage == "before":
        return "strataflow: before the cloud (the original fails on moto too)"
    for marker, category in _PREREQUISITES.items():
        if marker in error:
            return category
    if "CREATE_IN_PROGRESS after" in error and any(t.startswith("Custom::") for t in declared_types(template)):
        return "moto: custom resource (its Lambda runs in Docker)"
    if "ParameterNotFound" in error or "/aws/service/" in error:
        return "moto: public SSM parameter missing"
    if "NotImplemented" in error or "NotImplemented" in control:
        return "moto: not implemented"
    if "missing" in error:
        return "moto: resource not listed with a physical id"
    return "moto: fails on a supported type"


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()[:600]


def discover(root: Path, only: str | None) -> list[Path]:
    paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file())
    return [p for p in paths if only is None or only in str(p.relative_to(root))]


def run(root: Path, limit: int | None, only: str | None) -> list[Outcome]:
    """Classify every file under ``root`` and apply the supported templates; one ``Outcome`` each."""
    outcomes: list[Outcome] = []
    supported = supported_types()
    candidates: list[tuple[Path, dict[str, Any]]] = []
    for path in discover(root, only):
        relative = str(path.relative_to(root))
        template = read(path)
        skipped = skip_reason(template)
        if skipped is not None or template is None:
            kind, detail = skipped or (NOT_TEMPLATE, "")
            outcomes.append(Outcome(relative, "skipped", detail, kind))
            continue
        missing = unsupported_types(template, supported)
        if missing:
            outcomes.append(Outcome(relative, "unsupported", unsupported=missing))
            continue
        candidates.append((path, template))
    candidates = candidates[:limit] if limit else candidates
    home = tempfile.mkdtemp(prefix="strata-cfn-samples-")
    previous = os.environ.get("STRATA_HOME")
    os.environ["STRATA_HOME"] = home
    logging.getLogger("moto").setLevel(logging.ERROR)
    from strataflow import server

    try:
        sandbox = server.sandbox("aws")
        bench = Bench(root, Path(home) / "configs", sandbox, server.home() / "sandbox-aws.log")
        for index, (path, template) in enumerate(candidates):
            started = time.monotonic()
            try:
                outcome = bench.apply(path, index, template)
            except Exception as exc:  # noqa: BLE001 - one template's bench error is its outcome
                outcome = Outcome(str(path.relative_to(root)), "failed", f"bench error: {exc!r}", "bench")
            outcome.seconds = round(time.monotonic() - started, 2)
            print(f"{outcome.status:8s} {outcome.seconds:6.1f}s {outcome.path}  {outcome.category}", file=sys.stderr)
            outcomes.append(outcome)
    finally:
        server.stop()
        if previous is None:
            os.environ.pop("STRATA_HOME", None)
        else:
            os.environ["STRATA_HOME"] = previous
        import shutil

        shutil.rmtree(home, ignore_errors=True)
    return outcomes


def summary(outcomes: list[Outcome], elapsed: float, show: int) -> str:
    by = collections.Counter(o.status for o in outcomes)
    skipped = collections.Counter(o.category for o in outcomes if o.status == "skipped")
    types = collections.Counter(t for o in outcomes for t in o.unsupported)
    supported = by["applied"] + by["failed"]
    lines = [f"templates found: {len(outcomes) - skipped[NOT_TEMPLATE]} ({len(outcomes)} files)"]
    lines.append(f"skipped: {sum(skipped.values())} ({', '.join(f'{k}: {v}' for k, v in skipped.most_common())})")
    lines.append(f"moto supports: {supported}, not: {by['unsupported']}; unsupported types most often seen:")
    lines += [f"  {count:4d}  {kind}" for kind, count in types.most_common(show)]
    failures = [o for o in outcomes if o.status == "failed"]
    categories = collections.Counter(o.category for o in failures)
    lines.append("failures by category:")
    lines += [f"  {count:4d}  {category}" for category, count in categories.most_common()]
    reasons = collections.Counter(f"{o.category}: {re.sub(r'[0-9a-f]{8,}', '…', o.reason)[:200]}" for o in failures)
    lines.append("failure reasons:")
    lines += [f"  {count:4d}  {reason}" for reason, count in reasons.most_common(show)]
    share = by["applied"] / supported if supported else 0.0
    lines.append(
        f"applied {by['applied']}/{supported} moto-supported templates ({share:.1%}), failed {by['failed']} "
        f"({by['failed'] / supported if supported else 0.0:.1%}) in {elapsed:.1f} s"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cfn_samples", description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--limit", type=int, help="apply at most this many supported templates")
    parser.add_argument("--only", help="consider only files whose path contains this")
    parser.add_argument("--json", type=Path, help="write every outcome to this file")
    parser.add_argument("--show-failures", type=int, default=25, help="list this many failure reasons")
    args = parser.parse_args(argv)
    started = time.monotonic()
    outcomes = run(args.directory.resolve(), args.limit, args.only)
    elapsed = time.monotonic() - started
    if args.json:
        args.json.write_text(json.dumps([o.__dict__ for o in outcomes], indent=1), encoding="utf-8")
    print(summary(outcomes, elapsed, args.show_failures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
