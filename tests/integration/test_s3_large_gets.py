"""Large GETs of encrypted objects against a real ``minicloud up``, which pumps their bodies to the
socket from threads: whole objects and ranges across parts; a corrupt copy met mid-body served from
another replica and repaired; a client that reads slowly (the rest goes through the event loop)
and keeps its connection; a client that goes away mid-body and a server that goes on."""

from __future__ import annotations

import hashlib
import os
import socket
import time
import urllib.parse
import uuid
from typing import Any

import pytest

from tests.support.server import MinicloudServer

MiB = 1024 * 1024


@pytest.fixture
def s3(server: MinicloudServer) -> Any:
    return server.client("s3")


@pytest.fixture
def big(s3: Any) -> tuple[str, bytes]:
    """A bucket holding ``big``: a three-part object of ~21 MiB (parts of 8, 8 and ~5 MiB)."""
    bucket = f"big-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    parts = [os.urandom(8 * MiB), os.urandom(8 * MiB), os.urandom(5 * MiB + 12345)]
    upload = s3.create_multipart_upload(Bucket=bucket, Key="big")["UploadId"]
    done = [{"PartNumber": n, "ETag": s3.upload_part(Bucket=bucket, Key="big", UploadId=upload, PartNumber=n,
                                                     Body=part)["ETag"]} for n, part in enumerate(parts, 1)]
    s3.complete_multipart_upload(Bucket=bucket, Key="big", UploadId=upload, MultipartUpload={"Parts": done})
    return bucket, b"".join(parts)


def _request(s3: Any, bucket: str, key: str) -> bytes:
    url = urllib.parse.urlsplit(s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}))
    return f"GET {url.path}?{url.query} HTTP/1.1\r\nHost: {url.netloc}\r\n\r\n".encode()


def _read_response(sock: socket.socket) -> tuple[bytes, bytes]:
    """(head, body) of one response with a Content-Length, read from ``sock``."""
    data = bytearray()
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, rest = bytes(data).partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    body = bytearray(rest)
    while len(body) < length:
        chunk = sock.recv(1 << 20)
        assert chunk, "the connection closed before the body's end"
        body += chunk
    return head, bytes(body)


def test_whole_objects_and_ranges_across_parts(s3: Any, big: tuple[str, bytes]) -> None:
    bucket, body = big
    assert hashlib.sha256(s3.get_object(Bucket=bucket, Key="big")["Body"].read()).digest() == \
        hashlib.sha256(body).digest()
    for first, last in [(0, 3 * MiB), (8 * MiB - 100, 16 * MiB + 99), (MiB + 1, len(body) - 1),
                        (16 * MiB, len(body) - 2)]:
        got = s3.get_object(Bucket=bucket, Key="big", Range=f"bytes={first}-{last}")["Body"].read()
        assert got == body[first:last + 1], (first, last)


def test_a_corrupt_copy_mid_body_is_served_from_another_and_repaired(server: MinicloudServer, s3: Any,
                                                                      big: tuple[str, bytes]) -> None:
    bucket, body = big
    first_zone = server.data_dir / "s3" / "us-east-1a" / "sha256"
    sized = [p for p in first_zone.rglob("*") if p.is_file() and 8 * MiB < p.stat().st_size < 9 * MiB]
    victim = max(sized, key=lambda p: p.stat().st_mtime_ns)  # the second part's copy in the first zone
    data = bytearray(victim.read_bytes())
    data[5 * MiB] ^= 0xFF
    victim.chmod(0o600)
    victim.write_bytes(bytes(data))
    assert s3.get_object(Bucket=bucket, Key="big")["Body"].read() == body
    assert hashlib.sha256(victim.read_bytes()).hexdigest() == victim.name  # repaired


def test_a_slow_reader_gets_every_byte_and_keeps_its_connection(s3: Any, big: tuple[str, bytes],
                                                                server: MinicloudServer) -> None:
    bucket, body = big
    s3.put_object(Bucket=bucket, Key="small", Body=b"after")
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
        sock.sendall(_request(s3, bucket, "big"))
        time.sleep(2)  # the socket fills, the server's sender gives up on it
        _, got = _read_response(sock)
        assert got == body
        sock.sendall(_request(s3, bucket, "small"))
        assert _read_response(sock)[1] == b"after"


def test_a_client_gone_mid_body_leaves_the_server_serving(s3: Any, big: tuple[str, bytes],
                                                          server: MinicloudServer) -> None:
    bucket, body = big
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            sock.sendall(_request(s3, bucket, "big"))
            assert sock.recv(65536)
    assert s3.get_object(Bucket=bucket, Key="big", Range="bytes=0-99")["Body"].read() == body[:100]
    assert s3.get_object(Bucket=bucket, Key="big")["Body"].read() == body
