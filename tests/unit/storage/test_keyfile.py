"""The data directory's key files: made once, never seen half-written."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from minicloud.storage.keyfile import load_or_create_key


def test_a_key_is_made_once_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "kms" / "master.key"
    key = load_or_create_key(path)
    assert len(key) == 32 and load_or_create_key(path) == key
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["master.key"]


def test_threads_racing_the_first_start_all_read_the_one_whole_key(tmp_path: Path) -> None:
    # Before keys were linked into place whole, a racer could read the empty file another had
    # just created (CI: "the KMS master key must be 32 bytes").
    for attempt in range(40):
        path = tmp_path / str(attempt) / "master.key"
        keys = _race_for(path, racers=8)
        assert len(keys) == 8 and len(set(keys)) == 1 and len(keys[0]) == 32
        assert sorted(p.name for p in path.parent.iterdir()) == ["master.key"]


def _race_for(path: Path, racers: int) -> list[bytes]:
    start = threading.Barrier(racers)

    def race() -> bytes:
        start.wait()
        return load_or_create_key(path)

    with ThreadPoolExecutor(racers) as pool:
        return list(pool.map(lambda _: race(), range(racers)))


def test_a_short_key_file_is_refused_not_used(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    path.write_bytes(b"")  # what a crash mid-write left with the old code
    with pytest.raises(ValueError, match="0 bytes"):
        load_or_create_key(path)
    assert path.read_bytes() == b""  # never replaced: data may be sealed under the lost key
