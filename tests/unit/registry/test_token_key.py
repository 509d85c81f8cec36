"""The registry's token signing key: made once, and every reader gets that one whole key."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from minicloud.registry.auth import load_key


def test_the_key_is_made_once_and_read_back(tmp_path: Path) -> None:
    key = load_key(tmp_path)
    assert len(key) == 32 and load_key(tmp_path) == key
    path = tmp_path / "registry" / "token.key"
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["token.key"]


def test_threads_racing_the_first_start_all_read_the_one_whole_key(tmp_path: Path) -> None:
    # Before, racers of one process shared the temporary file (named by the pid) and truncated it
    # under each other: a racer could link or read it empty or with another racer's key, so that
    # tokens one signed, another could not verify.
    racers = 8
    for attempt in range(40):
        data_dir = tmp_path / str(attempt)
        start = threading.Barrier(racers)

        def race(_: int, start: threading.Barrier = start, data_dir: Path = data_dir) -> bytes:
            start.wait()
            return load_key(data_dir)

        with ThreadPoolExecutor(racers) as pool:
            keys = list(pool.map(race, range(racers)))
        assert len(set(keys)) == 1 and len(keys[0]) == 32, keys
        assert (data_dir / "registry" / "token.key").read_bytes() == keys[0]
        assert sorted(p.name for p in (data_dir / "registry").iterdir()) == ["token.key"]
