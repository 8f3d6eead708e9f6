"""SSH keys and signatures made with OpenSSH's own `ssh-keygen` and `ssh-agent`, for approval tests."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


def _tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} (OpenSSH) is needed by this test: install openssh-client"
    return path


@dataclass(frozen=True)
class KeyPair:
    private: Path
    public: str
    """The public key line, as it goes into an environment file."""


def keypair(directory: Path, name: str, kind: str = "ed25519") -> KeyPair:
    """A new key pair without a passphrase, made by ssh-keygen."""
    path = directory / f"{name}_{kind}"
    subprocess.run(
        [_tool("ssh-keygen"), "-q", "-t", kind, "-N", "", "-C", f"{name}@test", "-f", str(path)], check=True
    )
    return KeyPair(path, Path(f"{path}.pub").read_text().strip())


def keygen_sign(key: KeyPair, message: bytes, namespace: str = "strataflow") -> str:
    """`ssh-keygen -Y sign` of ``message``: the armored signature."""
    done = subprocess.run(
        [_tool("ssh-keygen"), "-Y", "sign", "-q", "-f", str(key.private), "-n", namespace],
        input=message,
        capture_output=True,
        check=True,
    )
    return done.stdout.decode()


def keygen_verify(key: KeyPair, message: bytes, signature: str, identity: str = "someone") -> bool:
    """`ssh-keygen -Y verify` of ``signature`` over ``message`` by ``key``."""
    directory = key.private.parent
    allowed, sig = directory / "allowed_signers", directory / "message.sig"
    allowed.write_text(f"{identity} {key.public}\n")
    sig.write_text(signature)
    done = subprocess.run(
        [_tool("ssh-keygen"), "-Y", "verify", "-f", str(allowed), "-I", identity, "-n", "strataflow", "-s", str(sig)],
        input=message,
        capture_output=True,
        check=False,
    )
    return done.returncode == 0


@contextmanager
def agent(directory: Path, *keys: KeyPair) -> Iterator[dict[str, str]]:
    """A running ssh-agent holding ``keys``; yields the environment that points at it."""
    socket_path = directory / "agent.sock"
    process = subprocess.Popen([_tool("ssh-agent"), "-D", "-a", str(socket_path)], stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if socket_path.exists():
                break
            time.sleep(0.05)
        env = {**os.environ, "SSH_AUTH_SOCK": str(socket_path)}
        for key in keys:
            subprocess.run([_tool("ssh-add"), "-q", str(key.private)], env=env, check=True, capture_output=True)
        yield {"SSH_AUTH_SOCK": str(socket_path)}
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(10)
