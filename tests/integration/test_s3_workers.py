"""S3 workers: signed S3 reads served by processes forked from ``minicloud up`` (server.workers).

Driven with real clients (boto3, raw HTTP/1.1 keep-alive connections) against a real server with
one S3 worker, whatever the machine's core count. Which process serves a connection is read from
the kernel: the process holding the server's end of the TCP connection.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.support.processes import s3_workers, serving_pid
from tests.support.server import Keys, MinicloudServer


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MinicloudServer]:
    server = MinicloudServer(tmp_path_factory.mktemp("workers"), env={"MINICLOUD_S3_WORKERS": "1",
                                                                        "MINICLOUD_ENGINE": "false"})
    server.start()
    yield server
    server.stop()


def presigned_path(s3: object, method: str, bucket: str, key: str) -> str:
    url = s3.generate_presigned_url(method, Params={"Bucket": bucket, "Key": key})  # type: ignore[attr-defined]
    parts = urllib.parse.urlsplit(url)
    return f"{parts.path}?{parts.query}"


def opened_with_a_read(srv: MinicloudServer, s3: object, bucket: str) -> http.client.HTTPConnection:
    """A new connection whose first request is a signed GET (of a key that does not exist): it lands
    on the server or its worker in turn, where a connection opened with a write stays on the server."""
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
    conn.request("GET", presigned_path(s3, "get_object", bucket, "no-such-key"))
    response = conn.getresponse()
    response.read()
    assert response.status == 404
    return conn


def signed_sts_call(srv: MinicloudServer, keys: Keys) -> tuple[str, dict[str, str], bytes]:
    body = b"Action=GetCallerIdentity&Version=2011-06-15"
    request = AWSRequest("POST", f"{srv.endpoint}/", data=body,
                         headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    SigV4Auth(Credentials(keys.access_key_id, keys.secret_access_key), "sts", "us-east-1").add_auth(request)
    return "/", dict(request.headers.items()), body


def test_signed_reads_are_shared_between_the_server_and_its_worker(srv: MinicloudServer) -> None:
    s3 = srv.client("s3")
    s3.create_bucket(Bucket="shared-reads")
    s3.put_object(Bucket="shared-reads", Key="k", Body=b"hello workers")
    workers = s3_workers(srv)
    assert len(workers) == 1
    served_by = set()
    for _ in range(6):
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
        for _ in range(3):  # keep-alive: the connection stays where its first request put it
            conn.request("GET", presigned_path(s3, "get_object", "shared-reads", "k"))
            response = conn.getresponse()
            assert (response.status, response.read()) == (200, b"hello workers")
        served_by.add(serving_pid(srv, conn))
        conn.close()
    assert srv.process is not None
    assert served_by == {srv.process.pid, workers[0]}


def test_a_connection_opened_with_a_write_stays_with_the_server(srv: MinicloudServer) -> None:
    """Writes stay with the server (one process group-commits them), reads spread: a connection
    opened with a PUT is served by the server, and so is everything after on it."""
    s3 = srv.client("s3")
    s3.create_bucket(Bucket="writes-stay")
    assert srv.process is not None
    for i in range(4):  # round-robin would have put every other one on the worker
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
        url = urllib.parse.urlsplit(s3.generate_presigned_url("put_object", Params={"Bucket": "writes-stay",
                                                                                     "Key": f"k{i}"}))
        conn.request("PUT", f"{url.path}?{url.query}", body=b"w%d" % i)
        response = conn.getresponse()
        assert (response.status, response.read()) == (200, b"")
        conn.request("GET", presigned_path(s3, "get_object", "writes-stay", f"k{i}"))
        response = conn.getresponse()
        assert (response.status, response.read()) == (200, b"w%d" % i)
        assert serving_pid(srv, conn) == srv.process.pid
        conn.close()


def test_a_worker_passes_other_requests_back(srv: MinicloudServer) -> None:
    s3 = srv.client("s3")
    s3.create_bucket(Bucket="hand-back")
    s3.put_object(Bucket="hand-back", Key="k", Body=b"x" * 1000)
    assert srv.root is not None and srv.process is not None
    worker = s3_workers(srv)[0]
    for _ in range(4):  # until a connection lands on the worker
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
        conn.request("HEAD", presigned_path(s3, "head_object", "hand-back", "k"))
        response = conn.getresponse()
        response.read()
        assert response.status == 200 and response.headers["Content-Length"] == "1000"
        if serving_pid(srv, conn) == worker:
            break
        conn.close()
    else:
        pytest.fail("no connection reached the worker")
    # On the same connection: an STS call (not a read), a PUT, then a read again.
    path, headers, body = signed_sts_call(srv, srv.root)
    conn.request("POST", path, body=body, headers=headers)
    response = conn.getresponse()
    text = response.read()
    assert response.status == 200 and srv.account_id.encode() in text
    assert serving_pid(srv, conn) == srv.process.pid
    url = s3.generate_presigned_url("put_object", Params={"Bucket": "hand-back", "Key": "k2"})
    parts = urllib.parse.urlsplit(url)
    conn.request("PUT", f"{parts.path}?{parts.query}", body=b"written")
    response = conn.getresponse()
    response.read()
    assert response.status == 200
    conn.request("GET", presigned_path(s3, "get_object", "hand-back", "k2"))
    response = conn.getresponse()
    assert (response.status, response.read()) == (200, b"written")
    conn.close()


def test_policy_changes_reach_every_process_at_once(srv: MinicloudServer) -> None:
    s3 = srv.client("s3")
    iam = srv.client("iam")
    s3.create_bucket(Bucket="coherent")
    s3.put_object(Bucket="coherent", Key="k", Body=b"data")
    iam.create_user(UserName="reader")
    iam.put_user_policy(UserName="reader", PolicyName="read", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::coherent/*"}]}))
    key = iam.create_access_key(UserName="reader")["AccessKey"]
    reader = srv.client("s3", keys=Keys(key["AccessKeyId"], key["SecretAccessKey"]))

    def statuses() -> set[int]:
        seen = set()
        for _ in range(6):  # fresh connections: both processes answer
            conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
            conn.request("GET", presigned_path(reader, "get_object", "coherent", "k"))
            response = conn.getresponse()
            response.read()
            seen.add(response.status)
            conn.close()
        return seen

    assert statuses() == {200}
    # An identity policy change, made through the primary, is enforced by the worker at once.
    iam.put_user_policy(UserName="reader", PolicyName="deny", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Deny", "Action": "s3:GetObject", "Resource": "*"}]}))
    assert statuses() == {403}
    iam.delete_user_policy(UserName="reader", PolicyName="deny")
    assert statuses() == {200}
    # So is a bucket policy.
    s3.put_bucket_policy(Bucket="coherent", Policy=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject",
                       "Resource": "arn:aws:s3:::coherent/*"}]}))
    assert statuses() == {403}
    s3.delete_bucket_policy(Bucket="coherent")
    assert statuses() == {200}
    # And a deactivated access key.
    iam.update_access_key(UserName="reader", AccessKeyId=key["AccessKeyId"], Status="Inactive")
    assert statuses() == {403}


def test_workers_end_with_the_server(tmp_path: Path) -> None:
    for stop in (signal.SIGTERM, signal.SIGKILL):
        server = MinicloudServer(tmp_path / stop.name, env={"MINICLOUD_S3_WORKERS": "1",
                                                            "MINICLOUD_ENGINE": "false"})
        server.start()
        workers = s3_workers(server)
        assert len(workers) == 1
        server.stop(stop)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and Path(f"/proc/{workers[0]}").exists():
            time.sleep(0.05)
        # (a killed server's worker is re-parented: it ends when its channel closes)
        assert not Path(f"/proc/{workers[0]}").exists() or \
            Path(f"/proc/{workers[0]}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"


def test_identical_objects_churned_through_every_process_stay_intact(srv: MinicloudServer) -> None:
    """Many connections (so both processes) write the same bytes under many keys, overwrite and delete
    them, for longer than a released blob's grace period: the blob they share is deleted only when
    nothing refers to it, whichever process released it last."""
    import threading

    s3 = srv.client("s3")
    s3.create_bucket(Bucket="churn")
    same = os.urandom(4096)
    other = os.urandom(4096)
    stop = time.monotonic() + 13  # the grace period is 10 s: releases from the start get deleted meanwhile
    failures: list[str] = []

    def churn(worker: int) -> None:
        i = 0
        while time.monotonic() < stop and not failures:
            conn = opened_with_a_read(srv, s3, "churn")
            for _ in range(20):
                key = f"w{worker}-{i % 5}"
                i += 1
                body = same if i % 3 else other
                url = urllib.parse.urlsplit(s3.generate_presigned_url(
                    "put_object", Params={"Bucket": "churn", "Key": key}))
                conn.request("PUT", f"{url.path}?{url.query}", body=body)
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    failures.append(f"PUT {key}: {response.status}")
                if i % 4 == 0:
                    url = urllib.parse.urlsplit(s3.generate_presigned_url(
                        "delete_object", Params={"Bucket": "churn", "Key": key}))
                    conn.request("DELETE", f"{url.path}?{url.query}")
                    response = conn.getresponse()
                    response.read()
                    if response.status != 204:
                        failures.append(f"DELETE {key}: {response.status}")
            conn.close()

    threads = [threading.Thread(target=churn, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures[:5]
    time.sleep(11)  # the last releases' deletions run now
    listed = s3.list_objects_v2(Bucket="churn").get("Contents", [])
    assert listed
    for item in listed:
        body = s3.get_object(Bucket="churn", Key=item["Key"])["Body"].read()
        assert body in (same, other), item["Key"]


def test_what_the_workers_write_is_for_root_only(srv: MinicloudServer) -> None:
    s3 = srv.client("s3")
    s3.create_bucket(Bucket="private-files")
    for i in range(8):  # new connections: both processes write
        conn = opened_with_a_read(srv, s3, "private-files")
        url = urllib.parse.urlsplit(s3.generate_presigned_url("put_object", Params={"Bucket": "private-files",
                                                                                     "Key": f"k{i}"}))
        conn.request("PUT", f"{url.path}?{url.query}", body=os.urandom(300_000 if i % 2 else 100))
        response = conn.getresponse()
        response.read()
        assert response.status == 200
        conn.close()
    exposed = [str(p) for p in srv.data_dir.rglob("*")
               if p.name != "server.log" and not p.is_symlink() and p.stat().st_mode & 0o077]
    assert not exposed, exposed[:10]


def test_a_slow_download_outlives_an_overwrite_made_through_the_other_process(srv: MinicloudServer) -> None:
    """A multipart object read slowly by one process while another replaces it: the replaced parts
    are released, but not deleted while the download (marked for every process) still needs them."""
    s3 = srv.client("s3")
    s3.create_bucket(Bucket="slow-reads")
    # Six parts: more than the server reads ahead of what the client has taken (its socket buffer and
    # a few batches), so the last parts' files are opened only after the overwrite's grace period.
    parts = [os.urandom(5 * 1024 * 1024) for _ in range(6)]
    upload = s3.create_multipart_upload(Bucket="slow-reads", Key="big")["UploadId"]
    etags = [s3.upload_part(Bucket="slow-reads", Key="big", UploadId=upload, PartNumber=n + 1,
                            Body=part)["ETag"] for n, part in enumerate(parts)]
    s3.complete_multipart_upload(Bucket="slow-reads", Key="big", UploadId=upload, MultipartUpload={
        "Parts": [{"PartNumber": n + 1, "ETag": etag} for n, etag in enumerate(etags)]})
    reader = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60)
    reader.sock = socket.socket()
    reader.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)  # the client takes little at a time
    reader.sock.settimeout(60)
    reader.sock.connect(("127.0.0.1", srv.port))
    reader.request("GET", presigned_path(s3, "get_object", "slow-reads", "big"))
    response = reader.getresponse()
    assert response.status == 200
    first = response.read(64 * 1024)
    reader_pid = serving_pid(srv, reader)
    for _ in range(8):  # overwrite it through the other process
        writer = opened_with_a_read(srv, s3, "slow-reads")
        url = urllib.parse.urlsplit(s3.generate_presigned_url("put_object", Params={"Bucket": "slow-reads",
                                                                                     "Key": "big"}))
        writer.request("PUT", f"{url.path}?{url.query}", body=b"replaced")
        answer = writer.getresponse()
        answer.read()
        assert answer.status == 200
        if serving_pid(srv, writer) != reader_pid:
            writer.close()
            break
        writer.close()
    else:
        pytest.fail("no connection reached the other process")
    time.sleep(13)  # past the released blobs' grace period (10 s): their deletion is due
    rest = response.read()
    assert first + rest == b"".join(parts)
    reader.close()
    assert s3.get_object(Bucket="slow-reads", Key="big")["Body"].read() == b"replaced"
