"""References in configuration strings: parsing, finding, rendering, shell quoting, secrets."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strataflow import refs
from strataflow.backends.command import CommandImpl
from strataflow.load import load_platform
from strataflow.refs import KNOWN_AFTER_APPLY, Ref, RefSyntaxError
from strataflow.resolve import resolve
from tests.support.configs import sample_config

SH = shutil.which("sh")
NAME = r"[A-Za-z0-9_][A-Za-z0-9_-]{0,8}"

NASTY = [
    "; rm -rf /",
    "$(rm -rf /)",
    "`rm -rf /`",
    "it's",
    '"double"',
    "line one\nline two",
    "a && b || c | d > /tmp/x < /etc/passwd &",
    "${HOME} $HOME $$ $? $! $0",
    "*.yaml ?x [abc] ~root",
    "tab\there",
    "'; echo pwned; '",
    "\"; echo pwned; \"",
    "#not a comment",
    "",
    "   leading and trailing   ",
    "emoji ✓ and ünïcödé",
]


def _lookup(values: dict[str, Any]) -> refs.Lookup:
    """Look a variable up by its name and an output by its key."""
    def lookup(ref: Ref) -> Any:
        return values[ref.key if ref.kind == "output" else ref.name]

    return lookup


def _sh(command: str) -> str:
    """What ``sh -c command`` prints."""
    assert SH is not None
    run = subprocess.run([SH, "-c", command], capture_output=True, timeout=10, check=False)
    assert run.returncode == 0, run.stderr
    return run.stdout.decode()  # bytes, so that a carriage return is not turned into a newline


class TestParse:
    @pytest.mark.parametrize(
        ("body", "ref"),
        [
            ("var.vpc_cidr", Ref("var", "vpc_cidr")),
            ("env.name", Ref("env", "name")),
            ("env.cloud", Ref("env", "cloud")),
            ("secret.db-password", Ref("secret", "db-password")),
            ("network.outputs.VpcId", Ref("output", "network", "VpcId")),
            ("smoke-test.outputs.Endpoint_2", Ref("output", "smoke-test", "Endpoint_2")),
            ("  var.padded  ", Ref("var", "padded")),
        ],
    )
    def test_forms(self, body: str, ref: Ref) -> None:
        """Each documented form parses to its kind, name and key."""
        assert refs.parse(body) == ref

    @pytest.mark.parametrize(
        "body", ["foo", "var.", "var", "env.region", "secret.", "network.outputs", "network.outputs.", "a.b.c",
                 "var.a.b", "", "var.a b", "network.output.X", "-x.outputs.Y"]
    )
    def test_malformed(self, body: str) -> None:
        """Anything else is a RefSyntaxError that lists the valid forms."""
        with pytest.raises(RefSyntaxError, match=r"is not a reference; use \$\{var.NAME\}"):
            refs.parse(body)

    @settings(max_examples=200, deadline=None)
    @given(
        st.one_of(
            st.builds(Ref, st.sampled_from(["var", "secret"]), st.from_regex(NAME, fullmatch=True)),
            st.builds(Ref, st.just("env"), st.sampled_from(["name", "cloud"])),
            st.builds(
                Ref,
                st.just("output"),
                st.from_regex(r"[a-z0-9][a-z0-9-]{0,8}", fullmatch=True),
                st.from_regex(NAME, fullmatch=True),
            ),
        )
    )
    def test_text_round_trips(self, ref: Ref) -> None:
        """A reference's text parses back to the same reference."""
        assert ref.text.startswith("${") and ref.text.endswith("}")
        assert refs.parse(ref.text[2:-1]) == ref

    def test_find_reports_paths_and_errors(self) -> None:
        """`find` yields each reference with its path, and a syntax error in place of a bad one."""
        value = {"a": ["x ${var.one} ${network.outputs.Id}", {"b": "${oops}"}], "c": 3}
        found = list(refs.find(value))
        assert [(path, ref) for path, ref in found if isinstance(ref, Ref)] == [
            (("a", 0), Ref("var", "one")),
            (("a", 0), Ref("output", "network", "Id")),
        ]
        errors = [(path, ref) for path, ref in found if isinstance(ref, RefSyntaxError)]
        assert [path for path, _ in errors] == [("a", 1, "b")]
        assert refs.outputs_used(value) == {"network"}


class TestRender:
    def test_whole_string_reference_keeps_its_type(self) -> None:
        """A value that is exactly one reference becomes the looked-up value itself: list, number, mapping."""
        lookup = _lookup({"ids": ["subnet-1", "subnet-2"], "n": 3, "m": {"k": "v"}, "flag": False})
        rendered = refs.render(
            {"a": "${x.outputs.ids}", "b": "${var.n}", "c": ["${var.m}"], "d": "${var.flag}"}, lookup
        )
        assert rendered == {"a": ["subnet-1", "subnet-2"], "b": 3, "c": [{"k": "v"}], "d": False}

    def test_inside_a_string_values_become_text(self) -> None:
        """Inside a longer string lists are comma-joined, mappings JSON, booleans true/false, None empty."""
        lookup = _lookup({"ids": ["s1", "s2"], "n": 3, "m": {"b": 1, "a": 2}, "t": True, "none": None})
        text = refs.render("ids=${x.outputs.ids} n=${var.n} m=${var.m} t=${var.t} none=[${var.none}]", lookup)
        assert text == 'ids=s1,s2 n=3 m={"a": 2, "b": 1} t=true none=[]'

    def test_non_strings_pass_through(self) -> None:
        """Numbers, booleans and None are left as they are."""
        assert refs.render([1, 2.5, True, None], _lookup({})) == [1, 2.5, True, None]

    def test_dollar_without_braces_is_plain_text(self) -> None:
        """`$HOME` and a lone `${` are not references and stay as written."""
        assert refs.render("echo $HOME ${ x", _lookup({})) == "echo $HOME ${ x"


class TestShellQuoting:
    pytestmark = pytest.mark.skipif(SH is None, reason="needs /bin/sh")

    @pytest.mark.parametrize("value", NASTY, ids=range(len(NASTY)))
    def test_echo_prints_the_value_unchanged(self, value: str) -> None:
        """A value with shell metacharacters, once quoted into `echo ${...}`, reaches echo as one literal argument."""
        command = refs.render("echo ${var.x}", _lookup({"x": value}), quote=shlex.quote)
        assert _sh(command) == value + "\n"

    @settings(max_examples=150, deadline=None)
    @given(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40))
    def test_any_text_survives_the_shell(self, value: str) -> None:
        """Any text quoted into a command reaches the program as exactly one argument, unchanged."""
        command = refs.render("printf '%s|' ${var.x} ${var.x}", _lookup({"x": value}), quote=shlex.quote)
        assert _sh(command) == f"{value}|{value}|"

    def test_whole_string_reference_is_quoted_too(self) -> None:
        """With quoting, even a command that is only a reference is rendered as quoted text."""
        assert refs.render("${var.x}", _lookup({"x": "a b"}), quote=shlex.quote) == "'a b'"

    def test_list_value_is_one_argument(self) -> None:
        """A list output is comma-joined and quoted as one argument."""
        command = refs.render("printf '%s|' ${x.outputs.ids}", _lookup({"ids": ["a b", "$(c)"]}), quote=shlex.quote)
        assert _sh(command) == "a b,$(c)|"


class TestSecrets:
    def test_secret_stays_reference_text_without_a_lookup(self, tmp_path: Path) -> None:
        """Resolving outside the task keeps `${secret.NAME}` as text and never asks for its value."""
        platform = load_platform(sample_config(tmp_path))
        env = platform.environment("dev")
        outputs = {"clusters": {"Endpoint": "https://k8s"}}
        resolved = resolve(platform, env, "aws", "smoke-test", outputs)
        assert isinstance(resolved.impl, CommandImpl)
        script = resolved.scripts["apply"]
        assert script.display == "./scripts/smoke.sh ${clusters.outputs.Endpoint} ${secret.smoke_token}"
        assert script.script == './scripts/smoke.sh "${STRATA_REF_1}" "${STRATA_REF_2}"'
        assert resolved.script_values == {
            "clusters.outputs.Endpoint": "https://k8s",
            "secret.smoke_token": "${secret.smoke_token}",
        }
        assert resolved.secrets == frozenset()

    def test_secret_value_never_changes_the_digest(self, tmp_path: Path) -> None:
        """Inside the task the secret is a value of the script's environment, yet the digest is the one computed
        without it; the command text never holds it."""
        platform = load_platform(sample_config(tmp_path))
        env = platform.environment("dev")
        outputs = {"clusters": {"Endpoint": "https://k8s"}}
        asked: list[str] = []

        def secret(name: str) -> str:
            asked.append(name)
            return "s3cr3t; rm -rf /"

        outside = resolve(platform, env, "aws", "smoke-test", outputs)
        inside = resolve(platform, env, "aws", "smoke-test", outputs, secret=secret)
        assert asked == ["smoke_token"]
        assert isinstance(inside.impl, CommandImpl)
        assert inside.scripts["apply"] == outside.scripts["apply"]
        assert "s3cr3t" not in inside.scripts["apply"].script and "s3cr3t" not in inside.impl.apply
        assert inside.script_values["secret.smoke_token"] == "s3cr3t; rm -rf /"
        assert inside.secrets == frozenset({"s3cr3t; rm -rf /"})
        assert inside.digest == outside.digest

    def test_planning_marks_unknown_outputs(self, tmp_path: Path) -> None:
        """When planning, an upstream output not known yet renders as '(known after apply)'."""
        platform = load_platform(sample_config(tmp_path))
        resolved = resolve(platform, platform.environment("dev"), "aws", "clusters", {}, planning=True)
        assert resolved.parameters == {"SubnetIds": KNOWN_AFTER_APPLY, "NodeCount": 3}
        assert resolved.timeout == 900
