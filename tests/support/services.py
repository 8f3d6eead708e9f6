"""Throwaway services for the end-to-end test: PostgreSQL, `prefect server start`, a process worker.

Everything runs on 127.0.0.1 with free ports, under directories the caller owns, in its own
process group, and is stopped (the whole group) when its context exits, even on failure.
Nothing here skips: a missing PostgreSQL or a service that does not come up is an error
that says what is missing and where the log is.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

VENV_BIN = Path(sys.executable).parent
"""The venv's bin directory: `prefect` and `strata` as a user with the venv activated runs them."""
START_TIMEOUT = 120.0
PG_USER_ENV = "STRATA_TEST_PG_USER"
"""Override the unprivileged OS user PostgreSQL runs as when the tests run as root (default: nobody)."""


class ServiceError(RuntimeError):
    """A service did not start (or a needed program is missing)."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def base_env(**extra: str) -> dict[str, str]:
    """This process's environment without Prefect or strataflow settings, the venv first on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "STRATA_"))}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', os.defpath)}"
    env.update(extra)
    return env


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# --- commands -----------------------------------------------------------------------------


@dataclass
class Ran:
    """A finished command: what ran, how it ended, what it printed, how long it took."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    def describe(self) -> str:
        return (
            f"$ {shlex.join(self.args)}\nexit {self.returncode} after {self.seconds:.1f}s\n"
            f"--- stdout (tail) ---\n{_last(self.stdout)}\n--- stderr (tail) ---\n{_last(self.stderr)}"
        )


def _last(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


def run(
    args: Sequence[str],
    env: Mapping[str, str],
    cwd: Path,
    timeout: float = 300.0,
    timings: list[tuple[str, float]] | None = None,
) -> Ran:
    """Run a command as a user types it; never raises for its exit code (callers assert on it)."""
    started = time.monotonic()
    try:
        done = subprocess.run(
            list(args), env=dict(env), cwd=cwd, capture_output=True, text=True, timeout=timeout,
            stdin=subprocess.DEVNULL, check=False,
        )
        ran = Ran(list(args), done.returncode, done.stdout, done.stderr, time.monotonic() - started)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else exc.stdout or ""
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr or ""
        ran = Ran(list(args), -9, out, err + f"\n(timed out after {timeout:g}s)", time.monotonic() - started)
    if timings is not None:
        timings.append((shlex.join(args), ran.seconds))
    print(f"  [{ran.seconds:6.1f}s] exit {ran.returncode}: {shlex.join(args)}", flush=True)
    return ran


# --- background processes -----------------------------------------------------------------------------


@dataclass
class Service:
    """A background process in its own process group, logging to a file."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path
    url: str | None = None

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM the whole process group (flow runs a worker started included), then SIGKILL."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(grace)
        # children may outlive the leader: sweep the group either way
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(5)

    def log_tail(self, lines: int = 40) -> str:
        return _tail(self.log, lines)


def spawn(name: str, args: Sequence[str], env: Mapping[str, str], cwd: Path, log: Path) -> Service:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        process = subprocess.Popen(
            list(args), env=dict(env), cwd=cwd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    print(f"  started {name} (pid {process.pid}): {shlex.join(args)}", flush=True)
    return Service(name, process, log)


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status < 400)
    except (OSError, urllib.error.URLError, ValueError):
        return False


def wait_for_service(
    what: str,
    check: Callable[[], bool],
    service: Service | None = None,
    timeout: float = START_TIMEOUT,
    every: float = 0.5,
) -> None:
    """Poll ``check`` until it holds; fail early, with the log, when ``service`` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if service is not None and not service.alive():
            code = service.process.returncode
            raise ServiceError(f"{service.name} exited ({code}) before {what}; {service.log}:\n{service.log_tail()}")
        time.sleep(every)
    tail = f"; log {service.log}:\n{service.log_tail()}" if service else ""
    raise ServiceError(f"timed out after {timeout:g}s waiting for {what}{tail}")


# --- PostgreSQL ---------------------------------------------------------------------------------


def postgres_bindir() -> Path:
    """Where initdb, pg_ctl and createdb are: PATH, else the distributions' versioned directories."""
    found = shutil.which("initdb")
    if found:
        bindir = Path(found).resolve().parent
        if (bindir / "pg_ctl").exists():
            return bindir
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin") + glob.glob("/usr/pgsql-*/bin"), key=_version_key)
    for candidate in reversed(candidates):
        if (Path(candidate) / "initdb").exists():
            return Path(candidate)
    raise ServiceError(
        "PostgreSQL server binaries (initdb, pg_ctl) were not found on PATH or in /usr/lib/postgresql/*/bin: "
        "install them (Debian/Ubuntu: apt-get install postgresql) to run the end-to-end test on PostgreSQL"
    )


def _version_key(path: str) -> tuple[int, ...]:
    digits = "".join(c if c.isdigit() else " " for c in path).split()
    return tuple(int(d) for d in digits)


def _as_user(user: str | None) -> list[str]:
    """The prefix that runs a command as ``user`` (initdb and postgres refuse to run as root)."""
    if user is None:
        return []
    if shutil.which("runuser"):
        return ["runuser", "-u", user, "--"]
    if shutil.which("setpriv"):
        entry = pwd.getpwnam(user)
        return ["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--clear-groups", "--"]
    raise ServiceError(
        "running as root, and neither runuser nor setpriv is available to run PostgreSQL as an unprivileged user"
    )


def _traversable_tmp() -> str:
    """A temp directory an unprivileged user can reach (every ancestor searchable by others)."""
    base = Path(tempfile.gettempdir()).resolve()
    if all(p.stat().st_mode & stat.S_IXOTH for p in [base, *base.parents]):
        return str(base)
    return "/tmp"  # sticky and world-searchable


@contextlib.contextmanager
def postgres(log_dir: Path, database: str = "prefect") -> Iterator[str]:
    """A throwaway PostgreSQL cluster on 127.0.0.1 (a free port; its socket in a temp dir).

    Yields the SQLAlchemy URL Prefect uses: ``postgresql+asyncpg://postgres@127.0.0.1:PORT/prefect``.
    As root, the cluster runs as an unprivileged user (``nobody``, or $STRATA_TEST_PG_USER), in
    a directory owned by that user.
    """
    bindir = postgres_bindir()
    user = os.environ.get(PG_USER_ENV, "nobody") if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(prefix="strata-e2e-pg-", dir=_traversable_tmp()))
    data, sockets, log = root / "data", root / "sockets", root / "postgres.log"
    sockets.mkdir()
    if user is not None:
        try:
            entry = pwd.getpwnam(user)
        except KeyError:
            shutil.rmtree(root, ignore_errors=True)
            raise ServiceError(f"no OS user '{user}' to run PostgreSQL as (not root); set ${PG_USER_ENV}") from None
        for path in (root, sockets):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    prefix = _as_user(user)
    env = base_env(LC_ALL="C", LANG="C")
    port = free_port()
    pg_ctl = [*prefix, str(bindir / "pg_ctl"), "-D", str(data)]
    started = False
    try:
        ran = run([*prefix, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                   "--encoding=UTF8", "--no-locale", "--no-sync"], env, root, timeout=120)
        if ran.returncode != 0:
            raise ServiceError(f"initdb failed:\n{ran.describe()}")
        # durability off: a throwaway cluster for tests, never a production setting
        options = f"-h 127.0.0.1 -p {port} -k {sockets} -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        ran = run([*pg_ctl, "-l", str(log), "-w", "-t", "60", "-o", options, "start"], env, root, timeout=90)
        started = True
        if ran.returncode != 0:
            raise ServiceError(f"pg_ctl start failed:\n{ran.describe()}\n--- {log} ---\n{_tail(log)}")
        createdb = bindir / "createdb" if (bindir / "createdb").exists() else shutil.which("createdb")
        if not createdb:
            raise ServiceError(f"createdb was not found in {bindir} or on PATH")
        ran = run([str(createdb), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", database], env, root, 60)
        if ran.returncode != 0:
            raise ServiceError(f"createdb failed:\n{ran.describe()}")
        yield f"postgresql+asyncpg://postgres@127.0.0.1:{port}/{database}"
    finally:
        if started:
            ran = run([*pg_ctl, "-m", "immediate", "-w", "-t", "30", "stop"], env, root, timeout=60)
            if ran.returncode != 0:
                _kill_postmaster(data)
        with contextlib.suppress(OSError):
            log_dir.mkdir(parents=True, exist_ok=True)
            shutil.copy(log, log_dir / "postgres.log")
        shutil.rmtree(root, ignore_errors=True)


def _kill_postmaster(data: Path) -> None:
    with contextlib.suppress(OSError, ValueError, IndexError, ProcessLookupError):
        pid = int((data / "postmaster.pid").read_text().splitlines()[0])
        os.kill(pid, signal.SIGKILL)


# --- Prefect -----------------------------------------------------------------------------------


@contextlib.contextmanager
def prefect_server(home: Path, database_url: str, env: Mapping[str, str], cwd: Path) -> Iterator[Service]:
    """`prefect server start` on 127.0.0.1 and a free port, with its own PREFECT_HOME and database.

    ``service.url`` is the API URL (``http://127.0.0.1:PORT/api``), what clients and
    workers get as PREFECT_API_URL.
    """
    port = free_port()
    server_env = {
        **env,
        "PREFECT_HOME": str(home),
        "PREFECT_API_DATABASE_CONNECTION_URL": database_url,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_API_URL": f"http://127.0.0.1:{port}/api",
        # no scheduled runs (nightly promotion, daily drift) may start in the middle of the test
        "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",
    }
    server_env.pop("PREFECT_API_URL", None)
    service = spawn(
        "prefect server", ["prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)], server_env, cwd,
        home / "server.log",
    )
    service.url = f"http://127.0.0.1:{port}/api"
    try:
        wait_for_service("the Prefect API to answer", lambda: _http_ok(f"{service.url}/health"), service)
        yield service
    finally:
        service.stop()


@contextlib.contextmanager
def prefect_worker(pool: str, env: Mapping[str, str], cwd: Path, log: Path) -> Iterator[Service]:
    """`prefect worker start --pool POOL`, waiting until the pool shows it online."""
    service = spawn("prefect worker", ["prefect", "worker", "start", "--pool", pool], env, cwd, log)
    try:
        wait_for_service("the worker to start", lambda: "started!" in _tail(log, 200), service)
        yield service
    finally:
        service.stop()
