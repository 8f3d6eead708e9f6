"""Where strataflow keeps its files on this machine: ``$STRATA_HOME`` (default ``~/.strataflow``)."""

from __future__ import annotations

import os
from pathlib import Path


def strata_home() -> Path:
    """``$STRATA_HOME`` (default ``~/.strataflow``), created if missing."""
    path = Path(os.environ.get("STRATA_HOME") or Path.home() / ".strataflow").expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


__all__ = ["strata_home"]
