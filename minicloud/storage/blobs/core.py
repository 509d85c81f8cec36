"""The content-addressed blob store: interfaces and the types they speak (after containerd's content.go).

A blob is immutable bytes named by their digest (``sha256:<hex>`` or ``sha512:<hex>``). Bytes come
in through an *ingest*: a named, resumable temporary file that is hashed while it is written. At
commit the ingest's size and digest are checked against what the caller expects, the file is
fsynced and renamed into place read-only; only then does the blob exist. A blob that already
exists makes a commit succeed ("already exists" is success).

    BlobError
     ├── BlobNotFound         no blob (or no ingest) by that name
     ├── InvalidDigest        not a well-formed digest of a supported algorithm
     ├── DigestMismatch       the bytes written do not hash to the expected digest
     ├── SizeMismatch         the bytes written are not as many as expected
     ├── OffsetMismatch       a write at an offset other than the ingest's current size
     └── NoReplicaAvailable   not enough healthy replicas to satisfy the write policy / a read
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

# Algorithms hashed while bytes stream in; others are computed at commit by reading the file again.
ALGORITHMS: dict[str, int] = {"sha256": 64, "sha512": 128}
_DIGEST = re.compile(r"^(sha256|sha512):([a-f0-9]+)$")
_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class BlobError(Exception):
    pass


class BlobNotFound(BlobError):
    pass


class InvalidDigest(BlobError):
    pass


class DigestMismatch(BlobError):
    pass


class SizeMismatch(BlobError):
    pass


class OffsetMismatch(BlobError):
    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


class NoReplicaAvailable(BlobError):
    pass


@dataclass(frozen=True, slots=True, order=True)
class Digest:
    algorithm: str
    hex: str

    @classmethod
    def parse(cls, text: str) -> Digest:
        match = _DIGEST.match(text)
        if match is None or len(match.group(2)) != ALGORITHMS[match.group(1)]:
            raise InvalidDigest(f"invalid digest: {text[:200]!r}")
        return cls(match.group(1), match.group(2))

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"


def check_ref(ref: str) -> str:
    """An ingest reference is a file name: letters, digits, '.', '_', '-'."""
    if not _REF.match(ref):
        raise ValueError(f"invalid ingest reference: {ref!r}")
    return ref


@dataclass(frozen=True, slots=True)
class BlobInfo:
    digest: Digest
    size: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class IngestStatus:
    ref: str
    offset: int
    started_at: datetime
    updated_at: datetime


class Ingest(Protocol):
    """An open ingest. Writes append at ``offset``; ``commit`` makes the blob, ``close`` keeps the
    bytes for a later resume, ``abort`` throws them away."""

    ref: str

    @property
    def offset(self) -> int: ...

    async def write(self, data: bytes) -> None: ...

    async def commit(self, expected: Digest, expected_size: int | None = None) -> BlobInfo: ...

    async def close(self) -> None: ...

    async def abort(self) -> None: ...


class BlobStore(Protocol):
    async def stat(self, digest: Digest) -> BlobInfo: ...

    async def read(self, digest: Digest, offset: int = 0, length: int | None = None,
                   chunk_size: int = ...) -> AsyncIterator[bytes]:
        """The bytes ``[offset, offset+length)`` of a blob in chunks (BlobNotFound if absent)."""
        ...

    async def delete(self, digest: Digest) -> None: ...

    def walk(self) -> AsyncIterator[BlobInfo]: ...

    async def ingest(self, ref: str) -> Ingest:
        """Open the ingest ``ref``, creating it or resuming it where it stopped."""
        ...

    async def ingest_status(self, ref: str) -> IngestStatus: ...

    async def abort_ingest(self, ref: str) -> None: ...

    def ingests(self) -> AsyncIterator[IngestStatus]: ...
