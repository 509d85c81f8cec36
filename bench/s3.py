"""S3 side by side, in one run on one machine: minicloud (STANDARD and ONEZONE_IA), moto server, MiniStack (S3
persistence on), SeaweedFS and nginx (the same files as static content: the floor for GETs).

    .venv/bin/python -m bench.s3                                   # a few minutes
    .venv/bin/python -m bench.s3 --seconds 2 --big-mib 128         # short, for development
    .venv/bin/python -m bench.s3 --targets minicloud-1z --profile bench/results/s3-profile

Figures, for each server in turn (started fresh, measured, stopped):
- 4 KiB PUT and GET operations/s at ``--connections`` (16) keep-alive connections: distinct pre-signed requests
  (``bench.s3_wire.QuerySigner``; PUTs of distinct random bodies to distinct keys, GETs of ``--get-objects``
  objects) replayed by ``bench.loadgen`` in ``--procs`` processes; ``--warmup`` s then ``--seconds`` s measured,
  only 200s count;
- single-stream MB/s of one ``--big-mib`` (1024) MiB object: multipart PUT (CreateMultipartUpload, pre-signed
  UploadPart requests of ``--part-mib`` MiB sent one after the other on one keep-alive connection with
  ``sendfile`` from a file in the page cache, CompleteMultipartUpload; the whole sequence timed), then one GET
  read with ``recv_into`` (first and last MiB compared with the file);
- the time to list a bucket of exactly 10,000 keys (ListObjectsV2 pages of 1,000 through pre-signed URLs on one
  keep-alive connection, keys counted, not parsed; best of 3);
- the peak RSS of the server's process tree during the large PUT and GET (VmHWM reset with clear_refs before,
  and RSS sampled every 20 ms; the larger of the two), summed over the processes; and the peak PSS (every
  100 ms), which counts a page shared by several processes (a forked S3 worker's copy of the code) once.
nginx serves the same bytes from files (``<bucket>/<key>``) for the GETs only. The table gives each figure, the
ratios of minicloud to the faster Python peer (moto/MiniStack), to SeaweedFS, and for GETs to nginx.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import html
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from bench import peers, wrk
from bench.loadgen import LoadResult, LoadSpec, run_load
from bench.minicloud_server import start_minicloud
from bench.proc import (
    LOOPBACK,
    cpu_seconds,
    machine_busy_seconds,
    process_tree,
    set_autogroup_nice,
    tree_pss_kib,
    tree_rss,
)
from bench.profile import PySpy, ensure_py_spy, summarize
from bench.s3_wire import QuerySigner, Wire, frame

KiB = 1024
MiB = 1024 * KiB
REGION = "us-east-1"
RESULTS = Path(__file__).resolve().parent / "results"
LIST_KEYS = 10_000

# key -> display name; the order of the run and of the table's columns
TARGETS = {
    "minicloud-std": "minicloud STANDARD",
    "minicloud-1z": "minicloud ONEZONE_IA",
    "moto": "moto",
    "ministack": "MiniStack",
    "seaweedfs": "SeaweedFS",
    "nginx": "nginx",
}
PYTHON_PEERS = ("moto", "ministack")
MINICLOUD = ("minicloud-std", "minicloud-1z")


def log(msg: str) -> None:
    print(f"# {time.strftime('%H:%M:%S')} {msg}", file=sys.stderr, flush=True)


@dataclass
class Options:
    targets: Sequence[str] = tuple(TARGETS)
    seconds: float = 5.0
    warmup_s: float = 1.0
    connections: int = 16
    procs: int = 2
    put_pool: int = 8192
    get_objects: int = 1000
    big_mib: int = 1024
    part_mib: int = 64
    list_keys: int = LIST_KEYS
    profile: Path | None = None
    json_path: Path = RESULTS / "s3.json"
    nice: int = 0  # niceness of the harness, the servers and the generator (inherited)
    minicloud_env: dict[str, str] = field(default_factory=dict)  # MINICLOUD_* settings of the minicloud targets
    client: str = "wrk"  # the 4 KiB phases' load generator: "wrk" (bench/wrk.py) or "python" (bench/loadgen.py)


@dataclass
class Running:
    """A server under test: where it listens, whose keys sign, how it stops."""

    key: str
    name: str
    version: str
    port: int
    pid: int
    access_key_id: str
    secret_access_key: str
    stop: Callable[[], None]
    storage_class: str | None = None
    auth_checks: str = ""
    s3: bool = True  # False: nginx (static GETs only)

    @property
    def host(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def signer(self) -> QuerySigner:
        return QuerySigner(self.access_key_id, self.secret_access_key, self.host, REGION)

    def client(self) -> Any:
        return boto3.session.Session().client(
            "s3", endpoint_url=f"http://{self.host}", region_name=REGION, aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                          retries={"max_attempts": 1}))

    @property
    def class_headers(self) -> dict[str, str]:
        return {"x-amz-storage-class": self.storage_class} if self.storage_class else {}


@dataclass
class Phase:
    """Load or stream figures with the CPU that went into them (cores busy during the phase)."""

    value: float | None = None
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    server_cores: float = 0.0
    client_cores: float = 0.0
    other_cores: float = 0.0     # everything else on the machine: noise from other work
    note: str = ""


@dataclass
class Result:
    key: str
    name: str
    version: str = ""
    auth_checks: str = ""
    put_ops: Phase | None = None
    get_ops: Phase | None = None
    put_mbps: Phase | None = None
    get_mbps: Phase | None = None
    list_s: Phase | None = None
    rss_put_mib: float | None = None
    rss_get_mib: float | None = None
    pss_put_mib: float | None = None
    pss_get_mib: float | None = None
    failed: str | None = None
    profiles: dict[str, str] = field(default_factory=dict)

    @property
    def peak_rss_mib(self) -> float | None:
        values = [v for v in (self.rss_put_mib, self.rss_get_mib) if v is not None]
        return max(values) if values else None

    @property
    def peak_pss_mib(self) -> float | None:
        values = [v for v in (self.pss_put_mib, self.pss_get_mib) if v is not None]
        return max(values) if values else None


# -- CPU accounting -----------------------------------------------------------------------------------
def _own_cpu() -> float:
    """CPU seconds of this process and of its children that have been waited for (the load generators)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


@contextlib.contextmanager
def metered(server_pid: int, phase: Phase, client_cpu: Callable[[], float] | None = None) -> Iterator[None]:
    """Record the cores used by the server, by this client and by everything else while the block runs."""
    wall0, busy0, server0, own0 = time.monotonic(), machine_busy_seconds(), cpu_seconds(server_pid), _own_cpu()
    yield
    wall = max(1e-6, time.monotonic() - wall0)
    server = cpu_seconds(server_pid) - server0
    own = client_cpu() if client_cpu is not None else _own_cpu() - own0
    phase.server_cores = server / wall
    phase.client_cores = own / wall
    phase.other_cores = max(0.0, (machine_busy_seconds() - busy0 - server - own) / wall)


# -- peak RSS ----------------------------------------------------------------------------------------
def reset_peak_rss(pid: int) -> None:
    """Reset VmHWM of the server's processes to their current RSS (``/proc/<pid>/clear_refs``: 5)."""
    for p in process_tree(pid):
        with contextlib.suppress(OSError), open(f"/proc/{p}/clear_refs", "w") as f:
            f.write("5")


class RssSampler:
    """Peak RSS of the server's processes (summed: a page two processes share counts twice), and
    their peak PSS (shared pages counted once), sampled less often (reading it walks page tables)."""

    PSS_EVERY = 5  # samples

    def __init__(self, pid: int, interval_s: float = 0.02) -> None:
        self.pid = pid
        self.interval_s = interval_s
        self.peak_kib = 0
        self.peak_pss_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        tick = 0
        while not self._stop.is_set():
            self.peak_kib = max(self.peak_kib, tree_rss(self.pid).rss_kib)
            if tick % self.PSS_EVERY == 0:
                self.peak_pss_kib = max(self.peak_pss_kib, tree_pss_kib(self.pid))
            tick += 1
            self._stop.wait(self.interval_s)

    def __enter__(self) -> RssSampler:
        reset_peak_rss(self.pid)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_kib = max(self.peak_kib, tree_rss(self.pid).hwm_kib)

    @property
    def peak_mib(self) -> float:
        return self.peak_kib / 1024

    @property
    def peak_pss_mib(self) -> float:
        return self.peak_pss_kib / 1024


class GilSpy(PySpy):
    """py-spy's samples of the thread holding the GIL only (``--gil``): minicloud's S3 runs file and metadata
    work in thread pools, whose threads waiting in fsync or for the GIL would otherwise fill the profile."""

    def start(self, max_seconds: int = 120) -> None:
        exe = ensure_py_spy()
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [str(exe), "record", "--pid", str(self.pid), "--format", "raw", "--rate", str(self.rate), "--gil",
             "--nonblocking", "--duration", str(max_seconds), "--output", str(self.out)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


# -- starting servers --------------------------------------------------------------------------------
def start(key: str, www: Path, minicloud_env: Mapping[str, str] | None = None) -> Running:
    name = TARGETS[key]
    if key in MINICLOUD:
        mc = start_minicloud(env=minicloud_env)
        settings = " ".join(f"{k}={v}" for k, v in (minicloud_env or {}).items())
        return Running(key, name, f"{mc.version} {settings}".strip(), mc.port, mc.pid, mc.access_key_id,
                       mc.secret_access_key, mc.stop, "ONEZONE_IA" if key == "minicloud-1z" else "STANDARD",
                       mc.auth_checks)
    peer: peers.Peer
    if key == "moto":
        peer = peers.start_moto()
    elif key == "ministack":
        peer = peers.start_ministack(s3_persist=True)
    elif key == "seaweedfs":
        peer = peers.start_seaweedfs()
    elif key == "nginx":
        peer = peers.start_nginx(www)
    else:
        raise ValueError(key)
    if key == "ministack":
        # MiniStack checks pre-signed URLs even with AUTH off, against its root keys (AWS_ACCESS_KEY_ID and
        # AWS_SECRET_ACCESS_KEY, unset here: "test"/"test"; ministack/core/iam_evaluator.py resolve_credential).
        return Running(key, name, peer.version, peer.port, peer.pid, "test", "test", peer.stop, None,
                       "pre-signed URLs: SigV4 checked (root keys test/test); headers: off (default)")
    return Running(key, name, peer.version, peer.port, peer.pid, peer.access_key_id, peer.secret_access_key,
                   peer.stop, None, peer.auth_checks, s3=key != "nginx")


def create_bucket(target: Running, bucket: str, timeout_s: float = 60.0) -> None:
    """Create the bucket and check a PUT and a GET go through (SeaweedFS needs a moment for its volumes)."""
    s3 = target.client()
    s3.create_bucket(Bucket=bucket)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            s3.put_object(Bucket=bucket, Key="warm-up", Body=b"x" * 4096)
            assert s3.get_object(Bucket=bucket, Key="warm-up")["Body"].read() == b"x" * 4096
            s3.delete_object(Bucket=bucket, Key="warm-up")
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


# -- small objects ----------------------------------------------------------------------------------
def _load(target: Running, requests: list[bytes], opts: Options, phase: Phase,
          profile_to: Path | None = None) -> LoadResult:
    spec = LoadSpec(LOOPBACK, target.port, requests, connections=opts.connections, warmup_s=opts.warmup_s,
                    duration_s=opts.seconds, record_latency=False, deadline_s=opts.warmup_s + opts.seconds + 60)
    window: dict[str, float] = {}
    spy: PySpy | None = None

    def on_window(opening: bool) -> None:
        nonlocal spy
        now = (time.monotonic(), machine_busy_seconds(), cpu_seconds(target.pid))
        if opening:
            window.update(t=now[0], busy=now[1], server=now[2])
            if profile_to is not None:
                spy = GilSpy(target.pid, profile_to)
                spy.start(max_seconds=int(opts.seconds) + 30)
        else:
            window.update(t1=now[0], busy1=now[1], server1=now[2])
            if spy is not None:
                spy.stop()

    if opts.client == "wrk":
        result = wrk.replay(LOOPBACK, target.port, requests, opts.connections, opts.procs, opts.warmup_s,
                            opts.seconds, on_window)
    else:
        result = run_load(spec, procs=opts.procs, on_window=on_window)
    if "t1" in window:
        wall = max(1e-6, window["t1"] - window["t"])
        server = window["server1"] - window["server"]
        phase.server_cores = server / wall
        phase.client_cores = result.client_cpu_util
        phase.other_cores = max(0.0, (window["busy1"] - window["busy"] - server - result.client_cpu_s) / wall)
    phase.value = result.rps
    phase.errors = result.errors
    phase.statuses = dict(result.statuses)
    if result.errors:
        phase.note = f"{result.errors} errors {result.statuses} {result.error_samples[:1]}"
        log(f"{target.name}: {phase.note}")
    return result


def fill(target: Running, bucket: str, prefix: str, bodies: Sequence[bytes], opts: Options) -> None:
    """PUT ``<prefix><i>`` = bodies[i] for every i, with the load generator, then whatever it missed one by one."""
    signer = target.signer()
    requests = [frame("PUT", signer.sign("PUT", f"/{bucket}/{prefix}{i}", None, target.class_headers),
                      target.host, target.class_headers, body) for i, body in enumerate(bodies)]
    spec = LoadSpec(LOOPBACK, target.port, requests, connections=opts.connections, requests_total=len(requests),
                    record_latency=False, deadline_s=600)
    result = run_load(spec, procs=opts.procs)
    if result.errors:
        log(f"{target.name}: filling {prefix}: {result.statuses} {result.error_samples[:1]}")
    # The generator's connections start at spread offsets of the list: a few requests may run twice, others never.
    present = set(list_keys(target, bucket, prefix)[1])
    wire = Wire(target.port)
    for i, request in enumerate(requests):
        if f"{prefix}{i}" not in present:
            response = wire.request(request)
            if response.status != 200:
                raise RuntimeError(f"{target.name}: PUT {prefix}{i}: {response.status} {response.body[:300]!r}")
    wire.close()


def small_objects(target: Running, bucket: str, www: Path, opts: Options, result: Result) -> None:
    signer = target.signer()
    gets = [os.urandom(4 * KiB) for _ in range(opts.get_objects)]
    if target.s3:
        bodies = (os.urandom(4 * KiB) for _ in range(opts.put_pool))
        puts = [frame("PUT", signer.sign("PUT", f"/{bucket}/small/{i}", None, target.class_headers), target.host,
                      target.class_headers, body) for i, body in enumerate(bodies)]
        result.put_ops = Phase()
        log(f"{target.name}: 4 KiB PUT x{opts.connections}")
        _load(target, puts, opts, result.put_ops, _profile_path(opts, target, "put"))
        del puts
        fill(target, bucket, "get/", gets, opts)
    else:  # nginx: the same bytes as files
        folder = www / bucket / "get"
        folder.mkdir(parents=True, exist_ok=True)
        for i, body in enumerate(gets):
            (folder / str(i)).write_bytes(body)
    requests = [frame("GET", signer.sign("GET", f"/{bucket}/get/{i}"), target.host) for i in range(len(gets))]
    check = Wire(target.port)
    for i in (0, len(gets) - 1):
        response = check.request(requests[i])
        if response.status != 200 or response.body != gets[i]:
            raise RuntimeError(f"{target.name}: GET get/{i}: {response.status}, {len(response.body)} bytes")
    check.close()
    result.get_ops = Phase()
    log(f"{target.name}: 4 KiB GET x{opts.connections}")
    _load(target, requests, opts, result.get_ops, _profile_path(opts, target, "get"))


def _profile_path(opts: Options, target: Running, what: str) -> Path | None:
    if opts.profile is None or target.key not in MINICLOUD:
        return None
    return opts.profile / f"{target.key}-{what}.folded"


# -- one large object --------------------------------------------------------------------------------
@dataclass
class BigFile:
    path: Path
    size: int
    part_size: int
    part_md5s: list[bytes]
    head: bytes
    tail: bytes

    @property
    def multipart_etag(self) -> str:
        return f'"{hashlib.md5(b"".join(self.part_md5s)).hexdigest()}-{len(self.part_md5s)}"'


def make_big_file(path: Path, size: int, part_size: int) -> BigFile:
    path.parent.mkdir(parents=True, exist_ok=True)
    md5s = []
    with open(path, "wb") as f:
        for offset in range(0, size, part_size):
            part = os.urandom(min(part_size, size - offset))
            md5s.append(hashlib.md5(part).digest())
            f.write(part)
    with open(path, "rb") as f:
        head = f.read(MiB)
        f.seek(max(0, size - MiB))
        tail = f.read()
    return BigFile(path, size, part_size, md5s, head, tail)


def big_put(target: Running, bucket: str, big: BigFile, result: Result) -> None:
    s3 = target.client()
    signer = target.signer()
    phase = result.put_mbps = Phase()
    wire = Wire(target.port)
    with RssSampler(target.pid) as rss, metered(target.pid, phase), open(big.path, "rb") as f:
        start = time.perf_counter()
        extra = {"StorageClass": target.storage_class} if target.storage_class else {}
        upload_id = s3.create_multipart_upload(Bucket=bucket, Key="big", **extra)["UploadId"]
        parts = []
        for number, offset in enumerate(range(0, big.size, big.part_size), start=1):
            count = min(big.part_size, big.size - offset)
            target_path = signer.sign("PUT", f"/{bucket}/big", {"partNumber": str(number), "uploadId": upload_id})
            response = wire.request(frame("PUT", target_path, target.host, content_length=count),
                                    body=f, offset=offset, count=count)
            if response.status != 200:
                raise RuntimeError(f"{target.name}: UploadPart {number}: {response.status} {response.body[:300]!r}")
            parts.append({"PartNumber": number, "ETag": response.headers["etag"]})
        done = s3.complete_multipart_upload(Bucket=bucket, Key="big", UploadId=upload_id,
                                            MultipartUpload={"Parts": parts})
        elapsed = time.perf_counter() - start
    wire.close()
    phase.value = big.size / MiB / elapsed
    result.rss_put_mib = rss.peak_mib
    result.pss_put_mib = rss.peak_pss_mib
    if done.get("ETag") != big.multipart_etag:
        phase.note = f"ETag {done.get('ETag')} (expected {big.multipart_etag})"


def big_get(target: Running, bucket: str, big: BigFile, result: Result) -> None:
    phase = result.get_mbps = Phase()
    head, tail = bytearray(), bytearray()
    tail_from = max(0, big.size - MiB)

    def sink(piece: memoryview, offset: int) -> None:
        end = offset + len(piece)
        if offset < MiB:
            head.extend(piece[:MiB - offset])
        if end > tail_from:
            tail.extend(piece[max(0, tail_from - offset):])

    request = frame("GET", target.signer().sign("GET", f"/{bucket}/big"), target.host)
    wire = Wire(target.port)
    with RssSampler(target.pid) as rss, metered(target.pid, phase):
        start = time.perf_counter()
        response = wire.request(request, sink)
        elapsed = time.perf_counter() - start
    wire.close()
    if response.status != 200 or response.length != big.size:
        raise RuntimeError(f"{target.name}: GET big: {response.status}, {response.length} bytes")
    if bytes(head) != big.head or bytes(tail) != big.tail:
        raise RuntimeError(f"{target.name}: GET big: the bytes differ from the file")
    phase.value = big.size / MiB / elapsed
    result.rss_get_mib = rss.peak_mib
    result.pss_get_mib = rss.peak_pss_mib


# -- listing ------------------------------------------------------------------------------------------
_TOKEN = re.compile(rb"<NextContinuationToken>([^<]+)</NextContinuationToken>")
_KEY = re.compile(rb"<Key>([^<]*)</Key>")


def list_keys(target: Running, bucket: str, prefix: str = "", wire: Wire | None = None,
              keep: bool = True) -> tuple[int, list[str]]:
    """ListObjectsV2 pages of 1,000 through pre-signed URLs on one connection: (count, keys when ``keep``)."""
    signer = target.signer()
    own = wire is None
    wire = wire or Wire(target.port)
    token: str | None = None
    count, keys = 0, []
    while True:
        params = {"list-type": "2", "max-keys": "1000", **({"prefix": prefix} if prefix else {}),
                  **({"continuation-token": token} if token else {})}
        response = wire.request(frame("GET", signer.sign("GET", f"/{bucket}", params), target.host))
        if response.status != 200:
            raise RuntimeError(f"{target.name}: ListObjectsV2: {response.status} {response.body[:300]!r}")
        if keep:
            found = [html.unescape(k.decode()) for k in _KEY.findall(response.body)]
            count += len(found)
            keys += found
        else:
            count += response.body.count(b"<Key>")
        more = _TOKEN.search(response.body)
        if more is None:
            break
        token = html.unescape(more.group(1).decode())
    if own:
        wire.close()
    return count, keys


def listing(target: Running, opts: Options, result: Result) -> None:
    bucket = f"list-{uuid.uuid4().hex[:8]}"
    create_bucket(target, bucket)
    log(f"{target.name}: filling a bucket with {opts.list_keys} keys")
    fill(target, bucket, "key/", [b"x"] * opts.list_keys, opts)
    phase = result.list_s = Phase()
    best = float("inf")
    wire = Wire(target.port)
    with metered(target.pid, phase):
        for _ in range(3):
            start = time.perf_counter()
            count, _ = list_keys(target, bucket, wire=wire, keep=False)
            best = min(best, time.perf_counter() - start)
            if count != opts.list_keys:
                raise RuntimeError(f"{target.name}: listed {count} keys, expected {opts.list_keys}")
    wire.close()
    phase.value = best


# -- one server ---------------------------------------------------------------------------------------
def measure(key: str, opts: Options, www: Path, big: BigFile, bucket: str) -> Result:
    result = Result(key, TARGETS[key])
    log(f"starting {result.name}")
    try:
        target = start(key, www, opts.minicloud_env)
    except Exception as exc:  # a peer that cannot start is reported, the rest still runs
        result.failed = f"did not start: {exc}"
        log(f"{result.name}: {result.failed}")
        return result
    result.version, result.auth_checks = target.version, target.auth_checks
    try:
        if target.s3:
            create_bucket(target, bucket)
        small_objects(target, bucket, www, opts, result)
        if target.s3:
            log(f"{target.name}: {opts.big_mib} MiB multipart PUT")
            big_put(target, bucket, big, result)
        else:
            reset_peak_rss(target.pid)
        log(f"{target.name}: {opts.big_mib} MiB GET")
        big_get(target, bucket, big, result)
        if target.s3:
            listing(target, opts, result)
    except Exception as exc:
        result.failed = f"{type(exc).__name__}: {exc}"
        log(f"{target.name}: FAILED: {result.failed}")
    finally:
        target.stop()
    if opts.profile is not None:
        for what in ("put", "get"):
            path = _profile_path(opts, target, what)
            if path is not None and path.exists():
                result.profiles[what] = summarize(path).render(20)
    return result


# -- the table ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Figure:
    label: str
    get: Callable[[Result], float | None]
    higher_is_better: bool
    fmt: str
    nginx: bool = False  # compared with nginx too


FIGURES = (
    Figure("4 KiB PUT ops/s @16", lambda r: r.put_ops.value if r.put_ops else None, True, "{:,.0f}"),
    Figure("4 KiB GET ops/s @16", lambda r: r.get_ops.value if r.get_ops else None, True, "{:,.0f}", True),
    Figure("1 GiB PUT MB/s (multipart, 1 stream)", lambda r: r.put_mbps.value if r.put_mbps else None, True,
           "{:,.0f}"),
    Figure("1 GiB GET MB/s (1 stream)", lambda r: r.get_mbps.value if r.get_mbps else None, True, "{:,.0f}", True),
    Figure("list 10,000 keys, s", lambda r: r.list_s.value if r.list_s else None, False, "{:.3f}"),
    Figure("peak RSS during the 1 GiB transfer, MiB", lambda r: r.peak_rss_mib, False, "{:,.0f}"),
    Figure("peak PSS during the 1 GiB transfer, MiB", lambda r: r.peak_pss_mib, False, "{:,.0f}"),
)


def _ratio(ours: float | None, theirs: float | None, higher_is_better: bool) -> float | None:
    if not ours or not theirs:
        return None
    return ours / theirs if higher_is_better else theirs / ours


def _fmt_ratio(values: Sequence[float | None]) -> str:
    return " / ".join("-" if v is None else f"{v:.2f}x" for v in values)


def faster_python_peer(results: dict[str, Result], figure: Figure) -> tuple[str, float] | None:
    values = [(TARGETS[k], v) for k in PYTHON_PEERS if k in results and (v := figure.get(results[k])) is not None]
    if not values:
        return None
    return (max if figure.higher_is_better else min)(values, key=lambda kv: kv[1])


def render(results: dict[str, Result], opts: Options, big_label: str) -> str:
    keys = [k for k in TARGETS if k in results]
    mc = [k for k in MINICLOUD if k in results]
    mc_label = "/".join("STD" if k == "minicloud-std" else "1Z" for k in mc)
    header = ["figure", *(TARGETS[k] for k in keys), f"{mc_label} vs faster Python peer",
              f"{mc_label} vs SeaweedFS", f"{mc_label} vs nginx"]
    lines = ["| " + " | ".join(header) + " |", "|---" + "|---:" * (len(header) - 1) + "|"]
    for figure in FIGURES:
        label = figure.label.replace("1 GiB", big_label).replace("10,000", f"{opts.list_keys:,}")
        cells = [label]
        for k in keys:
            value = figure.get(results[k])
            cells.append("-" if value is None else figure.fmt.format(value))
        best_py = faster_python_peer(results, figure)
        seaweed = figure.get(results["seaweedfs"]) if "seaweedfs" in results else None
        nginx = figure.get(results["nginx"]) if "nginx" in results and figure.nginx else None
        ours = [figure.get(results[k]) for k in mc]
        cells.append(_fmt_ratio([_ratio(o, best_py[1] if best_py else None, figure.higher_is_better) for o in ours])
                     + (f" ({best_py[0]})" if best_py else ""))
        cells.append(_fmt_ratio([_ratio(o, seaweed, figure.higher_is_better) for o in ours]))
        cells.append(_fmt_ratio([_ratio(o, nginx, figure.higher_is_better) for o in ours]) if figure.nginx else "")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Ratios: minicloud's advantage (for times and RSS the peer's figure over minicloud's), so > 1x "
                 "is better for minicloud.")
    client = "wrk (bench/wrk.py)" if opts.client == "wrk" else "bench/loadgen.py"
    unit = "threads" if opts.client == "wrk" else "processes"
    lines.append(f"4 KiB phases: {opts.connections} keep-alive connections from {client}, {opts.procs} {unit}, "
                 f"{opts.warmup_s:g} s warm-up, {opts.seconds:g} s measured.")
    return "\n".join(lines)


def goals(results: dict[str, Result], big_label: str = "1 GiB") -> list[str]:
    """The issue's goals, met or missed, from the figures of this run."""
    out: list[str] = []
    std, one = results.get("minicloud-std"), results.get("minicloud-1z")
    if one is None and std is None:
        return out
    main_ = one or std
    assert main_ is not None

    def verdict(ok: bool | None) -> str:
        return "n/a" if ok is None else ("MET" if ok else "MISSED")

    for figure in FIGURES[:2]:
        best = faster_python_peer(results, figure)
        sw = figure.get(results["seaweedfs"]) if "seaweedfs" in results else None
        for r in (x for x in (std, one) if x is not None):
            v = figure.get(r)
            ok = None if v is None or best is None else v >= 5 * best[1] and (sw is None or v > sw)
            out.append(f"{figure.label}, {r.name}: {v and round(v)} vs 5x {best and best[0]} "
                       f"({best and round(5 * best[1])}) and SeaweedFS ({sw and round(sw)}): {verdict(ok)}")
    for figure in FIGURES[2:4]:
        best = faster_python_peer(results, figure)
        for r in (x for x in (one, std) if x is not None):
            v = figure.get(r)
            ok = None if v is None or best is None else v >= 2 * best[1]
            label = figure.label.replace("1 GiB", big_label)
            out.append(f"{label}, {r.name}: {v and round(v)} vs 2x {best and best[0]} "
                       f"({best and round(2 * best[1])}): {verdict(ok)}")
    nginx = FIGURES[3].get(results["nginx"]) if "nginx" in results else None
    for r in (x for x in (one, std) if x is not None):
        v = FIGURES[3].get(r)
        ok = None if v is None or nginx is None else v >= 0.7 * nginx
        out.append(f"large GET >= 70% of nginx, {r.name}: {v and round(v)} vs {nginx and round(0.7 * nginx)}: "
                   f"{verdict(ok)}")
    for r in (x for x in (std, one) if x is not None):
        v = FIGURES[4].get(r)
        out.append(f"list 10k keys < 0.3 s, {r.name}: {v and round(v, 3)} s: {verdict(None if v is None else v < 0.3)}")
        v = r.peak_rss_mib
        out.append(f"peak RSS < 200 MiB, {r.name}: {v and round(v)} MiB: {verdict(None if v is None else v < 200)}")
    return out


def notes(results: dict[str, Result]) -> list[str]:
    out = []
    for r in results.values():
        if r.failed:
            out.append(f"{r.name}: FAILED: {r.failed}")
        parts = []
        for label, phase in (("PUT 4K", r.put_ops), ("GET 4K", r.get_ops), ("PUT big", r.put_mbps),
                             ("GET big", r.get_mbps), ("list", r.list_s)):
            if phase is not None:
                parts.append(f"{label} server {phase.server_cores:.2f} / client {phase.client_cores:.2f} / "
                             f"other {phase.other_cores:.2f} cores" + (f" [{phase.note}]" if phase.note else ""))
        out.append(f"{r.name} {r.version} (auth: {r.auth_checks or '?'}): " + "; ".join(parts))
    return out


# -- main ---------------------------------------------------------------------------------------------
def parse(argv: Sequence[str]) -> Options:
    parser = argparse.ArgumentParser(prog="bench/run.py s3", description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", default=",".join(TARGETS), help=f"comma-separated among {', '.join(TARGETS)}")
    parser.add_argument("--seconds", type=float, default=5.0, help="measured window of each ops/s phase")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--procs", type=int, default=2, help="load generator processes (wrk: threads)")
    parser.add_argument("--client", choices=("wrk", "python"), default="wrk" if wrk.available() else "python",
                        help="the 4 KiB phases' load generator: Debian's wrk replaying the pre-signed requests "
                             "(default when installed), or bench/loadgen.py")
    parser.add_argument("--put-pool", type=int, default=8192, help="distinct 4 KiB PUT requests (replayed in turn)")
    parser.add_argument("--get-objects", type=int, default=1000)
    parser.add_argument("--big-mib", type=int, default=1024)
    parser.add_argument("--part-mib", type=int, default=64)
    parser.add_argument("--list-keys", type=int, default=LIST_KEYS)
    parser.add_argument("--profile", type=Path, default=None,
                        help="py-spy --gil of minicloud's 4 KiB phases into this dir")
    parser.add_argument("--json", type=Path, default=RESULTS / "s3.json")
    parser.add_argument("--nice", type=int, default=-10 if os.geteuid() == 0 else 0,
                        help="niceness of the harness, every server and the generator (as bench/foundation.py)")
    parser.add_argument("--minicloud-env", action="append", default=[], metavar="MINICLOUD_X=value",
                        help="a setting for the minicloud targets (e.g. MINICLOUD_S3_WORKERS=1); repeatable")
    args = parser.parse_args(list(argv))
    settings = dict(item.split("=", 1) for item in args.minicloud_env if "=" in item)
    if any(not key.startswith("MINICLOUD_") for key in settings) or len(settings) != len(args.minicloud_env):
        parser.error("--minicloud-env takes MINICLOUD_NAME=value")
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    unknown = [t for t in targets if t not in TARGETS]
    if unknown:
        parser.error(f"unknown targets {unknown}; known: {', '.join(TARGETS)}")
    if args.part_mib < 5 and args.big_mib > args.part_mib:
        parser.error("parts other than the last must be at least 5 MiB")
    return Options(targets=targets, seconds=args.seconds, warmup_s=args.warmup, connections=args.connections,
                   procs=args.procs, put_pool=args.put_pool, get_objects=args.get_objects, big_mib=args.big_mib,
                   part_mib=args.part_mib, list_keys=args.list_keys, profile=args.profile, json_path=args.json,
                   nice=args.nice, minicloud_env=settings, client=args.client)


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse(sys.argv[1:] if argv is None else argv)
    results: dict[str, Result] = {}
    started = datetime.now(UTC)
    if opts.nice:
        try:
            os.setpriority(os.PRIO_PROCESS, 0, opts.nice)
            set_autogroup_nice(os.getpid(), opts.nice)  # the servers' own sessions get it in ServerProcess.start
        except OSError as exc:
            log(f"could not set niceness {opts.nice}: {exc}")
    with tempfile.TemporaryDirectory(prefix="bench-s3-") as tmp:
        www = Path(tmp) / "www"  # nginx's root: <bucket>/<key>, world-readable for its workers
        Path(tmp).chmod(0o755)
        bucket = f"bench-{uuid.uuid4().hex[:8]}"
        log(f"writing a {opts.big_mib} MiB random file")
        big = make_big_file(www / bucket / "big", opts.big_mib * MiB, min(opts.part_mib, opts.big_mib) * MiB)
        for path in (www, www / bucket):
            path.chmod(0o755)
        try:
            for key in opts.targets:
                results[key] = measure(key, opts, www, big, bucket)
        except KeyboardInterrupt:
            log("interrupted: reporting what was measured")
    big_label = "1 GiB" if opts.big_mib == 1024 else f"{opts.big_mib} MiB"
    table = render(results, opts, big_label)
    print(f"\nS3, {started:%Y-%m-%d %H:%M} UTC, {opts.connections} connections, {opts.seconds:g} s windows, "
          f"{big_label} object in {min(opts.part_mib, opts.big_mib)} MiB parts\n")
    print(table)
    print()
    for line in notes(results):
        print(f"- {line}")
    print("\nGoals:")
    for line in goals(results, big_label):
        print(f"- {line}")
    for r in results.values():
        for what, text in r.profiles.items():
            print(f"\n### py-spy --gil, {r.name}, 4 KiB {what.upper()}\n\n```\n{text}\n```")
    opts.json_path.parent.mkdir(parents=True, exist_ok=True)
    opts.json_path.write_text(json.dumps({"started": started.isoformat(), "options": {
        k: str(v) for k, v in asdict(opts).items()}, "results": {k: asdict(r) for k, r in results.items()}},
        indent=2))
    return 1 if any(r.failed for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
