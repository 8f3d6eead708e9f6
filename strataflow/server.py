"""The embedded default: a local Prefect server and the sandbox clouds, started once and reused.

With no ``PREFECT_API_URL``, ``strata`` starts (or finds running) ``prefect server start`` on
127.0.0.1 with SQLite under ``$STRATA_HOME`` (default ``~/.strataflow``). ``--sandbox`` adds
emulated clouds beside it (AWS: a moto server; Azure: strataflow's ARM emulator over
HTTPS) that live as long as the local server, so state and history agree across commands.
This is the only module that starts local services.

``strata`` only talks to the server it started for this STRATA_HOME: a server is taken as
ours only when it says (``/api/admin/settings``) that its ``PREFECT_HOME`` is this
STRATA_HOME's, never because it answers on the port written down (the port is picked, then
bound later by the server: another may take it in between, and then ours picks another).
STRATA_HOME is ``0700`` and everything in it ``0600``: the services and, from ``ensure_api`` on,
strata's own process run with umask 077, and what an older version left readable is tightened
before the server starts.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from strataflow.errors import ServerError
from strataflow.paths import PRIVATE_DIR, private_dir, private_file, private_tree, strata_home, write_private

START_TIMEOUT = 90.0
START_ATTEMPTS = 3
"""Ports tried when another server takes the one picked before ours binds it."""
UMASK = 0o077
"""The services' umask: what they create under STRATA_HOME is theirs alone."""
SANDBOX_AWS_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
SANDBOX_AZURE_SUBSCRIPTIONS = tuple(
    os.environ.get(
        "STRATA_SANDBOX_AZURE_SUBSCRIPTIONS",
        "00000000-0000-4000-8000-000000000001,00000000-0000-4000-8000-000000000002,00000000-0000-4000-8000-000000000003",
    ).split(",")
)
"""The subscriptions the sandbox's Azure identity can see (the sample environments use these)."""
_announced = False


def home() -> Path:
    """``$STRATA_HOME``: where the local server, the sandboxes and their state live."""
    return strata_home()


def _state_file(name: str) -> Path:
    return home() / f"{name}.json"


def _read(name: str) -> dict[str, Any] | None:
    try:
        data = json.loads(_state_file(name).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


@contextlib.contextmanager
def _exclusive() -> Iterator[None]:
    """One strata process at a time starts services (others wait, then reuse them)."""
    with os.fdopen(private_file(home() / "services.lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _free_port(preferred: int | None = None) -> int:
    for port in ([preferred] if preferred else []) + [0]:
        with socket.socket() as probe:
            # as the server binds: a port whose last server just stopped (TIME_WAIT) is free again
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(probe.getsockname()[1])
    raise ServerError("no free port on 127.0.0.1")


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _healthy(url: str, path: str = "/health", context: Any = None) -> bool:
    try:
        with urllib.request.urlopen(url.rstrip("/") + path, timeout=2, context=context) as response:  # noqa: S310 - loopback only
            return bool(response.status < 500)
    except urllib.error.HTTPError as exc:  # an answer, even 401/404, means it is up
        return exc.code < 500
    except (OSError, urllib.error.URLError, ValueError):
        return False


def _spawn(name: str, command: list[str], env: dict[str, str], log: Path | None = None) -> subprocess.Popen[bytes]:
    """``command`` in a session of its own, its output appended to ``log`` (default ``$STRATA_HOME/<name>.log``)."""
    with os.fdopen(private_file(log or home() / f"{name}.log", "a"), "ab") as out:  # the child keeps its own copy
        return subprocess.Popen(  # noqa: S603 - our own interpreter and modules
            command,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            umask=UMASK,
        )


def _wait_healthy(name: str, process: subprocess.Popen[bytes], url: str, path: str, context: Any = None) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if _healthy(url, path, context):
            return
        if process.poll() is not None:
            break
        time.sleep(0.3)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    tail = (home() / f"{name}.log").read_text(errors="replace").strip().splitlines()[-5:]
    raise ServerError(f"the local {name} did not start; see {home() / (name + '.log')}: {' | '.join(tail)}")


# --- the Prefect API ------------------------------------------------------------------------


def configured_api_url() -> str | None:
    """The Prefect API the user configured (environment or active Prefect profile), if any."""
    if os.environ.get("PREFECT_API_URL"):
        return os.environ["PREFECT_API_URL"]
    from prefect.settings import PREFECT_API_URL

    value = PREFECT_API_URL.value()
    return str(value) if value else None


def local_server() -> dict[str, Any] | None:
    """The running local server of this STRATA_HOME (url, pid, port), or None: one that is not ours is None."""
    info = _read("server")
    if not info or not _alive(info.get("pid")):
        return None
    for attempt in range(3):  # a busy server may be slow to answer: it is not given up for another at once
        found = _identify(str(info.get("url")))
        if found != "silent" or not _alive(info.get("pid")):
            return info if found == "ours" else None
        time.sleep(0.5 * (attempt + 1))
    return None


def _prefect_home() -> Path:
    return home() / "prefect"


def _ours(url: str) -> bool:
    """Whether the Prefect server at ``url`` answers and keeps its data in this STRATA_HOME."""
    return _identify(url) == "ours"


def _identify(url: str) -> str:
    """``ours``: the server at ``url`` says its PREFECT_HOME is this STRATA_HOME's; ``foreign``: another's
    (or not a Prefect server); ``silent``: nothing answered in time."""
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/api/admin/settings", timeout=5) as response:  # noqa: S310 - loopback only
            settings = json.loads(response.read())
    except urllib.error.HTTPError:
        return "foreign"
    except (OSError, urllib.error.URLError):
        return "silent"
    except ValueError:
        return "foreign"
    where = settings.get("home") if isinstance(settings, dict) else None
    try:
        return "ours" if isinstance(where, str) and Path(where).resolve() == _prefect_home().resolve() else "foreign"
    except OSError:
        return "foreign"


def ensure_api(announce: bool = True) -> str:
    """Point this process at a Prefect API: the configured one (environment or profile), else the local server."""
    global _announced  # noqa: PLW0603 - say it once per process
    # what this process writes (under STRATA_HOME: bundles, terraform working copies; a --report) is the user's alone
    os.umask(UMASK)
    configured = configured_api_url()
    if configured:
        return configured
    info = start_local()
    os.environ["PREFECT_API_URL"] = info["url"] + "/api"
    os.environ.setdefault("PREFECT_UI_URL", info["url"])
    # Prefect read its settings when configured_api_url imported it: without this, this process
    # would run its flows on a temporary in-process server instead of ours
    from prefect.context import refresh_global_settings_context

    refresh_global_settings_context()
    if announce and not _announced:
        _announced = True
        print(f"strata: using the local Prefect server; UI at {info['url']}", file=sys.stderr)
    return os.environ["PREFECT_API_URL"]


def start_local() -> dict[str, Any]:
    """The local server of this STRATA_HOME (url, pid, port), started if it is not running."""
    with _exclusive():
        return local_server() or _start_server()


def _start_server() -> dict[str, Any]:
    private_tree(home())  # what an older strataflow (or an older umask) left readable to others
    preferred: int | None = int(os.environ.get("STRATA_SERVER_PORT", "4200"))
    for _ in range(START_ATTEMPTS):
        port = _free_port(preferred)
        started = _try_server(port)
        if started is not None:
            return started
        preferred = None  # another server took the port before ours bound it: any free port
    raise ServerError(
        f"the local server did not start: another server took each port picked for it; see {home() / 'server.log'}"
    )


def _try_server(port: int) -> dict[str, Any] | None:
    """Start the server on ``port``; its details, or None when the port was taken by another process first."""
    url = f"http://127.0.0.1:{port}"
    prefect_home = _prefect_home()
    prefect_home.mkdir(exist_ok=True, mode=PRIVATE_DIR)
    private_dir(prefect_home)
    env = {
        **os.environ,
        "PREFECT_HOME": str(prefect_home),
        "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home() / 'prefect.db'}",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_SERVICES_REPOSSESSOR_LOOP_SECONDS": "5",
        # leases on disk (under PREFECT_HOME), not in the server's memory: a restarted server still
        # knows who holds an environment's lock, so the holder can renew and release it, and a dead
        # holder's slot is repossessed; in memory they were lost and the lock stayed taken for good
        "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": "prefect.server.concurrency.lease_storage.filesystem",
        "PREFECT_UI_API_URL": f"{url}/api",
    }
    env.pop("PREFECT_API_URL", None)
    process = _spawn(
        "server",
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env,
    )
    deadline = time.monotonic() + START_TIMEOUT
    while not _ours(url):
        if process.poll() is not None:
            if _healthy(url, "/api/health"):
                return None  # ours could not bind: another server answers there (never used)
            break
        if time.monotonic() > deadline:
            break
        time.sleep(0.3)
    else:
        info = {"url": url, "pid": process.pid, "port": port}
        write_private(_state_file("server"), json.dumps(info))
        print(f"strata: started a local Prefect server (SQLite in {home()}); UI at {url}", file=sys.stderr)
        return info
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGTERM)
    tail = (home() / "server.log").read_text(errors="replace").strip().splitlines()[-5:]
    raise ServerError(f"the local server did not start; see {home() / 'server.log'}: {' | '.join(tail)}")


# --- the sandbox clouds ---------------------------------------------------------------------


SANDBOXES = ("aws", "azure", "pricing")
"""The emulated services `--sandbox` uses: the two clouds, and their price lists."""


def sandbox(cloud: str) -> dict[str, Any]:
    """The sandbox for ``cloud``: ``{"endpoint_url", "credentials"}``, started if needed."""
    with _exclusive():
        info = _read(f"sandbox-{cloud}")
        if not (info and _alive(info.get("pid")) and _sandbox_healthy(cloud, info)):
            info = _start_sandbox(cloud)
    credentials: dict[str, Any] = (
        dict(SANDBOX_AWS_CREDENTIALS) if cloud == "aws" else {"ca_bundle": info["ca_bundle"]} if cloud == "azure" else {}
    )
    return {"endpoint_url": info["url"], "credentials": credentials}


def _sandbox_healthy(cloud: str, info: dict[str, Any]) -> bool:
    if cloud == "aws":
        return _healthy(info["url"], "/moto-api/")
    if cloud == "pricing":
        return _healthy(info["url"], "/health")
    import ssl

    return _healthy(info["url"], "/", ssl.create_default_context(cafile=info["ca_bundle"]))


def _start_sandbox(cloud: str) -> dict[str, Any]:
    port = _free_port()
    env = {**os.environ}
    if cloud == "aws":
        url = f"http://127.0.0.1:{port}"
        process = _spawn("sandbox-aws", [sys.executable, "-m", "strataflow.sandbox.aws", "-H", "127.0.0.1", "-p", str(port)], env)
        _wait_healthy("sandbox-aws", process, url, "/moto-api/")
        info: dict[str, Any] = {"url": url, "pid": process.pid}
    elif cloud == "azure":
        import ssl

        cert_dir = home() / "sandbox-azure"
        cert_dir.mkdir(exist_ok=True, mode=PRIVATE_DIR)
        private_dir(cert_dir)
        url = f"https://127.0.0.1:{port}"
        subscriptions = [f"--subscription={s}" for s in SANDBOX_AZURE_SUBSCRIPTIONS]
        process = _spawn(
            "sandbox-azure",
            [
                sys.executable,
                "-m",
                "strataflow.sandbox.arm",
                "--port",
                str(port),
                "--cert-dir",
                str(cert_dir),
                *subscriptions,
            ],
            env,
        )
        ca_bundle = cert_dir / "ca.pem"
        deadline = time.monotonic() + START_TIMEOUT
        while not ca_bundle.exists() and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.1)
        context = ssl.create_default_context(cafile=str(ca_bundle)) if ca_bundle.exists() else None
        _wait_healthy("sandbox-azure", process, url, "/", context)
        info = {"url": url, "pid": process.pid, "ca_bundle": str(ca_bundle)}
    elif cloud == "pricing":  # the clouds' price lists and billing queries, from a dated snapshot
        url = f"http://127.0.0.1:{port}"
        command = [sys.executable, "-m", "strataflow.backends.pricing.sandbox", "--port", str(port)]
        process = _spawn("sandbox-pricing", command, env)
        _wait_healthy("sandbox-pricing", process, url, "/health")
        info = {"url": url, "pid": process.pid}
    else:
        raise ServerError(f"no sandbox for cloud '{cloud}'")
    write_private(_state_file(f"sandbox-{cloud}"), json.dumps(info))
    return info


# --- strata server start|stop|status ----------------------------------------------------------


def status() -> dict[str, Any]:
    found: dict[str, Any] = {"home": str(home()), "server": local_server()}
    for cloud in SANDBOXES:
        info = _read(f"sandbox-{cloud}")
        found[f"sandbox-{cloud}"] = info if info and _alive(info.get("pid")) else None
    return found


def stop() -> list[str]:
    """Stop the local server and the sandboxes; returns what was stopped."""
    stopped = []
    for name in ("server", *(f"sandbox-{cloud}" for cloud in SANDBOXES)):
        info = _read(name)
        if info and _alive(info.get("pid")):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(info["pid"], signal.SIGTERM)
            deadline = time.monotonic() + 15
            while _alive(info["pid"]) and time.monotonic() < deadline:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(info["pid"], os.WNOHANG)
                time.sleep(0.2)
            if _alive(info["pid"]):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(info["pid"], signal.SIGKILL)
            stopped.append(name)
        _state_file(name).unlink(missing_ok=True)
    return stopped


@dataclass
class BackgroundJob:
    process: subprocess.Popen[bytes]
    log: Path
    id_file: Path


def spawn_detached(name: str, command: list[str]) -> BackgroundJob:
    """Run a strata command in the background, detached from this terminal, logging under STRATA_HOME."""
    jobs = home() / "jobs"
    jobs.mkdir(exist_ok=True, mode=PRIVATE_DIR)
    private_dir(jobs)
    stamp = f"{name}-{int(time.time() * 1000)}"
    log, id_file = jobs / f"{stamp}.log", jobs / f"{stamp}.id"
    env = {**os.environ, "STRATA_PROMOTION_ID_FILE": str(id_file)}
    return BackgroundJob(_spawn(name, command, env, log), log, id_file)
