"""Command templates as shell scripts in which a reference can never become code.

The ``command`` backend runs templates such as ``./smoke.sh https://${dns.outputs.fqdn}``
with ``/bin/sh -c``. Pasting values into that text, even ``shlex.quote``-d, lets a hostile
output run: inside "..." or a here-document the quotes are literal characters. So, as
GitHub advises for workflow scripts, values never enter the script: ``prepare`` writes
each reference as an expansion of an environment variable ``STRATA_REF_<n>`` and
``environment`` supplies the values. sh never parses the result of an expansion again, so
a value cannot become code; a small lexer, reading the text as POSIX sh does (quotes,
backslashes, nested ``$(...)`` with ``case`` patterns, comments, here-documents), picks
the form that also keeps it one literal word:

- unquoted (argument, command name, ``A=${x}``, ``https://${x}``): ``https://"${STRATA_REF_1}"``
- inside "..." or an unquoted here-document (``<<EOF``): ``${STRATA_REF_1}``
- inside '...', closing and reopening the quote: ``'abc'"${STRATA_REF_1}"'def'``
- inside ``$(...)``: by the quoting inside it; in a comment: left alone, not in ``refs``

``RefusedReference`` where no form is right: backticks (parsed again after backslash
removal: use ``$(...)``), ``$((...))`` (evaluated), inside another expansion
(``${A:-${x}}``: a pattern), ``\\${x}`` (a literal ``${`` to sh), a quoted here-document
(``<<'EOF'`` expands nothing), and text that is run as code: arguments of ``eval``,
``trap``, ``alias`` and ``watch``, the command string of ``sh -c``, input piped or
here-documented into a shell (``| sh``, ``sh <<EOF``, ``ssh host <<EOF``) and the remote
command of ``ssh``. Finding code is best-effort: it reads simple commands and pipelines
(``sudo sh -c``, ``kubectl exec -i pod -- sh``) but not other interpreters (``python -c``),
``su``, functions or aliases; there a value is only safe as an argument
(``sh -c '... "$1"' sh ${x}``) or in a variable (``V=${x} sh -c '... "$V"'``).

Quoting cannot stop a program from reading a value that starts with ``-`` as an option
(write ``--`` first) or from pasting it into code of its own (SQL, JSON). Logs show
``Prepared.display``, the template as written, never values.

``mask`` hides secrets in every form ``mask_forms`` lists (raw, quoted, JSON-, URL-,
base64-, backslash-escaped, and each line of ``MIN_LINE`` or more characters of each of these
forms: shorter fragments such as ``}`` would hide ordinary text), longest first, as ``***``.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import quote, quote_plus

from strataflow.refs import PATTERN

PREFIX = "STRATA_REF_"
MIN_LINE = 4
_SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "ash", "mksh", "yash"})
_EVALUATORS = frozenset({"eval", "trap", "alias", "watch"})  # their arguments become shell code
_LAUNCHERS = frozenset({"--", "command", "builtin", "exec", "sudo", "env", "nohup", "nice", "time"})
_SSH_ARGUMENTS = "BbcDEeFIiJLlmOoPpQRSWw"  # ssh options that take an argument
# after these sh reads the next word as a command name again
_RESERVED = frozenset({"if", "then", "else", "elif", "fi", "do", "done", "while", "until", "{", "}", "!"})
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
_HOLE = "\0"  # an expansion inside a word's literal text (never equal to a keyword)
# why a reference cannot stay where it is ": " how to write it instead ({ref}: the reference)
_REFUSALS = {
    "backticks": "is inside backticks, which sh parses again after removing backslashes: write $(...) instead of `...`",
    "arithmetic": "is inside $((...)), where sh evaluates the value as an arithmetic expression: check it is a number first: n={ref}; case $n in ''|*[!0-9]*) exit 1;; esac; echo $((n + 1))",
    "expansion": "is inside a shell expansion ${...}, where it would be a pattern or be expanded again: assign it first (v={ref}) and use $v inside the expansion",
    "escaped": "is escaped, so sh would read a literal '${' where strataflow reads a reference: remove the backslash to pass the value",
    "quoted here-document": "is in a here-document with a quoted delimiter (<<'EOF'), where sh expands nothing: use an unquoted delimiter (<<EOF); the value is still never parsed as code",
    "delimiter": "is in a here-document delimiter: use a fixed word such as EOF",
    "eval": 'is in an argument of {command}, whose text sh runs as code: put it in a variable first (V={ref}) and use "$V" in the text',
    "shell": "is in the command string of {command} -c, which runs as code: pass it as an argument instead (sh -c '... \"$1\"' sh {ref}) or in a variable (V={ref} sh -c '... \"$V\"')",
    "pipe": "is in a pipeline into {command}, which runs its input as code: pass it as an argument instead (sh -c '... \"$1\"' sh {ref}), or save the input to a file and run that",
    "script": "is in a here-document that {command} runs as a script: pass it as an argument instead: sh -s -- {ref} <<'EOF' ... \"$1\" ... EOF",
    "ssh": "is in the remote command of {command}, which the remote shell parses as code: send it on stdin instead: printf '%s' {ref} | ssh HOST 'v=$(cat); ... \"$v\"'",
}


class RefusedReference(ValueError):
    """A reference where no quoting keeps its value from being parsed as code (or from expanding)."""

    def __init__(self, reference: str, context: str, advice: str) -> None:
        self.reference, self.context, self.advice = reference, context, advice
        super().__init__(f"{reference} {context}: {advice}")


@dataclass(frozen=True)
class Prepared:
    """A template ready for ``sh -c``: ``script`` reads each value from the variable in ``refs``."""

    script: str
    refs: list[tuple[str, str]]  # (variable, reference body)
    display: str  # the template as written: what is logged, never values


def prepare(command: str) -> Prepared:
    """``command`` with each reference turned into its variable; raise ``RefusedReference``."""
    lexer = _lex(command)
    if lexer.problems:
        raise lexer.problems[0]
    refs = [(name, body) for body, name in lexer.names.items()]
    return Prepared("".join(lexer.out), refs, command)


def check(command: str) -> list[str]:
    """One message per refused reference in ``command``, without raising (for ``strata validate``)."""
    return list(dict.fromkeys(str(problem) for problem in _lex(command).problems))


def environment(prepared: Prepared, values: Mapping[str, str]) -> dict[str, str]:
    """The variables ``prepared.script`` reads, from text values keyed by reference body."""
    env: dict[str, str] = {}
    for name, body in prepared.refs:
        if body not in values:
            raise KeyError(f"no value for {_show(body)}")
        value = values[body]
        if "\0" in value:
            raise ValueError(f"the value of {_show(body)} contains a NUL character, which no program argument can hold")
        try:
            os.fsencode(value)
        except UnicodeEncodeError as exc:
            raise ValueError(f"the value of {_show(body)} cannot be encoded for the environment: {exc.reason}") from exc
        env[name] = value
    return env


def mask_forms(secret: str) -> set[str]:
    """Every form ``secret`` can take in output: raw, quoted, escaped, encoded, and the long lines of each."""
    if not secret:
        return set()
    raw = secret.encode("utf-8", "surrogatepass")
    b64 = [base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()]
    forms = {secret, shlex.quote(secret), json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]}
    forms |= {quote(secret), quote(secret, safe=""), quote_plus(secret), *b64, *(b.rstrip("=") for b in b64)}
    forms |= {
        re.sub(r"([^\w@%+=:,./-])", r"\\\1", secret, flags=re.ASCII),  # bash printf %q
        re.sub(r'([\\"$`])', r"\\\1", secret),  # inside "..."
        secret.encode("unicode_escape").decode("ascii"),  # Python, C: \n \\ \xe9
    }
    # a form printed across lines (raw, quoted, escaped newlines kept) shows one line of it per log line
    forms.update(line for form in list(forms) for line in form.splitlines() if len(line) >= MIN_LINE)
    return forms


def mask(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every form of every secret replaced by ``***``, longest forms first."""
    pattern = _mask_pattern(frozenset(secrets))
    return pattern.sub("***", text) if pattern else text


@functools.lru_cache(maxsize=64)
def _mask_pattern(secrets: frozenset[str]) -> re.Pattern[str] | None:
    forms = sorted({form for secret in secrets for form in mask_forms(secret)}, key=lambda f: (-len(f), f))
    return re.compile("|".join(map(re.escape, forms))) if forms else None


def _show(body: str) -> str:
    return "${" + body.replace("\n", "\\n").replace("\r", "\\r") + "}"


def _lex(command: str) -> _Lexer:
    lexer = _Lexer(command)
    lexer.commands(close=False)
    return lexer


def _balanced(text: str, start: int, opening: str, closing: str) -> int:
    """The index after the ``closing`` that matches the ``opening`` at ``start``."""
    depth = 0
    for index in range(start, len(text)):
        if text[index] == opening:
            depth += 1
        elif text[index] == closing:
            depth -= 1
            if depth == 0:
                return index + 1
    return len(text)


def _options(words: list[str], index: int, takes: str) -> tuple[str, int]:
    """The option letters from ``words[index]`` on, read like getopt, and the index of the first operand."""
    letters = ""
    while index < len(words) and len(words[index]) > 1 and words[index][0] in "-+":
        word, index = words[index], index + 1
        if word == "--":
            break
        for at, letter in enumerate("" if word.startswith("--") else word[1:], 2):
            letters += letter
            if letter in takes:
                index += at == len(word)  # its argument is the next word unless attached (-p22)
                break
    return letters, index


@dataclass
class _Heredoc:
    delimiter: str
    quoted: bool
    strip: bool  # <<- removes leading tabs
    shell: str = ""  # the program that runs it as a script


@dataclass
class _Frame:
    """The simple command being read at one nesting level."""

    words: list[tuple[str, list[str]]] = field(default_factory=list)  # literal text, references inside
    lit: list[str] | None = None  # the word being read
    start: int = 0  # len(found) when it began
    drop: bool = False  # it is a redirection target, not an argument
    depth: int = 0  # open ( of subshells and case patterns
    cases: int = 0  # open case ... esac
    heredocs: list[_Heredoc] = field(default_factory=list)  # opened on this line
    command: int = 0  # len(found) when the command began
    piped: list[str] = field(default_factory=list)  # references in the pipeline so far
    pipeline: int = 0  # index in heredocs of the pipeline's first


class _Lexer:
    """Copies the template to ``out``, rewriting references; collects refusals in ``problems``."""

    def __init__(self, text: str, parent: _Lexer | None = None) -> None:
        self.s, self.i = text, 0
        self.out: list[str] = []
        self.names: dict[str, str] = parent.names if parent else {}  # body -> variable
        self.found: list[str] = parent.found if parent else []  # bodies in order, for words
        self.problems: list[RefusedReference] = parent.problems if parent else []

    def commands(self, close: bool) -> None:
        """Command lists up to the end or, with ``close``, the ``)`` that ends ``$(``."""
        s, f = self.s, _Frame()
        while self.i < len(s):
            c = s[self.i]
            if c == ")" and close and f.depth == 0 and f.cases == 0:
                self._end_command(f)
                self._copy(self.i + 1)
                return
            if c in " \t":
                self._end_word(f)
                self._copy(self.i + 1)
            elif c == "\n":
                self._end_command(f)
                self._copy(self.i + 1)
                self._heredocs(f)
            elif c in ";&|()":
                f.depth += (c == "(") - (c == ")" and f.depth > 0)
                self._end_command(f, piped=c == "|" and "|" not in s[self.i - 1 : self.i + 2 : 2])
                self._copy(self.i + 1)
            elif c in "<>":
                self._redirect(f)
            elif c == "#" and f.lit is None:
                end = s.find("\n", self.i)
                self._copy(len(s) if end < 0 else end)
            else:
                if f.lit is None:
                    f.lit, f.start = [], len(self.found)
                f.lit.append(self._piece())
        self._end_command(f)

    def _piece(self) -> str:
        """One unquoted character, quoted string or expansion of a word; its literal text."""
        c = self.s[self.i]
        if c == "\\":
            return self._escape()
        if c == "'":
            return self._single()
        if c == '"':
            self._copy(self.i + 1)
            return self._double(heredoc=False)
        if c == "`":
            self._backtick()
            return _HOLE
        if c == "$":
            return self._dollar(quoted=False)
        return self._copy(self.i + 1)

    def _double(self, heredoc: bool) -> str:
        """The rest of a "..." string, or a whole unquoted here-document body."""
        s, lit = self.s, []
        while self.i < len(s):
            c = s[self.i]
            if c == '"' and not heredoc:
                self._copy(self.i + 1)
                break
            if c == "\\":
                lit.append(self._escape())
            elif c == "`":
                self._backtick()
                lit.append(_HOLE)
            elif c == "$":
                lit.append(self._dollar(quoted=True))
            else:
                lit.append(self._copy(self.i + 1))
        return "".join(lit)

    def _single(self) -> str:
        s = self.s
        end = s.find("'", self.i + 1)
        end = len(s) if end < 0 else end
        content = s[self.i + 1 : end]
        inside = PATTERN.sub(lambda m: "'\"${" + self._var(m.group(1)) + "}\"'", content)
        self.out.append("'" + inside + s[end : end + 1])
        self.i = min(end + 1, len(s))
        return content

    def _escape(self) -> str:
        match = PATTERN.match(self.s, self.i + 1)
        if match:
            self._refuse(match.group(1), "escaped")
        return self._copy(self.i + 2)[1:]

    def _dollar(self, quoted: bool) -> str:
        s, i = self.s, self.i
        match = PATTERN.match(s, i)
        if match:
            name = self._var(match.group(1))
            self.out.append("${" + name + "}" if quoted else '"${' + name + '}"')
            self.i = match.end()
        elif s.startswith("$((", i):
            self._refuse_in(self._copy(_balanced(s, i + 1, "(", ")")), "arithmetic")
        elif s.startswith("$(", i):
            self._copy(i + 2)
            self.commands(close=True)
        elif s.startswith("${", i):
            self._refuse_in(self._copy(_balanced(s, i + 1, "{", "}")), "expansion")
        else:
            return self._copy(i + 1)
        return _HOLE

    def _backtick(self) -> None:
        s, end = self.s, self.i + 1
        while end < len(s) and s[end] != "`":
            end += 2 if s[end] == "\\" else 1
        self._refuse_in(self._copy(min(end + 1, len(s))), "backticks")

    def _redirect(self, f: _Frame) -> None:
        s, i = self.s, self.i
        if f.lit is not None and "".join(f.lit).isdigit():
            f.lit = None  # the file descriptor of 2>file
        self._end_word(f)
        if s.startswith("<<", i) and not s.startswith("<<<", i):
            strip = s.startswith("<<-", i)
            self._copy(i + 2 + strip)
            self._heredoc_word(f, strip)
            return
        self._copy(i + 1 + (s[i + 1 : i + 2] in ("<", ">", "&", "|")))
        f.drop = True

    def _heredoc_word(self, f: _Frame, strip: bool) -> None:
        s = self.s
        while self.i < len(s) and s[self.i] in " \t":
            self._copy(self.i + 1)
        end, quoted, delimiter = self.i, False, []
        while end < len(s) and s[end] not in " \t\n;&|<>()":
            c = s[end]
            if c in "'\"":
                close = s.find(c, end + 1)
                close = len(s) if close < 0 else close
                delimiter.append(s[end + 1 : close])
                quoted, end = True, close + 1
            elif c == "\\":
                delimiter.append(s[end + 1 : end + 2])
                quoted, end = True, end + 2
            else:
                delimiter.append(c)
                end += 1
        word = self._copy(min(end, len(s)))
        self._refuse_in(word, "delimiter")
        f.heredocs.append(_Heredoc("".join(delimiter), quoted, strip))

    def _heredocs(self, f: _Frame) -> None:
        """The bodies of the here-documents opened on the line just ended."""
        s = self.s
        for doc in f.heredocs:
            pos, end, after, continued = self.i, len(s), len(s), False
            while pos < len(s):
                stop = s.find("\n", pos)
                stop = len(s) if stop < 0 else stop
                line = s[pos:stop]
                if not continued and (line.lstrip("\t") if doc.strip else line) == doc.delimiter:
                    end, after = pos, stop
                    break
                continued = not doc.quoted and (len(line) - len(line.rstrip("\\"))) % 2 == 1
                pos = stop + 1
            body, found = s[self.i : end], len(self.found)
            if doc.quoted:
                self._refuse_in(body, "quoted here-document")
                self.out.append(body)
            else:
                lexer = _Lexer(body, self)
                lexer._double(heredoc=True)
                self.out.extend(lexer.out)
                for ref in self.found[found:] if doc.shell else ():
                    self._refuse(ref, "script", doc.shell)
            self.out.append(s[end:after])
            self.i = after
        f.heredocs, f.pipeline, f.command = [], 0, len(self.found)

    def _end_word(self, f: _Frame) -> None:
        if f.lit is None:
            return
        word, f.lit = "".join(f.lit), None
        if f.drop:
            f.drop = False
        elif f.words or word not in _RESERVED:
            if not f.words and word in ("case", "esac"):
                f.cases = f.cases + 1 if word == "case" else max(f.cases - 1, 0)
            f.words.append((word, self.found[f.start :]))

    def _end_command(self, f: _Frame, piped: bool = False) -> None:
        self._end_word(f)
        if not f.words:
            return  # `a |` newline `b` is still one pipeline
        words, f.words, f.drop = f.words, [], False
        stdin = self._inspect(words)
        for body in f.piped if stdin else ():
            self._refuse(body, "pipe", stdin)
        for doc in f.heredocs[f.pipeline :] if stdin else ():
            doc.shell = stdin
        f.piped = [*f.piped, *self.found[f.command :]] if piped else []
        f.pipeline = f.pipeline if piped else len(f.heredocs)
        f.command = len(self.found)

    def _inspect(self, words: list[tuple[str, list[str]]]) -> str:
        """Refuse the references a simple command runs as code; the program that runs its stdin, if any."""
        names, stdin = [word for word, _ in words], ""
        first = next((at for at, name in enumerate(names) if not _ASSIGNMENT.match(name)), len(names))
        heads = {first} | {at + 1 for at, name in enumerate(names) if name in _LAUNCHERS}
        for at, name in enumerate(names):
            program, code = name.rsplit("/", 1)[-1], range(0)
            if program in _EVALUATORS and at in heads:
                why, code = "eval", range(at + 1, len(names))
            elif program in _SHELLS:
                letters, operand = _options(names, at + 1, "oO")
                why, code = "shell", range(operand, operand + 1) if "c" in letters else code
                reads = at in heads and "c" not in letters and ("s" in letters or operand == len(names))
                stdin = name if reads else stdin
            elif program == "ssh" and at in heads:
                host = _options(names, at + 1, _SSH_ARGUMENTS)[1]
                why, code = "ssh", range(host + 1, len(names))
                heads.add(host + 1)
                stdin = name if host + 1 >= len(names) else stdin
            for index in code:
                for body in words[index][1] if index < len(words) else ():
                    self._refuse(body, why, name)
        return stdin

    def _var(self, body: str) -> str:
        self.found.append(body)
        return self.names.setdefault(body, f"{PREFIX}{len(self.names) + 1}")

    def _refuse(self, body: str, why: str, command: str = "") -> None:
        ref = _show(body)
        context, advice = _REFUSALS[why].replace("{command}", command).split(": ", 1)
        self.problems.append(RefusedReference(ref, context, advice.replace("{ref}", ref)))

    def _refuse_in(self, text: str, why: str) -> None:
        for match in PATTERN.finditer(text):
            self._refuse(match.group(1), why)

    def _copy(self, end: int) -> str:
        """Copy the template from the current position to ``end`` unchanged."""
        text = self.s[self.i : end]
        self.out.append(text)
        self.i = min(max(end, self.i), len(self.s))
        return text
