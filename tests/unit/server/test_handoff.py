"""Recognising signed S3 requests from raw request heads, and passing a connection over a channel."""

from __future__ import annotations

import socket

import pytest

from minicloud.server.handoff import (
    MAX_CARRIED,
    channel_pair,
    head_end,
    is_signed_s3,
    may_be_request,
    receive_connections,
    send_connection,
)

SCOPE = "AKIDEXAMPLE%2F20261129%2Fus-east-1%2F{service}%2Faws4_request"


def head(method: str, target: str, *headers: str) -> bytes:
    return (f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n" + "".join(f"{h}\r\n" for h in headers)
            + "\r\n").encode()


def presigned(method: str, service: str) -> bytes:
    return head(method, f"/bucket/key?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={SCOPE.format(service=service)}"
                        "&X-Amz-Signature=abc")


def header_signed(method: str, service: str) -> bytes:
    return head(method, "/bucket/key", "X-Amz-Date: 20261129T000000Z",
                f"Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261129/us-east-1/{service}/aws4_request, "
                "SignedHeaders=host;x-amz-date, Signature=abc")


@pytest.mark.parametrize(("request_head", "expected"), [
    (presigned("GET", "s3"), True),
    (presigned("HEAD", "s3"), True),
    (presigned("PUT", "s3"), True),
    (presigned("GET", "sts"), False),
    (header_signed("GET", "s3"), True),
    (header_signed("HEAD", "s3"), True),
    (header_signed("DELETE", "s3"), True),
    (header_signed("POST", "s3"), True),
    (header_signed("GET", "iam"), False),
    (head("GET", "/bucket/key", "authorization: AWS AKIDEXAMPLE:c2lnbmF0dXJl"), True),  # SigV2 header
    (head("GET", "/bucket/key?AWSAccessKeyId=AKIDEXAMPLE&Expires=1&Signature=x"), True),  # SigV2 query
    (head("GET", "/bucket/key"), False),  # anonymous: served where it arrived
    (head("GET", "/bucket/key", "X-Scope: /s3/aws4_request"), False),  # not the Authorization header
    (head("GET", "/v2/", "Authorization: Bearer token"), False),  # the registry
])
def test_signed_s3_requests_are_recognised(request_head: bytes, expected: bool) -> None:
    assert is_signed_s3(request_head) is expected


def test_head_end() -> None:
    request = head("GET", "/") + b"body"
    assert head_end(request) == len(request) - 4
    assert head_end(b"GET / HTTP/1.1\r\nHost: x\r\n") == -1


def test_a_connection_and_its_bytes_cross_the_channel() -> None:
    mine, theirs = channel_pair()
    client, server_side = socket.socketpair()
    try:
        assert send_connection(mine, server_side.fileno(), b"GET / HTTP/1.1\r\n\r\n")
        server_side.close()  # the sender lets go; the connection lives on in the receiver
        received = receive_connections(theirs)
        assert received is not None and len(received) == 1
        adopted, carried = received[0]
        assert carried == b"GET / HTTP/1.1\r\n\r\n"
        adopted.setblocking(True)
        client.sendall(b"ping")
        assert adopted.recv(4) == b"ping"
        adopted.sendall(b"pong")
        assert client.recv(4) == b"pong"
        adopted.close()
        assert receive_connections(theirs) == []  # nothing more waiting
    finally:
        client.close()
        mine.close()
        theirs.close()


def test_too_much_carried_data_keeps_the_connection_here() -> None:
    mine, theirs = channel_pair()
    client, server_side = socket.socketpair()
    try:
        assert not send_connection(mine, server_side.fileno(), b"x" * (MAX_CARRIED + 1))
        assert receive_connections(theirs) == []
    finally:
        for s in (mine, theirs, client, server_side):
            s.close()


def test_a_closed_channel_reads_as_none() -> None:
    mine, theirs = channel_pair()
    mine.close()
    try:
        assert receive_connections(theirs) is None
    finally:
        theirs.close()


def test_a_full_or_closed_channel_refuses() -> None:
    mine, theirs = channel_pair()
    theirs.close()
    client, server_side = socket.socketpair()
    try:
        assert not send_connection(mine, server_side.fileno(), b"GET / HTTP/1.1\r\n\r\n")
    finally:
        for s in (mine, client, server_side):
            s.close()


@pytest.mark.parametrize(("start", "expected"), [
    (b"GET / HTTP/1.1\r\n", True),
    (b"GE", True),  # a method still arriving
    (b"PROPFIND ", True),
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", False),  # a TLS ClientHello
    (b"get / HTTP/1.1", False),
    (b"GET", True),
    (b"AVERYLONGMETHODNAMEXX", False),
    (b" GET /", False),
    (b"", False),
])
def test_what_may_start_a_request(start: bytes, expected: bool) -> None:
    assert may_be_request(start) is expected
