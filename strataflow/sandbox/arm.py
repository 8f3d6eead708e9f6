"""A local HTTPS Azure Resource Manager endpoint for the sandbox and the tests.

The real Azure SDK clients (``ResourceManagementClient``, ``DeploymentsMgmtClient``) point
their ``base_url`` at it and trust its CA (``connection_verify=ca_path``). It answers, with
Azure's status codes, headers and error bodies:

- ``GET /subscriptions/{id}`` (404 ``SubscriptionNotFound`` for any other subscription);
- resource groups: PUT, GET, HEAD, DELETE (202 + ``Location`` polling), and the list;
- deployments at a resource group or at the subscription: PUT (201 + ``Azure-AsyncOperation``;
  Accepted -> Running -> Succeeded/Failed over two polls), GET, HEAD, DELETE, the list,
  ``validate``, ``whatIf`` (202 + ``Location``, then the changes), ``exportTemplate``,
  ``operations`` (a failed operation carries its ``statusMessage.error``);
- resources created by deployments: GET, HEAD, DELETE by id, and ``GET .../resources`` (by group
  or subscription; child resources are listed too).

Templates are evaluated by ``arm_templates``/``arm_plan``/``arm_engine`` with the expression
language of ``arm_parser``/``arm_eval``/``arm_functions`` (the ARM template function library),
providers' read-only properties from ``arm_resources``; request bodies and linked templates
are read like ARM reads them (``arm_json``: comments and trailing commas allowed). A feature the
sandbox lacks is refused with ``SandboxUnsupported`` ("... is not supported by the strataflow
sandbox"), never with Azure's "function is not valid". Every request needs
``Authorization: Bearer <anything>`` (else 401) and an ``api-version``.

For tests, the ``ArmEmulator`` handle (``server.emulator``) can answer the next requests
with faults (``inject_fault``: 429 with Retry-After, 500, ...), change or delete a resource
out of band (``patch_resource``, ``delete_resource``), and shows the requests it served.
A resource whose name contains ``failure_marker`` (default ``"fail"``) fails to deploy with
``InvalidResourceName``. The same controls are served without authentication under
``/_emulator/`` (``POST faults``, ``POST resources``, ``GET requests``, ``POST reset``) for an
emulator running in another process: ``python -m strataflow.sandbox.arm --port P --cert-dir D``.

Its TLS certificate is signed by a private CA made on first use in ``cert_dir`` (``ca.pem``,
which clients trust; ``server.pem`` for 127.0.0.1, ::1 and localhost), reused while valid.

Modules: ``arm_emulator`` (requests, faults, groups, resources), ``arm_deployments``
(deployment routes), ``arm_engine`` (running deployments, nested ones included),
``arm_templates``/``arm_plan`` (template semantics), ``arm_links`` (linked templates on
loopback), ``arm_resources``/``arm_resource_types`` (read-only properties, ``list*``),
the expression modules listed in ``arm_expressions``, and ``arm_store``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import json
import os
import ssl
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from socket import socket
from typing import Any

from strataflow.sandbox.arm_emulator import ArmEmulator, Fault, RequestRecord
from strataflow.sandbox.arm_store import SANDBOX_SUBSCRIPTION, SANDBOX_TENANT, Reply

__all__ = [
    "SANDBOX_SUBSCRIPTION",
    "SANDBOX_TENANT",
    "ArmEmulator",
    "ArmServer",
    "Fault",
    "RequestRecord",
    "ensure_certificate",
    "serve",
]

_VALID_DAYS = 365


def ensure_certificate(cert_dir: Path) -> tuple[Path, Path, Path]:
    """``(ca_path, cert_path, key_path)`` in ``cert_dir``, created when missing or about to expire."""
    ca_path, cert_path, key_path = cert_dir / "ca.pem", cert_dir / "server.pem", cert_dir / "server-key.pem"
    if not _still_valid(cert_path) or not ca_path.exists() or not key_path.exists():
        _generate(cert_dir, ca_path, cert_path, key_path)
    return ca_path, cert_path, key_path


def _still_valid(cert_path: Path) -> bool:
    from cryptography import x509

    if not cert_path.exists():
        return False
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except ValueError:
        return False
    return cert.not_valid_after_utc - dt.timedelta(days=7) > dt.datetime.now(dt.UTC)


def _generate(cert_dir: Path, ca_path: Path, cert_path: Path, key_path: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    cert_dir.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "strataflow sandbox CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=_VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=_VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key_bytes)


# --- HTTP ----------------------------------------------------------------------


class ArmServer(ThreadingHTTPServer):
    """A threading HTTPS server whose ``emulator`` answers every request."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], context: ssl.SSLContext, emulator: ArmEmulator) -> None:
        super().__init__(address, _Handler)
        self.context = context
        self.emulator = emulator

    def get_request(self) -> tuple[socket, Any]:
        sock, address = super().get_request()
        # The TLS handshake happens in the handler's thread, so a slow client blocks no one.
        return self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), address

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that drop the connection or fail the TLS handshake are not worth a traceback."""
        del request, client_address

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ArmServer

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        host = self.headers.get("Host") or f"127.0.0.1:{self.server.server_address[1]}"
        try:
            reply = self.server.emulator.handle(self.command, self.path, headers, body, f"https://{host}")
        except (ValueError, KeyError, TypeError) as exc:  # a request the emulator cannot make sense of
            reply = Reply(400, {"error": {"code": "InvalidRequestContent", "message": f"Invalid request: {exc}"}})
        except Exception as exc:  # noqa: BLE001 - a sandbox bug answers 500 like Azure, not a dropped connection
            message = f"The strataflow sandbox failed to serve this request: {type(exc).__name__}: {exc}"
            reply = Reply(500, {"error": {"code": "InternalServerError", "message": message}})
        data = b"" if reply.body is None or self.command == "HEAD" else json.dumps(reply.body).encode()
        self.send_response(reply.status)
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "x-ms-request-id": str(uuid.uuid4()),
            **reply.headers,
        }
        for key, value in headers.items():
            if value:
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        del format, args


def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    cert_dir: str | Path = ".strata-sandbox",
    *,
    subscriptions: list[str] | None = None,
) -> tuple[ArmServer, str, Path]:
    """Start the emulator in a daemon thread: ``(server, base_url, ca_path)``; ``server.stop()`` ends it.

    The CA and server certificate (for 127.0.0.1, ::1 and localhost) are made in ``cert_dir``
    on first use and reused while valid; ``subscriptions`` are the ones it knows (default
    ``SANDBOX_SUBSCRIPTION``), every other answers 404 ``SubscriptionNotFound``.
    """
    ca_path, cert_path, key_path = ensure_certificate(Path(cert_dir))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    server = ArmServer((host, port), context, ArmEmulator(subscriptions))
    thread = threading.Thread(target=server.serve_forever, name="arm-sandbox", daemon=True)
    thread.start()
    name = "127.0.0.1" if host in ("0.0.0.0", "") else host  # noqa: S104 - the wildcard bind address
    return server, f"https://{name}:{server.server_address[1]}", ca_path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m strataflow.sandbox.arm", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--cert-dir", default=".strata-sandbox")
    parser.add_argument("--subscription", action="append", help="a subscription the emulator knows (repeatable)")
    args = parser.parse_args(argv)
    server, url, ca_path = serve(args.host, args.port, args.cert_dir, subscriptions=args.subscription)
    print(
        json.dumps({"url": url, "ca_path": str(ca_path), "subscriptions": sorted(server.emulator.subscriptions)}),
        flush=True,
    )
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
