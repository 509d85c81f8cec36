"""A file replaced whole, also by writers that overlap."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from minicloud.storage.durable import replace_file


def test_a_file_is_replaced_whole_and_no_temporary_file_stays(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    replace_file(path, b"first")
    replace_file(path, b"second", durable=False)
    assert path.read_bytes() == b"second"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_overlapping_writers_each_replace_the_file_whole(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    racers = 8
    bodies = [bytes([65 + i]) * (1 + i * 50_000) for i in range(racers)]
    for _ in range(20):
        start = threading.Barrier(racers)

        def write(body: bytes, start: threading.Barrier = start) -> None:
            start.wait()
            replace_file(path, body, durable=False)

        with ThreadPoolExecutor(racers) as pool:
            list(pool.map(write, bodies))
        assert path.read_bytes() in bodies
        assert [p.name for p in tmp_path.iterdir()] == ["state.json"]
