"""Reads of unencrypted objects larger than ``VERIFY_BEFORE_SENDING`` through ``ObjectData.read``:
the next chunk read and hashed while one is sent, a whole blob's last chunk held back until its
digest matched, byte ranges across chunks and parts, a corrupt or short copy cutting the response
short and repaired, no file left open."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from minicloud.services.s3 import data
from minicloud.services.s3.data import CorruptBlob, ObjectData
from minicloud.storage.blobs import Digest

MiB = 1 << 20
SIZES = (MiB + 70_001, MiB + 5)  # staged through ingests (more than data.SMALL)


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of 100,000 bytes, blobs over 200,000 bytes verified as they stream: a few MiB make many chunks."""
    monkeypatch.setattr(data, "CHUNK", 100_000)
    monkeypatch.setattr(data, "VERIFY_BEFORE_SENDING", 200_000)


async def _stage(objects: ObjectData, body: bytes) -> str:
    async def chunks() -> AsyncIterator[bytes]:
        yield body
    staged = await objects.stage(chunks(), "STANDARD", checksums=set(), limit=1 << 30)
    await staged.commit()
    return staged.digest


def _object(objects: ObjectData) -> tuple[bytes, list[tuple[str, int]]]:
    rng = random.Random(5)
    parts = [rng.randbytes(size) for size in SIZES]
    segments = [(asyncio.run(_stage(objects, part)), len(part)) for part in parts]
    deadline = time.monotonic() + 10
    while not all(r.path(Digest.parse(d)).exists() for d, _ in segments for r in objects.replicas):
        assert time.monotonic() < deadline, "the third copies were not written"
        time.sleep(0.01)
    return b"".join(parts), segments


def _read(objects: ObjectData, segments: list[tuple[str, int]], start: int, end: int,
          got: bytearray | None = None) -> bytes:
    received = bytearray() if got is None else got

    async def read() -> None:
        async for chunk in objects.read(segments, start, end):
            received.extend(chunk)
    asyncio.run(read())
    return bytes(received)


def _open_blobs(root: Path) -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        count += target.startswith(str(root)) and "/sha256/" in target
    return count


def _intact(path: Path) -> bool:
    return hashlib.sha256(path.read_bytes()).hexdigest() == path.name


def test_whole_objects_and_ranges(store: ObjectData) -> None:
    body, segments = _object(store)
    assert _read(store, segments, 0, len(body)) == body
    first = SIZES[0]
    spans = [(0, 1), (len(body) - 1, len(body)), (first - 3, first + 3), (99_999, 100_001), (1, len(body) - 1),
             (first, len(body)), (0, first), (250_000, first + 250_000)]
    for start, end in spans:
        assert _read(store, segments, start, end) == body[start:end], (start, end)
    assert _open_blobs(store.replicas[0].root.parent) == 0
    assert not any(store.reading(digest) for digest, _ in segments)


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_a_bad_copy_cuts_a_whole_read_short_and_is_repaired(store: ObjectData, damage: str) -> None:
    body, segments = _object(store)
    copy = store.replicas[0].path(Digest.parse(segments[1][0]))  # the copy the read takes
    blob = bytearray(copy.read_bytes())
    copy.chmod(0o600)
    if damage == "flip":
        blob[500_000] ^= 0xFF
    else:
        del blob[-10:]
    copy.write_bytes(bytes(blob))
    got = bytearray()
    with pytest.raises(CorruptBlob):
        _read(store, segments, 0, len(body), got)
    assert len(got) < len(body) and len(got) >= SIZES[0]  # the first part went out, not the bad one's end
    if damage == "truncate":
        assert body.startswith(bytes(got))
    assert _intact(copy)  # repaired from another zone
    assert _read(store, segments, 0, len(body)) == body
    assert _open_blobs(store.replicas[0].root.parent) == 0


def test_an_abandoned_read_closes_its_file(store: ObjectData) -> None:
    body, segments = _object(store)

    async def first_chunk() -> bytes:
        stream = store.read(segments, 0, len(body))
        chunk = bytes(await anext(stream))
        assert _open_blobs(store.replicas[0].root.parent) == 1
        await stream.aclose()  # type: ignore[attr-defined]
        return chunk
    chunk = asyncio.run(first_chunk())
    assert chunk and body.startswith(chunk)
    assert _open_blobs(store.replicas[0].root.parent) == 0
    assert not any(store.reading(digest) for digest, _ in segments)
