"""A closed-loop HTTP/1.1 keep-alive load generator that replays pre-signed requests.

Each connection is an asyncio ``Protocol`` (on uvloop when available) that writes one request,
parses the response (Content-Length, chunked, or body-until-close), records it, and writes the
next one from inside ``data_received``: no coroutine, future or task per request. A server that
closes the connection (``Connection: close``, HTTP/1.0, or an error) gets a fresh one; the
reconnect time is part of that request's latency.

Two shapes of run, both bounded in time:
- count-based (``requests_total``): e.g. one connection sending 2,000 requests in order, every
  latency recorded -> p50/p99;
- time-based (``duration_s``): N connections, a warm-up, then a measured window; only responses
  completed inside the window count; only 200s count as successes.

``run_load`` runs the connections in ``procs`` worker processes (forked; each with its own event
loop and a share of the connections) that start together at an agreed monotonic time, so the
calling process stays free to sample the server's RSS and CPU while the load runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, cast

uvloop: Any
try:  # uvloop is a minicloud dependency; the generator also runs without it
    import uvloop
except ImportError:  # pragma: no cover
    uvloop = None

NS = 1_000_000_000


@dataclass
class LoadSpec:
    host: str
    port: int
    requests: Sequence[bytes]              # replayed in order, cycling; connections start at spread offsets
    connections: int = 1
    requests_total: int | None = None      # count-based run: this many responses over all connections
    warmup_s: float = 0.0                  # time-based run: not measured
    duration_s: float | None = None        # time-based run: the measured window after the warm-up
    record_latency: bool = True
    request_timeout_s: float = 10.0        # a request taking longer is an error (its connection is replaced)
    deadline_s: float = 120.0              # hard bound on the whole run
    keep_bodies: int = 0                   # keep the first N response bodies (for checking content)


@dataclass
class LoadResult:
    ok: int = 0                            # 200 responses (inside the window for time-based runs)
    non_200: int = 0
    failures: int = 0                      # connection errors, timeouts, unparseable responses
    statuses: dict[int, int] = field(default_factory=dict)
    latencies_ns: list[int] = field(default_factory=list)
    window_s: float = 0.0
    reconnects: int = 0
    client_cpu_s: float = 0.0              # user+system CPU of the generator processes during the window
    bodies: list[tuple[int, bytes]] = field(default_factory=list)
    error_samples: list[str] = field(default_factory=list)
    timed_out: bool = False

    @property
    def errors(self) -> int:
        return self.non_200 + self.failures

    @property
    def rps(self) -> float:
        """Successful (200) responses per second of the measured window."""
        return self.ok / self.window_s if self.window_s > 0 else 0.0

    @property
    def client_cpu_util(self) -> float:
        """Generator CPU per second of wall time (1.0 = one core busy)."""
        return self.client_cpu_s / self.window_s if self.window_s > 0 else 0.0

    def merge(self, other: LoadResult) -> None:
        self.ok += other.ok
        self.non_200 += other.non_200
        self.failures += other.failures
        for k, v in other.statuses.items():
            self.statuses[k] = self.statuses.get(k, 0) + v
        self.latencies_ns.extend(other.latencies_ns)
        self.window_s = max(self.window_s, other.window_s)
        self.reconnects += other.reconnects
        self.client_cpu_s += other.client_cpu_s
        self.bodies.extend(other.bodies)
        self.error_samples.extend(other.error_samples[: max(0, 5 - len(self.error_samples))])
        self.timed_out = self.timed_out or other.timed_out


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of unsorted values; NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return float(ordered[rank - 1])


# -- the engine -------------------------------------------------------------------------------------
class _Run:
    """State shared by the connections of one worker."""

    def __init__(self, spec: LoadSpec, offset: int, share: int | None, start_ns: int, loop: Any) -> None:
        self.spec = spec
        self.loop = loop
        self.requests = list(spec.requests)
        self.offset = offset
        self.remaining = share                      # count-based: requests still to send from this worker
        self.start_ns = start_ns
        self.window_start_ns = start_ns + int(spec.warmup_s * NS)
        self.window_end_ns = (self.window_start_ns + int(spec.duration_s * NS)
                              if spec.duration_s is not None else None)
        self.result = LoadResult()
        self.active = 0
        self.stopping = False
        self.done: asyncio.Future[None] = loop.create_future()
        self.conns: list[_Client] = []

    def next_request(self, conn: _Client) -> bytes | None:
        if self.stopping:
            return None
        if self.remaining is not None:
            if self.remaining <= 0:
                return None
            self.remaining -= 1
        now = time.monotonic_ns()
        if self.window_end_ns is not None and now >= self.window_end_ns:
            return None
        req = self.requests[conn.cursor % len(self.requests)]
        conn.cursor += 1
        return req

    def record(self, status: int, started_ns: int, body: bytes) -> None:
        now = time.monotonic_ns()
        r = self.result
        if self.window_end_ns is not None and not (self.window_start_ns <= now < self.window_end_ns):
            return
        r.statuses[status] = r.statuses.get(status, 0) + 1
        if status == 200:
            r.ok += 1
        else:
            r.non_200 += 1
            if len(r.error_samples) < 5:
                r.error_samples.append(f"HTTP {status}: {body[:300]!r}")
        if self.spec.record_latency:
            r.latencies_ns.append(now - started_ns)
        if len(r.bodies) < self.spec.keep_bodies:
            r.bodies.append((status, body))

    def failure(self, what: str) -> None:
        now = time.monotonic_ns()
        if self.window_end_ns is None or self.window_start_ns <= now < self.window_end_ns:
            self.result.failures += 1
            if len(self.result.error_samples) < 5:
                self.result.error_samples.append(what)

    def conn_finished(self) -> None:
        self.active -= 1
        if self.active <= 0 and not self.done.done():
            self.done.set_result(None)


class _Wire(asyncio.Protocol):
    """One TCP connection of a client, parsing HTTP/1.1 responses; a replaced wire is ``retired``."""

    __slots__ = ("body_mode", "buf", "client", "closing_after", "first", "header_end", "need", "retired",
                 "status", "transport")

    def __init__(self, client: _Client, first: bytes | None = None) -> None:
        self.client = client
        self.first = first
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.retired = False
        self._reset()

    def _reset(self) -> None:
        self.header_end = -1
        self.status = 0
        self.body_mode = 0     # 0: content-length, 1: chunked, 2: until close
        self.need = 0
        self.closing_after = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        if self.first is not None:
            req, self.first = self.first, None
            self.transport.write(req)

    def retire(self, abort: bool = False) -> None:
        self.retired = True
        if self.transport is not None:
            if abort:
                self.transport.abort()
            else:
                self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.retired:
            return
        self.retired = True
        client = self.client
        if client.in_flight and self.header_end >= 0 and self.body_mode == 2:
            client.response_done(self.status, bytes(self.buf[self.header_end:]), close=True)
        else:
            client.wire_lost(f"connection lost: {exc!r}")

    def data_received(self, data: bytes) -> None:
        if self.retired:
            return
        buf = self.buf
        buf += data
        while True:
            if self.header_end < 0:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                if not self._parse_head(bytes(buf[:end])):
                    return
                self.header_end = end + 4
            if self.body_mode == 0:
                total = self.header_end + self.need
                if len(buf) < total:
                    return
                body = bytes(buf[self.header_end:total])
                del buf[:total]
            elif self.body_mode == 1:
                parsed = _parse_chunked(buf, self.header_end)
                if parsed is None:
                    return
                body, used = parsed
                del buf[:used]
            else:
                return  # delimited by close: connection_lost completes it
            status, close = self.status, self.closing_after
            self._reset()
            if close:
                self.retire()
            self.client.response_done(status, body, close)
            if close or self.retired or not buf:
                return

    def _parse_head(self, head: bytes) -> bool:
        try:
            first, _, rest = head.partition(b"\r\n")
            version, status = first.split(b" ", 2)[:2]
            self.status = int(status)
            lower = rest.lower()
            http10 = version == b"HTTP/1.0"
            self.closing_after = (b"connection: close" in lower) or (
                http10 and b"connection: keep-alive" not in lower)
            at = lower.find(b"content-length:")
            if at >= 0:
                eol = lower.find(b"\r\n", at)
                self.need = int(lower[at + 15: eol if eol >= 0 else len(lower)])
                self.body_mode = 0
            elif b"transfer-encoding: chunked" in lower:
                self.body_mode = 1
            elif self.status in (204, 304) or 100 <= self.status < 200:
                self.need = 0
                self.body_mode = 0
            else:
                self.body_mode = 2
                self.closing_after = True
        except ValueError:
            self.retire(abort=True)
            self.client.wire_lost(f"unparseable response head: {head[:120]!r}")
            return False
        return True


class _Client:
    """One logical client connection: sends a request, waits for its response, repeats."""

    __slots__ = ("cursor", "finished", "in_flight", "run", "sent_ns", "wire")

    def __init__(self, run: _Run, cursor: int) -> None:
        self.run = run
        self.cursor = cursor
        self.wire: _Wire | None = None
        self.in_flight = False
        self.sent_ns = 0
        self.finished = False

    async def connect(self) -> None:
        wire = _Wire(self)
        await self.run.loop.create_connection(lambda: wire, self.run.spec.host, self.run.spec.port)
        self.wire = wire

    def issue(self) -> None:
        """Send the next request (on a new connection when the current one is gone), or finish."""
        req = self.run.next_request(self)
        if req is None:
            self.finish()
            return
        self.in_flight = True
        self.sent_ns = time.monotonic_ns()
        wire = self.wire
        if wire is not None and not wire.retired and wire.transport is not None:
            wire.transport.write(req)
            return
        self.run.result.reconnects += 1
        self.wire = _Wire(self, first=req)
        self.run.loop.create_task(self._connect_with(self.wire))

    async def _connect_with(self, wire: _Wire) -> None:
        try:
            await self.run.loop.create_connection(lambda: wire, self.run.spec.host, self.run.spec.port)
        except OSError as exc:
            if wire is self.wire:
                wire.retired = True
                self.in_flight = False
                self.run.failure(f"connect failed: {exc!r}")
                await asyncio.sleep(0.05)
                self.issue()

    def response_done(self, status: int, body: bytes, close: bool) -> None:
        if not self.in_flight:
            self.run.failure(f"unsolicited response {status}")
            return
        self.in_flight = False
        self.run.record(status, self.sent_ns, body)
        self.issue()

    def wire_lost(self, what: str) -> None:
        if self.in_flight:
            self.in_flight = False
            self.run.failure(what)
        if not self.finished:
            self.issue()

    def finish(self) -> None:
        if self.finished:
            return
        self.finished = True
        self.in_flight = False
        if self.wire is not None:
            self.wire.retire()
        self.run.conn_finished()

    def check_timeout(self, now_ns: int) -> None:
        if self.in_flight and now_ns - self.sent_ns > self.run.spec.request_timeout_s * NS:
            if self.wire is not None:
                self.wire.retire(abort=True)
            self.in_flight = False
            self.run.failure(f"request timed out after {self.run.spec.request_timeout_s} s")
            self.issue()


def _parse_chunked(buf: bytearray, start: int) -> tuple[bytes, int] | None:
    body = bytearray()
    pos = start
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None
        size = int(bytes(buf[pos:eol]).split(b";", 1)[0], 16)
        pos = eol + 2
        if size == 0:
            end = buf.find(b"\r\n\r\n", pos - 2)  # trailers end with an empty line
            if end < 0:
                return None
            return bytes(body), end + 4
        if len(buf) < pos + size + 2:
            return None
        body += buf[pos:pos + size]
        pos += size + 2


async def _worker_main(spec: LoadSpec, first_conn: int, n_conns: int, share: int | None,
                       start_ns: int) -> LoadResult:
    loop = asyncio.get_running_loop()
    run = _Run(spec, first_conn, share, start_ns, loop)
    stride = max(1, len(spec.requests) // max(1, spec.connections))
    for i in range(n_conns):
        conn = _Client(run, cursor=(first_conn + i) * stride)
        await conn.connect()
        run.conns.append(conn)
    run.active = len(run.conns)
    delay = (start_ns - time.monotonic_ns()) / NS
    if delay > 0:
        await asyncio.sleep(delay)
    cpu0 = os.times()
    cpu_window_start: os.times_result | None = None
    for conn in run.conns:
        conn.issue()
    hard_end = time.monotonic_ns() + int(spec.deadline_s * NS)
    while not run.done.done():
        now = time.monotonic_ns()
        if cpu_window_start is None and spec.duration_s is not None and now >= run.window_start_ns:
            cpu_window_start = os.times()
        if now >= hard_end:
            run.result.timed_out = True
            run.stopping = True
            for conn in run.conns:
                if conn.wire is not None:
                    conn.wire.retire(abort=True)
            break
        for conn in run.conns:
            conn.check_timeout(now)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(run.done), timeout=0.05)
    end_ns = time.monotonic_ns()
    cpu1 = os.times()
    base = cpu_window_start or cpu0
    run.result.client_cpu_s = (cpu1.user - base.user) + (cpu1.system - base.system)
    if spec.duration_s is not None:
        window_end = min(end_ns, run.window_end_ns or end_ns)
        run.result.window_s = max(0.0, (window_end - run.window_start_ns) / NS)
    else:
        run.result.window_s = (end_ns - start_ns) / NS
    for conn in run.conns:
        if conn.wire is not None:
            conn.wire.retire()
    return run.result


def _run_worker(spec: LoadSpec, first_conn: int, n_conns: int, share: int | None,
                start_ns: int) -> LoadResult:
    loop = uvloop.new_event_loop() if uvloop is not None else asyncio.new_event_loop()
    try:
        return loop.run_until_complete(_worker_main(spec, first_conn, n_conns, share, start_ns))
    finally:
        loop.close()


def _child(pipe: Connection, spec: LoadSpec, first_conn: int, n_conns: int, share: int | None,
           start_ns: int) -> None:
    try:
        pipe.send(_run_worker(spec, first_conn, n_conns, share, start_ns))
    except BaseException as exc:
        pipe.send(exc if isinstance(exc, Exception) else RuntimeError(repr(exc)))
    finally:
        pipe.close()


def run_load(spec: LoadSpec, procs: int = 1, on_tick: Callable[[], None] | None = None,
             on_window: Callable[[bool], None] | None = None, tick_s: float = 0.05,
             start_delay_s: float = 0.3) -> LoadResult:
    """Run ``spec`` in ``procs`` forked workers.

    While they run, ``on_tick()`` is called every ``tick_s``; for a time-based run, ``on_window(True)``
    when the measured window opens and ``on_window(False)`` when it closes (within a millisecond or so).
    """
    procs = max(1, min(procs, spec.connections))
    ctx = multiprocessing.get_context("fork")
    start_ns = time.monotonic_ns() + int(start_delay_s * NS)
    workers: list[tuple[Any, Connection]] = []
    base, extra = divmod(spec.connections, procs)
    first = 0
    for i in range(procs):
        n = base + (1 if i < extra else 0)
        share = None
        if spec.requests_total is not None:
            share = spec.requests_total * n // spec.connections + (
                1 if i < spec.requests_total * n % spec.connections else 0)
        parent_end, child_end = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_child, args=(child_end, spec, first, n, share, start_ns), daemon=True)
        proc.start()
        child_end.close()
        workers.append((proc, parent_end))
        first += n
    result = LoadResult()
    failures: list[BaseException] = []
    hard_end = time.monotonic() + spec.deadline_s + 30
    events: list[tuple[int, bool]] = []
    if on_window is not None and spec.duration_s is not None:
        window_start = start_ns + int(spec.warmup_s * NS)
        events = [(window_start, True), (window_start + int(spec.duration_s * NS), False)]

    def fire_due(now_ns: int) -> None:
        while events and now_ns >= events[0][0]:
            _, opening = events.pop(0)
            assert on_window is not None
            on_window(opening)

    try:
        for proc, pipe in workers:
            while True:
                now = time.monotonic_ns()
                fire_due(now)
                timeout = tick_s if not events else min(tick_s, max(0.0, (events[0][0] - now) / NS))
                if pipe.poll(timeout):
                    break
                if on_tick is not None:
                    on_tick()
                if time.monotonic() > hard_end:
                    raise TimeoutError("load generator worker did not finish")
                if not proc.is_alive() and not pipe.poll(0):
                    raise RuntimeError(f"load generator worker exited with {proc.exitcode}")
            got = pipe.recv()
            if isinstance(got, BaseException):
                failures.append(got)
            else:
                result.merge(got)
        fire_due(time.monotonic_ns() + 10**18)  # a window still open closes now
    finally:
        for proc, pipe in workers:
            pipe.close()
            proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join(5)
    if failures:
        raise RuntimeError(f"load generator worker failed: {failures[0]!r}") from failures[0]
    return result
