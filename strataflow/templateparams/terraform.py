"""The input variables a Terraform module declares: ``variable`` blocks in its ``*.tf`` and ``*.tf.json`` files.

Only the module directory itself is read (not subdirectories: those are other modules),
in name order, ``override.tf``/``*_override.tf`` last with their attributes merged over the
variable they override, as Terraform does. A variable is required when it has no
``default`` (``default = null`` is a default); ``sensitive = true`` marks it secure;
``nullable``, ``validation`` blocks (counted) and the type constraint's source text
(``raw_type``) are kept. python-hcl2 gives no positions, so the line and column of each
``variable "name"`` label are found by a regex over the file's text (block comments and
heredoc bodies blanked first, so a declaration quoted there is not mistaken for the real one).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from strataflow.templateparams import jsonpos, tftypes
from strataflow.templateparams.jsonpos import Lines, PosDict
from strataflow.templateparams.model import Declared, TemplateParameters, TemplateParamsError

_LABEL = r'(?m)^[ \t]*variable[ \t]+("{name}"|{name})[ \t]*\{{'
_HIDDEN = re.compile(r"(?ms)/\*.*?\*/|<<-?([A-Za-z_][\w-]*)[ \t]*\n.*?^[ \t]*\1[ \t]*$")


def _visible(text: str) -> str:
    """``text`` with block comments and heredoc bodies blanked (line breaks kept), so labels there do not count."""
    return _HIDDEN.sub(lambda m: re.sub(r"[^\n]", " ", m.group()), text)


def _override(path: Path) -> bool:
    stem = path.name.removesuffix(".json").removesuffix(".tf")
    return stem == "override" or stem.endswith("_override")


def module_files(module_dir: Path) -> list[Path]:
    """The module's ``.tf`` and ``.tf.json`` files in the order Terraform merges them."""
    files = sorted(
        p for p in module_dir.iterdir() if p.is_file() and (p.name.endswith(".tf") or p.name.endswith(".tf.json"))
    )
    return [p for p in files if not _override(p)] + [p for p in files if _override(p)]


def _hcl_variables(path: Path, text: str) -> list[tuple[str, dict[str, Any], tuple[int, int] | None]]:
    # python-hcl2 (and lark under it) costs ~150 ms to import and build its parser: only when a .tf file is read
    import hcl2
    from lark.exceptions import LarkError, UnexpectedInput

    options = hcl2.SerializationOptions(strip_string_quotes=True, with_comments=False, preserve_heredocs=False)
    try:
        data = hcl2.loads(text, serialization_options=options)
    except UnexpectedInput as exc:
        line, column = exc.line, exc.column
        source = text.splitlines()
        if not isinstance(line, int) or not 1 <= line <= len(source):
            raise TemplateParamsError("invalid HCL: the file ends inside a block or expression", path) from None
        raise TemplateParamsError(f"invalid HCL near {source[line - 1].strip()[:60]!r}", path, line, column) from None
    except (LarkError, ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise TemplateParamsError(f"invalid HCL: {exc}", path) from None
    lines, visible = Lines(text), _visible(text)
    found: list[tuple[str, dict[str, Any], tuple[int, int] | None]] = []
    for block in data.get("variable", []):
        for name, body in block.items():
            match = re.search(_LABEL.format(name=re.escape(name)), visible)
            found.append((name, body if isinstance(body, dict) else {}, lines.at(match.start(1)) if match else None))
    return found


def _json_variables(path: Path, text: str) -> list[tuple[str, dict[str, Any], tuple[int, int] | None]]:
    data = jsonpos.load(text, path)
    blocks = data.get("variable", {}) if isinstance(data, dict) else {}
    found: list[tuple[str, dict[str, Any], tuple[int, int] | None]] = []
    for block in blocks if isinstance(blocks, list) else [blocks]:
        if isinstance(block, PosDict):
            for name, body in block.items():
                found.append((name, body if isinstance(body, dict) else {}, block.positions[name]))
    return found


def read_terraform(module_dir: Path | str) -> TemplateParameters:
    """The variables the Terraform module in ``module_dir`` declares."""
    module_dir = Path(module_dir)
    if not module_dir.is_dir():
        what = "is a file, not a module directory" if module_dir.exists() else "module directory not found"
        raise TemplateParamsError(what, module_dir)
    files = module_files(module_dir)
    if not files:
        raise TemplateParamsError("no .tf files in the module directory", module_dir)
    bodies: dict[str, dict[str, Any]] = {}
    origins: dict[str, tuple[Path, tuple[int, int] | None]] = {}
    for path in files:
        text = jsonpos.read_text(path)
        variables = _json_variables(path, text) if path.name.endswith(".json") else _hcl_variables(path, text)
        for name, body, position in variables:
            if name in bodies and _override(path):
                bodies[name] = {**bodies[name], **body}
                continue
            if name in bodies:
                first, where = origins[name]
                line = where[0] if where else None
                raise TemplateParamsError(
                    f"variable '{name}' is declared twice (first in {first.name}"
                    f"{f' line {line}' if line else ''}); remove one",
                    path,
                    position[0] if position else None,
                    position[1] if position else None,
                )
            bodies[name], origins[name] = body, (path, position)
    declared = [_declared(name, bodies[name], *origins[name]) for name in bodies]
    return TemplateParameters("terraform", module_dir, tuple(declared), tuple(files))


def _declared(name: str, body: dict[str, Any], path: Path, position: tuple[int, int] | None) -> Declared:
    raw = body.get("type")
    raw_text = None if raw is None else str(raw)
    if raw_text is not None and raw_text.startswith("${") and raw_text.endswith("}"):
        raw_text = raw_text[2:-1]
    validations = body.get("validation", [])
    description = body.get("description")
    return Declared(
        name=name,
        type=tftypes.parse(raw_text).normalized,
        raw_type=raw_text or "",
        required="default" not in body,
        file=path,
        line=position[0] if position else None,
        column=position[1] if position else None,
        default=body.get("default"),
        secure=body.get("sensitive") in {True, "true"},
        nullable=body.get("nullable", True) not in {False, "false"},
        validations=len(validations) if isinstance(validations, list) else 1,
        description=description if isinstance(description, str) else None,
    )
