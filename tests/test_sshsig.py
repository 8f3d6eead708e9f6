"""SSH signatures made and checked without a program, interoperable with OpenSSH both ways."""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import given
from hypothesis import strategies as st

from strataflow import sshsig
from strataflow.approvals import signed_text
from tests.support.ssh import agent, keygen_sign, keygen_verify, keypair

KINDS = ["ed25519", "rsa", "ecdsa"]


class TestInteroperability:
    @pytest.mark.parametrize("kind", KINDS)
    def test_a_signature_by_ssh_keygen_verifies(self, tmp_path: Path, kind: str) -> None:
        """What `ssh-keygen -Y sign -n strataflow` makes, verify() accepts for that key."""
        key = keypair(tmp_path, "alice", kind)
        message = signed_text("run-1", "approve", "alice", "prod", "ab" * 32)
        sshsig.verify(message, keygen_sign(key, message), sshsig.parse_public_key(key.public))

    @pytest.mark.parametrize("kind", KINDS)
    def test_a_signature_made_here_verifies_with_ssh_keygen(self, tmp_path: Path, kind: str) -> None:
        """What sign_with_file makes, `ssh-keygen -Y verify` accepts."""
        key = keypair(tmp_path, "alice", kind)
        message = b"approve this"
        assert keygen_verify(key, message, sshsig.sign_with_file(message, key.private))

    def test_the_agent_signs_with_the_key_it_holds(self, tmp_path: Path) -> None:
        """sign_with_agent asks ssh-agent, and the signature verifies (how hardware keys sign)."""
        key = keypair(tmp_path, "alice")
        message = b"approve through the agent"
        with agent(tmp_path, key) as env:
            public = sshsig.parse_public_key(key.public)
            assert [k.blob for k in sshsig.agent_keys(env["SSH_AUTH_SOCK"])] == [public.blob]
            signature = sshsig.sign_with_agent(message, public, env["SSH_AUTH_SOCK"])
        sshsig.verify(message, signature, public)
        assert keygen_verify(key, message, signature)

    def test_the_agent_refuses_a_key_it_does_not_hold(self, tmp_path: Path) -> None:
        """Asking the agent to sign with another key is a clear error, not a signature."""
        held, other = keypair(tmp_path, "alice"), keypair(tmp_path, "bob")
        with agent(tmp_path, held) as env, pytest.raises(sshsig.SignatureError, match="does not hold"):
            sshsig.sign_with_agent(b"x", sshsig.parse_public_key(other.public), env["SSH_AUTH_SOCK"])


class TestRefusals:
    @pytest.fixture
    def alice(self, tmp_path: Path) -> tuple[sshsig.PublicKey, Path]:
        key = keypair(tmp_path, "alice")
        return sshsig.parse_public_key(key.public), key.private

    def test_other_text_is_refused(self, alice: tuple[sshsig.PublicKey, Path]) -> None:
        """A signature over one decision does not verify another (another run, digest or decision)."""
        public, private = alice
        signature = sshsig.sign_with_file(signed_text("run-1", "approve", "alice", "prod", "a" * 64), private)
        for other in (
            signed_text("run-2", "approve", "alice", "prod", "a" * 64),
            signed_text("run-1", "approve", "alice", "prod", "b" * 64),
            signed_text("run-1", "reject", "alice", "prod", "a" * 64),
            signed_text("run-1", "approve", "bob", "prod", "a" * 64),
        ):
            with pytest.raises(sshsig.SignatureError, match="does not match"):
                sshsig.verify(other, signature, public)

    def test_another_key_is_refused(self, tmp_path: Path, alice: tuple[sshsig.PublicKey, Path]) -> None:
        """bob's signature is not alice's, even over the right text."""
        public, _ = alice
        bob = keypair(tmp_path, "bob")
        with pytest.raises(sshsig.SignatureError, match="another key"):
            sshsig.verify(b"m", sshsig.sign_with_file(b"m", bob.private), public)

    def test_another_namespace_is_refused(self, tmp_path: Path) -> None:
        """A signature made for another purpose (namespace `file`) does not count."""
        key = keypair(tmp_path, "alice")
        with pytest.raises(sshsig.SignatureError, match="namespace"):
            sshsig.verify(b"m", keygen_sign(key, b"m", namespace="file"), sshsig.parse_public_key(key.public))

    def test_an_altered_signature_is_refused(self, alice: tuple[sshsig.PublicKey, Path]) -> None:
        """Flipping a byte of the signature makes it fail."""
        public, private = alice
        blob = bytearray(sshsig.unarmor(sshsig.sign_with_file(b"m", private)))
        blob[-5] ^= 1
        with pytest.raises(sshsig.SignatureError):
            sshsig.verify(b"m", sshsig.armor(bytes(blob)), public)

    @pytest.mark.parametrize("text", ["", "hello", "-----BEGIN SSH SIGNATURE-----\n!!\n-----END SSH SIGNATURE-----"])
    def test_garbage_is_a_signature_error(self, alice: tuple[sshsig.PublicKey, Path], text: str) -> None:
        """Text that is no SSH signature is refused with SignatureError, never another exception."""
        with pytest.raises(sshsig.SignatureError):
            sshsig.verify(b"m", text, alice[0])

    @pytest.mark.parametrize(
        "line",
        ["ssh-ed25519", "ssh-dss AAAAB3NzaC1kc3M=", "ssh-ed25519 not-base64!", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA=="],
    )
    def test_a_malformed_public_key_is_refused(self, line: str) -> None:
        """A key line that is not a usable key raises SignatureError saying why."""
        with pytest.raises(sshsig.SignatureError):
            sshsig.parse_public_key(line)


class TestPastedSignatures:
    @given(separator=st.sampled_from([" ", "", "\t", "\r\n"]))
    def test_a_signature_pasted_into_one_line_still_verifies(self, tmp_path_factory: pytest.TempPathFactory, separator: str) -> None:
        """Line breaks lost in a form field (replaced or removed) do not matter."""
        directory = tmp_path_factory.mktemp("paste")
        private = ed25519.Ed25519PrivateKey.generate()
        path = directory / "key"
        path.write_bytes(
            private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption())
        )
        public_line = private.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        signature = sshsig.sign_with_file(b"m", path)
        sshsig.verify(b"m", separator.join(signature.splitlines()), sshsig.parse_public_key(public_line.decode()))


class TestHardwareKeys:
    def test_an_sk_ed25519_signature_verifies_and_a_tampered_counter_does_not(self) -> None:
        """The FIDO format (application, flags, counter) is verified as OpenSSH does for sk-ssh-ed25519 keys."""
        private = ed25519.Ed25519PrivateKey.generate()
        raw = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

        def string(data: bytes) -> bytes:
            return struct.pack(">I", len(data)) + data

        kind = b"sk-ssh-ed25519@openssh.com"
        blob = string(kind) + string(raw) + string(b"ssh:")
        key = sshsig.PublicKey(kind.decode(), blob)
        message = b"approve with a hardware key"
        signed = (
            b"SSHSIG" + string(b"strataflow") + string(b"") + string(b"sha512") + string(hashlib.sha512(message).digest())
        )
        flags, counter = b"\x01", struct.pack(">I", 7)
        data = hashlib.sha256(b"ssh:").digest() + flags + counter + hashlib.sha256(signed).digest()
        signature_blob = string(kind) + string(private.sign(data)) + flags + counter
        envelope = (
            b"SSHSIG" + struct.pack(">I", 1) + string(blob) + string(b"strataflow") + string(b"") + string(b"sha512")
            + string(signature_blob)
        )
        sshsig.verify(message, sshsig.armor(envelope), key)
        tampered = envelope[:-1] + b"\x08"
        with pytest.raises(sshsig.SignatureError):
            sshsig.verify(message, sshsig.armor(tampered), key)
