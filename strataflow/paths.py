"""Where strataflow keeps its files on this machine: ``$STRATA_HOME`` (default ``~/.strataflow``).

The directory holds the local Prefect server's database (with the key that decrypts Secret
blocks), terraform working copies and logs: it is created ``0700`` (an existing one of this
user is tightened to it), and every file strataflow writes there is ``0600`` (``private_file``,
``private_tree``).
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def strata_home() -> Path:
    """``$STRATA_HOME`` (default ``~/.strataflow``), created ``0700`` if missing."""
    path = Path(os.environ.get("STRATA_HOME") or Path.home() / ".strataflow").expanduser()
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    private_dir(path)
    return path


def private_dir(path: Path) -> None:
    """Make ``path`` (a directory of this user) ``0700``; one of another user is left as it is."""
    with contextlib.suppress(OSError):
        info = path.stat()
        if info.st_uid == os.getuid() and stat.S_IMODE(info.st_mode) != PRIVATE_DIR:
            path.chmod(PRIVATE_DIR)


def private_file(path: Path, mode: str = "w") -> int:
    """A descriptor of ``path`` opened for writing (``w`` truncates, ``a`` appends), created ``0600``."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if mode == "a" else os.O_TRUNC)
    fd = os.open(path, flags, PRIVATE_FILE)
    os.fchmod(fd, PRIVATE_FILE)  # an existing file keeps its mode through os.open
    return fd


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path``, mode ``0600``."""
    with os.fdopen(private_file(path), "w") as handle:
        handle.write(text)


def private_tree(root: Path) -> None:
    """Take every permission of group and others off ``root`` and everything under it (links are left alone)."""
    for folder, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            _owner_only(Path(folder) / name)
    _owner_only(root)


def _owner_only(path: Path) -> None:
    with contextlib.suppress(OSError):
        info = path.lstat()
        if not stat.S_ISLNK(info.st_mode) and stat.S_IMODE(info.st_mode) & 0o077:
            path.chmod(stat.S_IMODE(info.st_mode) & 0o700)


__all__ = ["PRIVATE_DIR", "PRIVATE_FILE", "private_dir", "private_file", "private_tree", "strata_home", "write_private"]
