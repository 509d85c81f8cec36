"""One small-blob writer (``storage.blobs.writerproc``) per ``minicloud up``, shared by the server
and its S3 worker and hosted by the worker on a thread: small PUTs answered by either process go
through it, no writer process runs beside them, and when the worker that hosts it is killed with
-9 under load the copies it held fail (a 503 at worst, nothing half-stored), the server starts a
writer process of its own, and uploads go on.

Driven with real clients (boto3, raw HTTP/1.1 keep-alive connections with presigned URLs) against
a real server with one S3 worker. Which process serves a connection is read from the kernel; a
connection reaches the worker only when it starts with a read (``server.workers.PrimarySwitch``).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import signal
import threading
import time
import urllib.parse
from collections.abc import Iterator

import pytest

from tests.support.processes import parent, s3_workers, serving_pid, small_writers
from tests.support.server import MinicloudServer


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MinicloudServer]:
    server = MinicloudServer(tmp_path_factory.mktemp("shared-writer"),
                             env={"MINICLOUD_S3_WORKERS": "1", "MINICLOUD_ENGINE": "false"})
    server.start()
    yield server
    server.stop()


def _put_through_both_processes(srv: MinicloudServer, bucket: str, prefix: str) -> dict[str, bytes]:
    """Small PUTs on keep-alive connections, each opened with a signed GET (so that some land on the
    worker), until both the server and its worker answered some."""
    s3 = srv.client("s3")
    assert srv.process is not None
    wanted = {srv.process.pid, *s3_workers(srv)}
    assert len(wanted) == 2
    served: set[int | None] = set()
    stored: dict[str, bytes] = {}
    for attempt in range(8):
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
        url = urllib.parse.urlsplit(s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "none"}))
        conn.request("GET", f"{url.path}?{url.query}")
        response = conn.getresponse()
        assert response.status == 404, response.read()
        response.read()
        for index in range(5):
            key, body = f"{prefix}-{attempt}-{index}", os.urandom(4096)
            url = urllib.parse.urlsplit(s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": key}))
            conn.request("PUT", f"{url.path}?{url.query}", body=body)
            response = conn.getresponse()
            assert (response.status, response.read()) == (200, b""), key
            stored[key] = body
        served.add(serving_pid(srv, conn))
        conn.close()
        if wanted <= served:
            return stored
    pytest.fail(f"the PUTs reached {served}, not both of {wanted}")


def test_one_writer_hosted_by_the_worker_serves_both_processes(srv: MinicloudServer) -> None:
    s3 = srv.client("s3")
    s3.create_bucket(Bucket="one-writer")
    stored = _put_through_both_processes(srv, "one-writer", "small")
    assert small_writers(srv) == []  # no writer process: the worker hosts it
    (worker,) = s3_workers(srv)
    assert srv.process is not None and parent(worker) == srv.process.pid
    for key, body in stored.items():
        assert s3.get_object(Bucket="one-writer", Key=key)["Body"].read() == body


def test_concurrent_conditional_puts_store_exactly_one_object(srv: MinicloudServer) -> None:
    """The writer commits the rows of small PUTs itself, many in one transaction: of 16 PUTs with
    If-None-Match: * racing for one key, one wins and the others get 412 (a row whose condition
    fails there is rolled back alone and refused by the server that took the request)."""
    s3 = srv.client("s3")
    bucket = "conditional-race"
    s3.create_bucket(Bucket=bucket)
    bodies = [os.urandom(4096) for _ in range(16)]
    urls = [urllib.parse.urlsplit(s3.generate_presigned_url(
        "put_object", Params={"Bucket": bucket, "Key": "once"}, ExpiresIn=600)) for _ in bodies]
    start = threading.Barrier(len(bodies))
    statuses: list[tuple[int, bytes]] = [(0, b"")] * len(bodies)

    def put(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
        url = urls[index]
        start.wait()
        conn.request("PUT", f"{url.path}?{url.query}", body=bodies[index], headers={"If-None-Match": "*"})
        response = conn.getresponse()
        statuses[index] = (response.status, response.read())
        conn.close()

    threads = [threading.Thread(target=put, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    winners = [i for i, (status, _) in enumerate(statuses) if status == 200]
    assert len(winners) == 1, statuses
    for index, (status, body) in enumerate(statuses):
        if index != winners[0]:
            assert status == 412 and b"<Code>PreconditionFailed</Code>" in body, (status, body)
    assert s3.get_object(Bucket=bucket, Key="once")["Body"].read() == bodies[winners[0]]
    listed = s3.list_object_versions(Bucket=bucket)
    assert [v["Key"] for v in listed.get("Versions", [])] == ["once"]


def test_a_killed_writer_host_leaves_the_server_writing_on_its_own(srv: MinicloudServer) -> None:
    """The server's copies went to the worker (no writer process ran until it died). Last in this
    module: the worker does not come back."""
    s3 = srv.client("s3")
    bucket = "killed-writer"
    s3.create_bucket(Bucket=bucket)
    acked: dict[str, str] = {}
    lock = threading.Lock()
    stop = threading.Event()

    def upload(index: int) -> None:
        client = srv.client("s3")
        for round_ in range(100_000):
            if stop.is_set():
                return
            key, data = f"load-{index}-{round_}", os.urandom(4096 + round_ % 97)
            try:
                client.put_object(Bucket=bucket, Key=key, Body=data,
                                  StorageClass="ONEZONE_IA" if index % 2 else "STANDARD")
            except Exception:  # a copy lost with the writer: refused, never half-stored
                continue
            with lock:
                acked[key] = hashlib.sha256(data).hexdigest()

    threads = [threading.Thread(target=upload, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 30
        while len(acked) < 40 and time.monotonic() < deadline:
            time.sleep(0.02)
        (worker,) = s3_workers(srv)
        os.kill(worker, signal.SIGKILL)
        before = len(acked)
        deadline = time.monotonic() + 30
        while len(acked) < before + 40 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(acked) >= before + 40, "uploads did not resume after the writer's host was killed"
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    assert srv.process is not None and srv.process.poll() is None
    replacements = small_writers(srv)  # the server's own writer process now
    assert len(replacements) == 1 and parent(replacements[0]) == srv.process.pid, replacements
    for key, digest in acked.items():  # every acknowledged object reads back whole
        assert hashlib.sha256(s3.get_object(Bucket=bucket, Key=key)["Body"].read()).hexdigest() == digest, key
