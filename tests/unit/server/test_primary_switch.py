"""Which connections the primary hands to its S3 workers (``PrimarySwitch``): those whose first
request is a signed S3 read, in turn with itself; and how many workers ``s3_workers`` asks for."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from minicloud.server import workers as workers_module
from minicloud.server.handoff import channel_pair
from minicloud.server.workers import PrimarySwitch, S3Workers, worker_count

_SCOPE = b"Credential=AKIDEXAMPLE/20261130/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00"


def _head(method: bytes, service_scope: bytes = _SCOPE) -> bytes:
    return (method + b" /bucket/key HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Authorization: AWS4-HMAC-SHA256 " + service_scope + b"\r\n\r\n")


@pytest.fixture
def switch() -> Iterator[PrimarySwitch]:
    ends = [channel_pair() for _ in range(2)]
    workers = S3Workers()
    workers.channels = [mine for mine, _ in ends]
    yield PrimarySwitch(workers)
    for pair in ends:
        for sock in pair:
            sock.close()


def test_signed_reads_go_round_robin_with_the_primary(switch: PrimarySwitch) -> None:
    got = [switch.divert(_head(method)) for method in (b"GET", b"HEAD", b"GET", b"GET", b"HEAD", b"GET")]
    first, second = switch.channels
    assert got == [first, second, None, first, second, None]


@pytest.mark.parametrize("method", [b"PUT", b"POST", b"DELETE", b"OPTIONS"])
def test_a_connection_opened_with_anything_else_stays(switch: PrimarySwitch, method: bytes) -> None:
    assert switch.divert(_head(method)) is None
    assert switch.divert(_head(b"GET")) is switch.channels[0]  # a write takes no turn


def test_reads_for_other_services_and_unsigned_reads_stay(switch: PrimarySwitch) -> None:
    assert switch.divert(_head(b"GET", _SCOPE.replace(b"/s3/", b"/iam/"))) is None
    assert switch.divert(b"GET /bucket/key HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n") is None


def test_worker_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workers_module.os, "cpu_count", lambda: 2)
    assert [worker_count(s) for s in (None, -1, 0, 3)] == [1, 1, 0, 3]
    monkeypatch.setattr(workers_module.os, "cpu_count", lambda: 1)
    assert [worker_count(s) for s in (None, -1, 0, 1)] == [0, 0, 0, 1]
    monkeypatch.setattr(workers_module.os, "cpu_count", lambda: 16)
    assert [worker_count(s) for s in (None, -1)] == [1, 7]
