"""The price lists' sandbox: a local HTTP server speaking both price APIs from a committed snapshot.

- AWS Price List Query API (JSON 1.1): ``POST /`` with ``X-Amz-Target:
  AWSPriceListService.GetProducts``; ``TERM_MATCH``/``EQUALS`` filters (and ``CONTAINS``,
  ``ANY_OF``, ``NONE_OF``) on the product's attributes, ``MaxResults`` and ``NextToken``.
- Azure Retail Prices API: ``GET /api/retail/prices?$filter=...`` (``field eq 'value'``
  joined by ``and``), pages of ``page_size`` items linked by ``NextPageLink``.
- Azure Cost Management query: ``POST /{scope}/providers/Microsoft.CostManagement/query``
  answers the rows injected with ``POST /strata-sandbox/costmanagement/results``
  (``{"scope": "...", "columns": [...], "rows": [...]}``, as moto's Cost Explorer takes its
  results), else no rows.
- ``GET /health`` answers 200.

The answers come from ``snapshot/aws.json`` and ``snapshot/azure.json``: a dated snapshot of
published list prices for offline use, not live prices. Run it with
``python -m strataflow.backends.pricing.sandbox --port N``; ``start`` runs it in a thread.
"""

from __future__ import annotations

import argparse
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

SNAPSHOT = Path(__file__).resolve().parent / "snapshot"
_FIELDS = {"priceType": "type"}
"""Filter fields that are named otherwise in the items (``priceType eq 'Consumption'`` reads ``type``)."""
_CLAUSE = re.compile(r"^\s*(\w+)\s+eq\s+'((?:[^']|'')*)'\s*$", re.IGNORECASE)


def load_snapshot(directory: Path = SNAPSHOT) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(AWS products, Azure items) of the snapshot."""
    aws = json.loads((directory / "aws.json").read_text())["PriceList"]
    azure = json.loads((directory / "azure.json").read_text())["Items"]
    return list(aws), list(azure)


def _aws_match(product: dict[str, Any], service: str, filters: list[dict[str, Any]]) -> bool:
    if product.get("serviceCode") != service:
        return False
    attributes = {k.lower(): str(v).lower() for k, v in (product.get("product") or {}).get("attributes", {}).items()}
    attributes["productfamily"] = str((product.get("product") or {}).get("productFamily", "")).lower()
    for f in filters:
        have = attributes.get(str(f.get("Field", "")).lower())
        value = str(f.get("Value", "")).lower()
        kind = f.get("Type", "TERM_MATCH")
        options = [v.strip() for v in value.split(",")]
        ok = {
            "TERM_MATCH": have == value,
            "EQUALS": have == value,
            "CONTAINS": have is not None and value in have,
            "ANY_OF": have in options,
            "NONE_OF": have not in options,
        }.get(kind, False)
        if not ok:
            return False
    return True


def odata_filter(text: str) -> list[tuple[str, str]]:
    """``a eq 'x' and b eq 'y'`` as [(a, x), (b, y)]; ValueError for anything else."""
    clauses = []
    for part in re.split(r"\s+and\s+", text.strip(), flags=re.IGNORECASE) if text.strip() else []:
        match = _CLAUSE.match(part)
        if not match:
            raise ValueError(f"unsupported filter clause: {part!r}")
        clauses.append((match.group(1), match.group(2).replace("''", "'")))
    return clauses


class PriceSandbox(ThreadingHTTPServer):
    """The server; ``requests`` counts what was asked (tests check the cache with it)."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], *, page_size: int = 100, snapshot: Path = SNAPSHOT) -> None:
        super().__init__(address, _Handler)
        self.aws_products, self.azure_items = load_snapshot(snapshot)
        self.page_size = page_size
        self.requests: list[tuple[str, str]] = []
        """(API, what was asked): ``("aws", "AmazonEC2 instanceType=t3.medium ...")``, ``("azure", filter)``."""
        self.cost_results: dict[str, list[dict[str, Any]]] = {}
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


class _Handler(BaseHTTPRequestHandler):
    server: PriceSandbox
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        del format, args

    def _send(self, status: int, body: Any, content_type: str = "application/json") -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        return json.loads(raw) if raw.strip() else {}

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path == "/health":
            self._send(200, {"status": "ok"})
        elif parts.path.rstrip("/") == "/api/retail/prices":
            self._retail(parse_qs(parts.query))
        else:
            self._send(404, {"error": {"code": "NotFound", "message": f"no route {parts.path}"}})

    def do_POST(self) -> None:
        parts = urlsplit(self.path)
        try:
            body = self._body()
        except ValueError:
            self._send(400, {"__type": "SerializationException", "message": "the body is not JSON"})
            return
        target = self.headers.get("X-Amz-Target", "")
        if target:
            self._price_list(target, body)
        elif parts.path == "/strata-sandbox/costmanagement/results":
            with self.server.lock:
                self.server.cost_results.setdefault(str(body.get("scope", "*")).lower().strip("/"), []).append(body)
            self._send(201, {})
        elif parts.path.lower().endswith("/providers/microsoft.costmanagement/query"):
            self._cost_query(parts.path.rsplit("/providers/", 1)[0])
        else:
            self._send(404, {"error": {"code": "NotFound", "message": f"no route {parts.path}"}})

    def _price_list(self, target: str, body: dict[str, Any]) -> None:
        if target != "AWSPriceListService.GetProducts":
            self._send(400, {"__type": "UnknownOperationException", "message": f"{target} is not served here"})
            return
        service, filters = str(body.get("ServiceCode", "")), list(body.get("Filters") or [])
        asked = " ".join([service] + [f"{f.get('Field')}={f.get('Value')}" for f in filters])
        with self.server.lock:
            self.server.requests.append(("aws", asked))
        found = [p for p in self.server.aws_products if _aws_match(p, service, filters)]
        start = int(body.get("NextToken") or 0)
        size = min(int(body.get("MaxResults") or self.server.page_size), self.server.page_size)
        page = found[start : start + size]
        answer: dict[str, Any] = {"FormatVersion": "aws_v1", "PriceList": [json.dumps(p) for p in page]}
        if start + size < len(found):
            answer["NextToken"] = str(start + size)
        self._send(200, answer, "application/x-amz-json-1.1")

    def _retail(self, query: dict[str, list[str]]) -> None:
        text = (query.get("$filter") or [""])[0]
        try:
            clauses = odata_filter(text)
        except ValueError as exc:
            self._send(400, {"Error": {"Code": "BadRequest", "Message": str(exc)}})
            return
        with self.server.lock:
            self.server.requests.append(("azure", text))
        found = [
            item
            for item in self.server.azure_items
            if all(str(item.get(_FIELDS.get(f, f), "")).lower() == value.lower() for f, value in clauses)
        ]
        skip = int((query.get("$skip") or ["0"])[0])
        page = found[skip : skip + self.server.page_size]
        next_link = None
        if skip + self.server.page_size < len(found):
            rest = {k: v[0] for k, v in query.items() if k != "$skip"}
            next_link = (
                f"{self.server.url}/api/retail/prices?{urlencode({**rest, '$skip': skip + self.server.page_size})}"
            )
        currency = (query.get("currencyCode") or ["USD"])[0]
        self._send(
            200,
            {
                "BillingCurrency": currency,
                "CustomerEntityId": "Default",
                "CustomerEntityType": "Retail",
                "Items": page,
                "NextPageLink": next_link,
                "Count": len(page),
            },
        )

    def _cost_query(self, scope: str) -> None:
        key = scope.lower().strip("/")
        with self.server.lock:
            self.server.requests.append(("costmanagement", key))
            queued = self.server.cost_results.get(key) or self.server.cost_results.get("*") or []
            result = queued[0] if queued else {}
        columns = result.get("columns") or [
            {"name": "Cost", "type": "Number"},
            {"name": "TagKey", "type": "String"},
            {"name": "TagValue", "type": "String"},
            {"name": "ResourceGroupName", "type": "String"},
            {"name": "Currency", "type": "String"},
        ]
        self._send(
            200,
            {
                "id": f"{scope}/providers/Microsoft.CostManagement/query/sandbox",
                "name": "sandbox",
                "type": "Microsoft.CostManagement/query",
                "properties": {"nextLink": None, "columns": columns, "rows": result.get("rows") or []},
            },
        )


def start(port: int = 0, host: str = "127.0.0.1", *, page_size: int = 100) -> PriceSandbox:
    """The sandbox serving in a daemon thread of this process (``server.shutdown()`` stops it)."""
    server = PriceSandbox((host, port), page_size=page_size)
    threading.Thread(target=server.serve_forever, name="strata-price-sandbox", daemon=True).start()
    return server


def serve(port: int, host: str = "127.0.0.1") -> None:
    """Serve until interrupted (what ``python -m strataflow.backends.pricing.sandbox`` runs)."""
    server = PriceSandbox((host, port))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the price lists' sandbox (a dated snapshot, not live prices).")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    serve(args.port, args.host)


if __name__ == "__main__":
    main()


__all__ = ["SNAPSHOT", "PriceSandbox", "load_snapshot", "main", "odata_filter", "serve", "start"]
