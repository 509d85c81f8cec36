"""The small-blob writer process (``minicloud.storage.blobs.writerproc``) killed with -9 while
small objects are being uploaded: the copies it held fail (a 503 at worst, nothing committed),
a new writer takes over, and every acknowledged object reads back whole."""

from __future__ import annotations

import hashlib
import os
import signal
import threading
import time
import uuid
from pathlib import Path

from tests.support.server import MinicloudServer


def _writer_pids(server_pid: int) -> list[int]:
    """The writer processes among the server's children."""
    found = []
    for task in Path(f"/proc/{server_pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            except OSError:
                continue
            if b"minicloud.storage.blobs.writerproc" in cmdline:
                found.append(int(child))
    return found


def test_a_killed_writer_process_loses_no_acknowledged_object(tmp_path: Path) -> None:
    # Without S3 workers: the server's writer is then a process of its own (with a worker, the worker
    # hosts it: tests/integration/test_s3_shared_writer.py kills that one).
    server = MinicloudServer(tmp_path / "data", env={"MINICLOUD_S3_WORKERS": "0"}).start()
    try:
        _kill_the_writer_under_load(server)
    finally:
        server.stop()


def _kill_the_writer_under_load(server: MinicloudServer) -> None:
    s3 = server.client("s3")
    bucket = f"writer-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    acked: dict[str, str] = {}
    failures: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def upload(index: int) -> None:
        client = server.client("s3")
        for round_ in range(100_000):
            if stop.is_set():
                return
            key = f"obj-{index}-{round_}"
            data = os.urandom(4096 + round_ % 97)
            storage_class = "ONEZONE_IA" if index % 2 else "STANDARD"
            try:
                client.put_object(Bucket=bucket, Key=key, Body=data, StorageClass=storage_class)
            except Exception as exc:  # a copy lost with the writer: refused, never half-stored
                with lock:
                    failures.append(f"{key}: {exc}")
                continue
            with lock:
                acked[key] = hashlib.sha256(data).hexdigest()

    threads = [threading.Thread(target=upload, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 60
        while len(acked) < 40 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.process is not None
        writers = _writer_pids(server.process.pid)
        assert len(writers) == 1, writers
        os.kill(writers[0], signal.SIGKILL)
        before = len(acked)
        deadline = time.monotonic() + 60
        while len(acked) < before + 40 and time.monotonic() < deadline:  # a new writer takes over
            time.sleep(0.02)
        assert len(acked) >= before + 40, "uploads did not resume after the writer was killed"
        new_writers = _writer_pids(server.process.pid)
        assert len(new_writers) == 1 and new_writers != writers
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    listed = {o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
              for o in page.get("Contents", [])}
    assert set(acked) <= listed
    for key in listed:  # every visible object reads back whole (reads verify digests and tags)
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        if key in acked:
            assert hashlib.sha256(body).hexdigest() == acked[key], key
