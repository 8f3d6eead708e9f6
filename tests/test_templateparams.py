"""strataflow.templateparams: the parameters templates and modules declare, and given parameters checked against them."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strataflow.templateparams import (
    Declared,
    TemplateParameters,
    TemplateParamsError,
    bicep,
    check,
    cloudformation,
    has_reference,
    jsonpos,
    read,
    read_arm,
    read_cloudformation,
    read_terraform,
    secure_names,
    tftypes,
)

FIXTURES = Path(__file__).parent / "fixtures" / "templateparams"
CFN = FIXTURES / "cloudformation" / "table.yaml"
CFN_JSON = FIXTURES / "cloudformation" / "queue.json"
ARM = FIXTURES / "arm" / "storage.json"
BICEP = FIXTURES / "arm" / "storage.bicep"
MODULE = FIXTURES / "terraform" / "module"
PROPERTY = settings(max_examples=60, deadline=None)


def position(path: Path, needle: str) -> tuple[int, int]:
    """1-based line and column of the first occurrence of ``needle`` in ``path``."""
    for number, text in enumerate(path.read_text().splitlines(), start=1):
        if needle in text:
            return number, text.index(needle) + 1
    raise AssertionError(f"{needle!r} not in {path}")


def read_any(path: Path) -> TemplateParameters:
    """A fixture read by the reader its kind needs."""
    if path.is_dir():
        return read_terraform(path)
    return read_arm(path) if path.suffix in {".json", ".bicep"} else read_cloudformation(path)


def kinds(issues: list[Any]) -> list[tuple[str, str]]:
    return [(i.kind, i.parameter) for i in issues]


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


class TestCloudFormationReader:
    def test_reads_every_parameter_in_declaration_order(self) -> None:
        """Every entry under Parameters is read, in the order the template declares them."""
        assert read_cloudformation(CFN).names == (
            "BucketName", "Versioning", "HashKeyElementName", "ReadCapacity", "KubeVersion", "Subnets", "Zones",
            "Ports", "DbPassword", "ApiKey", "LatestAmi", "VpcId", "Verbose",
        )  # fmt: skip

    def test_types_are_normalized_and_raw_types_kept(self) -> None:
        """Number, List<...>, CommaDelimitedList, SSM and AWS-specific types map onto the normalized types."""
        tp = read_cloudformation(CFN)
        got = {d.name: (d.type, d.raw_type) for d in tp.parameters}
        assert got["ReadCapacity"] == ("number", "Number")
        assert got["Subnets"] == ("list", "List<AWS::EC2::Subnet::Id>")
        assert got["Zones"] == ("list", "CommaDelimitedList")
        assert got["Ports"] == ("list", "List<Number>")
        assert got["LatestAmi"] == ("string", "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>")
        assert got["VpcId"] == ("string", "AWS::EC2::VPC::Id")

    def test_required_means_no_default(self) -> None:
        """Exactly the parameters without a Default are required (an empty-string Default is a default)."""
        tp = read_cloudformation(CFN)
        assert [d.name for d in tp.parameters if d.required] == [
            "BucketName", "HashKeyElementName", "Subnets", "DbPassword", "VpcId",
        ]  # fmt: skip

    def test_scalars_keep_their_source_text(self) -> None:
        """Numbers and booleans in YAML stay the text CloudFormation sees (1.30 is not 1.3)."""
        tp = read_cloudformation(CFN)
        kube = tp.get("KubeVersion")
        assert kube is not None and kube.default == "1.30" and kube.allowed == ("1.29", "1.30")
        assert tp.get("ReadCapacity").default == "5"  # type: ignore[union-attr]
        assert tp.get("Verbose").allowed == ("true", "false")  # type: ignore[union-attr]

    def test_noecho_as_bool_or_string_marks_secure(self) -> None:
        """NoEcho: true and NoEcho: "true" both make a parameter secure."""
        assert secure_names(read_cloudformation(CFN)) == {"DbPassword", "ApiKey"}

    def test_constraints_are_read(self) -> None:
        """AllowedPattern, ConstraintDescription, Min/MaxLength, Min/MaxValue and Description are kept."""
        tp = read_cloudformation(CFN)
        name, capacity = tp.get("BucketName"), tp.get("ReadCapacity")
        assert name is not None and capacity is not None
        assert (name.pattern, name.constraint_description) == (
            "[a-z0-9][a-z0-9-]*",
            "lower-case letters, digits and hyphens",
        )
        assert (name.min_length, name.max_length, name.description) == (3, 63, "Name of the bucket")
        assert (capacity.min_value, capacity.max_value) == (1, 100)

    def test_positions_point_at_each_name(self) -> None:
        """Each declaration's line and column are where its name stands in the file."""
        for d in read_cloudformation(CFN).parameters:
            assert (d.line, d.column) == position(CFN, f"{d.name}:"), d.name
            assert d.file == CFN

    @pytest.mark.parametrize(
        "expression",
        [
            "!GetAZs {Ref: 'AWS::Region'}",
            "!ImportValue {Fn::Join: [':', [!Ref 'AWS::StackName', out]]}",
            "!Select [0, !GetAZs '']",
            "!GetAtt Table.Arn",
            "!If [C, !Ref Name, !Ref 'AWS::NoValue']",
            "!Sub ['${A}', {A: !Ref Name}]",
            "!Join ['-', [a, b]]",
            "!Base64 {Fn::Sub: 'echo ${Name}'}",
            "!Cidr [10.0.0.0/16, 4, 8]",
            "!Split [',', 'a,b']",
            "!FindInMap [M, K, V]",
            "!Equals [!Condition C, true]",
            "!Not [!Or [!And [!Condition C, !Condition D], !Condition E]]",
            "!Transform {Name: AWS::Include, Parameters: {Location: s3://b/k}}",
            "!Rain::Embed file.txt",
        ],
    )
    def test_short_form_tags_with_any_operand_load(self, tmp_path: Path, expression: str) -> None:
        """Short-form tags with scalar, sequence or mapping operands do not stop the template from loading."""
        path = write(
            tmp_path, "t.yaml", f"Parameters:\n  Name: {{Type: String}}\nResources:\n  R:\n    Value: {expression}\n"
        )
        assert read_cloudformation(path).names == ("Name",)

    def test_short_forms_load_as_long_forms(self, tmp_path: Path) -> None:
        """!Ref, !Condition and !GetAtt a.b load as their long forms; other tags as Fn::Name."""
        text = "A: !Ref X\nB: !GetAtt Res.Attr.Sub\nC: !Condition Y\nD: !GetAZs {Ref: R}\n"
        assert cloudformation._load(text, tmp_path / "t.yaml") == {
            "A": {"Ref": "X"},
            "B": {"Fn::GetAtt": ["Res", "Attr.Sub"]},
            "C": {"Condition": "Y"},
            "D": {"Fn::GetAZs": {"Ref": "R"}},
        }

    def test_json_template_is_read(self) -> None:
        """A tab-indented JSON template reads, with NoEcho true and JSON true/false defaults as text."""
        tp = read_cloudformation(CFN_JSON)
        assert tp.names == ("QueueName", "Secret", "Retention", "Fifo")
        assert secure_names(tp) == {"Secret"}
        assert tp.get("Retention").default == "345600"  # type: ignore[union-attr]
        fifo = tp.get("Fifo")
        assert fifo is not None and (fifo.default, fifo.allowed) == ("false", ("true", "false"))
        assert (tp.get("Secret").line, tp.get("Secret").column) == position(CFN_JSON, '"Secret"')  # type: ignore[union-attr]

    def test_yaml_syntax_error_has_line_and_column(self) -> None:
        """A YAML syntax error names the file, line and column."""
        with pytest.raises(TemplateParamsError) as caught:
            read_cloudformation(FIXTURES / "cloudformation" / "broken.yaml")
        assert (caught.value.line, caught.value.column) == (5, 10)
        assert str(caught.value).startswith(f"{FIXTURES / 'cloudformation' / 'broken.yaml'}:5:10: invalid YAML")

    def test_json_syntax_error_has_line_and_column(self, tmp_path: Path) -> None:
        """A JSON syntax error names the line and column of the offending token."""
        path = write(tmp_path, "t.json", '{\n  "Parameters": {\n    "A": {"Type": "String"} "B": 1\n  }\n}\n')
        with pytest.raises(TemplateParamsError, match="expected ','") as caught:
            read_cloudformation(path)
        assert (caught.value.line, caught.value.column) == (3, 29)

    def test_template_without_parameters(self) -> None:
        """A template with no Parameters section declares nothing."""
        assert read_cloudformation(FIXTURES / "cloudformation" / "no-parameters.yaml").parameters == ()

    @pytest.mark.parametrize(
        ("text", "message", "line"),
        [
            ("- a\n", "top level is not a mapping", 1),
            ("Parameters: [a]\n", "'Parameters' is not a mapping", 1),
            ("Parameters:\n  A: String\n", "parameter 'A' is not a mapping", 2),
            ("Parameters:\n  A: {Default: x}\n", "parameter 'A' has no 'Type'", 2),
            ("Parameters:\n  A: {Type: Boolean}\n", "unknown Type 'Boolean'", 2),
            ("Parameters:\n  A: {Type: String, MinLength: many}\n", "MinLength 'many' is not a number", 2),
        ],
    )
    def test_malformed_declarations_are_errors(self, tmp_path: Path, text: str, message: str, line: int) -> None:
        """A template whose parameters CloudFormation would refuse raises with the declaration's line."""
        with pytest.raises(TemplateParamsError, match=re.escape(message)) as caught:
            read_cloudformation(write(tmp_path, "t.yaml", text))
        assert caught.value.line == line

    def test_unreadable_files_are_errors(self, tmp_path: Path) -> None:
        """A missing file, a directory and non-UTF-8 bytes raise TemplateParamsError, not OSError."""
        (tmp_path / "bin.yaml").write_bytes(b"Parameters: \xff\n")
        for path, message in (
            (tmp_path / "nope.yaml", "not found"),
            (tmp_path, "directory"),
            (tmp_path / "bin.yaml", "UTF-8"),
        ):
            with pytest.raises(TemplateParamsError, match=message):
                read_cloudformation(path)


class TestArmReader:
    def test_comments_trailing_commas_and_line_breaks_are_accepted(self) -> None:
        """ARM JSON with // and /* */ comments, trailing commas and a line break in a string reads."""
        tp = read_arm(ARM)
        assert tp.backend == "arm" and len(tp.parameters) == 13
        assert tp.get("banner").default == "first line\nsecond line"  # type: ignore[union-attr]

    def test_types_are_case_insensitive_and_normalized(self) -> None:
        """String, secureString, Int, BOOL, secureObject, array and $ref types normalize."""
        got = {d.name: d.type for d in read_arm(ARM).parameters}
        assert got == {
            "storageName": "string", "sku": "string", "location": "string", "objectId": "string",
            "adminPassword": "secure-string", "settings": "secure-object", "replicas": "int", "httpsOnly": "bool",
            "tags": "object", "zones": "list", "note": "string", "network": "any", "banner": "string",
        }  # fmt: skip

    def test_expression_default_and_nullable_make_a_parameter_optional(self) -> None:
        """An expression defaultValue counts as a default, and nullable: true makes a parameter optional."""
        tp = read_arm(ARM)
        location, note = tp.get("location"), tp.get("note")
        assert location is not None and not location.required and location.default == "[resourceGroup().location]"
        assert note is not None and note.nullable and not note.required
        assert [d.name for d in tp.parameters if d.required] == ["storageName", "objectId", "adminPassword", "network"]

    def test_constraints_and_description_are_read(self) -> None:
        """allowedValues, min/maxLength, min/maxValue and metadata.description are kept."""
        tp = read_arm(ARM)
        name, sku, replicas = tp.get("storageName"), tp.get("sku"), tp.get("replicas")
        assert name is not None and sku is not None and replicas is not None
        assert (name.min_length, name.max_length, name.description) == (3, 24, "Name of the storage account")
        assert sku.allowed == ("Standard_LRS", "Standard_GRS", "Premium_LRS")
        assert (replicas.min_value, replicas.max_value, replicas.default) == (1, 5, 2)

    def test_secure_types_are_secure(self) -> None:
        """securestring and secureObject parameters are the secure ones."""
        assert secure_names(read_arm(ARM)) == {"adminPassword", "settings"}

    def test_positions_point_at_each_name(self) -> None:
        """Each declaration's line and column are those of its quoted name."""
        for d in read_arm(ARM).parameters:
            assert (d.line, d.column) == position(ARM, f'"{d.name}"'), d.name

    def test_syntax_error_has_line_and_column(self) -> None:
        """A missing comma is reported at the token after it."""
        with pytest.raises(TemplateParamsError, match="expected ',' or '}'") as caught:
            read_arm(FIXTURES / "arm" / "broken.json")
        assert (caught.value.line, caught.value.column) == (4, 5)

    @pytest.mark.parametrize(
        ("text", "message", "where"),
        [
            ('{"a": "open\n', "unterminated string", (1, 7)),
            ('{"a": 1 /* never closed\n}', "unterminated comment", (1, 9)),
            ('{"a": 1}\n{"b": 2}', "after the end", (2, 1)),
            ("", "ends where a value was expected", (1, 1)),
            ('{"a": "\\q"}', "invalid \\escape", (1, 8)),
            ('{"a": 1,, }', "expected a property name in double quotes, found ','", (1, 9)),
            ("{a: 1}", "unexpected 'a'", (1, 2)),
        ],
    )
    def test_json_errors_are_located(self, tmp_path: Path, text: str, message: str, where: tuple[int, int]) -> None:
        """Each kind of JSON syntax error raises with its line and column."""
        with pytest.raises(TemplateParamsError, match=re.escape(message)) as caught:
            read_arm(write(tmp_path, "t.json", text))
        assert (caught.value.line, caught.value.column) == where

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("[]", "not an ARM template"),
            ('{"parameters": []}', "'parameters' is not an object"),
            ('{"parameters": {"a": {"type": "strng"}}}', "unknown type 'strng'"),
            ('{"parameters": {"a": 1}}', "is not an object"),
            ('{"parameters": {"a": {"type": "int", "minValue": "1"}}}', "minValue '1' is not an integer"),
            ('{"parameters": {"a": {"type": "string", "allowedValues": "x"}}}', "allowedValues is not an array"),
        ],
    )
    def test_malformed_declarations_are_errors(self, tmp_path: Path, text: str, message: str) -> None:
        """Declarations Azure would refuse raise TemplateParamsError."""
        with pytest.raises(TemplateParamsError, match=re.escape(message)):
            read_arm(write(tmp_path, "t.json", text))

    def test_untyped_parameter_is_any(self, tmp_path: Path) -> None:
        """A languageVersion 2.0 parameter without a type (resource-derived) is read as any."""
        tp = read_arm(write(tmp_path, "t.json", '{"parameters": {"p": {"nullable": true}}}'))
        assert (tp.parameters[0].type, tp.parameters[0].required) == ("any", False)


class TestBicepReader:
    def test_reads_params_in_order_and_nothing_else(self) -> None:
        """Only top-level param statements count: not commented ones, type properties or resources."""
        assert read_arm(BICEP).names == (
            "storageName", "sku", "location", "objectId", "adminPassword", "settings", "replicas", "httpsOnly",
            "tags", "zones", "tier", "mode", "note", "passwordHint", "prefix", "accountLabel", "network", "retention",
        )  # fmt: skip

    def test_decorators_apply_to_the_next_param(self) -> None:
        """@minLength/@maxLength/@minValue/@maxValue/@allowed/@description/@sys.description are read."""
        tp = read_arm(BICEP)
        name, sku, replicas, location = tp.get("storageName"), tp.get("sku"), tp.get("replicas"), tp.get("location")
        assert name is not None and sku is not None and replicas is not None and location is not None
        assert (name.min_length, name.max_length, name.description) == (3, 24, "Name of the storage account")
        assert sku.allowed == ("Standard_LRS", "Standard_GRS", "Premium_LRS")
        assert (replicas.min_value, replicas.max_value) == (1, 5)
        assert location.description == "Where it goes"
        assert tp.get("passwordHint").description == "Multi-line\ndescription"  # type: ignore[union-attr]

    def test_secure_decorator(self) -> None:
        """@secure() makes a string a secure-string and an object a secure-object."""
        tp = read_arm(BICEP)
        assert secure_names(tp) == {"adminPassword", "settings"}
        assert (tp.get("adminPassword").type, tp.get("settings").type) == ("secure-string", "secure-object")  # type: ignore[union-attr]

    def test_literal_defaults_are_values_and_expressions_are_text(self) -> None:
        """Literal defaults parse to values; expressions (calls, interpolation, ternaries) keep their text."""
        defaults = {d.name: d.default for d in read_arm(BICEP).parameters}
        assert defaults["sku"] == "Standard_LRS"
        assert defaults["tags"] == {"owner": "platform", "cost-center": 42}
        assert defaults["zones"] == ["1"]
        assert defaults["passwordHint"] == "it's in the vault"
        assert defaults["location"] == "resourceGroup().location"
        assert defaults["accountLabel"] == "'${prefix}-account'"
        assert defaults["retention"] == "replicas > 2 ? 30 : 7"

    def test_types_unions_and_nullable(self) -> None:
        """string[] is a list, a literal union gives allowed values (even multi-line), T? is optional."""
        tp = read_arm(BICEP)
        tier, mode, note, zones = tp.get("tier"), tp.get("mode"), tp.get("note"), tp.get("zones")
        assert tier is not None and mode is not None and note is not None and zones is not None
        assert (tier.type, tier.allowed) == ("string", ("Hot", "Cool"))
        assert (mode.type, mode.allowed, mode.required) == ("string", ("Incremental", "Complete"), True)
        assert (note.nullable, note.required) == (True, False)
        assert (zones.type, zones.max_length) == ("list", 2)
        assert tp.get("network").type == "any"  # type: ignore[union-attr]

    def test_decorators_do_not_leak_across_statements(self) -> None:
        """Decorators on a type's properties or on a resource never reach the next param."""
        tp = read_arm(BICEP)
        network, retention = tp.get("network"), tp.get("retention")
        assert network is not None and (network.min_length, network.description) == (None, None)
        assert retention is not None and retention.description is None

    def test_positions_point_at_each_name(self) -> None:
        """Each param's line and column are those of its name after 'param'."""
        for d in read_arm(BICEP).parameters:
            line, column = position(BICEP, f"param {d.name}")
            assert (d.line, d.column) == (line, column + len("param ")), d.name

    @PROPERTY
    @given(
        st.recursive(
            st.none()
            | st.booleans()
            | st.integers(-(10**6), 10**6)
            | st.text(st.characters(exclude_categories=["Cs"])),
            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
            max_leaves=8,
        )
    )
    def test_literal_round_trip(self, value: Any) -> None:
        """Any literal written in Bicep syntax reads back as the same value."""
        assert bicep.literal(_bicep_source(value)) == value


def _bicep_quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n").replace("\r", "\\r")
    return "'" + escaped.replace("\t", "\\t").replace("$", "\\$") + "'"


def _bicep_source(value: Any) -> str:
    if isinstance(value, str):
        return _bicep_quote(value)
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[\n" + "\n".join(_bicep_source(v) for v in value) + "\n]"
    return "{\n" + "\n".join(f"{_bicep_quote(k)}: {_bicep_source(v)}" for k, v in value.items()) + "\n}"


class TestTerraformReader:
    def test_reads_tf_and_tf_json_files_but_not_subdirectories(self) -> None:
        """Variables come from every .tf and .tf.json file of the directory, not from child modules."""
        tp = read_terraform(MODULE)
        assert set(tp.names) == {
            "region", "zone_suffix", "zone_name", "ttl", "enabled", "records", "tags", "api_token", "delegation",
            "account_id", "untyped",
        }  # fmt: skip
        assert "child_only" not in tp.names and all(f.parent == MODULE for f in tp.files)

    def test_types_are_normalized_and_raw_types_kept(self) -> None:
        """Type constraints normalize (map -> object, list -> list, none -> any) and keep their source text."""
        got = {d.name: (d.type, d.raw_type) for d in read_terraform(MODULE).parameters}
        assert got["records"] == ("list", "list(string)")
        assert got["tags"] == ("object", "map(string)")
        assert got["ttl"] == ("number", "number")
        assert got["untyped"] == ("any", "")
        assert got["delegation"][0] == "object" and "optional(number, 1)" in got["delegation"][1]

    def test_required_means_no_default_and_null_is_a_default(self) -> None:
        """Variables without default are required; default = null is a default."""
        tp = read_terraform(MODULE)
        assert sorted(d.name for d in tp.parameters if d.required) == [
            "account_id",
            "api_token",
            "untyped",
            "zone_name",
        ]
        assert tp.get("delegation").default is None  # type: ignore[union-attr]

    def test_sensitive_nullable_and_validations(self) -> None:
        """sensitive = true is secure, nullable = false is kept, and validation blocks are counted."""
        tp = read_terraform(MODULE)
        assert secure_names(tp) == {"api_token"}
        assert tp.get("api_token").validations == 2  # type: ignore[union-attr]
        assert not tp.get("account_id").nullable and tp.get("zone_name").nullable  # type: ignore[union-attr]

    def test_override_files_merge_over_the_declaration(self) -> None:
        """override.tf replaces attributes of a variable but the declaration stays where it was."""
        ttl = read_terraform(MODULE).get("ttl")
        assert ttl is not None and ttl.default == 60 and ttl.type == "number"
        assert ttl.file.name == "variables.tf"

    def test_positions_point_at_each_label(self) -> None:
        """Each variable's line and column are those of its label, quoted or bare, in its own file."""
        for d in read_terraform(MODULE).parameters:
            if d.name != "zone_suffix":
                needle = f'"{d.name}"' if d.name != "untyped" else "untyped"
                assert (d.line, d.column) == position(d.file, needle), d.name

    def test_positions_skip_heredocs_and_block_comments(self) -> None:
        """Labels quoted in a heredoc or a block comment before the declaration are not taken for it."""
        suffix = read_terraform(MODULE).get("zone_suffix")
        assert suffix is not None and suffix.file.name == "main.tf"
        lines = suffix.file.read_text().splitlines()
        assert sum('variable "zone_suffix"' in line for line in lines) == 3
        assert suffix.line == max(i for i, line in enumerate(lines, start=1) if 'variable "zone_suffix"' in line)

    def test_syntax_error_has_line_and_column(self) -> None:
        """An HCL syntax error names the line and column."""
        with pytest.raises(TemplateParamsError, match="invalid HCL") as caught:
            read_terraform(FIXTURES / "terraform" / "broken")
        assert (caught.value.line, caught.value.column) == (6, 13)

    @pytest.mark.parametrize(
        ("files", "message"),
        [
            ({"a.tf": 'variable "x" {}\n', "b.tf": 'variable "x" {}\n'}, "declared twice (first in a.tf line 1)"),
            ({"README.md": "no terraform"}, "no .tf files"),
            ({"a.tf": 'variable "x" {\n'}, "ends inside a block"),
        ],
    )
    def test_module_errors(self, tmp_path: Path, files: dict[str, str], message: str) -> None:
        """Duplicate declarations, empty modules and truncated files are errors."""
        for name, text in files.items():
            write(tmp_path, name, text)
        with pytest.raises(TemplateParamsError, match=re.escape(message)):
            read_terraform(tmp_path)

    def test_module_dir_must_be_a_directory(self, tmp_path: Path) -> None:
        """A missing directory or a file where the module should be is an error."""
        with pytest.raises(TemplateParamsError, match="not found"):
            read_terraform(tmp_path / "nope")
        with pytest.raises(TemplateParamsError, match="is a file"):
            read_terraform(write(tmp_path, "main.tf", ""))


class TestTerraformTypes:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("string", tftypes.TfType("string")),
            ("${list(number)}", tftypes.TfType("list", tftypes.TfType("number"))),
            ("list", tftypes.TfType("list", tftypes.ANY)),
            (
                "tuple([string, bool])",
                tftypes.TfType("tuple", items=(tftypes.TfType("string"), tftypes.TfType("bool"))),
            ),
            (
                'object({a = optional(map(string), {k = "v"}), b = number})',
                tftypes.TfType(
                    "object",
                    attributes={"a": tftypes.TfType("map", tftypes.TfType("string")), "b": tftypes.TfType("number")},
                    optional=frozenset({"a"}),
                ),
            ),
            ("list(strin g)", tftypes.ANY),
            (None, tftypes.ANY),
        ],
    )
    def test_parse(self, text: str | None, expected: tftypes.TfType) -> None:
        """Type constraint text parses into its structure; unreadable text is any."""
        assert tftypes.parse(text) == expected

    @pytest.mark.parametrize(
        ("value", "type_text", "problem"),
        [
            (3, "string", None),
            (True, "string", None),
            (["a"], "string", "a string is required"),
            ("3.5", "number", None),
            ("abc", "number", "a number is required"),
            (True, "number", "a number is required"),
            ("true", "bool", None),
            ("yes", "bool", "a bool is required"),
            ("a,b", "list(string)", "a list is required"),
            ([1, "x"], "list(number)", "a number is required at [1]"),
            ({"a": [1]}, "map(list(number))", None),
            ([1], "map(string)", "a map is required"),
            ({"name": "x"}, "object({name = string, size = number})", 'attribute "size" is required'),
            ({"name": "x"}, "object({name = string, size = optional(number)})", None),
            ({"o": {"n": "x"}}, "object({o = object({n = number})})", "a number is required at .o.n"),
            (["a", 1], "tuple([string, number])", None),
            (["a"], "tuple([string, number])", "a tuple of 2 elements is required"),
            ([None, {"x": None}], "list(map(string))", None),
            ({"any": ["thing"]}, "any", None),
        ],
    )
    def test_conform(self, value: Any, type_text: str, problem: str | None) -> None:
        """Values convert to type constraints the way Terraform converts tfvars values."""
        assert tftypes.conform(value, tftypes.parse(type_text)) == problem


def _declared(name: str, type_: str, **fields: Any) -> Declared:
    return Declared(
        name=name,
        type=type_,
        raw_type=fields.pop("raw_type", type_),
        required=fields.pop("required", False),
        file=Path("t"),
        line=1,
        **fields,
    )  # type: ignore[arg-type]


def _template(backend: str, *declared: Declared, source: str = "t") -> TemplateParameters:
    return TemplateParameters(backend, Path(source), declared)  # type: ignore[arg-type]


class TestCheckNames:
    def test_unknown_name_with_suggestion(self, tmp_path: Path) -> None:
        """A misspelt name is unknown, with the closest declared name and the declared list, path relative to root."""
        write(
            tmp_path,
            "templates/aws/bucket.yaml",
            "Parameters:\n  BucketName: {Type: String}\n  Versioning: {Type: String, Default: x}\n",
        )
        tp = read_cloudformation(tmp_path / "templates" / "aws" / "bucket.yaml")
        issues = check(tp, {"BucketNmae": "b", "BucketName": "b"}, backend="cloudformation", root=tmp_path)
        assert [i.message for i in issues] == [
            "parameter 'BucketNmae' is not declared by templates/aws/bucket.yaml (did you mean 'BucketName'?); "
            "declared: BucketName, Versioning"
        ]
        assert (issues[0].kind, issues[0].parameter, issues[0].line) == ("unknown", "BucketNmae", None)

    def test_unknown_name_without_suggestion_says_what_to_do(self) -> None:
        """A name like no declared one is unknown and the message says to remove or declare it."""
        [issue] = check(read_cloudformation(CFN_JSON), {"Colour": "red", "QueueName": "jobs"})
        assert issue.kind == "unknown" and "did you mean" not in issue.message
        assert issue.message.endswith("remove it or declare it in the template")

    def test_missing_required_parameters(self) -> None:
        """Every required parameter not given is missing, located at its declaration."""
        issues = check(read_arm(ARM), {"storageName": "stor", "adminPassword": "x", "network": {}})
        assert kinds(issues) == [("missing", "objectId")]
        assert (issues[0].file, issues[0].line) == (ARM, position(ARM, '"objectId"')[0])
        assert f"is required by {ARM}:{issues[0].line}" in issues[0].message

    def test_arm_names_ignore_case_and_cloudformation_names_do_not(self) -> None:
        """ARM matches names regardless of case; CloudFormation reports a case slip as unknown."""
        arm = check(read_arm(ARM), {"STORAGENAME": "stor", "objectid": "o", "AdminPassword": "p", "Network": {}})
        assert arm == []
        [issue] = check(read_cloudformation(CFN_JSON), {"queuename": "jobs", "QueueName": "jobs"})
        assert issue.kind == "unknown" and "did you mean 'QueueName'" in issue.message

    def test_terraform_unknown_variable_says_what_terraform_does(self) -> None:
        """An undeclared Terraform variable is reported with what Terraform would do with it."""
        [issue] = check(
            read_terraform(MODULE),
            {"zone_nam": "a", "zone_name": "z", "api_token": "t", "account_id": "1", "untyped": 1},
        )
        assert issue.message.startswith(
            f"variable 'zone_nam' is not declared by module {MODULE} (did you mean 'zone_name'?)"
        )
        assert "Value for undeclared variable" in issue.message

    def test_null_counts_as_not_given_unless_terraform_nullable(self) -> None:
        """None is missing for CloudFormation and for non-nullable Terraform, but a value for a nullable variable."""
        cfn = check(read_cloudformation(CFN_JSON), {"QueueName": None})
        assert kinds(cfn) == [("missing", "QueueName")] and "given as null" in cfn[0].message
        tf = check(read_terraform(MODULE), {"zone_name": None, "api_token": "t", "account_id": None, "untyped": None})
        assert kinds(tf) == [("missing", "account_id")]
        assert (
            check(
                read_arm(ARM),
                {"storageName": "abc", "objectId": "o", "adminPassword": "p", "network": {}, "note": None},
            )
            == []
        )

    def test_backend_must_match_the_template(self) -> None:
        """Checking parameters read for one backend with another backend's rules is refused."""
        with pytest.raises(ValueError, match="read for arm cannot be checked as terraform"):
            check(read_arm(ARM), {}, backend="terraform")

    def test_long_declared_lists_are_shortened(self) -> None:
        """An unknown-name message lists at most 25 declared names and counts the rest."""
        tp = _template("cloudformation", *(_declared(f"P{i:02}", "string") for i in range(30)))
        [issue] = check(tp, {"Zzz": 1})
        assert "P24 and 5 more" in issue.message and "P25" not in issue.message

    def test_read_dispatches_on_backend(self) -> None:
        """read() picks the reader for cloudformation, arm (JSON or Bicep) and terraform."""
        assert read("cloudformation", CFN).backend == "cloudformation"
        assert read("arm", BICEP).names == read_arm(BICEP).names
        assert read("terraform", MODULE).backend == "terraform"
        with pytest.raises(ValueError, match="no template parameters for backend 'command'"):
            read("command", CFN)


CFN_OK = {
    "BucketName": "logs",
    "HashKeyElementName": "id",
    "Subnets": ["s-1"],
    "DbPassword": "x" * 12,
    "VpcId": "vpc-1",
}


class TestCheckCloudFormationValues:
    def test_valid_values_pass(self) -> None:
        """Values within every constraint give no issue; numbers and booleans compare as text."""
        given = {
            **CFN_OK,
            "ReadCapacity": "3",
            "Versioning": "Suspended",
            "Verbose": True,
            "KubeVersion": "1.30",
            "Zones": "a, c",
        }
        assert check(read_cloudformation(CFN), given) == []

    def test_value_outside_allowed_values(self) -> None:
        """A value outside AllowedValues is not_allowed, with the closest allowed value suggested."""
        [issue] = check(read_cloudformation(CFN), {**CFN_OK, "Versioning": "Enabld"})
        assert (issue.kind, issue.line) == ("not_allowed", position(CFN, "Versioning:")[0])
        assert issue.message.endswith("Enabled, Suspended (did you mean 'Enabled'?)")

    def test_yaml_number_that_lost_its_digits_gets_a_hint(self) -> None:
        """1.30 read by YAML as 1.3 is not allowed, and the message says to quote it."""
        [issue] = check(read_cloudformation(CFN), {**CFN_OK, "KubeVersion": 1.3})
        assert issue.kind == "not_allowed" and "quote the value" in issue.message

    def test_number_type_and_range(self) -> None:
        """A Number must be numeric text and lie within MinValue/MaxValue."""
        tp = read_cloudformation(CFN)
        assert kinds(check(tp, {**CFN_OK, "ReadCapacity": "lots"})) == [("type", "ReadCapacity")]
        assert kinds(check(tp, {**CFN_OK, "ReadCapacity": [1]})) == [("type", "ReadCapacity")]
        low, high = check(tp, {**CFN_OK, "ReadCapacity": 0}), check(tp, {**CFN_OK, "ReadCapacity": "101"})
        assert "below the minimum 1" in low[0].message and "above the maximum 100" in high[0].message
        assert kinds(low + high) == [("range", "ReadCapacity")] * 2

    def test_pattern_and_length(self) -> None:
        """AllowedPattern must match the whole value (message adds ConstraintDescription); lengths are checked."""
        tp = read_cloudformation(CFN)
        [pattern] = check(tp, {**CFN_OK, "BucketName": "logs_"})
        assert pattern.kind == "pattern" and pattern.message.endswith("(lower-case letters, digits and hyphens)")
        [length] = check(tp, {**CFN_OK, "BucketName": "x" * 64})
        assert length.kind == "length" and "has 64 characters" in length.message

    def test_list_parameters_take_lists_or_comma_strings(self) -> None:
        """CommaDelimitedList checks every element; List<Number> needs numbers; a mapping is a type issue."""
        tp = read_cloudformation(CFN)
        assert check(tp, {**CFN_OK, "Zones": ["a", "b"], "Ports": "80, 8080"}) == []
        [bad] = check(tp, {**CFN_OK, "Zones": "a,d"})
        assert bad.kind == "not_allowed" and bad.message.startswith("element 'd' of parameter 'Zones'")
        assert kinds(check(tp, {**CFN_OK, "Ports": [80, "http"]})) == [("type", "Ports")]
        assert kinds(check(tp, {**CFN_OK, "Zones": {"a": 1}})) == [("type", "Zones")]

    def test_ssm_parameter_types_are_not_value_checked(self) -> None:
        """The value of an SSM parameter type is a parameter name, so no constraint applies to it."""
        tp = _template(
            "cloudformation", _declared("Ami", "string", raw_type="AWS::SSM::Parameter::Value<String>", allowed=("x",))
        )
        assert check(tp, {"Ami": "/my/ami"}) == []


ARM_OK = {"storageName": "stor", "objectId": "o", "adminPassword": "p", "network": {}}


class TestCheckArmValues:
    def test_valid_values_pass(self) -> None:
        """Values of the declared JSON types within every constraint give no issue."""
        given = {**ARM_OK, "replicas": 5, "httpsOnly": False, "zones": ["2", "3"], "tags": {}, "sku": "premium_lrs"}
        assert check(read_arm(ARM), given) == []

    def test_json_types_are_strict(self) -> None:
        """A string for int or bool, a bool for int, an int for string are type issues with a fix when obvious."""
        issues = check(read_arm(ARM), {**ARM_OK, "replicas": "3", "httpsOnly": "true", "storageName": 7, "tags": []})
        assert kinds(issues) == [("type", "storageName"), ("type", "replicas"), ("type", "httpsOnly"), ("type", "tags")]
        assert issues[1].message.startswith("parameter 'replicas' = '3' is a string, but Azure requires an int")
        assert "write 3 without quotes" in issues[1].message and "write true without quotes" in issues[2].message
        assert kinds(check(read_arm(ARM), {**ARM_OK, "replicas": True})) == [("type", "replicas")]

    def test_allowed_values_ignore_case_and_apply_to_each_array_element(self) -> None:
        """Standard_XYZ is not allowed; every element of an array must be allowed."""
        [sku, zone] = check(read_arm(ARM), {**ARM_OK, "sku": "Standard_XYZ", "zones": ["1", "4"]})
        assert (sku.kind, zone.kind) == ("not_allowed", "not_allowed")
        assert "did you mean 'Standard_LRS'" in sku.message and zone.message.startswith(
            "element '4' of parameter 'zones'"
        )

    def test_lengths_and_ranges(self) -> None:
        """minLength/maxLength count characters or elements; minValue/maxValue bound ints."""
        issues = check(read_arm(ARM), {**ARM_OK, "storageName": "ab", "zones": ["1", "2", "3"], "replicas": 9})
        assert kinds(issues) == [("length", "storageName"), ("length", "zones"), ("range", "replicas")]
        assert "has 3 elements" in issues[1].message

    def test_bicep_parameters_follow_arm_rules(self) -> None:
        """A Bicep file's decorators and union types are checked like ARM constraints."""
        tp = read_arm(BICEP)
        given = {
            "storageName": "s",
            "objectId": "o",
            "adminPassword": "p",
            "mode": "Partial",
            "network": {},
            "replicas": "2",
        }
        assert kinds(check(tp, given)) == [("length", "storageName"), ("not_allowed", "mode"), ("type", "replicas")]


TF_OK = {"zone_name": "example.com", "api_token": "tok-123456789", "account_id": "1", "untyped": None}


class TestCheckTerraformValues:
    def test_valid_values_pass(self) -> None:
        """Values Terraform can convert to each type constraint give no issue."""
        given = {
            **TF_OK,
            "ttl": "60",
            "enabled": "false",
            "records": ["a"],
            "tags": {"k": 1},
            "delegation": {"name": "n", "servers": []},
        }
        assert check(read_terraform(MODULE), given) == []

    def test_values_that_do_not_convert_are_type_issues(self) -> None:
        """A non-numeric number, a string for a list and an object missing an attribute are type issues."""
        issues = check(read_terraform(MODULE), {**TF_OK, "ttl": "soon", "records": "a", "delegation": {"name": "n"}})
        assert kinds(issues) == [("type", "ttl"), ("type", "records"), ("type", "delegation")]
        assert "a number is required" in issues[0].message and 'attribute "servers" is required' in issues[2].message


class TestReferencesAndSecrets:
    @pytest.mark.parametrize(
        ("path", "given", "expected"),
        [
            (
                CFN,
                {**CFN_OK, "ReadCapacity": "${var.capacity}", "Zones": ["a", "${env.name}"], "Typo": "${var.x}"},
                [("unknown", "Typo")],
            ),
            (
                ARM,
                {"replicas": "${var.n}", "tags": {"k": "${network.outputs.Id}"}, "sku": "x-${env.name}"},
                [("missing", n) for n in ("storageName", "objectId", "adminPassword", "network")],
            ),
            (MODULE, {**TF_OK, "ttl": "${var.ttl}", "records": "${network.outputs.Ids}"}, []),
        ],
    )
    def test_references_skip_value_checks_only(
        self, path: Path, given: dict[str, Any], expected: list[tuple[str, str]]
    ) -> None:
        """A ${...} anywhere in a value skips its value checks; names and required-ness are still checked."""
        tp = read_any(path)
        assert kinds(check(tp, given)) == expected

    def test_has_reference_looks_everywhere(self) -> None:
        """References are found in strings, nested lists and mapping keys and values."""
        assert has_reference(["a", {"k": ["${var.x}"]}]) and has_reference({"${env.name}": 1})
        assert not has_reference(["$", "{var.x}", "$ {x}", 3, None])

    @pytest.mark.parametrize(
        ("path", "given"),
        [
            (CFN, {**CFN_OK, "DbPassword": "hunter2"}),
            (ARM, {**ARM_OK, "adminPassword": ["hunter2-secret"]}),
            (MODULE, {**TF_OK, "api_token": ["hunter2-secret"]}),
        ],
    )
    def test_messages_never_show_secure_values(self, path: Path, given: dict[str, Any]) -> None:
        """A secure parameter's issue says what is wrong without its value."""
        tp = read_any(path)
        [issue] = check(tp, given)
        assert issue.kind in {"length", "type"} and "hunter2" not in issue.message


_NAMES = st.from_regex(r"[A-Za-z][A-Za-z0-9]{0,12}", fullmatch=True)
_VALID = {
    ("cloudformation", "string"): st.text(max_size=8) | st.integers() | st.booleans(),
    ("cloudformation", "number"): st.integers() | st.integers().map(str),
    ("cloudformation", "list"): st.lists(st.text(alphabet="abc", min_size=1, max_size=3), max_size=3),
    ("arm", "string"): st.text(max_size=8),
    ("arm", "int"): st.integers(),
    ("arm", "bool"): st.booleans(),
    ("arm", "list"): st.lists(st.integers(), max_size=3),
    ("arm", "object"): st.dictionaries(st.text(max_size=3), st.integers(), max_size=3),
    ("terraform", "string"): st.text(max_size=8) | st.integers(),
    ("terraform", "number"): st.integers() | st.floats(allow_nan=False, allow_infinity=False),
    ("terraform", "bool"): st.booleans() | st.sampled_from(["true", "false"]),
    ("terraform", "list"): st.lists(st.text(max_size=3), max_size=3),
}
_TF_RAW = {"string": "string", "number": "number", "bool": "bool", "list": "list(string)"}


@st.composite
def _declared_and_valid(draw: st.DrawFn) -> tuple[TemplateParameters, dict[str, Any]]:
    backend = draw(st.sampled_from(["cloudformation", "arm", "terraform"]))
    names = draw(st.lists(_NAMES, min_size=1, max_size=6, unique_by=str.casefold))
    declared, values = [], {}
    for name in names:
        type_ = draw(st.sampled_from(sorted(t for b, t in _VALID if b == backend)))
        raw = _TF_RAW[type_] if backend == "terraform" else type_
        declared.append(_declared(name, type_, raw_type=raw, required=draw(st.booleans())))
        values[name] = draw(_VALID[backend, type_])
    return _template(backend, *declared), values


class TestProperties:
    @PROPERTY
    @given(_declared_and_valid())
    def test_every_declared_name_given_a_valid_value_passes(
        self, case: tuple[TemplateParameters, dict[str, Any]]
    ) -> None:
        """Any declared parameters given exactly, each with a value of its type, draw no issue."""
        tp, values = case
        assert check(tp, values) == []

    @PROPERTY
    @given(_declared_and_valid(), st.text(min_size=1, max_size=15))
    def test_any_undeclared_name_is_unknown(self, case: tuple[TemplateParameters, dict[str, Any]], extra: str) -> None:
        """Any name the template does not declare is reported once, as unknown."""
        tp, values = case
        if tp.get(extra) is None:
            issues = check(tp, {**values, extra: 1})
            assert kinds(issues) == [("unknown", extra)]

    @PROPERTY
    @given(_declared_and_valid(), st.data())
    def test_references_never_draw_value_issues(
        self, case: tuple[TemplateParameters, dict[str, Any]], data: st.DataObject
    ) -> None:
        """Whatever the type, a value holding a reference draws no value issue."""
        tp, values = case
        ref = data.draw(st.sampled_from(["${var.x}", "a-${env.name}", ["${n.outputs.Ids}"], {"k": "${secret.s}"}]))
        assert check(tp, dict.fromkeys(values, ref)) == []

    @PROPERTY
    @given(
        st.text(alphabet="abcdefgh!#", min_size=8, max_size=20), st.sampled_from(["cloudformation", "arm", "terraform"])
    )
    def test_secure_values_never_appear_in_messages(self, secret: str, backend: str) -> None:
        """However a secure parameter's value is wrong, its issue does not contain the value."""
        kind = {"cloudformation": "number", "arm": "int", "terraform": "number"}[backend]
        tp = _template(backend, _declared("Pw", kind, secure=True, allowed=("1",), pattern="x"))
        [issue] = check(tp, {"Pw": secret})
        assert secret not in issue.message and issue.kind == "type"

    @PROPERTY
    @given(
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
            lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
            max_leaves=12,
        )
    )
    def test_json_with_comments_and_trailing_commas_reads_like_json(self, value: Any) -> None:
        """Any JSON document, with a comment on every line and trailing commas, reads as json.loads reads it."""
        text = json.dumps(value, indent=2)
        text = re.sub(r"(?<=[^\[{,\s])\n(\s*[\]}])", r",\n\1", text)
        text = "/* leading */ " + text.replace("\n", " // note\n")
        assert jsonpos.load(text, Path("t.json")) == json.loads(json.dumps(value))
