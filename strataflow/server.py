"""The embedded default: a local Prefect server and the sandbox clouds, started once and reused.

With no ``PREFECT_API_URL``, ``strata`` starts (or finds running) ``prefect server start`` on
127.0.0.1 with SQLite under ``$STRATA_HOME`` (default ``~/.strataflow``). ``--sandbox`` adds
emulated clouds beside it (AWS: a moto server; Azure: strataflow's ARM emulator over
HTTPS) that live as long as the local server, so state and history agree across commands.
This is the only module that starts local services.
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
from strataflow.paths import strata_home

START_TIMEOUT = 90.0
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
    with open(home() / "services.lock", "w") as handle:
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


def _spawn(name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    log = open(home() / f"{name}.log", "ab")  # noqa: SIM115 - the child keeps it
    return subprocess.Popen(  # noqa: S603 - our own interpreter and modules
        command, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
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
    """The running local server's details (url, pid), or None."""
    info = _read("server")
    if info and _alive(info.get("pid")) and _healthy(info["url"], "/api/health"):
        return info
    return None


def ensure_api(announce: bool = True) -> str:
    """Point this process at a Prefect API: the configured one (environment or profile), else the local server."""
    global _announced  # noqa: PLW0603 - say it once per process
    configured = configured_api_url()
    if configured:
        return configured
    info = start_local()
    os.environ["PREFECT_API_URL"] = info["url"] + "/api"
    os.environ.setdefault("PREFECT_UI_URL", info["url"])
    if announce and not _announced:
        _announced = True
        print(f"strata: using the local Prefect server; UI at {info['url']}", file=sys.stderr)
    return os.environ["PREFECT_API_URL"]


def start_local() -> dict[str, Any]:
    """The local server of this STRATA_HOME (url, pid, port), started if it is not running."""
    with _exclusive():
        return local_server() or _start_server()


def _start_server() -> dict[str, Any]:
    port = _free_port(int(os.environ.get("STRATA_SERVER_PORT", "4200")))
    url = f"http://127.0.0.1:{port}"
    prefect_home = home() / "prefect"
    prefect_home.mkdir(exist_ok=True)
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
    _wait_healthy("server", process, url, "/api/health")
    info = {"url": url, "pid": process.pid, "port": port}
    _state_file("server").write_text(json.dumps(info))
    print(f"strata: started a local Prefect server (SQLite in {home()}); UI at {url}", file=sys.stderr)
    return info


# --- the sandbox clouds ---------------------------------------------------------------------


def sandbox(cloud: str) -> dict[str, Any]:
    """The sandbox for ``cloud``: ``{"endpoint_url", "credentials"}``, started if needed."""
    with _exclusive():
        info = _read(f"sandbox-{cloud}")
        if not (info and _alive(info.get("pid")) and _sandbox_healthy(cloud, info)):
            info = _start_sandbox(cloud)
    credentials: dict[str, Any] = dict(SANDBOX_AWS_CREDENTIALS) if cloud == "aws" else {"ca_bundle": info["ca_bundle"]}
    return {"endpoint_url": info["url"], "credentials": credentials}


def _sandbox_healthy(cloud: str, info: dict[str, Any]) -> bool:
    if cloud == "aws":
        return _healthy(info["url"], "/moto-api/")
    import ssl

    return _healthy(info["url"], "/", ssl.create_default_context(cafile=info["ca_bundle"]))


def _start_sandbox(cloud: str) -> dict[str, Any]:
    port = _free_port()
    env = {**os.environ}
    if cloud == "aws":
        url = f"http://127.0.0.1:{port}"
        process = _spawn("sandbox-aws", [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], env)
        _wait_healthy("sandbox-aws", process, url, "/moto-api/")
        info: dict[str, Any] = {"url": url, "pid": process.pid}
    elif cloud == "azure":
        import ssl

        cert_dir = home() / "sandbox-azure"
        cert_dir.mkdir(exist_ok=True)
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
    else:
        raise ServerError(f"no sandbox for cloud '{cloud}'")
    _state_file(f"sandbox-{cloud}").write_text(json.dumps(info))
    return info


# --- strata server start|stop|status ----------------------------------------------------------


def status() -> dict[str, Any]:
    found: dict[str, Any] = {"home": str(home()), "server": local_server()}
    for cloud in ("aws", "azure"):
        info = _read(f"sandbox-{cloud}")
        found[f"sandbox-{cloud}"] = info if info and _alive(info.get("pid")) else None
    return found


def stop() -> list[str]:
    """Stop the local server and the sandboxes; returns what was stopped."""
    stopped = []
    for name in ("server", "sandbox-aws", "sandbox-azure"):
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
    jobs.mkdir(exist_ok=True)
    stamp = f"{name}-{int(time.time() * 1000)}"
    log, id_file = jobs / f"{stamp}.log", jobs / f"{stamp}.id"
    env = {**os.environ, "STRATA_PROMOTION_ID_FILE": str(id_file)}
    with open(log, "ab") as out:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            command, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    return BackgroundJob(process, log, id_file)
