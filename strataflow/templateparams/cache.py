"""Declarations read once per content: in this process, and on disk under ``$STRATA_HOME/cache/templateparams/``.

``read(backend, path)`` returns what ``templateparams.read`` returns, keyed by the sha256 of
the bytes it reads (the template file; a Terraform module's ``.tf`` and ``.tf.json`` files
with their names) and of the readers' own source, so an edited template is read again and an
unchanged one is not. A template that cannot be read raises ``TemplateParamsError`` every
time (kept in this process only).

On disk, one JSON file per content (``0600`` in a ``0700`` directory) saves a new process the
parse: for Terraform that is importing python-hcl2 and building its parser (~150 ms), more
than ``strata validate`` may spend. An entry names files relative to the template's
directory, so a copy of a module elsewhere finds it too; it never holds the default of a
secure parameter (``Declared.default`` is None there). An entry that cannot be read or
written is ignored: the template is parsed instead.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from strataflow.templateparams.model import BACKENDS, Backend, Declared, TemplateParameters, TemplateParamsError

FORMAT = 1
"""Bumped when the entry's layout changes."""
_MAX_ENTRIES = 512
_SETTLED_NS = 2_000_000_000
"""A file modified longer ago than this (2 s) is hashed once per process while its size, inode and time stay."""
_memory: dict[tuple[str, str, str], TemplateParameters | TemplateParamsError] = {}
_lock = threading.Lock()
_FIELDS = {field.name for field in dataclasses.fields(Declared)}


def read(backend: Backend | str, path: Path | str) -> TemplateParameters:
    """The parameters ``path`` declares for ``backend``, parsed at most once per content."""
    path = Path(path)
    if backend not in BACKENDS:
        raise ValueError(f"no template parameters for backend '{backend}'; use one of {', '.join(BACKENDS)}")
    content = _content_key(backend, path)
    if content is None:  # unreadable: the reader says why
        return _parse(backend, path)
    key, base = content
    memory_key = (backend, str(path), key)
    with _lock:
        found = _memory.get(memory_key)
    if isinstance(found, TemplateParamsError):
        raise found
    if found is not None:
        return found
    result: TemplateParameters | TemplateParamsError | None = _load(key, backend, path, base)
    if result is None:
        try:
            result = _parse(backend, path)
        except TemplateParamsError as exc:
            result = exc
        else:
            _store(key, result, base)
    with _lock:
        if len(_memory) >= _MAX_ENTRIES:
            _memory.clear()
        _memory[memory_key] = result
    if isinstance(result, TemplateParamsError):
        raise result
    return result


def clear() -> None:
    """Forget what this process has read (the entries on disk stay)."""
    with _lock:
        _memory.clear()
        _hashed.clear()


def directory() -> Path:
    """Where the entries are: ``$STRATA_HOME/cache/templateparams``."""
    from strataflow.paths import strata_home

    return strata_home() / "cache" / "templateparams"


def _parse(backend: str, path: Path) -> TemplateParameters:
    if backend == "cloudformation":
        from strataflow.templateparams.cloudformation import read_cloudformation

        return read_cloudformation(path)
    if backend == "arm":
        from strataflow.templateparams.arm import read_arm

        return read_arm(path)
    from strataflow.templateparams.terraform import read_terraform

    return read_terraform(path)


def _content_key(backend: str, path: Path) -> tuple[str, Path] | None:
    """The sha256 naming what ``path`` holds for ``backend``, and the directory its files are named from.

    A file whose size, inode and modification time are those of one hashed before in this
    process is not read again (1,000 components sharing one template hash it once), unless it
    was modified in the last seconds, when a second edit could keep its time (as git's "racy"
    check does).
    """
    digest = hashlib.sha256(f"strataflow-templateparams {FORMAT} {backend} {_readers()}\n".encode())
    try:
        if backend == "terraform":
            from strataflow.templateparams.terraform import module_files

            if not path.is_dir():
                return None
            base, files = path, module_files(path)
            if not files:
                return None
        else:
            base, files = path.parent, [path]
        for file in files:
            digest.update(file.relative_to(base).as_posix().encode() + b"\0")
            digest.update(_file_digest(file))
    except OSError:
        return None
    return digest.hexdigest(), base


_hashed: dict[tuple[str, int, int, int, int], bytes] = {}


def _file_digest(file: Path) -> bytes:
    info = file.stat()
    key = (str(file), info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
    with _lock:
        found = _hashed.get(key)
    if found is None:
        found = hashlib.sha256(file.read_bytes()).digest()
        if time.time_ns() - info.st_mtime_ns > _SETTLED_NS:
            with _lock:
                if len(_hashed) >= _MAX_ENTRIES:
                    _hashed.clear()
                _hashed[key] = found
    return found


@functools.cache
def _readers() -> str:
    """A digest of the readers' source (and python-hcl2's version): an entry made by other readers is not used."""
    digest = hashlib.sha256()
    for module in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(module.name.encode() + b"\0" + module.read_bytes())
    try:  # python-hcl2's version file (finding it imports nothing; importlib.metadata would cost ~20 ms)
        from importlib.util import find_spec

        spec = find_spec("hcl2")
        if spec is not None and spec.origin is not None:
            digest.update((Path(spec.origin).parent / "version.py").read_bytes())
    except (ImportError, OSError, ValueError):
        pass
    return digest.hexdigest()


def _entry(key: str) -> Path:
    return directory() / f"{key}.json"


def _load(key: str, backend: str, path: Path, base: Path) -> TemplateParameters | None:
    try:
        data = json.loads(_entry(key).read_text(encoding="utf-8"))
        if data.get("format") != FORMAT or data.get("backend") != backend:
            return None
        declared = tuple(_declared(fields, base) for fields in data["parameters"])
        files = tuple(base / name for name in data["files"])
        return TemplateParameters(backend, path, declared, files)  # type: ignore[arg-type]  # checked above
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None


def _declared(fields: dict[str, Any], base: Path) -> Declared:
    if set(fields) - _FIELDS:
        raise ValueError("unknown field")
    allowed = fields.get("allowed")
    return Declared(**{**fields, "file": base / fields["file"], "allowed": None if allowed is None else tuple(allowed)})


def _store(key: str, parameters: TemplateParameters, base: Path) -> None:
    from strataflow.paths import private_dir, write_private

    try:
        entries = []
        for declared in parameters.parameters:
            fields = dataclasses.asdict(declared)
            fields["file"] = declared.file.relative_to(base).as_posix()
            if declared.secure:
                fields["default"] = None  # a secure default is never written anywhere
            entries.append(fields)
        files = [file.relative_to(base).as_posix() for file in parameters.files]
        text = json.dumps({"format": FORMAT, "backend": parameters.backend, "files": files, "parameters": entries})
        folder = directory()
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        private_dir(folder)
        temporary = folder / f".{key}.{os.getpid()}.{threading.get_ident()}.tmp"
        write_private(temporary, text)
        os.replace(temporary, _entry(key))
    except (OSError, ValueError, TypeError):
        return


__all__ = ["FORMAT", "clear", "directory", "read"]
