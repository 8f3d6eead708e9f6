"""SSH signatures (the ``ssh-keygen -Y sign`` format) made and checked without running a program.

An approval in an environment whose approvers carry public SSH keys must be signed by the
approver's key, in OpenSSH's SSHSIG format (PROTOCOL.sshsig), namespace ``strataflow``, over
a canonical text naming the flow run, the decision, the approver, the target and the digest
of what is approved. ``verify`` checks such a signature against a public key line as it
appears in ``authorized_keys`` (ed25519, ECDSA, RSA, and the hardware-backed
``sk-ssh-ed25519@openssh.com`` / ``sk-ecdsa-sha2-nistp256@openssh.com``). ``sign_with_file``
signs with an OpenSSH private key file; ``sign_with_agent`` asks the running ``ssh-agent``
(``SSH_AUTH_SOCK``), which is how hardware-backed keys sign. Signatures are interoperable with
``ssh-keygen -Y sign`` / ``-Y verify`` (the tests check both ways).
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import socket
import struct
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

NAMESPACE = "strataflow"
MAGIC = b"SSHSIG"
_BEGIN, _END = "-----BEGIN SSH SIGNATURE-----", "-----END SSH SIGNATURE-----"
_CURVES: dict[str, tuple[ec.EllipticCurve, hashes.HashAlgorithm]] = {
    "nistp256": (ec.SECP256R1(), hashes.SHA256()),
    "nistp384": (ec.SECP384R1(), hashes.SHA384()),
    "nistp521": (ec.SECP521R1(), hashes.SHA512()),
}
_KEY_TYPES = (
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
)


class SignatureError(ValueError):
    """A key or signature that cannot be read, or a signature that does not verify."""


# --- wire format -------------------------------------------------------------------------------


def _string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def take(self, size: int) -> bytes:
        if self.at + size > len(self.data):
            raise SignatureError("truncated SSH data")
        chunk = self.data[self.at : self.at + size]
        self.at += size
        return chunk

    def uint32(self) -> int:
        return int(struct.unpack(">I", self.take(4))[0])

    def string(self) -> bytes:
        return self.take(self.uint32())

    def mpint(self) -> int:
        return int.from_bytes(self.string(), "big", signed=True)

    def done(self) -> bool:
        return self.at == len(self.data)


# --- public keys -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PublicKey:
    """A public key as written in ``authorized_keys``: its type, wire blob and comment."""

    kind: str
    blob: bytes
    comment: str = ""

    @property
    def fingerprint(self) -> str:
        """``SHA256:...`` as ``ssh-keygen -l`` prints it."""
        return "SHA256:" + base64.b64encode(hashlib.sha256(self.blob).digest()).decode().rstrip("=")

    def line(self) -> str:
        return f"{self.kind} {base64.b64encode(self.blob).decode()}" + (f" {self.comment}" if self.comment else "")


def parse_public_key(text: str) -> PublicKey:
    """A public key from ``TYPE BASE64 [COMMENT]``; SignatureError saying what is wrong otherwise."""
    parts = text.strip().split(None, 2)
    if len(parts) < 2:
        raise SignatureError("a public key is 'TYPE BASE64 [COMMENT]', e.g. 'ssh-ed25519 AAAA... alice@laptop'")
    kind, body = parts[0], parts[1]
    if kind not in _KEY_TYPES:
        raise SignatureError(f"key type '{kind}' is not supported; use one of {', '.join(_KEY_TYPES)}")
    try:
        blob = base64.b64decode(body, validate=True)
    except ValueError:
        raise SignatureError("the key's base64 part is not valid base64") from None
    key = PublicKey(kind, blob, parts[2] if len(parts) > 2 else "")
    reader = _Reader(blob)
    if reader.string().decode(errors="replace") != kind:
        raise SignatureError(f"the key's data is not a {kind} key")
    _load(key)  # checks the key material itself
    return key


def _load(key: PublicKey) -> tuple[object, str | None]:
    """The cryptography key object of ``key``, and its FIDO application for hardware-backed keys."""
    reader = _Reader(key.blob)
    reader.string()
    try:
        if key.kind in ("ssh-ed25519", "sk-ssh-ed25519@openssh.com"):
            loaded: object = ed25519.Ed25519PublicKey.from_public_bytes(reader.string())
        elif key.kind == "ssh-rsa":
            e, n = reader.mpint(), reader.mpint()
            loaded = rsa.RSAPublicNumbers(e, n).public_key()
        else:
            curve = reader.string().decode()
            loaded = ec.EllipticCurvePublicKey.from_encoded_point(_CURVES[curve][0], reader.string())
        application = reader.string().decode() if key.kind.startswith("sk-") else None
    except (ValueError, KeyError, SignatureError) as exc:
        raise SignatureError(f"the {key.kind} key's data is malformed ({exc})") from None
    if not reader.done():
        raise SignatureError(f"the {key.kind} key has trailing data")
    return loaded, application


# --- signatures --------------------------------------------------------------------------------


def _signed_data(message: bytes, namespace: str, hash_name: str) -> bytes:
    digest = hashlib.new(hash_name, message).digest()
    return MAGIC + _string(namespace.encode()) + _string(b"") + _string(hash_name.encode()) + _string(digest)


def armor(blob: bytes) -> str:
    body = base64.b64encode(blob).decode()
    return "\n".join([_BEGIN, *(body[i : i + 70] for i in range(0, len(body), 70)), _END]) + "\n"


def unarmor(text: str) -> bytes:
    """The SSHSIG blob of an armored signature, tolerating lost line breaks (a paste into a form field)."""
    match = re.search(re.escape(_BEGIN) + r"(.*?)" + re.escape(_END), text, re.DOTALL)
    body = re.sub(r"\s+", "", match.group(1) if match else text)
    try:
        blob = base64.b64decode(body, validate=True)
    except ValueError:
        raise SignatureError("the signature is not an SSH signature block (-----BEGIN SSH SIGNATURE-----)") from None
    if not blob.startswith(MAGIC):
        raise SignatureError("the signature is not an SSH signature block (-----BEGIN SSH SIGNATURE-----)")
    return blob


def verify(message: bytes, signature: str, key: PublicKey, namespace: str = NAMESPACE) -> None:
    """Raise SignatureError unless ``signature`` is ``key``'s SSHSIG over ``message`` in ``namespace``."""
    reader = _Reader(unarmor(signature))
    reader.take(len(MAGIC))
    if reader.uint32() != 1:
        raise SignatureError("unsupported SSH signature version")
    signer, sig_namespace, _, hash_name, sig = (reader.string() for _ in range(5))
    if signer != key.blob:
        raise SignatureError(f"the signature was made with another key, not {key.fingerprint}")
    if sig_namespace.decode(errors="replace") != namespace:
        raise SignatureError(f"the signature is for namespace '{sig_namespace.decode(errors='replace')}', not '{namespace}'")
    if hash_name not in (b"sha256", b"sha512"):
        raise SignatureError("the signature uses an unsupported hash")
    data = _signed_data(message, namespace, hash_name.decode())
    loaded, application = _load(key)
    inner = _Reader(sig)
    algorithm = inner.string().decode(errors="replace")
    raw = inner.string()
    try:
        if key.kind.startswith("sk-"):
            flags, counter = inner.take(1), inner.take(4)
            assert application is not None
            data = hashlib.sha256(application.encode()).digest() + flags + counter + hashlib.sha256(data).digest()
        if isinstance(loaded, ed25519.Ed25519PublicKey):
            loaded.verify(raw, data)
        elif isinstance(loaded, rsa.RSAPublicKey):
            chosen = {"rsa-sha2-256": hashes.SHA256(), "rsa-sha2-512": hashes.SHA512()}.get(algorithm)
            if chosen is None:
                raise SignatureError(f"RSA signatures must use rsa-sha2-256 or rsa-sha2-512, not {algorithm}")
            loaded.verify(raw, data, padding.PKCS1v15(), chosen)
        elif isinstance(loaded, ec.EllipticCurvePublicKey):
            numbers = _Reader(raw)
            der = encode_dss_signature(numbers.mpint(), numbers.mpint())
            chosen_hash = hashes.SHA256() if key.kind.startswith("sk-") else _CURVES[key.kind.rsplit("-", 1)[1]][1]
            loaded.verify(der, data, ec.ECDSA(chosen_hash))
    except InvalidSignature:
        raise SignatureError("the signature does not match: it was made over other text or altered") from None


def _envelope(key_blob: bytes, hash_name: str, signature_blob: bytes, namespace: str) -> str:
    blob = (
        MAGIC
        + struct.pack(">I", 1)
        + _string(key_blob)
        + _string(namespace.encode())
        + _string(b"")
        + _string(hash_name.encode())
        + _string(signature_blob)
    )
    return armor(blob)


def sign_with_file(message: bytes, path: Path, password: bytes | None = None, namespace: str = NAMESPACE) -> str:
    """An armored SSHSIG of ``message`` by the OpenSSH private key in ``path``."""
    try:
        private = serialization.load_ssh_private_key(path.read_bytes(), password)
    except (ValueError, TypeError) as exc:
        raise SignatureError(f"{path} is not a usable OpenSSH private key ({exc}); or sign through ssh-agent") from None
    except OSError as exc:
        raise SignatureError(f"cannot read {path}: {exc.strerror}") from None
    public = private.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    key = parse_public_key(public.decode())
    data = _signed_data(message, namespace, "sha512")
    if isinstance(private, ed25519.Ed25519PrivateKey):
        blob = _string(b"ssh-ed25519") + _string(private.sign(data))
    elif isinstance(private, rsa.RSAPrivateKey):
        blob = _string(b"rsa-sha2-512") + _string(private.sign(data, padding.PKCS1v15(), hashes.SHA512()))
    elif isinstance(private, ec.EllipticCurvePrivateKey):
        curve = key.kind.rsplit("-", 1)[1]
        r, s = decode_dss_signature(private.sign(data, ec.ECDSA(_CURVES[curve][1])))
        blob = _string(key.kind.encode()) + _string(_mpint(r) + _mpint(s))
    else:
        raise SignatureError(f"{path}: this key type cannot sign here; sign through ssh-agent")
    return _envelope(key.blob, "sha512", blob, namespace)


def _mpint(value: int) -> bytes:
    return _string(value.to_bytes((value.bit_length() + 8) // 8, "big", signed=True) if value else b"")


# --- ssh-agent ---------------------------------------------------------------------------------

_IDENTITIES, _IDENTITIES_ANSWER, _SIGN, _SIGN_RESPONSE = 11, 12, 13, 14
_RSA_SHA2_512 = 4


def _agent(request: bytes, socket_path: str) -> _Reader:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(30)
        conn.connect(socket_path)
        conn.sendall(_string(request))
        header = b""
        while len(header) < 4:
            chunk = conn.recv(4 - len(header))
            if not chunk:
                raise SignatureError("ssh-agent closed the connection")
            header += chunk
        size, body = struct.unpack(">I", header)[0], b""
        while len(body) < size:
            chunk = conn.recv(size - len(body))
            if not chunk:
                raise SignatureError("ssh-agent closed the connection")
            body += chunk
    return _Reader(body)


def agent_keys(socket_path: str | None = None) -> list[PublicKey]:
    """The keys the running ssh-agent holds."""
    path = socket_path or os.environ.get("SSH_AUTH_SOCK")
    if not path:
        raise SignatureError("no ssh-agent: SSH_AUTH_SOCK is not set; pass --key PATH")
    try:
        reply = _agent(bytes([_IDENTITIES]), path)
    except OSError as exc:
        raise SignatureError(f"cannot reach ssh-agent at {path}: {exc.strerror or exc}") from None
    if reply.take(1)[0] != _IDENTITIES_ANSWER:
        raise SignatureError("ssh-agent refused to list its keys")
    found = []
    for _ in range(reply.uint32()):
        blob, comment = reply.string(), reply.string().decode(errors="replace")
        kind = _Reader(blob).string().decode(errors="replace")
        if kind in _KEY_TYPES:
            found.append(PublicKey(kind, blob, comment))
    return found


def sign_with_agent(message: bytes, key: PublicKey, socket_path: str | None = None, namespace: str = NAMESPACE) -> str:
    """An armored SSHSIG of ``message`` made by the ssh-agent with ``key`` (hardware-backed keys included)."""
    path = socket_path or os.environ.get("SSH_AUTH_SOCK")
    if not any(k.blob == key.blob for k in agent_keys(path)):
        raise SignatureError(f"ssh-agent does not hold the key {key.fingerprint}; ssh-add it or pass --key PATH")
    assert path is not None
    data = _signed_data(message, namespace, "sha512")
    flags = _RSA_SHA2_512 if key.kind == "ssh-rsa" else 0
    reply = _agent(bytes([_SIGN]) + _string(key.blob) + _string(data) + struct.pack(">I", flags), path)
    if reply.take(1)[0] != _SIGN_RESPONSE:
        raise SignatureError("ssh-agent refused to sign (a hardware key needs a touch, or the key is locked)")
    return _envelope(key.blob, "sha512", reply.string(), namespace)


__all__ = [
    "NAMESPACE",
    "PublicKey",
    "SignatureError",
    "agent_keys",
    "armor",
    "parse_public_key",
    "sign_with_agent",
    "sign_with_file",
    "unarmor",
    "verify",
]
