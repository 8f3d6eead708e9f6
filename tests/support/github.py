"""A local HTTP server speaking the part of GitHub's REST API the issue-tracker block uses."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse


@dataclass
class FakeGitHub:
    token: str
    issues: list[dict[str, Any]] = field(default_factory=list)
    comments: list[dict[str, Any]] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    url: str = ""


@contextmanager
def fake_github(token: str, repository: str = "acme/platform") -> Iterator[FakeGitHub]:
    """Serve issues of ``repository`` on 127.0.0.1; requests must carry ``Bearer token``."""
    hub = FakeGitHub(token=token)
    base = f"/repos/{repository}/issues"

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            del format, args

        def _answer(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _authorised(self) -> bool:
            if self.headers.get("Authorization") != f"Bearer {hub.token}":
                self._answer(401, {"message": "Bad credentials"})
                return False
            return True

        def do_GET(self) -> None:
            hub.requests.append(f"GET {self.path}")
            if not self._authorised():
                return
            url = urlparse(self.path)
            if url.path != base:
                self._answer(404, {"message": "Not Found"})
                return
            query = parse_qs(url.query)
            wanted = set(",".join(query.get("labels", [""])).split(",")) - {""}
            state = query.get("state", ["open"])[0]
            found = [i for i in hub.issues if (state == "all" or i["state"] == state) and wanted <= set(i["labels"])]
            self._answer(200, [{**i, "labels": [{"name": n} for n in i["labels"]]} for i in found])

        def do_POST(self) -> None:
            hub.requests.append(f"POST {self.path}")
            if not self._authorised():
                return
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
            if self.path == base:
                number = len(hub.issues) + 1
                issue = {"number": number, "title": body["title"], "body": body.get("body", ""), "state": "open",
                         "labels": body.get("labels", []), "html_url": f"{hub.url}/{repository}/issues/{number}"}
                hub.issues.append(issue)
                self._answer(201, issue)
            elif self.path.startswith(base + "/") and self.path.endswith("/comments"):
                number = int(self.path[len(base) + 1 :].split("/")[0])
                hub.comments.append({"issue": number, "body": body.get("body", "")})
                self._answer(201, {"id": len(hub.comments)})
            else:
                self._answer(404, {"message": "Not Found"})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hub
    finally:
        server.shutdown()
        server.server_close()
