"""The benchmark harness's own pieces: pre-signing, the load generator's HTTP framing, summaries."""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from bench import wrk
from bench.loadgen import LoadSpec, percentile, run_load
from bench.presign import Operation, capture_template, presign, tamper_signature
from bench.proc import process_tree, tree_rss
from bench.profile import summarize

GCI = Operation("sts", "GetCallerIdentity")


def test_operation_method_names() -> None:
    assert GCI.method == "get_caller_identity"
    assert Operation("iam", "ListUsers").method == "list_users"


def test_percentile_nearest_rank() -> None:
    values = list(range(1, 101))
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile([7], 99) == 7
    assert percentile([], 50) != percentile([], 50)  # NaN


# -- a raw server that records what it receives and answers in a chosen framing ----------------------
class _Recorder(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, reply: bytes, close_after: bool) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.reply = reply
        self.close_after = close_after
        self.received: list[bytes] = []
        self.connections = 0


class _Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server = self.server
        assert isinstance(server, _Recorder)
        server.connections += 1
        buf = b""
        sock: socket.socket = self.request
        while True:
            while b"\r\n\r\n" not in buf:
                chunk = sock.recv(65536)
                if not chunk:
                    return
                buf += chunk
            head, _, rest = buf.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            while len(rest) < length:
                rest += sock.recv(65536)
            server.received.append(head + b"\r\n\r\n" + rest[:length])
            buf = rest[length:]
            sock.sendall(server.reply)
            if server.close_after:
                sock.close()
                return


@pytest.fixture
def recorder(request: pytest.FixtureRequest) -> Iterator[_Recorder]:
    reply, close_after = request.param
    srv = _Recorder(reply, close_after)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


_OK = b"<GetCallerIdentityResponse><GetCallerIdentityResult/></GetCallerIdentityResponse>"
FRAMINGS = {
    "content-length": (b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(_OK) + _OK, False),
    "chunked": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n" + _OK[:16] + b"\r\n"
                + b"%x\r\n" % (len(_OK) - 16) + _OK[16:] + b"\r\n0\r\n\r\n", False),
    "connection-close": (b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(_OK) + _OK,
                         True),
    "until-close": (b"HTTP/1.0 200 OK\r\n\r\n" + _OK, True),
    "error": (b"HTTP/1.1 403 Forbidden\r\nContent-Length: 6\r\n\r\ndenied", False),
}


def _template(port: int) -> tuple[list[bytes], str]:
    endpoint = f"http://127.0.0.1:{port}"
    template = capture_template(endpoint, GCI, "AKIDEXAMPLE", "secret")
    return presign(template, "AKIDEXAMPLE", "secret", 50), endpoint


@pytest.mark.parametrize("recorder", list(FRAMINGS.values()), ids=list(FRAMINGS), indirect=True)
def test_loadgen_counts_every_framing(recorder: _Recorder) -> None:
    port = recorder.server_address[1]
    pool, _ = _template(port)
    result = run_load(LoadSpec("127.0.0.1", port, pool, connections=2, requests_total=40, keep_bodies=1,
                               deadline_s=30))
    assert len(recorder.received) == 40
    status = int(recorder.reply.split(b" ", 2)[1])
    if status == 200:
        assert (result.ok, result.errors) == (40, 0)
        assert result.bodies[0] == (200, _OK)
    else:
        assert (result.ok, result.non_200, result.failures) == (0, 40, 0)
    assert len(result.latencies_ns) == 40
    if recorder.close_after:
        assert recorder.connections >= 40
    else:
        assert recorder.connections == 2 and result.reconnects == 0


@pytest.mark.parametrize("recorder", [FRAMINGS["content-length"]], indirect=True)
def test_presigned_bytes_are_what_boto3_sends(recorder: _Recorder) -> None:
    port = recorder.server_address[1]
    pool, endpoint = _template(port)
    # What boto3 itself puts on the wire for the same call.
    client = boto3.session.Session().client(
        "sts", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret", config=Config(retries={"max_attempts": 1}))
    with contextlib.suppress(Exception):  # the reply is not a real STS document; only the request matters
        client.get_caller_identity()
    wire = recorder.received[-1]

    def shape(raw: bytes) -> tuple[bytes, list[bytes], bytes]:
        head, _, body = raw.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        return lines[0], [line.split(b":", 1)[0] for line in lines[1:]], body

    assert shape(pool[0]) == shape(wire)
    assert b"SignedHeaders=content-type;host;x-amz-date," in pool[0]
    assert len(set(pool)) == len(pool)
    bad = tamper_signature(pool[0])
    assert bad != pool[0] and len(bad) == len(pool[0])


def test_presign_signs_like_botocore_at_a_fixed_time() -> None:
    template = capture_template("http://127.0.0.1:9", GCI, "AKIDEXAMPLE", "secret")
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    a = presign(template, "AKIDEXAMPLE", "secret", 3, now=when)
    b = presign(template, "AKIDEXAMPLE", "secret", 3, now=when)
    sig = [r.split(b"Signature=")[1][:64] for r in a]
    assert sig == [r.split(b"Signature=")[1][:64] for r in b]  # deterministic but for the invocation id
    assert len(set(sig)) == 3  # distinct signing times -> distinct signatures
    assert b"X-Amz-Date: 20260102T030405Z" in a[0] and b"X-Amz-Date: 20260102T030404Z" in a[1]


def test_tree_rss_of_self() -> None:
    import os

    rss = tree_rss(os.getpid())
    assert rss.rss_kib > 0 and rss.hwm_kib >= rss.rss_kib and rss.processes >= 1
    assert process_tree(os.getpid())[0] == os.getpid()


def test_summarize_folded(tmp_path: Path) -> None:
    folded = tmp_path / "x.folded"
    folded.write_text(
        "main (/x/minicloud/cli.py:1);handle (/x/minicloud/aws/dispatch.py:10);"
        "digest (/usr/lib/python3.11/hmac.py:5) 3\n"
        "main (/x/minicloud/cli.py:1);handle (/x/minicloud/aws/dispatch.py:12) 1\n")
    s = summarize(folded)
    assert s.samples == 4
    assert s.self_top[0] == ("stdlib/hmac.py:digest", 3)
    assert ("minicloud/aws/dispatch.py:handle", 4) in s.inclusive_top


@pytest.mark.parametrize("recorder", [FRAMINGS["content-length"], FRAMINGS["error"]], ids=["200", "403"],
                         indirect=True)
def test_wrk_replays_the_presigned_requests_byte_for_byte(recorder: _Recorder) -> None:
    port = recorder.server_address[1]
    pool, _ = _template(port)
    windows: list[bool] = []
    result = wrk.replay("127.0.0.1", port, pool, connections=2, threads=2, warmup_s=0, duration_s=1,
                        on_window=windows.append)
    assert windows == [True, False]
    assert len(recorder.received) >= len(pool)  # every request of the pool, in turn
    assert set(recorder.received) == set(pool)
    assert result.window_s == pytest.approx(1.0, abs=0.2)
    if recorder.reply.startswith(b"HTTP/1.1 200"):
        assert result.ok >= len(pool) and result.errors == 0
    else:
        assert result.ok == 0 and result.non_200 >= len(pool) and result.error_samples
