"""A container's record (``container.json``) is rewritten whole, also by saves that overlap: the
engine saves from worker threads (an exit, a health status, ``docker update``, a network
connect), and two of them can run at once."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from minicloud.engine.containers.model import Container, ContainerFiles, new_id


def _container(cid: str, padding: int) -> Container:
    return Container(id=cid, name="racer", created="2026-01-01T00:00:00Z", image_id="sha256:" + "0" * 64,
                     image_name="busybox", config={"Labels": {"pad": "x" * padding}}, host_config={})


def test_overlapping_saves_leave_one_whole_record(tmp_path: Path) -> None:
    # Before, every save wrote the same ``container.tmp``: overlapping saves wrote into one file
    # (a shorter document over a longer one left the longer one's tail: an unreadable record, and
    # the container was skipped at the next start) and the later rename found no file
    # (FileNotFoundError, a failed ``docker update`` or exit).
    cid = new_id()
    files = ContainerFiles(tmp_path, cid)
    files.dir.mkdir()
    racers = 8
    for attempt in range(30):
        start = threading.Barrier(racers)
        sizes = [1 + (i * 7919 + attempt) % 20000 for i in range(racers)]

        def save(size: int, start: threading.Barrier = start) -> None:
            start.wait()
            files.save(_container(cid, size), durable=False)

        with ThreadPoolExecutor(racers) as pool:
            list(pool.map(save, sizes))
        doc = json.loads(files.record.read_text())
        assert doc["id"] == cid
        assert sorted(p.name for p in files.dir.iterdir()) == ["container.json"]


def test_the_later_of_two_overlapping_saves_is_what_stays(tmp_path: Path) -> None:
    cid = new_id()
    files = ContainerFiles(tmp_path, cid)
    files.dir.mkdir()
    container = _container(cid, 10)
    files.save(container)
    container.restart_count = 7
    files.save(container, durable=False)
    assert Container.from_json(json.loads(files.record.read_text())).restart_count == 7


def test_a_record_taken_earlier_but_written_later_does_not_replace_the_newer_one(tmp_path: Path) -> None:
    # Saves go to worker threads and finish in any order; the record is taken on the event loop
    # (a thread serialising a container while the loop changed it could fail or mix states).
    cid = new_id()
    files = ContainerFiles(tmp_path, cid)
    files.dir.mkdir()
    container = _container(cid, 10)
    older = files.take(container)
    container.restart_count = 3
    newer = files.take(container)
    container.restart_count = 99  # changed after both were taken: written by neither
    files.write(newer, durable=False)
    files.write(older, durable=True)
    assert Container.from_json(json.loads(files.record.read_text())).restart_count == 3


def test_a_save_under_way_does_not_bring_back_a_removed_container(tmp_path: Path) -> None:
    cid = new_id()
    files = ContainerFiles(tmp_path, cid)
    files.dir.mkdir()
    container = _container(cid, 10)
    files.save(container)
    late = files.take(container)  # an exit's save, say, still in its worker thread
    files.retire()  # docker rm
    files.write(late)
    assert not files.record.exists() and files.removed.exists()
    files.forget()
