"""KMS key material and ciphertext blobs: AES-256-GCM throughout.

A ciphertext blob is self-describing, so Decrypt needs no KeyId::

    version (1 byte, 0x01) | key id (36 ASCII bytes, the key's UUID) | nonce (12) | ciphertext + tag (16)

The associated data binds the blob to its key and to its encryption context (the context's pairs
sorted by key, as canonical JSON): a different context, a different key, or any changed byte
fails the tag. A key's own 256-bit material is stored wrapped by the KMS master key
(``<data-dir>/kms/master.key``, 0600), bound to the key id the same way.
"""

from __future__ import annotations

import json
import secrets
import uuid
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from minicloud.storage.keyfile import load_or_create_key

VERSION = 1
KEY_ID_BYTES = 36
NONCE = 12
TAG = 16
HEADER = 1 + KEY_ID_BYTES + NONCE
_BLOB_AAD = b"minicloud-kms-ciphertext:v1:"
_WRAP_AAD = b"minicloud-kms-key-material:v1:"


class MalformedCiphertext(ValueError):
    """Not a blob this KMS made (or one altered, or opened under the wrong key or context)."""


@dataclass(frozen=True, slots=True)
class Blob:
    key_id: str
    nonce: bytes
    sealed: bytes  # ciphertext + tag

    def to_bytes(self) -> bytes:
        return bytes([VERSION]) + self.key_id.encode("ascii") + self.nonce + self.sealed


def canonical_context(context: dict[str, str] | None) -> bytes:
    """The encryption context as the associated data: order-independent, empty == absent."""
    return json.dumps(sorted((context or {}).items()), separators=(",", ":")).encode()


def parse_blob(data: bytes) -> Blob:
    if len(data) < HEADER + TAG or data[0] != VERSION:
        raise MalformedCiphertext("not a minicloud KMS ciphertext")
    try:
        key_id = data[1:1 + KEY_ID_BYTES].decode("ascii")
        if str(uuid.UUID(key_id)) != key_id:
            raise ValueError(key_id)
    except (UnicodeDecodeError, ValueError):
        raise MalformedCiphertext("the ciphertext names no key") from None
    return Blob(key_id, data[1 + KEY_ID_BYTES:HEADER], data[HEADER:])


def _aad(key_id: str, context: dict[str, str] | None) -> bytes:
    return _BLOB_AAD + key_id.encode("ascii") + b":" + canonical_context(context)


def encrypt(material: bytes, key_id: str, plaintext: bytes, context: dict[str, str] | None) -> bytes:
    nonce = secrets.token_bytes(NONCE)
    sealed = AESGCM(material).encrypt(nonce, plaintext, _aad(key_id, context))
    return Blob(key_id, nonce, sealed).to_bytes()


def decrypt(material: bytes, blob: Blob, context: dict[str, str] | None) -> bytes:
    try:
        return AESGCM(material).decrypt(blob.nonce, blob.sealed, _aad(blob.key_id, context))
    except InvalidTag:
        raise MalformedCiphertext("the ciphertext does not open under its key and this context") from None


class MasterKey:
    """The KMS master key that wraps every key's material, created once (0600) in the data dir."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the KMS master key must be 32 bytes")
        self._aead = AESGCM(key)

    @classmethod
    def load_or_create(cls, path: Path) -> MasterKey:
        return cls(load_or_create_key(path))

    def wrap(self, key_id: str, material: bytes) -> bytes:
        nonce = secrets.token_bytes(NONCE)
        return nonce + self._aead.encrypt(nonce, material, _WRAP_AAD + key_id.encode("ascii"))

    def unwrap(self, key_id: str, wrapped: bytes) -> bytes:
        try:
            return self._aead.decrypt(wrapped[:NONCE], wrapped[NONCE:], _WRAP_AAD + key_id.encode("ascii"))
        except InvalidTag:
            raise MalformedCiphertext(f"the material of key {key_id} does not open under the master key") from None


def new_material() -> bytes:
    return secrets.token_bytes(32)
