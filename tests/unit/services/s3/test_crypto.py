"""The frame format of encrypted blobs: round trips, ranges, tampering, wrong keys, the master key file."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from minicloud.services.s3 import crypto


def seal(plain: bytes, kek: bytes, pieces: int = 7) -> bytes:
    sealer = crypto.Sealer(kek)
    out = bytearray(sealer.header)
    step = max(1, len(plain) // pieces)
    for start in range(0, len(plain), step):
        out += sealer.feed(plain[start:start + step])
    out += sealer.finish()
    return bytes(out)


def open_range(sealed: bytes, kek: bytes, size: int, start: int, end: int) -> bytes:
    data_key = crypto.unwrap(kek, sealed[:crypto.HEADER])
    first, count, offset = crypto.frame_span(size, start, end)
    chunk = sealed[offset:offset + count * (crypto.FRAME + crypto.TAG)]
    plain = crypto.open_frames(data_key, chunk, first, size)
    skip = start - first * crypto.FRAME
    return plain[skip:skip + end - start]


@pytest.mark.parametrize("size", [0, 1, crypto.FRAME - 1, crypto.FRAME, crypto.FRAME + 1, 5 * crypto.FRAME + 123])
def test_round_trip_and_size(size: int) -> None:
    kek = os.urandom(32)
    plain = os.urandom(size)
    sealed = seal(plain, kek)
    assert len(sealed) == crypto.sealed_size(size)
    assert crypto.Sealer(kek).seal_all(plain) != sealed  # a fresh data key every time
    if size:
        assert open_range(sealed, kek, size, 0, size) == plain
        assert size < 16 or plain[:16] not in sealed


def test_ranges() -> None:
    kek = os.urandom(32)
    size = 3 * crypto.FRAME + 500
    plain = os.urandom(size)
    sealed = seal(plain, kek)
    for start, end in [(0, 1), (crypto.FRAME - 1, crypto.FRAME + 1), (10, size), (size - 1, size),
                       (crypto.FRAME * 2, crypto.FRAME * 3)]:
        assert open_range(sealed, kek, size, start, end) == plain[start:end]


def test_tampering_and_wrong_keys_fail() -> None:
    kek = os.urandom(32)
    size = 2 * crypto.FRAME + 10
    sealed = bytearray(seal(os.urandom(size), kek))
    with pytest.raises(crypto.InvalidTag):
        crypto.unwrap(os.urandom(32), bytes(sealed[:crypto.HEADER]))
    sealed[crypto.HEADER + 5] ^= 1
    with pytest.raises(crypto.InvalidTag):
        open_range(bytes(sealed), kek, size, 0, 10)
    intact = seal(os.urandom(size), kek)
    frames = intact[crypto.HEADER:]
    swapped = intact[:crypto.HEADER] + frames[crypto.FRAME + crypto.TAG:2 * (crypto.FRAME + crypto.TAG)] + \
        frames[:crypto.FRAME + crypto.TAG] + frames[2 * (crypto.FRAME + crypto.TAG):]
    with pytest.raises(crypto.InvalidTag):  # frames carry their position
        open_range(swapped, kek, size, 0, 10)
    truncated = intact[:crypto.HEADER + crypto.FRAME + crypto.TAG]
    with pytest.raises(crypto.InvalidTag):  # the last frame must say it is last
        crypto.open_frames(crypto.unwrap(kek, intact[:crypto.HEADER]), truncated[crypto.HEADER:], 0,
                           crypto.FRAME)


def test_master_key_file(tmp_path: Path) -> None:
    path = tmp_path / "s3" / "master.key"
    first = crypto.MasterKey.load_or_create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and len(path.read_bytes()) == 32
    assert crypto.MasterKey.load_or_create(path).key == first.key
    key = os.urandom(32)
    assert first.fingerprint(key) == first.fingerprint(key) != first.fingerprint(os.urandom(32))
    assert key not in first.fingerprint(key).encode()


@pytest.mark.parametrize("seed", range(6))
def test_sealing_chunk_lists_of_any_shape_matches_sealing_at_once(seed: int) -> None:
    """Frames straddling chunks, chunks shorter than a frame, a frame exactly at the end: the
    streamed blob opens to the same plaintext as one sealed in one go, frame for frame."""
    import random

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    rng = random.Random(seed)
    kek = os.urandom(32)
    size = rng.choice([0, 1, crypto.FRAME, 5 * crypto.FRAME, 3 * crypto.FRAME + 17, 2_000_000])
    data = os.urandom(size)
    sealer = crypto.Sealer(kek)
    out = bytearray(sealer.header)
    at = 0
    while at < size:
        chunks = []
        for _ in range(rng.choice([1, 3, 40])):
            n = min(rng.choice([1, 999, crypto.FRAME - 1, crypto.FRAME, crypto.FRAME + 1, 300_000]), size - at)
            chunks.append(data[at:at + n])
            at += n
        target = bytearray(sealer.sealed_bytes(sum(len(c) for c in chunks)))
        sealer.feed_into_many(chunks, target)
        out += target
    out += sealer.finish()
    assert len(out) == crypto.sealed_size(size)
    key = crypto.unwrap(kek, bytes(out[:crypto.HEADER]))
    assert crypto.open_frames(key, bytes(out[crypto.HEADER:]), 0, size) == data
    plain = bytearray(size)
    assert crypto.open_frames_into(AESGCM(key), memoryview(out)[crypto.HEADER:], 0, size, memoryview(plain)) == size
    assert plain == data
