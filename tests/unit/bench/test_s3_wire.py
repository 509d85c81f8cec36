"""The S3 benchmark's client: its pre-signed URLs carry botocore's signatures; its connection reads every framing."""

from __future__ import annotations

import socket
import threading
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlsplit

import pytest
from botocore import auth as botocore_auth
from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from bench.s3_wire import QuerySigner, Wire, frame, uri_encode

AK, SK = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
WHEN = datetime(2026, 11, 29, 9, 30, 5, tzinfo=UTC)


def _botocore(monkeypatch: pytest.MonkeyPatch, method: str, url: str, headers: dict[str, str]) -> dict[str, str]:
    monkeypatch.setattr(botocore_auth, "get_current_datetime", lambda: WHEN.replace(tzinfo=None))
    request = AWSRequest(method=method, url=url, headers=headers)
    S3SigV4QueryAuth(Credentials(AK, SK), "s3", "us-east-1", expires=3600).add_auth(request)
    return dict(parse_qsl(urlsplit(request.url).query, keep_blank_values=True))


@pytest.mark.parametrize(("method", "path", "params", "headers"), [
    ("PUT", "/bench-1/small/17", {}, {}),
    ("PUT", "/bench-1/small/17", {}, {"x-amz-storage-class": "ONEZONE_IA"}),
    ("PUT", "/bench-1/big", {"partNumber": "3", "uploadId": "a/b+c=="}, {}),
    ("GET", "/bench-1", {"list-type": "2", "max-keys": "1000", "continuation-token": "x y/z=="}, {}),
    ("GET", "/bench-1/dir/a key~with (odd) chars", {}, {}),
])
def test_query_signature_matches_botocore(monkeypatch: pytest.MonkeyPatch, method: str, path: str,
                                          params: dict[str, str], headers: dict[str, str]) -> None:
    signer = QuerySigner(AK, SK, "127.0.0.1:9000", when=WHEN)
    target = signer.sign(method, path, params, headers)
    ours = dict(parse_qsl(urlsplit(target).query, keep_blank_values=True))
    query = "&".join(f"{uri_encode(k)}={uri_encode(v)}" for k, v in params.items())
    url = f"http://127.0.0.1:9000{uri_encode(path, keep_slash=True)}" + (f"?{query}" if query else "")
    theirs = _botocore(monkeypatch, method, url, headers)
    assert ours == theirs
    assert ours["X-Amz-Signature"] == theirs["X-Amz-Signature"]


def test_wire_reads_every_framing() -> None:
    responses = [
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nETag: \"e1\"\r\n\r\nhello",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nX-T: 1\r\n\r\n",
        b"HTTP/1.1 204 No Content\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
        b"HTTP/1.0 200 OK\r\n\r\nuntil close",
    ]
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    pending = list(responses)

    def serve() -> None:
        while pending:
            conn, _ = listener.accept()
            with conn:
                data = b""
                while pending:
                    while b"\r\n\r\n" not in data:
                        got = conn.recv(65536)
                        if not got:
                            return
                        data += got
                    _, _, data = data.partition(b"\r\n\r\n")
                    answer = pending.pop(0)
                    conn.sendall(answer)
                    if b"Connection: close" in answer or answer.startswith(b"HTTP/1.0"):
                        break

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    wire = Wire(port, timeout=10)
    head = frame("GET", "/x", f"127.0.0.1:{port}")
    first = wire.request(head)
    assert (first.status, first.body, first.headers["etag"]) == (200, b"hello", '"e1"')
    pieces: list[tuple[bytes, int]] = []
    second = wire.request(head, lambda piece, offset: pieces.append((bytes(piece), offset)))
    assert second.length == 5 and second.body == b""
    assert b"".join(p for p, _ in pieces) == b"abcde" and [o for _, o in pieces] == [0, 3]
    assert wire.request(head).status == 204
    assert wire.request(head).body == b"ok"
    assert wire.sock is None  # closed as the server asked
    assert wire.request(head).body == b"until close"
    assert wire.connects == 2
    thread.join(5)
    listener.close()


def test_frame_puts_content_length_last() -> None:
    assert frame("PUT", "/b/k?x=1", "h:1", {"x-amz-storage-class": "STANDARD"}, b"abc") == (
        b"PUT /b/k?x=1 HTTP/1.1\r\nHost: h:1\r\nx-amz-storage-class: STANDARD\r\nContent-Length: 3\r\n\r\nabc")
    assert frame("GET", "/b/k", "h:1") == b"GET /b/k HTTP/1.1\r\nHost: h:1\r\n\r\n"
