"""Encryption at rest: AES-256-GCM in 64 KiB frames, each blob sealed with its own data key.

A sealed blob is self-describing::

    b"MCS3" version(1) reserved(3) | wrapped data key (nonce 12 + key 32 + tag 16) | frames

Frame ``i`` holds up to ``FRAME`` bytes of plaintext, encrypted with the data key under the
nonce ``i`` (12 bytes, big-endian) and the associated data ``i`` (8 bytes) + a last-frame flag,
followed by its 16-byte tag: a byte range decrypts by reading only the frames it touches, and a
frame moved, dropped or altered fails its tag. The data key is wrapped by a key-encryption key:
minicloud's master key for SSE-S3 (``<data-dir>/s3/master.key``, 0600), the customer's own key
for SSE-C (never stored; only an HMAC of it under the master key, to recognise it).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from minicloud.storage.keyfile import load_or_create_key

MAGIC = b"MCS3\x01\x00\x00\x00"
FRAME = 64 * 1024
TAG = 16
WRAPPED = 12 + 32 + TAG
HEADER = len(MAGIC) + WRAPPED
_WRAP_AAD = b"minicloud-s3-data-key"

__all__ = [
    "FRAME",
    "HEADER",
    "TAG",
    "InvalidTag",
    "MasterKey",
    "Sealer",
    "frame_span",
    "open_frames",
    "open_frames_into",
    "sealed_size",
]


class MasterKey:
    """minicloud's key-encryption key for SSE-S3, created once (0600) in the data directory."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the S3 master key must be 32 bytes")
        self.key = key

    @classmethod
    def load_or_create(cls, path: Path) -> MasterKey:
        return cls(load_or_create_key(path))

    def fingerprint(self, customer_key: bytes) -> str:
        """What is stored of an SSE-C key: an HMAC under the master key (the key itself never is)."""
        return base64.b64encode(hmac.new(self.key, b"sse-c:" + customer_key, hashlib.sha256).digest()).decode()


@functools.lru_cache(maxsize=1024)
def aead(key: bytes) -> AESGCM:
    """The AES-GCM context of a key (the master key, the data keys of recently read blobs): setting
    a key up costs more than opening a small object with it."""
    return AESGCM(key)


@functools.lru_cache(maxsize=1024)
def _unwrapped(kek: bytes, wrapped: bytes) -> bytes:
    return aead(kek).decrypt(wrapped[:12], wrapped[12:], _WRAP_AAD)  # InvalidTag is not cached


def wrap(kek: bytes, data_key: bytes) -> bytes:
    nonce = secrets.token_bytes(12)
    return nonce + aead(kek).encrypt(nonce, data_key, _WRAP_AAD)


def unwrap(kek: bytes, header: bytes) -> bytes:
    """The data key of a sealed blob from its header; InvalidTag if ``kek`` is not the right key."""
    if len(header) < HEADER or not header.startswith(MAGIC[:5]):
        raise InvalidTag()
    return _unwrapped(kek, bytes(header[len(MAGIC):HEADER]))


def _nonce(index: int) -> bytes:
    return index.to_bytes(12, "big")


def _aad(index: int, last: bool) -> bytes:
    return index.to_bytes(8, "big") + (b"\x01" if last else b"\x00")


def sealed_size(plain_size: int) -> int:
    frames = -(-plain_size // FRAME)
    return HEADER + plain_size + frames * TAG


def frame_span(plain_size: int, start: int, end: int) -> tuple[int, int, int]:
    """For plaintext [start, end): the first frame, the number of frames and the file offset of
    the first frame."""
    first = start // FRAME
    last = (end - 1) // FRAME
    del plain_size
    return first, last - first + 1, HEADER + first * (FRAME + TAG)


class Sealer:
    """Encrypts a stream of plaintext into a sealed blob, frame by frame."""

    def __init__(self, kek: bytes) -> None:
        self._key = secrets.token_bytes(32)
        self._aead = AESGCM(self._key)
        self._index = 0
        self._pending = bytearray()
        self.header = MAGIC + wrap(kek, self._key)

    def _seal(self, data: bytes, last: bool) -> bytes:
        out = self._aead.encrypt(_nonce(self._index), data, _aad(self._index, last))
        self._index += 1
        return out

    def sealed_bytes(self, more: int) -> int:
        """How many bytes ``feed`` gives out for ``more`` bytes of plaintext."""
        total = len(self._pending) + more
        return ((total - 1) // FRAME if total else 0) * (FRAME + TAG)

    def feed(self, data: bytes | bytearray | memoryview) -> bytearray:
        """Sealed frames for the plaintext so far (the newest full frame is held back until it is
        known whether it is the last)."""
        out = bytearray(self.sealed_bytes(len(data)))
        self.feed_into(data, out)
        return out

    def feed_into(self, data: bytes | bytearray | memoryview, out: bytearray) -> None:
        """``feed`` into ``out`` (exactly ``sealed_bytes(len(data))`` long)."""
        self.feed_into_many([data], out)

    def feed_into_many(self, chunks: Sequence[bytes | bytearray | memoryview], out: bytearray) -> None:
        """``feed`` of the chunks in turn, into ``out`` (exactly ``sealed_bytes`` of their total
        length): a frame that lies within one chunk is encrypted straight from it; only frames
        that straddle chunks are gathered (in ``_pending``) first."""
        views = [memoryview(c).cast("B") for c in chunks]
        frames = len(out) // (FRAME + TAG)
        if len(out) != self.sealed_bytes(sum(len(v) for v in views)):
            raise ValueError("the output buffer is not the size of the sealed frames")
        target = memoryview(out)
        sealed = 0
        for view in views:
            pos = 0
            while pos < len(view) and sealed < frames:
                slot = target[sealed * (FRAME + TAG):(sealed + 1) * (FRAME + TAG)]
                if not self._pending and len(view) - pos >= FRAME:
                    self._seal_into(view[pos:pos + FRAME], False, slot)
                    pos += FRAME
                    sealed += 1
                    continue
                take = min(FRAME - len(self._pending), len(view) - pos)
                self._pending += view[pos:pos + take]
                pos += take
                if len(self._pending) == FRAME:
                    self._seal_into(self._pending, False, slot)
                    self._pending = bytearray()
                    sealed += 1
            if pos < len(view):
                self._pending += view[pos:]

    def _seal_into(self, plain: bytes | bytearray | memoryview, last: bool, target: memoryview) -> None:
        self._aead.encrypt_into(_nonce(self._index), plain, _aad(self._index, last), target)
        self._index += 1

    def finish(self) -> bytes:
        if not self._pending:
            return b""
        out = self._seal(bytes(self._pending), True)
        self._pending.clear()
        return out

    def seal_all(self, data: bytes) -> bytes:
        return b"".join((self.header, self.feed(data), self.finish()))


def open_frames(data_key: bytes, sealed: bytes, first: int, plain_size: int) -> bytes:
    """Decrypt consecutive frames starting at frame ``first`` (InvalidTag if any was altered)."""
    context = aead(data_key)
    frames = -(-plain_size // FRAME)
    if 0 < len(sealed) <= FRAME + TAG:  # one frame (every small object): decrypted without copies
        return context.decrypt(_nonce(first), sealed, _aad(first, first == frames - 1))
    out = bytearray()
    offset, index = 0, first
    while offset < len(sealed):
        chunk = sealed[offset:offset + FRAME + TAG]
        out += context.decrypt(_nonce(index), chunk, _aad(index, index == frames - 1))
        offset += len(chunk)
        index += 1
    return bytes(out)


def open_frames_into(data_key: AESGCM, sealed: memoryview, first: int, plain_size: int, out: memoryview) -> int:
    """``open_frames`` without copies: decrypt the frames in ``sealed`` (frame ``first`` onwards)
    into ``out``; the number of plaintext bytes written (InvalidTag if any frame was altered)."""
    frames = -(-plain_size // FRAME)
    offset, written, index = 0, 0, first
    while offset < len(sealed):
        chunk = sealed[offset:offset + FRAME + TAG]
        if len(chunk) <= TAG:
            raise InvalidTag()
        size = len(chunk) - TAG
        data_key.decrypt_into(_nonce(index), chunk, _aad(index, index == frames - 1), out[written:written + size])
        offset += len(chunk)
        written += size
        index += 1
    return written
