"""One terraform operation on one component's working copy: the CLI found, the copy synced, calls streamed.

A ``Session`` owns ``<state_dir>/terraform/<env>/<cloud>/<component>``: it copies the module in
(its source as the spec defines it), writes the backend configuration to a file of mode 0600,
runs ``init``/``validate`` only when something changed, and runs the CLI through
``strataflow.backends.process`` with the run's deadline, mapping failures to errors.

The parameters (secrets among them) are in ``strata.auto.tfvars.json`` only while a command
that reads them runs: it is written (0600) before and removed after. After every command the
working copy is made the user's alone (no permission for group or others). The manifest of
files copied in is checked before anything it names is deleted: relative paths inside the
working copy, never through a link, never terraform's or strataflow's own files.

A cancelled run (``strataflow/cancel.py``) starts no terraform command, and interrupts the one
running: its process group gets SIGINT (terraform stops what it does, saves its state and
releases its state lock; a resource it was creating is tainted, replaced by the next apply),
then SIGKILL ``kill_grace`` seconds later if it is still running; the call raises Cancelled.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from strataflow import cancel
from strataflow.backends import process
from strataflow.backends.base import ComponentRun, mask
from strataflow.backends.terraform import GENERATED_FILES, TerraformSettings
from strataflow.errors import BackendError, Cancelled, CommandTimeout, DeploymentFailed, ResourceBusy, TemplateError
from strataflow.paths import PRIVATE_DIR, private_dir, private_tree, strata_home, write_private

TFVARS = "strata.auto.tfvars.json"
BACKEND_FILE = "strata.backend.json"
PLAN_FILE = "strata.tfplan"
STATE_FILE = "terraform.tfstate"
LOCK_INFO = ".terraform.tfstate.lock.info"
DIGEST_FILE = ".strata-init"
MANIFEST_FILE = ".strata-files.json"
LOCK_SUMMARY = "Error acquiring the state lock"
READS_VARIABLES = frozenset({"plan", "apply", "destroy", "refresh", "import", "console"})
"""Commands that evaluate the module's variables: the parameters file exists only while they run."""

_INSTALL = {
    "terraform": "install Terraform >= 1.4 from https://developer.hashicorp.com/terraform/install",
    "tofu": "install OpenTofu from https://opentofu.org/docs/intro/install/",
}
_DROPPED_ENV = ("TF_LOG", "TF_CLI_ARGS", "TF_VAR_", "TF_WORKSPACE", "TF_DATA_DIR")
# Never copied from a module directory: terraform's own working files and the ones generated here.
# Summaries of diagnostics meaning the module or its inputs are wrong: retrying cannot help.
_CONFIG_ERROR = re.compile(
    r"^(Unsupported |Reference to undeclared|Invalid |Missing required|No value for required variable"
    r"|Incorrect attribute value type|Call to unknown function|Duplicate |Backend configuration changed"
    r"|Module not installed|Resource precondition failed|Module output value precondition failed"
    r"|Error in function call|Unreadable module directory|Argument or block definition required)"
)
_LOCK_FIELD = re.compile(r"^\s*(ID|Path|Operation|Who|Version|Created|Info):[ \t]*(.*)$", re.MULTILINE)
_BACKEND_BLOCK = re.compile(r'^\s*(backend\s+"[^"]+"|cloud)\s*\{', re.MULTILINE)
_SYMBOL = {"create": "+ create", "update": "~ update", "delete": "- delete", "replace": "-/+ replace"}
_SYMBOL |= {"read": "<= read", "forget": "- forget", "remove": "- forget", "import": "+ import", "move": "~ move"}
NOT_A_CHANGE = {"no-op", "noop", "read"}
# Fields of Prefect's AWS/Azure credential blocks, and the provider variables they become.
_CREDENTIAL_ENV = {"aws_access_key_id": "AWS_ACCESS_KEY_ID", "aws_secret_access_key": "AWS_SECRET_ACCESS_KEY"}
_CREDENTIAL_ENV |= {"aws_session_token": "AWS_SESSION_TOKEN", "profile_name": "AWS_PROFILE"}
_CREDENTIAL_ENV |= {"client_id": "ARM_CLIENT_ID", "client_secret": "ARM_CLIENT_SECRET", "tenant_id": "ARM_TENANT_ID"}
_PUBLIC_CREDENTIALS = {"profile_name", "client_id", "tenant_id"}
_TARGET_ENV = {"profile": "AWS_PROFILE", "endpoint_url": "AWS_ENDPOINT_URL"}
_TARGET_ENV |= {"subscription_id": "ARM_SUBSCRIPTION_ID", "tenant_id": "ARM_TENANT_ID"}


def working_dir(run: ComponentRun) -> Path:
    """The component's working copy: ``<state_dir>/terraform/<env>/<cloud>/<component>``."""
    root = run.state_dir or strata_home()
    return Path(root) / "terraform" / run.env / run.cloud / run.component


def settings_of(run: ComponentRun) -> TerraformSettings:
    """The environment's ``terraform:`` settings (the defaults when it has none)."""
    return run.settings if isinstance(run.settings, TerraformSettings) else TerraformSettings()


@dataclass(frozen=True)
class _Cli:
    path: str
    name: str
    version: tuple[int, ...]

    @property
    def init_json(self) -> bool:
        """``init -json`` exists in terraform 1.9 and later."""
        return self.name == "terraform" and self.version >= (1, 9)


def cli_for(binary: str) -> _Cli:
    path = shutil.which(binary)
    if path is None:
        raise BackendError(
            f"the '{binary}' command was not found on PATH; {_INSTALL.get(binary, 'install it')} "
            "and make sure it is on the PATH of the Prefect worker",
            binary=binary,
        )
    return _Cli(path, binary, _version(path))


@cache
def _version(path: str) -> tuple[int, ...]:
    try:
        argv = [path, "version", "-json"]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False, env=_base_env())  # noqa: S603 - argv list, no shell
        text = str(json.loads(done.stdout).get("terraform_version", "0"))
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return (0,)
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def _base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_DROPPED_ENV)}
    env.update(TF_IN_AUTOMATION="1", TF_INPUT="0")
    return env


def _diagnostic_text(diag: dict[str, Any]) -> str:
    text = str(diag.get("summary", "")).strip()
    detail = str(diag.get("detail") or "").strip()
    if detail:
        text += f": {detail}"
    where = diag.get("range")
    if isinstance(where, dict) and where.get("filename"):
        start = where.get("start") or {}
        text += f" ({where['filename']}:{start.get('line', '?')}:{start.get('column', '?')})"
    if diag.get("address"):
        text += f" [{diag['address']}]"
    return text


def change_key(actions: list[str]) -> str:
    if actions == ["create", "delete"]:
        return "+/- replace"  # create_before_destroy
    if len(actions) == 2:
        return "-/+ replace"
    return _SYMBOL.get(actions[0], actions[0]) if actions else "no-op"


@dataclass
class Result:
    """One finished terraform command."""

    code: int
    stdout: str
    stderr: str
    messages: list[dict[str, Any]] = field(default_factory=list)

    def of_type(self, kind: str) -> Iterator[dict[str, Any]]:
        return (m for m in self.messages if m.get("type") == kind)

    @property
    def errors(self) -> list[dict[str, Any]]:
        found = (m.get("diagnostic") for m in self.of_type("diagnostic"))
        return [d for d in found if isinstance(d, dict) and d.get("severity") == "error"]

    @property
    def applying(self) -> bool:
        """Whether terraform had started changing resources (planning was over)."""
        return any(True for _ in self.of_type("apply_start"))

    def counts(self, operation: str) -> dict[str, int]:
        """The ``change_summary`` of ``operation`` (add, change, remove, import)."""
        for message in self.of_type("change_summary"):
            changes = message.get("changes") or {}
            if changes.get("operation") == operation:
                return {k: v for k, v in changes.items() if isinstance(v, int)}
        return {}

    def planned_lines(self) -> list[str]:
        """``+ create ADDRESS`` lines from the ``planned_change`` messages of an apply or destroy."""
        lines = []
        for message in self.of_type("planned_change"):
            change = message.get("change") or {}
            action = change.get("action", "")
            if action not in NOT_A_CHANGE:
                lines.append(f"{_SYMBOL.get(action, action)} {(change.get('resource') or {}).get('addr', '?')}")
        return lines


class Session:
    """One backend operation on one working copy: its deadline, environment and secrets."""

    def __init__(self, run: ComponentRun, cli: _Cli, kill_grace: float) -> None:
        self.run, self.cli, self.kill_grace = run, cli, kill_grace
        self.workdir = working_dir(run)
        timeout = run.timeout if run.timeout is not None else getattr(run.impl, "timeout", None)
        self.timeout = float(timeout) if timeout else None
        self.deadline = None if self.timeout is None else time.monotonic() + self.timeout
        self.env = _base_env()
        self.secrets = set(run.secrets)
        target, region = run.target, getattr(run.target, "region", None)
        if run.cloud == "aws" and region:
            self.env.update(AWS_REGION=str(region), AWS_DEFAULT_REGION=str(region))
        for attr, var in _TARGET_ENV.items():
            if getattr(target, attr, None) and var.startswith("ARM_" if run.cloud == "azure" else "AWS_"):
                self.env[var] = str(getattr(target, attr))
        for key, value in run.credentials.items():
            if key in _CREDENTIAL_ENV and value is not None:
                reveal = getattr(value, "get_secret_value", None)
                text = str(reveal() if callable(reveal) else value)
                self.env[_CREDENTIAL_ENV[key]] = text
                if key not in _PUBLIC_CREDENTIALS:
                    self.secrets.add(text)
        self.context = {"env": run.env, "cloud": run.cloud, "component": run.component}

    def mask(self, text: str) -> str:
        return mask(text, frozenset(self.secrets))

    def log(self, line: str) -> None:
        self.run.log(self.mask(line))

    # --- state without terraform ----------------------------------------------------------

    @property
    def local_state(self) -> bool:
        """Whether the state is the working copy's ``terraform.tfstate`` (no backend configured)."""
        if settings_of(self.run).backend_config:
            return False
        return not any(_BACKEND_BLOCK.search(tf.read_text(errors="replace")) for tf in self.run.path.glob("*.tf"))

    def read_local_state(self) -> dict[str, Any] | None:
        try:
            state = json.loads((self.workdir / STATE_FILE).read_text())
        except (OSError, ValueError):
            return None
        return state if isinstance(state, dict) else None

    def nothing_deployed(self) -> bool:
        """True when the local state is missing or empty and no terraform run holds it."""
        if not self.local_state or (self.workdir / LOCK_INFO).exists():
            return False
        return not has_anything(self.read_local_state())

    # --- the working copy ----------------------------------------------------------------

    def prepare(self) -> None:
        """Copy the module in, write the parameters, and init + validate when anything changed."""
        module = self.run.path
        if not module.is_dir():
            raise TemplateError(f"terraform module directory {module} does not exist", **self.context)
        self._make_workdir()
        (self.workdir / TFVARS).unlink(missing_ok=True)  # left by a run that was killed
        digest = self._sync(module)
        config = settings_of(self.run).backend_config
        if config:
            write_private(self.workdir / BACKEND_FILE, json.dumps(config, indent=2, sort_keys=True, default=str))
        digest.update(json.dumps([self.cli.name, self.cli.version, config], sort_keys=True, default=str).encode())
        marker = self.workdir / DIGEST_FILE
        if marker.is_file() and marker.read_text().strip() == digest.hexdigest():
            return
        self._init()
        self._validate()
        write_private(marker, digest.hexdigest() + "\n")

    def _make_workdir(self) -> None:
        """The working copy and the directories above it up to ``terraform/``, all ``0700``."""
        self.workdir.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
        top = self.workdir.parents[2]  # <root>/terraform
        for folder in (self.workdir, *self.workdir.parents[:3]):
            private_dir(folder)
            if folder == top:
                break

    def _sync(self, module: Path) -> Any:
        """Copy the module's files into the working copy; returns a digest of what was copied."""
        digest = hashlib.sha256()
        copied: list[str] = []
        for source in self.run.impl.source_files(self.run.config_dir):  # the source as the spec defines it
            relative = source.relative_to(module).as_posix()
            content = source.read_bytes()
            digest.update(relative.encode() + b"\0" + hashlib.sha256(content).digest())
            target = self.workdir / relative
            if not target.is_file() or target.read_bytes() != content:
                target.parent.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
                target.write_bytes(content)
                target.chmod(source.stat().st_mode & 0o700 | 0o600)  # its owner bits (a script stays executable)
            copied.append(relative)
        manifest = self.workdir / MANIFEST_FILE
        for stale in sorted(self._manifest(manifest) - set(copied)):
            (self.workdir / stale).unlink(missing_ok=True)
        write_private(manifest, json.dumps(copied, indent=1))
        return digest

    def _manifest(self, manifest: Path) -> set[str]:
        """The files the last sync copied in: only entries that name a file of the module inside the working copy."""
        try:
            entries = json.loads(manifest.read_text())
        except (OSError, ValueError):
            return set()
        if not isinstance(entries, list):
            self.log(f"warning: {manifest} is not a list of paths; ignored")
            return set()
        root = self.workdir.resolve()
        kept: set[str] = set()
        for entry in entries:
            problem = _manifest_problem(entry, self.workdir, root)
            if problem:
                self.log(f"warning: {manifest} names {entry!r}, which {problem}; it is not deleted")
            else:
                kept.add(str(entry))
        return kept

    def _init(self) -> None:
        args = ["init", "-input=false", "-no-color", *(["-json"] if self.cli.init_json else [])]
        if settings_of(self.run).backend_config:
            args.append(f"-backend-config={BACKEND_FILE}")
        result = self.call(*args, json_lines=self.cli.init_json)
        if result.code != 0:
            if not self.cli.init_json:  # no JSON diagnostics: the "Error: ..." lines are the summaries
                found = re.findall(r"Error: (.+)", result.stderr)
                result.messages = [
                    {"type": "diagnostic", "diagnostic": {"severity": "error", "summary": s}} for s in found
                ]
            raise self.failure("init", result, config_phase=True)

    def _validate(self) -> None:
        result = self.call("validate", "-json", "-no-color", json_lines=False, quiet=True)
        with contextlib.suppress(ValueError):
            diagnostics = json.loads(result.stdout).get("diagnostics") or []
            result.messages = [{"type": "diagnostic", "diagnostic": d} for d in diagnostics]
            for diag in diagnostics:
                if diag.get("severity") == "warning":
                    self.log(f"Warning: {_diagnostic_text(diag)}")
        if result.code != 0:
            raise self.failure("validate", result, config_phase=True)

    # --- running terraform ----------------------------------------------------------------

    def call(self, *args: str, json_lines: bool = True, quiet: bool = False) -> Result:
        """Run the CLI in the working copy, streaming its messages to the log unless ``quiet``."""
        remaining = None if self.deadline is None else self.deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            raise self._timeout(args[0])
        token = cancel.current()
        token.raise_if_cancelled(f"{self.cli.name} {args[0]} of {self.run.component}")
        self.log(f"$ {self.cli.name} {' '.join(args)}")
        messages: list[dict[str, Any]] = []
        out: list[str] = []
        parameters = self.workdir / TFVARS

        def on_line(line: str) -> None:
            out.append(line)
            message = _parse_line(line) if json_lines else None
            if message is not None:
                messages.append(message)
            if quiet:
                return
            if message is None:
                self.log(line)
            else:
                self._log_message(message)

        try:
            if args[0] in READS_VARIABLES:
                text = json.dumps(self.run.parameters, indent=2, sort_keys=True, default=str)
                write_private(parameters, text)
            finished = process.run(
                [self.cli.path, *args],
                cwd=self.workdir,
                env=self.env,
                timeout=remaining,
                grace=self.kill_grace,
                on_stdout=on_line,
                token=token,
            )
        finally:
            parameters.unlink(missing_ok=True)  # secrets never stay on disk after the command
            private_tree(self.workdir)  # terraform's own files (state, .terraform/) are the user's alone
        for line in finished.stderr:
            if line.strip():
                self.log(line)
        if finished.cancelled:
            raise self._cancelled(args[0], token, killed=finished.killed)
        if finished.timed_out:
            raise self._timeout(args[0])
        stderr = "".join(f"{line}\n" for line in finished.stderr)
        return Result(finished.code, "".join(f"{line}\n" for line in out), stderr, messages)

    def _log_message(self, message: dict[str, Any]) -> None:
        if message.get("type") == "version":
            return
        diag = message.get("diagnostic")
        if isinstance(diag, dict):
            self.log(f"{str(diag.get('severity', 'error')).capitalize()}: {_diagnostic_text(diag)}")
            return
        text = message.get("@message")
        for line in str(text or "").strip("\n").splitlines():
            self.log(line)

    def _timeout(self, command: str) -> CommandTimeout:
        return CommandTimeout(
            f"{self.run.component}: {self.cli.name} {command} ran past the {self.timeout:g}s timeout and was stopped",
            timeout=self.timeout,
            **self.context,
        )

    def _cancelled(self, command: str, token: cancel.Token, *, killed: bool) -> Cancelled:
        if killed:
            left = (
                f"it did not stop within {self.kill_grace:g}s and was killed: its state may be behind what it "
                f"changed, and a remote state lock may be held (`{self.cli.name} force-unlock` in {self.workdir})"
            )
        else:
            left = "it stopped, saved its state and released its state lock"
        return Cancelled(
            f"{self.run.component}: {self.cli.name} {command} was interrupted ({token.reason}): {left}; "
            "apply again to finish (a resource it was creating is tainted and will be replaced)",
            **self.context,
        )

    def failure(self, command: str, result: Result, *, config_phase: bool = False) -> BackendError:
        """The error for a failed command, from its JSON diagnostics.

        A held state lock is ResourceBusy. From init/validate, an error located in the module
        (or a known configuration summary) is a TemplateError. From plan/apply, configuration
        summaries met before terraform started changing resources are TemplateErrors; anything
        else is DeploymentFailed.
        """
        errors = result.errors
        lock = next((d for d in errors if d.get("summary") == LOCK_SUMMARY), None)
        if lock is not None or (not errors and LOCK_SUMMARY in result.stderr):
            return self._busy(str((lock or {}).get("detail") or result.stderr))
        text = "; ".join(dict.fromkeys(_diagnostic_text(d) for d in errors))
        text = text or result.stderr.strip() or f"exit code {result.code}"
        if any(d.get("summary") == "No value for required variable" for d in errors):
            text += " (set it in the component's parameters)"
        message = self.mask(f"{self.run.component}: {self.cli.name} {command} failed: {text}")
        is_config = [bool(_CONFIG_ERROR.match(str(d.get("summary", "")))) for d in errors]
        if config_phase:
            located = any(d.get("range") for d in errors)
            return (TemplateError if located or any(is_config) else BackendError)(message, **self.context)
        if any(is_config) and not result.applying:
            return TemplateError(message, **self.context)
        return DeploymentFailed(message, **self.context)

    def _busy(self, detail: str) -> ResourceBusy:
        info = dict(_LOCK_FIELD.findall(detail))
        who, lock_id = info.get("Who") or "another terraform run", info.get("ID") or "?"
        operation = f" ({info['Operation']})" if info.get("Operation") else ""
        since = f" since {info['Created']}" if info.get("Created") else ""
        return ResourceBusy(
            self.mask(
                f"{self.run.component}: the terraform state is locked by {who}{operation}{since}, lock ID "
                f"{lock_id}; wait for that run to finish, or if it died run '{self.cli.name} force-unlock "
                f"{lock_id}' in {self.workdir}"
            ),
            holder=who,
            lock_id=lock_id,
            since=info.get("Created"),
            **self.context,
        )


def _manifest_problem(entry: Any, workdir: Path, root: Path) -> str | None:
    """Why a manifest entry must not be deleted, or None when it names a copied module file."""
    if not isinstance(entry, str) or not entry or "\0" in entry:
        return "is not a path"
    relative = Path(entry)
    if relative.is_absolute() or entry.startswith(("/", "\\")):
        return "is absolute"
    if ".." in relative.parts or "." in entry.split("/"):
        return "leaves the working copy (..)"
    if relative.parts[0] in (".terraform", ".git") or any(GENERATED_FILES.match(part) for part in relative.parts):
        return "is one of terraform's or strataflow's own files"
    try:
        parent = (workdir / relative).parent.resolve()
    except OSError:
        return "cannot be resolved"
    if parent != root and root not in parent.parents:
        return "is reached through a link to outside the working copy"
    if (workdir / relative).is_dir() and not (workdir / relative).is_symlink():
        return "is a directory"
    return None


def _parse_line(line: str) -> dict[str, Any] | None:
    if not line.lstrip().startswith("{"):
        return None
    try:
        parsed = json.loads(line)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def has_anything(state: dict[str, Any] | None) -> bool:
    if not state:
        return False
    return bool(state.get("outputs")) or any(r.get("instances") for r in state.get("resources") or [])
