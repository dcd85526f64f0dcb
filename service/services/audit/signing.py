"""Ed25519 signatures of checkpoints: what is signed, the key's id, signing and checking.

**What is signed.** A checkpoint's ``row_hash`` (``checkpoints.checkpoint_hash``) already covers its ``seq``, its
``prev_hash`` (so every checkpoint before it), its time and the heads ``[[chain, seq, row_hash], ...]`` it binds.
The signature is Ed25519 over the UTF-8 bytes of the compact JSON array

    ["advisor-audit-checkpoint-signature/1", seq, row_hash]

(``signed_bytes``): the first element keeps these bytes apart from anything else the key might ever sign. It is
stored base64 (standard alphabet, padded) with the ``key_id`` of the key that made it: the lower-case hex SHA-256 of
the raw 32-byte public key, so a verifier picks the trusted key by id and several keys can be trusted at once
(rotation, docs/runbook.md).

**The private key** is read from a PEM file (PKCS#8, unencrypted: ``openssl genpkey -algorithm ed25519``) named by
``ADVISOR_AUDIT_CHECKPOINT_SIGNING_KEY_FILE``; only the path is in the settings. The key object lives in
``CheckpointSigner`` and never leaves it: its ``repr`` names the key id only, and errors name the file, never its
bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = [
    "SIGNATURE_FORMAT",
    "CheckpointKeyError",
    "CheckpointSigner",
    "TrustedKeys",
    "key_id",
    "load_public_key",
    "public_key_pem",
    "signed_bytes",
]

SIGNATURE_FORMAT = "advisor-audit-checkpoint-signature/1"


class CheckpointKeyError(ValueError):
    """A key file that cannot be read or is not an Ed25519 key (the message names the file, never its contents)."""


def signed_bytes(seq: int, row_hash: str) -> bytes:
    """The bytes a checkpoint's signature covers."""
    return json.dumps([SIGNATURE_FORMAT, seq, row_hash], separators=(",", ":")).encode()


def key_id(public_key: Ed25519PublicKey) -> str:
    """The hex SHA-256 of the raw 32-byte public key."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def public_key_pem(public_key: Ed25519PublicKey) -> str:
    pem = public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem.decode()


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CheckpointKeyError(f"cannot read the {what} file {path}: {exc.strerror or exc}") from None


class CheckpointSigner:
    """Signs checkpoints with one Ed25519 private key."""

    __slots__ = ("_private", "key_id", "public_key")

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._private = private_key
        self.public_key = private_key.public_key()
        self.key_id = key_id(self.public_key)

    @classmethod
    def from_file(cls, path: Path) -> CheckpointSigner:
        data = _read(path, "checkpoint signing key")
        try:
            loaded = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            # The library's message may quote what it parsed: say only which file, and what it should be.
            raise CheckpointKeyError(
                f"{path} is not an unencrypted PEM private key (make one: openssl genpkey -algorithm ed25519)"
            ) from None
        if not isinstance(loaded, Ed25519PrivateKey):
            raise CheckpointKeyError(f"{path} holds a {type(loaded).__name__}, not an Ed25519 private key")
        return cls(loaded)

    def sign(self, seq: int, row_hash: str) -> str:
        """The base64 signature of checkpoint ``seq`` whose hash is ``row_hash``."""
        return base64.b64encode(self._private.sign(signed_bytes(seq, row_hash))).decode()

    def identify(self, seq: int, row_hash: str) -> tuple[str, str]:
        """The key id and the signature stored with checkpoint ``seq``."""
        return self.key_id, self.sign(seq, row_hash)

    def __repr__(self) -> str:
        return f"CheckpointSigner(key_id={self.key_id!r})"


def load_public_key(path: Path) -> Ed25519PublicKey:
    """An Ed25519 public key from a PEM file (``openssl pkey -in key.pem -pubout``)."""
    data = _read(path, "public key")
    try:
        loaded = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise CheckpointKeyError(f"{path} is not a PEM public key") from None
    if not isinstance(loaded, Ed25519PublicKey):
        raise CheckpointKeyError(f"{path} holds a {type(loaded).__name__}, not an Ed25519 public key")
    return loaded


class TrustedKeys:
    """The public keys a verifier trusts, by key id: checks a checkpoint's signature, says what is wrong."""

    def __init__(self, keys: Iterable[Ed25519PublicKey]) -> None:
        self.by_id = {key_id(key): key for key in keys}

    def problem(self, seq: int, row_hash: str, key: str | None, signature: str | None) -> str | None:
        """None if ``signature`` is a valid signature of checkpoint ``seq`` by the trusted key ``key``."""
        if key is None or signature is None:
            return "not signed"
        public = self.by_id.get(key)
        if public is None:
            return f"signed by key {key}, which is not trusted (--public-key)"
        try:
            raw = base64.b64decode(signature, validate=True)
        except (binascii.Error, ValueError):
            return "its signature is not base64 — forged"
        try:
            public.verify(raw, signed_bytes(seq, row_hash))
        except InvalidSignature:
            return f"its signature does not verify under key {key} — forged"
        return None
