"""Deploy a directory of ARM quickstart templates to the sandbox ARM emulator and report the share that work.

Usage::

    .venv/bin/python -m bench.quickstarts DIR [--limit N] [--only SUBSTRING] [--json FILE] [--show-failures N]

Every ``azuredeploy.json`` under ``DIR`` is deployed, over HTTPS, to a fresh resource group
of an emulator started in this process (``strataflow.sandbox.arm.serve``). Parameters come
from a neighbouring ``azuredeploy.parameters.json`` (its ``GEN-*`` placeholders replaced) and,
for required parameters it lacks, are generated from their declarations: strings honour
``allowedValues``/``minLength``/``maxLength`` (and look like what their name asks for: a
password, an e-mail, a GUID, an SSH key, a resource id), ints lie within
``minValue``/``maxValue``, secure strings get a generated password. ``_artifactsLocation``
points at ``DIR`` served on 127.0.0.1, so linked templates resolve locally. The template is
sent as its original text (comments and all).

A template counts as deployed when its deployment ends ``Succeeded`` **and** every top-level
resource it declares (without a ``condition``) exists afterwards: resources are looked up
through the emulator's resource listing (``GET .../resources``), nested deployments
through its deployment listing, resource groups through the group listing. Nothing here
copies a template into the project: DIR is read where it is.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import functools
import hashlib
import http.server
import json
import re
import ssl
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from strataflow.sandbox.arm import SANDBOX_SUBSCRIPTION, serve
from strataflow.sandbox.arm_json import loads_lenient

API = "api-version=2024-03-01"
LOCATION = "westeurope"
_SSH_KEY = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC" + "x" * 300 + " sandbox@strataflow"


@dataclass
class Outcome:
    """One template's result."""

    path: str
    ok: bool
    reason: str = ""
    missing: list[str] = field(default_factory=list)


def _unique(seed: str, size: int = 10) -> str:
    return ("sf" + hashlib.sha256(seed.encode()).hexdigest())[:size]


def _password(size: int = 16) -> str:
    size = max(size, 12)
    return ("Aa1!" + uuid.uuid4().hex)[:size]


def _replace_placeholder(value: Any, seed: str) -> Any:
    """A parameters file value with ``GEN-*`` placeholders replaced."""
    if isinstance(value, dict):
        return {k: _replace_placeholder(v, seed) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_placeholder(v, seed) for v in value]
    if not isinstance(value, str) or not value.startswith("GEN-"):
        return value
    token = value.upper()
    if token.startswith("GEN-UNIQUE"):
        match = re.search(r"\[(\d+)\]", token)
        return _unique(seed, int(match.group(1)) if match else 12)
    if "PASSWORD" in token:
        return _password()
    if "SSH" in token:
        return _SSH_KEY
    if "GUID" in token:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, seed))
    return _unique(seed + token, 12)


def _string_for(name: str, spec: dict[str, Any], seed: str, group: str) -> str:
    lowered = name.lower()
    low, high = int(spec.get("minLength", 1)), int(spec.get("maxLength", 24))
    if "password" in lowered or "secret" in lowered or str(spec.get("type", "")).lower() == "securestring":
        text = _password(max(low, min(high, 16)))
    elif "email" in lowered or "mail" in lowered:
        text = "ops@example.com"
    elif "ssh" in lowered or "publickey" in lowered:
        text = _SSH_KEY
    elif re.search(r"(resourcegroup|rg)(name)?$", lowered):
        text = group
    elif lowered.endswith("subscriptionid"):
        text = SANDBOX_SUBSCRIPTION
    elif re.search(r"(tenant|object|principal|client|app)id$|guid", lowered):
        text = str(uuid.uuid5(uuid.NAMESPACE_URL, seed + name))
    elif lowered.endswith("location") or lowered == "region":
        text = LOCATION
    elif lowered.endswith(("url", "uri")):
        text = "https://example.com/"
    elif lowered.endswith("id"):
        text = (
            f"/subscriptions/{SANDBOX_SUBSCRIPTION}/resourceGroups/{group}/providers/Microsoft.Network/"
            f"virtualNetworks/{_unique(seed)}/subnets/default"
        )
    else:
        text = _unique(seed + name, max(low, min(high, 12)))
    if len(text) < low:
        text = text + "x" * (low - len(text))
    return text[:high] if "maxLength" in spec and len(text) > high else text


def generate(name: str, spec: dict[str, Any], seed: str, group: str) -> Any:
    """A value for a required parameter, from its declaration."""
    allowed = spec.get("allowedValues")
    kind = str(spec.get("type", "string")).lower()
    if allowed:
        return allowed if kind == "array" else allowed[0]
    if kind in ("string", "securestring"):
        return _string_for(name, spec, seed, group)
    if kind == "int":
        low = int(spec.get("minValue", 1))
        return max(low, min(int(spec.get("maxValue", max(low, 1))), max(low, 1)))
    if kind == "bool":
        return False
    if kind == "array":
        return []
    return {}


def _fit(spec: dict[str, Any], value: Any) -> Any:
    """A string value cut or padded to the declared ``maxLength``/``minLength``."""
    if isinstance(value, str) and not value.startswith("["):
        if "maxLength" in spec and len(value) > int(spec["maxLength"]):
            value = value[: int(spec["maxLength"])]
        if "minLength" in spec and len(value) < int(spec["minLength"]):
            value = value + "x" * (int(spec["minLength"]) - len(value))
    return value


def parameters_for(
    template: dict[str, Any],
    file: Path,
    seed: str,
    group: str,
    artifacts: str,
    prereq: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The deployment's ``parameters``: the parameters file's values plus generated required ones.

    ``GET-PREREQ-x`` placeholders take the prerequisite deployment's output ``x``; parameters
    naming a resource group get the deployment's group.
    """
    declared: dict[str, Any] = template.get("parameters") or {}
    lowered = {k.lower(): k for k in declared}
    outputs = {k.lower(): v for k, v in (prereq or {}).items()}
    values: dict[str, Any] = {}
    if file.is_file():
        with contextlib.suppress(ValueError, OSError, AttributeError):
            given = (loads_lenient(file.read_bytes()) or {}).get("parameters") or {}
            for name, entry in given.items():
                if name.lower() not in lowered or not isinstance(entry, dict) or "value" not in entry:
                    continue
                value = entry["value"]
                if isinstance(value, str) and value.upper().startswith("GET-PREREQ-"):
                    key = value[len("GET-PREREQ-") :].lower()
                    if key not in outputs:
                        continue
                    value = outputs[key]
                values[lowered[name.lower()]] = {"value": _replace_placeholder(value, seed)}
    for name, raw_spec in declared.items():
        spec = raw_spec if isinstance(raw_spec, dict) else {}
        string = str(spec.get("type", "string")).lower() == "string"
        if name.lower() == "_artifactslocation":
            values[name] = {"value": artifacts}
        elif name.lower() == "_artifactslocationsastoken":
            values[name] = {"value": ""}
        elif string and re.search(r"(resourcegroup|rg)(name)?$", name.lower()) and not spec.get("allowedValues"):
            values[name] = {"value": group}
        elif name not in values and "defaultValue" not in spec and not spec.get("nullable"):
            values[name] = {"value": generate(name, spec, seed, group)}
        if name in values:
            values[name] = {"value": _fit(spec, values[name]["value"])}
    return values


def declared_resources(template: dict[str, Any]) -> list[str]:
    """Types of the top-level resources a template certainly deploys (no condition, no empty loop)."""
    resources = template.get("resources") or []
    entries = list(resources.values()) if isinstance(resources, dict) else list(resources)
    kinds = []
    for entry in entries:
        if not isinstance(entry, dict) or "condition" in entry or entry.get("existing"):
            continue
        loop = entry.get("copy")
        if isinstance(loop, dict) and not (isinstance(loop.get("count"), int) and loop["count"] > 0):
            continue
        kind = str(entry.get("type", ""))
        if "/providers/" in kind.lower():  # the old extension syntax: the namespace is in the name
            kind = "*/" + kind.lower().split("/providers/")[-1]
        if kind and not kind.startswith("["):
            kinds.append(kind)
    return kinds


@contextlib.contextmanager
def serving(root: Path) -> Iterator[str]:
    """Serve ``root`` over HTTP on 127.0.0.1 (for ``_artifactsLocation``); yields its base URL."""
    handler = functools.partial(QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """A static file handler that does not log each request."""

    def log_message(self, format: str, *args: Any) -> None:
        del format, args


class Bench:
    """Deploys templates to one emulator and checks what they created."""

    def __init__(self, client: httpx.Client, base: str, files_url: str, root: Path) -> None:
        self.client, self.base, self.files_url, self.root = client, base, files_url, root
        self.sub = f"/subscriptions/{SANDBOX_SUBSCRIPTION}"

    def deploy(self, path: Path, index: int) -> Outcome:
        relative = str(path.relative_to(self.root))
        raw = path.read_bytes().decode("utf-8-sig")
        try:
            template = loads_lenient(raw)
        except ValueError as exc:
            return Outcome(relative, False, f"not JSON: {exc}")
        group = f"qs-{index:04d}"
        seed = relative
        folder_url = self.files_url + str(path.parent.relative_to(self.root)).replace("\\", "/") + "/"
        self.client.put(f"{self.base}{self.sub}/resourcegroups/{group}?{API}", json={"location": LOCATION})
        prereq = self.prerequisites(path.parent, seed, group)
        parameters = parameters_for(
            template, path.parent / "azuredeploy.parameters.json", seed, group, folder_url, prereq
        )
        schema = str(template.get("$schema", "")).lower()
        if "subscriptiondeploymenttemplate" in schema:
            url = f"{self.base}{self.sub}/providers/Microsoft.Resources/deployments/qs-{index:04d}?{API}"
            envelope = {"location": LOCATION, "properties": {"mode": "Incremental", "parameters": parameters}}
        elif "managementgroupdeploymenttemplate" in schema or "tenantdeploymenttemplate" in schema:
            return Outcome(relative, False, "management group / tenant deployments are not supported by the sandbox")
        else:
            url = f"{self.base}{self.sub}/resourcegroups/{group}/providers/Microsoft.Resources/deployments/main?{API}"
            envelope = {"properties": {"mode": "Incremental", "parameters": parameters}}
        body = json.dumps(envelope)[:-2] + ', "template": ' + raw + "}}"
        answer = self.client.put(url, content=body.encode(), headers={"Content-Type": "application/json"})
        if answer.status_code >= 400:
            return Outcome(relative, False, _error(answer.json()))
        state = "Accepted"
        for _ in range(10):
            view = self.client.get(url).json()
            state = view["properties"]["provisioningState"]
            if state in ("Succeeded", "Failed"):
                break
        if state != "Succeeded":
            return Outcome(relative, False, _error(view["properties"]))
        missing = self.missing(template, group)
        return Outcome(relative, not missing, "declared resources missing" if missing else "", missing)

    def prerequisites(self, folder: Path, seed: str, group: str) -> dict[str, Any]:
        """Deploy the template's ``prereqs/prereq.azuredeploy.json`` first (as the quickstart CI does); its outputs."""
        found = sorted((folder / "prereqs").glob("prereq*.azuredeploy.json")) if (folder / "prereqs").is_dir() else []
        if not found:
            return {}
        path = found[0]
        try:
            template = loads_lenient(path.read_bytes())
        except (ValueError, OSError):
            return {}
        files = path.parent / path.name.replace("azuredeploy.json", "azuredeploy.parameters.json")
        folder_url = self.files_url + str(path.parent.relative_to(self.root)).replace("\\", "/") + "/"
        parameters = parameters_for(template, files, seed + "/prereq", group, folder_url)
        url = f"{self.base}{self.sub}/resourcegroups/{group}/providers/Microsoft.Resources/deployments/prereq?{API}"
        answer = self.client.put(
            url, json={"properties": {"mode": "Incremental", "template": template, "parameters": parameters}}
        )
        if answer.status_code >= 400:
            return {}
        view: dict[str, Any] = {}
        for _ in range(10):
            view = self.client.get(url).json()
            if view["properties"]["provisioningState"] in ("Succeeded", "Failed"):
                break
        outputs = view["properties"].get("outputs") or {}
        return {k: v.get("value") for k, v in outputs.items() if isinstance(v, dict)}

    def missing(self, template: dict[str, Any], group: str) -> list[str]:
        """Declared top-level resource types of which the emulator's listings show no instance."""
        present = {r["type"].lower() for r in self.client.get(f"{self.base}{self.sub}/resources?{API}").json()["value"]}
        groups = self.client.get(f"{self.base}{self.sub}/resourcegroups?{API}").json()["value"]
        if groups:
            present.add("microsoft.resources/resourcegroups")
        deployments = self.client.get(
            f"{self.base}{self.sub}/resourcegroups/{group}/providers/Microsoft.Resources/deployments?{API}"
        ).json()["value"]
        if any(d["name"] not in ("main", "prereq") for d in deployments):  # a nested one (main is the bench's own)
            present.add("microsoft.resources/deployments")

        def found(kind: str) -> bool:
            if kind.startswith("*/"):
                return any(p.endswith(kind[1:]) for p in present)
            return kind.lower() in present

        return [kind for kind in declared_resources(template) if not found(kind)]


def _error(body: Any) -> str:
    error = body.get("error") or {}
    while error.get("details"):
        error = error["details"][0]
    return f"{error.get('code', '?')}: {error.get('message', '')}"


def run(root: Path, limit: int | None, only: str | None) -> list[Outcome]:
    """Deploy every ``azuredeploy.json`` under ``root``; one ``Outcome`` each."""
    paths = sorted(p for p in root.rglob("azuredeploy.json") if only is None or only in str(p))
    paths = paths[:limit] if limit else paths
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory() as certs, serving(root) as files_url:
        server, base, ca_path = serve("127.0.0.1", 0, certs)
        server.emulator.failure_marker = None
        try:
            headers = {"Authorization": "Bearer bench"}
            verify = ssl.create_default_context(cafile=str(ca_path))
            with httpx.Client(verify=verify, headers=headers, timeout=60) as client:
                bench = Bench(client, base, files_url, root)
                for index, path in enumerate(paths):
                    server.emulator.reset()
                    try:
                        outcomes.append(bench.deploy(path, index))
                    except (httpx.HTTPError, KeyError, ValueError) as exc:
                        outcomes.append(Outcome(str(path.relative_to(root)), False, f"bench error: {exc!r}"))
        finally:
            server.stop()
    return outcomes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.quickstarts", description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--only", help="deploy only templates whose path contains this")
    parser.add_argument("--json", type=Path, help="write every outcome to this file")
    parser.add_argument("--show-failures", type=int, default=25, help="list this many failure reasons")
    args = parser.parse_args(argv)
    started = time.monotonic()
    outcomes = run(args.directory, args.limit, args.only)
    elapsed = time.monotonic() - started
    ok = sum(o.ok for o in outcomes)
    reasons = collections.Counter(re.sub(r"'[^']*'", "'…'", o.reason)[:160] for o in outcomes if not o.ok)
    for reason, count in reasons.most_common(args.show_failures):
        print(f"{count:4d}  {reason}")
    if args.json:
        args.json.write_text(json.dumps([o.__dict__ for o in outcomes], indent=1), encoding="utf-8")
    share = ok / len(outcomes) if outcomes else 0.0
    print(f"deployed {ok}/{len(outcomes)} quickstart templates ({share:.1%}) in {elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
