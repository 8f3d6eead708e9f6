"""Property-based checks of the sandbox's expression parser, string functions and lenient JSON reader."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from strataflow.sandbox.arm_eval import Scope, evaluate
from strataflow.sandbox.arm_json import loads_lenient
from strataflow.sandbox.arm_parser import Call, Lit, Member, Node, parse, unparse

NAMES = ["concat", "format", "if", "tolower", "parameters", "createarray", "union", "length"]
ascii_text = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=30)
literals = st.one_of(ascii_text.map(Lit), st.integers(-(10**9), 10**9).map(Lit))
identifiers = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)


def _extend(children: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
    calls = st.builds(
        lambda name, args: Call(name, tuple(args), name),
        st.sampled_from(NAMES),
        st.lists(children, max_size=3),
    )
    dotted = st.builds(lambda target, key: Member(target, Lit(key)), calls, identifiers)
    indexed = st.builds(lambda target, key: Member(target, key, dotted=False), calls, children)
    return st.one_of(calls, dotted, indexed)


trees = st.recursive(literals, _extend, max_leaves=12)


def _ev(expression: str, **parameters: Any) -> Any:
    return evaluate(expression, Scope("sub", "tenant", "rg", "westeurope", parameters))


@given(trees)
@settings(max_examples=300)
def test_parse_inverts_unparse(tree: Node) -> None:
    """Any expression tree printed as text parses back to the same tree."""
    assert parse(f"[{unparse(tree)}]") == tree


@given(ascii_text)
def test_string_literals_survive_quoting(text: str) -> None:
    """A literal with quotes, brackets and commas evaluates to itself."""
    quoted = text.replace("'", "''")
    assert _ev(f"[concat('{quoted}')]") == text


@given(st.text(max_size=40))
def test_base64_and_uri_component_round_trip(text: str) -> None:
    """base64ToString(base64(s)) and uriComponentToString(uriComponent(s)) give s back."""
    assert _ev("[base64ToString(base64(parameters('s')))]", s=text) == text
    assert _ev("[uriComponentToString(uriComponent(parameters('s')))]", s=text) == text
    assert _ev("[dataUriToString(dataUri(parameters('s')))]", s=text) == text


@given(ascii_text, st.integers(0, 40))
def test_pad_left_and_case(text: str, width: int) -> None:
    """padLeft pads to the width (never cuts); toUpper/toLower match invariant ASCII casing."""
    padded = _ev("[padLeft(parameters('s'), parameters('w'), '*')]", s=text, w=width)
    assert len(padded) == max(len(text), width) and padded.endswith(text)
    assert _ev("[toUpper(parameters('s'))]", s=text) == text.upper()
    assert _ev("[toLower(parameters('s'))]", s=text) == text.lower()


@given(st.lists(st.text(alphabet="abcxyz", max_size=6), min_size=1, max_size=6))
def test_split_inverts_join(items: list[str]) -> None:
    """split(join(items, ','), ',') gives the items back."""
    assert _ev("[split(join(parameters('a'), ','), ',')]", a=items) == items


@given(ascii_text, st.integers(0, 30), st.integers(0, 30))
def test_substring_matches_slicing_within_bounds(text: str, start: int, length: int) -> None:
    """substring agrees with slicing whenever the range lies within the string."""
    if start + length <= len(text):
        assert (
            _ev("[substring(parameters('s'), parameters('i'), parameters('n'))]", s=text, i=start, n=length)
            == (text[start : start + length])
        )


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-1000, 1000), st.text(max_size=10)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=5), inner, max_size=4)),
    max_leaves=15,
)


def _loose(value: Any) -> str:
    """JSON text with a comment before every value and a trailing comma in every container."""
    if isinstance(value, dict):
        body = "".join(f"{json.dumps(k)}: {_loose(v)}," for k, v in value.items())
        return "{ /* object */ " + body + "}"
    if isinstance(value, list):
        return "[ // array\n" + "".join(f"{_loose(v)}," for v in value) + "]"
    return json.dumps(value)


@given(json_values)
def test_lenient_json_reads_comments_and_trailing_commas(value: Any) -> None:
    """Comments and trailing commas never change the value read."""
    assert loads_lenient(_loose(value)) == value
    assert loads_lenient(json.dumps(value)) == value
