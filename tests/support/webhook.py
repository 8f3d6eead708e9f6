"""A local HTTP server receiving webhook calls, and Prefect custom-webhook notification blocks pointed at it."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Webhook:
    """What the server received: one dict per call (``subject``, ``body``, ``name``, ``path``)."""

    url: str = ""
    calls: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def received(self, path: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [c for c in self.calls if path is None or c["path"] == path]

    def wait_for(self, count: int, path: str | None = None, timeout: float = 30.0) -> list[dict[str, Any]]:
        """The calls to ``path`` once there are at least ``count`` of them (fails after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while len(self.received(path)) < count:
            assert time.monotonic() < deadline, f"{len(self.received(path))} calls to {path}, wanted {count}"
            time.sleep(0.1)
        return self.received(path)

    def block(self, path: str, name: str | None = None) -> str:
        """Save a ``CustomWebhookNotificationBlock`` posting ``{subject, body, name}`` to ``path``; its name."""
        from prefect.blocks.notifications import CustomWebhookNotificationBlock

        name = name or f"hook-{uuid.uuid4().hex[:10]}"
        CustomWebhookNotificationBlock(
            name=name,
            url=f"{self.url}{path}",
            json_data={"subject": "{{subject}}", "body": "{{body}}", "name": "{{name}}"},
            timeout=5,
        ).save(name, overwrite=True)
        return name


@contextmanager
def webhook_server() -> Iterator[Webhook]:
    """Serve on 127.0.0.1 (a free port), recording every POST's JSON body with its path."""
    hook = Webhook()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            del format, args

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")) or 0)
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                body = {"raw": raw.decode(errors="replace")}
            with hook.lock:
                hook.calls.append({**body, "path": self.path})
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hook.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()
