"""Reads of sealed (SSE) objects through ``ObjectData.read_sealed``: several batches read and
decrypted ahead of the one being sent, across the segments of a multipart object; byte ranges; a
corrupt or missing copy met in the middle of a read served from another replica and repaired; no
file left open, whether a read ends, fails or is abandoned."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from minicloud.services.s3 import crypto, sealed
from minicloud.services.s3.crypto import Sealer
from minicloud.services.s3.data import ObjectData
from minicloud.storage.blobs import Digest
from minicloud.storage.blobs.core import BlobNotFound

KEK = hashlib.sha256(b"test key-encryption key").digest()
MiB = 1 << 20
# More than data.SMALL each (so each is staged through an ingest), not multiples of a frame.
SIZES = (MiB + 5 * crypto.FRAME + 123, MiB + 70_000, MiB + crypto.FRAME)


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches of 3 frames, 3 ahead: a few MiB make dozens of batches, several in flight at once."""
    monkeypatch.setattr(sealed, "BATCH", 3)
    monkeypatch.setattr(sealed, "DEPTH", 3)


async def _stage(objects: ObjectData, body: bytes) -> str:
    async def chunks() -> AsyncIterator[bytes]:
        yield body
    staged = await objects.stage(chunks(), "STANDARD", checksums=set(), limit=1 << 30, sealer=Sealer(KEK))
    await staged.commit()
    return staged.digest


def _object(objects: ObjectData) -> tuple[bytes, list[tuple[str, int]]]:
    """A three-part object, each part a sealed blob with a copy in every zone."""
    rng = random.Random(7)
    parts = [rng.randbytes(size) for size in SIZES]
    segments = [(asyncio.run(_stage(objects, part)), len(part)) for part in parts]
    deadline = time.monotonic() + 10
    while not all(r.path(Digest.parse(d)).exists() for d, _ in segments for r in objects.replicas):
        assert time.monotonic() < deadline, "the third copies were not written"
        time.sleep(0.01)
    return b"".join(parts), segments


def _read(objects: ObjectData, segments: list[tuple[str, int]], start: int, end: int) -> bytes:
    async def read() -> bytes:
        return b"".join([bytes(chunk) async for chunk in objects.read_sealed(segments, start, end, KEK)])
    return asyncio.run(read())


def _open_files(root: Path) -> int:
    """Blob files open in this process under ``root`` (not the zones' small-object packs)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target.startswith(str(root)) and "/sha256/" in target:
                count += 1
        except OSError:
            continue
    return count


def _corrupt(path: Path, offset: int) -> None:
    blob = bytearray(path.read_bytes())
    blob[offset] ^= 0xFF
    path.chmod(0o600)
    path.write_bytes(bytes(blob))


def _intact(path: Path) -> bool:
    return hashlib.sha256(path.read_bytes()).hexdigest() == path.name


def test_whole_objects_and_ranges_across_batches_and_parts(store: ObjectData, small_batches: None) -> None:
    body, segments = _object(store)
    assert _read(store, segments, 0, len(body)) == body
    first, second = SIZES[0], SIZES[0] + SIZES[1]
    frame = crypto.FRAME
    spans = [(0, 1), (len(body) - 1, len(body)), (first - 5, first + 5), (second - 1, second + 1),
             (first - 1, second + 1), (3 * frame - 1, 6 * frame + 1), (frame, 4 * frame), (1, len(body) - 1),
             (first, second), (10 * frame + 17, first + 9 * frame)]
    rng = random.Random(11)
    spans += [tuple(sorted(rng.sample(range(len(body) + 1), 2))) for _ in range(20)]  # type: ignore[misc]
    for start, end in spans:
        assert _read(store, segments, start, end) == body[start:end], (start, end)
    assert _open_files(store.replicas[0].root.parent) == 0
    assert not any(store.reading(digest) for digest, _ in segments)


def test_a_corrupt_frame_mid_read_is_served_from_another_copy_and_repaired(store: ObjectData,
                                                                           small_batches: None) -> None:
    body, segments = _object(store)
    middle = Digest.parse(segments[1][0])
    first_copy = store.replicas[0].path(middle)  # the copy a read takes first
    _corrupt(first_copy, crypto.HEADER + 7 * (crypto.FRAME + crypto.TAG) + 100)  # the 8th frame of part 2
    assert not _intact(first_copy)
    assert _read(store, segments, 0, len(body)) == body
    assert _intact(first_copy)  # repaired from a copy that verifies
    assert _open_files(store.replicas[0].root.parent) == 0


def test_missing_and_short_copies_are_read_from_another_zone(store: ObjectData, small_batches: None) -> None:
    body, segments = _object(store)
    last = Digest.parse(segments[2][0])
    store.replicas[0].path(last).unlink()
    start = SIZES[0] + 1000
    assert _read(store, segments, start, len(body)) == body[start:]
    short = store.replicas[0].path(Digest.parse(segments[0][0]))
    blob = short.read_bytes()
    short.chmod(0o600)
    short.write_bytes(blob[:-1000])  # the end of its last frame is gone
    assert _read(store, segments, 0, len(body)) == body
    assert _intact(short)  # repaired


def test_a_part_with_no_good_copy_cuts_the_read_short(store: ObjectData, small_batches: None) -> None:
    body, segments = _object(store)
    middle = Digest.parse(segments[1][0])
    for replica in store.replicas:
        _corrupt(replica.path(middle), crypto.HEADER + 2 * (crypto.FRAME + crypto.TAG) + 5)
    got = bytearray()

    async def read() -> None:
        async for chunk in store.read_sealed(segments, 0, len(body), KEK):
            got.extend(chunk)
    with pytest.raises(BlobNotFound):
        asyncio.run(read())
    assert len(got) <= SIZES[0] + 2 * crypto.FRAME and body.startswith(bytes(got))  # nothing past the bad frame
    assert _open_files(store.replicas[0].root.parent) == 0
    assert not any(store.reading(digest) for digest, _ in segments)


def test_an_abandoned_read_closes_its_files_and_stops_counting(store: ObjectData, small_batches: None) -> None:
    body, segments = _object(store)

    async def first_chunk() -> bytes:
        stream = store.read_sealed(segments, 0, len(body), KEK)
        chunk = bytes(await anext(stream))
        assert all(store.reading(digest) for digest, _ in segments)  # the read counts every part it will send
        assert _open_files(store.replicas[0].root.parent) > 0
        await stream.aclose()
        return chunk
    chunk = asyncio.run(first_chunk())
    assert chunk == body[:len(chunk)] and chunk
    assert _open_files(store.replicas[0].root.parent) == 0
    assert not any(store.reading(digest) for digest, _ in segments)


def test_default_batches_read_a_large_range(store: ObjectData) -> None:
    body, segments = _object(store)
    assert _read(store, segments, 100, len(body) - 100) == body[100:-100]


def _read_by_thread(objects: ObjectData, segments: list[tuple[str, int]], start: int, end: int,
                    then_async_after: int | None = None) -> bytes:
    """The range read with ``read_next`` (as the server's sender pump does, on a thread, into one
    reused buffer); after ``then_async_after`` pieces the rest is read with ``async for``."""
    async def read() -> bytes:
        body = objects.read_sealed(segments, start, end, KEK)
        buffer = memoryview(bytearray(body.buffer_size))
        got, pieces = bytearray(), 0
        try:
            while then_async_after is None or pieces < then_async_after:
                piece = await asyncio.to_thread(body.read_next, buffer)
                if piece is None:
                    return bytes(got)
                got += piece
                pieces += 1
            async for chunk in body:
                got += chunk
            return bytes(got)
        finally:
            await body.aclose()
    return asyncio.run(read())


def test_a_thread_reads_whole_objects_and_ranges_then_the_loop_goes_on(store: ObjectData) -> None:
    body, segments = _object(store)
    first = SIZES[0]
    for start, end in [(0, len(body)), (1, len(body) - 1), (first - 5, first + 5), (crypto.FRAME + 3, first + 70_000)]:
        assert _read_by_thread(store, segments, start, end) == body[start:end], (start, end)
        assert _read_by_thread(store, segments, start, end, then_async_after=1) == body[start:end], (start, end)
    assert _open_files(store.replicas[0].root.parent) == 0
    assert not any(store.reading(digest) for digest, _ in segments)


def test_a_thread_meeting_a_corrupt_copy_reads_another_and_repairs_it(store: ObjectData) -> None:
    body, segments = _object(store)
    middle = Digest.parse(segments[1][0])
    first_copy = store.replicas[0].path(middle)
    _corrupt(first_copy, crypto.HEADER + 9 * (crypto.FRAME + crypto.TAG) + 1)
    assert _read_by_thread(store, segments, 0, len(body)) == body
    assert _intact(first_copy)
    assert _open_files(store.replicas[0].root.parent) == 0


def test_a_body_dropped_unread_stops_counting(store: ObjectData) -> None:
    body, segments = _object(store)

    async def drop() -> None:
        unread = store.read_sealed(segments, 0, len(body), KEK)
        assert all(store.reading(digest) for digest, _ in segments)
        del unread  # (an error answered after the body was made, say)
    asyncio.run(drop())
    assert not any(store.reading(digest) for digest, _ in segments)
    assert _open_files(store.replicas[0].root.parent) == 0
