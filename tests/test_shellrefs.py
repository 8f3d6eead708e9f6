"""strataflow.shellrefs: every reference reaches `sh -c` as one literal value, never as code; secrets masked."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shlex
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strataflow.shellrefs import MIN_LINE, RefusedReference, check, environment, mask, mask_forms, prepare

BODY = "up.outputs.msg"
REF = "${" + BODY + "}"
HOSTILE = [
    "$(touch pwned)",
    "`touch pwned`",
    "'",
    '"',
    "\\",
    "$HOME",
    "${HOME}",
    ";rm -rf x",
    "; touch pwned",
    "'; touch pwned; '",
    '"; touch pwned; "',
    '\\"; touch pwned #',
    "a\nb",
    "\ntouch pwned\n",
    "trailing newline\n",
    "carriage\rreturn",
    "two words",
    "  padded\t",
    "*",
    "-rf",
    "--help",
    "",
    "héllo wörld ✓ 日本",
    "EOF",
    "EOF\ntouch pwned\nEOF",
    ")",
    "$((1+1))",
    "a'b\"c`d$e\\f",
]
PRINT = "printf '%s\\0'"  # each argument followed by NUL: shows exactly which arguments arrived


def args(*values: str) -> str:
    """What PRINT writes for these arguments."""
    return "".join(value + "\0" for value in values)


# (template with REF for the reference, what it prints for a value)
CONTEXTS: dict[str, tuple[str, Callable[[str], str]]] = {
    "bare word": (f"{PRINT} REF", args),
    "joined to word text": (f"{PRINT} https://REF/path", lambda v: args(f"https://{v}/path")),
    "twice in one word": (f"{PRINT} REF:REF", lambda v: args(f"{v}:{v}")),
    "double quotes": (f'{PRINT} "note=REF end"', lambda v: args(f"note={v} end")),
    "single quotes": (f"{PRINT} 'a REF b'", lambda v: args(f"a {v} b")),
    "command name": ("${cmd} '%s\\0' REF", args),
    "assignment": (f'A=REF; {PRINT} "$A"', args),
    "export": (f'export A=REF B=x; {PRINT} "$A"', args),
    "command substitution": (f'{PRINT} "$(printf %s. REF)"', lambda v: args(v + ".")),
    "double quotes in $() in double quotes": (f'{PRINT} "a $(printf %s. "REF") b"', lambda v: args(f"a {v}. b")),
    "single quotes in $() in double quotes": (f"{PRINT} \"$(printf %s. 'qREFq')\"", lambda v: args(f"q{v}q.")),
    "nested $()": (f'{PRINT} "$(printf %s "$(printf %s. REF)")"', lambda v: args(v + ".")),
    "case pattern in $() in double quotes": (
        f'{PRINT} "$(case a in a) printf %s. REF;; esac)"',
        lambda v: args(v + "."),
    ),
    "case word and pattern": (f"case REF in REF) {PRINT} same;; *) {PRINT} other;; esac", lambda v: args("same")),
    "after if/then": (f"if true; then {PRINT} REF; fi", args),
    "subshell": (f"({PRINT} REF)", args),
    "for loop": (f'for a in REF; do {PRINT} "$a"; done', args),
    "redirections around it": (f"{PRINT} REF 2>/dev/null </dev/null", args),
    "next to a literal \\$": (f"{PRINT} \\$HOME REF", lambda v: args("$HOME", v)),
    "after a comment": (f"{PRINT} REF # REF is not used here\n", args),
    "after a comment with a quote in it": (f'{PRINT} REF # it\'s\n{PRINT} "REF"', lambda v: args(v) * 2),
    "into a pipe": (f"{PRINT} REF | cat", args),
    "argument after sh -c": ('sh -c \'printf "%s\\0" "$1"\' sh REF', args),
    "variable for sh -c": ('V=REF sh -c \'printf "%s\\0" "$V"\'', args),
    "argument to sh -s script": ("sh -s -- REF <<'EOF'\nprintf '%s\\0' \"$1\"\nEOF", args),
    "unquoted here-document": ("cat <<EOF\nREF\nEOF", lambda v: v + "\n"),
    "here-document with tabs stripped": (f"cat <<-EOF\n\t[REF]\n\tEOF\n{PRINT} REF", lambda v: f"[{v}]\n" + args(v)),
    "two here-documents": ('cat <<A; cat <<B\nREF\nA\n"REF"\nB', lambda v: f'{v}\n"{v}"\n'),
    "here-document line continued": ("cat <<EOF\na\\\nEOF\nREF\nEOF", lambda v: f"aEOF\n{v}\n"),
    "here-document in $()": (f'{PRINT} "$(cat <<EOF\nREF.\nEOF\n)"', lambda v: args(v + ".")),
}
TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\0"))
FRAGMENTS = st.sampled_from([*HOSTILE, "$(", "`", "'", '"', "\\", "\n", "EOF", "}", "${x}", "$((", "#"])
VALUES = TEXT | st.lists(FRAGMENTS | TEXT, max_size=6).map("".join)


def run(template: str, value: str, cwd: Path) -> str:
    """Prepare ``template`` (REF standing for the reference), run it with ``/bin/sh -c``; its stdout."""
    prepared = prepare(template.replace("REF", REF))
    env = {"PATH": os.environ["PATH"], **environment(prepared, {BODY: value, "cmd": "printf"})}
    result = subprocess.run(
        ["/bin/sh", "-c", prepared.script], env=env, cwd=cwd, capture_output=True, timeout=10, check=False
    )
    assert result.returncode == 0, result.stderr
    assert not (cwd / "pwned").exists(), "a value ran as a command"
    return result.stdout.decode()


class TestContexts:
    """Each quoting context, run for real with hostile values."""

    @pytest.mark.parametrize("context", CONTEXTS)
    @pytest.mark.parametrize("value", HOSTILE, ids=[repr(value)[1:-1][:24] for value in HOSTILE])
    def test_value_arrives_as_one_literal(self, context: str, value: str, tmp_path: Path) -> None:
        """The program receives exactly the value, as one argument, and nothing in it runs."""
        template, expected = CONTEXTS[context]
        assert run(template, value, tmp_path) == expected(value)

    @pytest.mark.parametrize("context", CONTEXTS)
    @settings(max_examples=50, deadline=None)
    @given(value=VALUES)
    def test_any_text_arrives_as_one_literal(self, context: str, value: str) -> None:
        """For arbitrary text, the output equals the value and nothing is executed."""
        template, expected = CONTEXTS[context]
        with tempfile.TemporaryDirectory() as cwd:
            assert run(template, value, Path(cwd)) == expected(value)

    def test_value_as_command_name_is_one_word(self, tmp_path: Path) -> None:
        """A hostile command name is looked up whole, never split into a command line."""
        prepared = prepare("${cmd} arg")
        env = {"PATH": os.environ["PATH"], **environment(prepared, {"cmd": "touch pwned; touch pwned2"})}
        result = subprocess.run(
            ["/bin/sh", "-c", prepared.script], env=env, cwd=tmp_path, capture_output=True, check=False
        )
        assert result.returncode == 127
        assert list(tmp_path.iterdir()) == []

    def test_old_quoting_was_injectable(self, tmp_path: Path) -> None:
        """Pasting shlex-quoted values, the old way, runs a value inside double quotes (why this module exists)."""
        pasted = 'echo "note=' + shlex.quote("$(touch pwned)") + '"'
        subprocess.run(["/bin/sh", "-c", pasted], cwd=tmp_path, capture_output=True, check=False)
        assert (tmp_path / "pwned").exists()
        (tmp_path / "pwned").unlink()
        assert run('echo "note=REF"', "$(touch pwned)", tmp_path) == "note=$(touch pwned)\n"


class TestPrepare:
    """The script, the variables it reads and the display form."""

    def test_script_by_context(self) -> None:
        """Each context gets the form that keeps the value one literal word."""
        script = prepare("a https://${x}/p \"q ${x}\" 'abc${y}def' \"$(b '${x}')\"").script
        expected = 'a https://"${STRATA_REF_1}"/p "q ${STRATA_REF_1}" \'abc\'"${STRATA_REF_2}"\'def\''
        assert script == expected + " \"$(b ''\"${STRATA_REF_1}\"'')\""

    def test_identical_references_share_a_variable(self) -> None:
        """A reference used twice is one variable; a different one gets its own."""
        prepared = prepare("echo ${a.outputs.k} ${var.v} ${a.outputs.k}")
        assert prepared.refs == [("STRATA_REF_1", "a.outputs.k"), ("STRATA_REF_2", "var.v")]

    def test_comment_is_left_alone(self) -> None:
        """A reference in a comment is not substituted and needs no value."""
        prepared = prepare("echo ok # uses ${var.v}\necho ${var.w}")
        assert prepared.script == 'echo ok # uses ${var.v}\necho "${STRATA_REF_1}"'
        assert prepared.refs == [("STRATA_REF_1", "var.w")]

    def test_display_never_contains_values(self) -> None:
        """What is logged is the template as written: references, never resolved values."""
        command = 'curl -u "admin:${secret.pw}" https://${dns.outputs.fqdn}/ # ${var.x}'
        prepared = prepare(command)
        values = {"secret.pw": "hunter'2", "dns.outputs.fqdn": "example.test"}
        env = environment(prepared, values)
        assert prepared.display == command
        for value in values.values():
            assert value not in prepared.display
            assert value not in prepared.script
            assert value not in repr(prepared)
        assert sorted(env.values()) == sorted(values.values())

    def test_environment_needs_every_value(self) -> None:
        """A reference without a value is an error, not an empty string."""
        with pytest.raises(KeyError, match=r"\$\{var.b\}"):
            environment(prepare("echo ${var.a} ${var.b}"), {"var.a": "1"})

    def test_environment_refuses_nul(self) -> None:
        """A NUL cannot be in an argument: say so instead of failing inside subprocess."""
        with pytest.raises(ValueError, match="NUL"):
            environment(prepare("echo ${var.a}"), {"var.a": "a\0b"})

    def test_environment_refuses_unencodable_text(self) -> None:
        """A lone surrogate (JSON allows one) cannot be put in the environment: say so up front."""
        with pytest.raises(ValueError, match=r"\$\{var.a\} cannot be encoded"):
            environment(prepare("echo ${var.a}"), {"var.a": "\ud800"})


REFUSED = {
    "backticks": ("echo `echo ${up.outputs.msg}`", "backticks", "$(...)"),
    "backticks in double quotes": ('echo "`echo ${up.outputs.msg}`"', "backticks", "$(...)"),
    "arithmetic": ("echo $((${up.outputs.msg} + 1))", "$((...))", "case $n in"),
    "arithmetic in $()": ('echo "$(echo $((${up.outputs.msg})))"', "$((...))", "case $n in"),
    "quoted here-document": ("cat <<'EOF'\n${up.outputs.msg}\nEOF", "quoted delimiter", "unquoted delimiter (<<EOF)"),
    "double-quoted here-document": ('cat <<"EOF"\n${up.outputs.msg}\nEOF', "quoted delimiter", "<<EOF"),
    "backslash-quoted here-document": ("cat <<\\EOF\n${up.outputs.msg}\nEOF", "quoted delimiter", "<<EOF"),
    "escaped": ("echo \\${up.outputs.msg}", "escaped", "remove the backslash"),
    "escaped in double quotes": ('echo "\\${up.outputs.msg}"', "escaped", "remove the backslash"),
    "escaped in a here-document": ("cat <<EOF\n\\${up.outputs.msg}\nEOF", "escaped", "remove the backslash"),
    "shell expansion": ("echo ${A:-${up.outputs.msg}}", "shell expansion", "v=${up.outputs.msg}"),
    "eval": ('eval "echo ${up.outputs.msg}"', "argument of eval", 'V=${up.outputs.msg}) and use "$V"'),
    "eval of $()": ('eval "$(printf %s ${up.outputs.msg})"', "argument of eval", '"$V"'),
    "trap": ("trap 'echo ${up.outputs.msg}' EXIT", "argument of trap", '"$V"'),
    "alias": ("alias deploy='echo ${up.outputs.msg}'", "argument of alias", '"$V"'),
    "watch": ("watch -n 5 kubectl get ${up.outputs.msg}", "argument of watch", '"$V"'),
    "sh -c": ("sh -c 'echo ${up.outputs.msg}'", "command string of sh -c", '"$1"\' sh ${up.outputs.msg}'),
    "bash -ec": ('bash -ec "echo ${up.outputs.msg}"', "command string of bash -c", "V=${up.outputs.msg} sh -c"),
    "sudo /bin/sh -c": ("sudo /bin/sh -c 'echo ${up.outputs.msg}'", "/bin/sh -c", '"$1"'),
    "bash -o pipefail -c": ("bash -o pipefail -c 'echo ${up.outputs.msg}'", "bash -c", '"$1"'),
    "heredoc delimiter": ("cat <<${up.outputs.msg}\nx\n", "delimiter", "EOF"),
    "eval after then": ('if true; then eval "${up.outputs.msg}"; fi', "argument of eval", '"$V"'),
    "command eval": ("command eval ${up.outputs.msg}", "argument of eval", '"$V"'),
    "eval after a redirection": ("2>/dev/null eval ${up.outputs.msg}", "argument of eval", '"$V"'),
    "pipe into sh": ("echo ${up.outputs.msg} | sh", "pipeline into sh", '"$1"\' sh ${up.outputs.msg}'),
    "pipe across a line": ("echo ${up.outputs.msg} |\n  sudo bash -e", "pipeline into bash", "to a file"),
    "pipe from $()": ('echo "$(echo ${up.outputs.msg})" | sh', "pipeline into sh", '"$1"'),
    "here-document into sh": ("sh <<EOF\necho ${up.outputs.msg}\nEOF", "here-document that sh runs", "sh -s -- "),
    "here-document piped into sh": ("cat <<EOF | sh\n${up.outputs.msg}\nEOF", "that sh runs as a script", '"$1"'),
    "here-document into kubectl exec": ("kubectl exec -i p -- sh -e <<EOF\n${up.outputs.msg}\nEOF", "sh runs", "$1"),
    "here-document into ssh": ("ssh -p 22 host <<EOF\n${up.outputs.msg}\nEOF", "that ssh runs as a script", "$1"),
    "ssh remote command": ("ssh -i key host deploy ${up.outputs.msg}", "remote command of ssh", "| ssh HOST"),
}


class TestRefusals:
    """References where no quoting can protect the value are refused with a useful message."""

    @pytest.mark.parametrize("case", REFUSED)
    def test_refused(self, case: str) -> None:
        """prepare raises a one-line message naming the reference, the context and the fix; check returns it."""
        command, context, advice = REFUSED[case]
        with pytest.raises(RefusedReference) as raised:
            prepare(command)
        message = str(raised.value)
        assert message.startswith("${up.outputs.msg} ")
        assert context in raised.value.context
        assert advice in raised.value.advice
        assert "\n" not in message
        assert check(command) == [message]

    def test_check_collects_every_refusal(self) -> None:
        """check reports every refused reference at once and raises nothing."""
        messages = check("echo `${var.a}` $((${var.b}))\neval ${var.c}")
        assert [message.split(" ")[0] for message in messages] == ["${var.a}", "${var.b}", "${var.c}"]
        assert check("echo ${var.a}") == []

    def test_ssh_host_and_options_are_allowed(self) -> None:
        """Only ssh's remote command is code: the host and option arguments may be references."""
        assert check("ssh -p ${var.port} -i ${var.key} -o StrictHostKeyChecking=no ${vm.outputs.ip} uptime") == []
        assert check("printf %s ${var.a} | ssh host 'v=$(cat); echo \"$v\"'") == []

    def test_refused_reference_is_a_value_error(self) -> None:
        """Callers that catch ValueError for bad configuration catch this too."""
        assert issubclass(RefusedReference, ValueError)

    @pytest.mark.parametrize(
        "command",
        [
            "sh -c 'echo \"$1\"' sh ${var.a}",
            "V=${var.a} sh -c 'echo \"$V\"'",
            "V=${var.a}; eval 'echo \"$V\"'",
            "echo eval ${var.a}",
            "echo $((1 + 2)) ${var.a}",
            "cat <<'EOF'\n$HOME\nEOF\necho ${var.a}",
            "echo `date` ${var.a}",
            "echo ${var.a} # `${var.b}` is a comment",
            "echo ${var.a} | grep -F '$'",
            "echo ${var.a} || sh </dev/null",
            "echo ${var.a}; echo true | sh",
            "cat <<EOF\n${var.a}\nEOF\necho true | sh",
            "sh -c 'exit 0' <<EOF\n${var.a}\nEOF\necho ${var.a}",
        ],
    )
    def test_near_misses_are_allowed(self, command: str, tmp_path: Path) -> None:
        """Safe forms next to the refused ones are accepted and run."""
        prepared = prepare(command)
        env = {"PATH": os.environ["PATH"], "HOME": "/h", **environment(prepared, {"var.a": "$(touch pwned)"})}
        result = subprocess.run(
            ["/bin/sh", "-c", prepared.script], env=env, cwd=tmp_path, capture_output=True, check=False
        )
        assert result.returncode == 0, result.stderr
        assert b"$(touch pwned)" in result.stdout
        assert not (tmp_path / "pwned").exists()


PIECES = [*"'\"\\$()`{};|&<>*:=# \t\n", "${x}", "${y}", "$(", "$((", "<<", "<<-", "EOF", "case ", " in ", " esac"]
PIECES += ["eval ", "sh -c ", "-c", "a"]


class TestArbitraryTemplates:
    """Whatever the template, the lexer accepts or refuses it, and an accepted one never runs a value."""

    @settings(max_examples=150, deadline=None)
    @given(template=st.lists(st.sampled_from(PIECES), max_size=14).map("".join))
    def test_accepted_or_refused_and_never_runs_a_value(self, template: str) -> None:
        """prepare returns or raises RefusedReference as check predicts; running the script executes no value."""
        try:
            prepared = prepare(template)
        except RefusedReference:
            assert check(template)
            return
        assert check(template) == []
        values = {"x": "$(touch pwned)`touch pwned`;touch pwned", "y": "'\"; touch pwned #"}
        values |= {body: values["x"] for _, body in prepared.refs if body not in values}  # `${}`, `${;}`: any body
        env = {"PATH": os.environ["PATH"], **environment(prepared, values)}
        with tempfile.TemporaryDirectory() as cwd:
            with contextlib.suppress(subprocess.TimeoutExpired):
                subprocess.run(
                    ["/bin/sh", "-c", prepared.script], env=env, cwd=cwd, capture_output=True, timeout=5, check=False
                )
            assert not (Path(cwd) / "pwned").exists()


SECRET = 'hunter\'2 "x"/ä$\t'
BINARYISH = "?>?~"  # base64 Pz4/fg==, URL-safe Pz4_fg==


class TestMask:
    """Secrets are masked in every form they take on the way out."""

    @pytest.mark.parametrize(
        ("form", "secret", "text"),
        [
            ("raw", SECRET, SECRET),
            ("shell-quoted", SECRET, "'hunter'\"'\"'2 \"x\"/ä$\t'"),
            ("JSON, ASCII", SECRET, 'hunter\'2 \\"x\\"/\\u00e4$\\t'),
            ("JSON, UTF-8", SECRET, 'hunter\'2 \\"x\\"/ä$\\t'),
            ("URL", SECRET, "hunter%272%20%22x%22/%C3%A4%24%09"),
            ("URL, slash encoded", SECRET, "hunter%272%20%22x%22%2F%C3%A4%24%09"),
            ("URL, form", SECRET, "hunter%272+%22x%22%2F%C3%A4%24%09"),
            ("base64", BINARYISH, "Pz4/fg=="),
            ("base64 without padding", BINARYISH, "Pz4/fg"),
            ("base64, URL-safe", BINARYISH, "Pz4_fg=="),
            ("base64, URL-safe without padding", BINARYISH, "Pz4_fg"),
            ("backslash-escaped like printf %q", SECRET, 'hunter\\\'2\\ \\"x\\"/\\ä\\$\\\t'),
            ("backslash-escaped in double quotes", SECRET, 'hunter\'2 \\"x\\"/ä\\$\t'),
            ("Python escapes", SECRET, 'hunter\'2 "x"/\\xe4$\\t'),
        ],
    )
    def test_form_is_masked(self, form: str, secret: str, text: str) -> None:
        """Each form is masked whole, with no fragment of the secret left around it."""
        assert text in mask_forms(secret), form
        assert mask(f"before {text} after", [secret]) == "before *** after"

    def test_forms_match_the_encoders(self) -> None:
        """The forms above are what the standard encoders produce."""
        raw = SECRET.encode()
        assert {shlex.quote(SECRET), json.dumps(SECRET)[1:-1], quote(SECRET), quote_plus(SECRET)} <= mask_forms(SECRET)
        assert base64.b64encode(raw).decode() in mask_forms(SECRET)

    @settings(max_examples=300, deadline=None)
    @given(secret=st.text(st.characters(codec="utf-8", exclude_characters="*"), min_size=1), around=st.text(max_size=4))
    def test_no_form_survives(self, secret: str, around: str) -> None:
        """For any secret, no form that mask_forms lists is left in the masked text, nor the raw value."""
        for form in mask_forms(secret):
            masked = mask(around + form + around, [secret])
            assert form not in masked
            assert secret not in masked or secret in around

    def test_lines_of_a_multiline_secret(self) -> None:
        """Each line of at least MIN_LINE characters is masked on its own; shorter lines are not."""
        key = "-----BEGIN KEY-----\nMIIEvQIBADANBg\nab\r\n-----END KEY-----"
        assert MIN_LINE == 4
        assert mask("MIIEvQIBADANBg about ab", [key]) == "*** about ab"
        assert mask("the key: -----END KEY-----", [key]) == "the key: ***"

    def test_multiline_secret_escaped(self) -> None:
        """A multi-line secret printed as JSON (newline as \\n) is masked whole."""
        assert mask('{"key": "line one\\nline two"}', ["line one\nline two"]) == '{"key": "***"}'

    def test_longest_form_first(self) -> None:
        """The quoted form is replaced whole, not the raw value inside it leaving quotes behind."""
        assert mask("pw='it'\"'\"'s'", ["it's"]) == "pw=***"
        assert mask("abcdef abcd", ["abcd", "abcdef"]) == "*** ***"

    def test_empty_and_no_secrets(self) -> None:
        """An empty secret masks nothing, and no secrets leave the text as it is."""
        assert mask_forms("") == set()
        assert mask("text", [""]) == "text"
        assert mask("text", []) == "text"
