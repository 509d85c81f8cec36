"""Registry benchmark: minicloud's /v2/ vs CNCF distribution 2.8 (Debian's ``docker-registry``).

In one run, both servers up on loopback, measured alternately (``--rounds``, the order flipping):
- blob upload (POST, one streamed PATCH, PUT with the digest) and download (GET) of a ``--blob-mib``
  (1024) MiB random blob, in MB/s, and the server's peak RSS while streaming;
- manifest HEAD and GET requests per second at ``--connections`` (32) keep-alive connections;
- ``skopeo copy`` of a 10-layer image (``--image-mib``, 500 MiB in all) from an OCI layout into
  the registry and back out to a directory, in seconds, with the CPU seconds the server and skopeo
  spent (skopeo gzips each layer as it pushes: the two share the machine's cores).
minicloud authenticates every request (Basic credentials, IAM) and writes each blob to one replica
per availability zone (3, fsynced); distribution runs without auth and writes one copy.

    .venv/bin/python -m bench.registry [--rounds 2] [--blob-mib 1024]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import http.client
import json
import os
import resource
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import uvloop

from bench.minicloud_server import start_minicloud
from bench.proc import LOOPBACK, ServerProcess, clean_env, cpu_seconds, free_port, machine_busy_seconds, tree_rss

CHUNK = 1 << 20
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@dataclass
class Target:
    name: str
    port: int
    pid: int
    auth: dict[str, str]
    stop: Callable[[], object]
    creds: str | None = None  # user:password for skopeo


def start_distribution(tmp: Path) -> Target:
    port = free_port()
    config = tmp / "config.yml"
    config.write_text(f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {tmp}/data\n"
                      f"  delete:\n    enabled: true\nhttp:\n  addr: {LOOPBACK}:{port}\n")
    server = ServerProcess(name="distribution", argv=["docker-registry", "serve", str(config)],
                           env=clean_env(tmp_dir=tmp), cwd=tmp, log_path=tmp / "registry.log", port=port,
                           ready_path="/v2/", ready=lambda status, body: status == 200)
    server.start()
    return Target("distribution 2.8", port, server.pid, {}, server.stop)


def start_minicloud_target() -> Target:
    mc = start_minicloud()
    basic = base64.b64encode(f"{mc.access_key_id}:{mc.secret_access_key}".encode()).decode()
    return Target("minicloud", mc.port, mc.pid, {"Authorization": f"Basic {basic}"}, mc.stop,
                  f"{mc.access_key_id}:{mc.secret_access_key}")


def _conn(target: Target) -> http.client.HTTPConnection:
    # http.client sends a file body ``blocksize`` bytes per send(): its default, 8 KiB, made the
    # client itself a bottleneck of a 1 GiB upload on this 2-core machine (for both servers).
    return http.client.HTTPConnection(LOOPBACK, target.port, timeout=600, blocksize=CHUNK)


def _request(target: Target, method: str, path: str, body: object = None,
             headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
    conn = _conn(target)
    conn.request(method, path, body=body, headers={**target.auth, **(headers or {})})  # type: ignore[arg-type]
    return conn.getresponse()


class RssSampler:
    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_rss(self.pid).rss_mib)
            time.sleep(0.1)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def upload(target: Target, repo: str, path: Path, digest: str) -> float:
    start = time.perf_counter()
    r = _request(target, "POST", f"/v2/{repo}/blobs/uploads/")
    r.read()
    location = r.getheader("Location") or ""
    location = "/" + location.split("/", 3)[3] if location.startswith("http") else location
    with path.open("rb") as f:
        r = _request(target, "PATCH", location, f, {"Content-Type": "application/octet-stream",
                                                    "Content-Length": str(path.stat().st_size)})
        r.read()
    location = r.getheader("Location") or location
    location = "/" + location.split("/", 3)[3] if location.startswith("http") else location
    sep = "&" if "?" in location else "?"
    r = _request(target, "PUT", f"{location}{sep}digest={digest}")
    r.read()
    assert r.status == 201, (target.name, r.status)
    return time.perf_counter() - start


def download(target: Target, repo: str, digest: str) -> float:
    start = time.perf_counter()
    r = _request(target, "GET", f"/v2/{repo}/blobs/{digest}")
    assert r.status == 200, (target.name, r.status)
    while r.read(CHUNK):
        pass
    return time.perf_counter() - start


def push_small_image(target: Target, repo: str) -> str:
    blobs = []
    for data in (b'{"architecture":"amd64","os":"linux"}', os.urandom(1000)):
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        r = _request(target, "POST", f"/v2/{repo}/blobs/uploads/?digest={digest}", data,
                     {"Content-Type": "application/octet-stream"})
        r.read()
        if r.status != 201:  # distribution 2.8 wants POST then PUT
            location = r.getheader("Location") or ""
            location = "/" + location.split("/", 3)[3] if location.startswith("http") else location
            sep = "&" if "?" in location else "?"
            r = _request(target, "PUT", f"{location}{sep}digest={digest}", data)
            r.read()
        blobs.append({"digest": digest, "size": len(data)})
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **blobs[0]},
                           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", **blobs[1]}]})
    r = _request(target, "PUT", f"/v2/{repo}/manifests/latest", manifest, {"Content-Type": OCI_MANIFEST})
    r.read()
    assert r.status == 201, (target.name, r.status)
    return "sha256:" + hashlib.sha256(manifest.encode()).hexdigest()


async def _closed_loop(port: int, raw: bytes, head: bool, connections: int, warmup: float,
                       duration: float) -> float:
    """Responses with status 200 per second over ``connections`` keep-alive connections."""
    loop = asyncio.get_running_loop()
    start = loop.time() + warmup
    stop = start + duration
    counted = [0]

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(LOOPBACK, port)
        try:
            while loop.time() < stop:
                writer.write(raw)
                head_block = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head_block.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                if not head and length:
                    await reader.readexactly(length)
                if head_block.startswith(b"HTTP/1.1 200") and start <= loop.time() < stop:
                    counted[0] += 1
        finally:
            writer.close()
    await asyncio.gather(*(worker() for _ in range(connections)))
    return counted[0] / duration


def manifest_rps(target: Target, repo: str, method: str, connections: int, duration: float) -> float:
    headers = "".join(f"{k}: {v}\r\n" for k, v in target.auth.items())
    raw = (f"{method} /v2/{repo}/manifests/latest HTTP/1.1\r\nHost: {LOOPBACK}:{target.port}\r\n"
           f"Accept: {OCI_MANIFEST}\r\n{headers}\r\n").encode()
    return uvloop.run(_closed_loop(target.port, raw, method == "HEAD", connections, 1.0, duration))


def make_layout(root: Path, layers: int, total_mib: int) -> Path:
    """An OCI image layout with ``layers`` random layers (skopeo copies them as they are)."""
    layout = root / "layout"
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')

    def put(data: bytes) -> dict[str, object]:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return {"digest": f"sha256:{digest}", "size": len(data)}
    layer_type = "application/vnd.oci.image.layer.v1.tar"
    descriptors = [{"mediaType": layer_type, **put(os.urandom(total_mib * CHUNK // layers))} for _ in range(layers)]
    config = put(json.dumps({"architecture": "amd64", "os": "linux",
                             "rootfs": {"type": "layers", "diff_ids": [d["digest"] for d in descriptors]}}).encode())
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": descriptors,
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config}}).encode()
    index = {"schemaVersion": 2, "manifests": [{"mediaType": OCI_MANIFEST, **put(manifest),
                                                "annotations": {"org.opencontainers.image.ref.name": "v1"}}]}
    (layout / "index.json").write_text(json.dumps(index))
    return layout


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed_run(target: Target, argv: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """Wall seconds, the server's CPU seconds and skopeo's CPU seconds of one command."""
    server, client, start = cpu_seconds(target.pid), _children_cpu(), time.perf_counter()
    subprocess.run(argv, check=True, env=env, capture_output=True)
    return time.perf_counter() - start, cpu_seconds(target.pid) - server, _children_cpu() - client


def skopeo_copy(target: Target, layout: Path, repo: str, work: Path) -> dict[str, float]:
    """Push then pull; besides the seconds, the CPU seconds of the server and of skopeo (on 2 cores
    they share, a server that takes less CPU leaves more to skopeo's gzip and digests: these
    figures hold still on a busy machine when the wall times do not)."""
    home = Path(tempfile.mkdtemp(dir=work))  # a fresh blob-info cache: no shortcuts between runs
    env = {**os.environ, "HOME": str(home)}
    creds = ["--dest-creds", target.creds] if target.creds else []
    push = _timed_run(target, ["skopeo", "--insecure-policy", "copy", "--dest-tls-verify=false", *creds,
                               f"oci:{layout}:v1", f"docker://{LOOPBACK}:{target.port}/{repo}:v1"], env)
    creds = ["--src-creds", target.creds] if target.creds else []
    pull = _timed_run(target, ["skopeo", "--insecure-policy", "copy", "--src-tls-verify=false", *creds,
                               f"docker://{LOOPBACK}:{target.port}/{repo}:v1", f"dir:{home / 'out'}"], env)
    shutil.rmtree(home, ignore_errors=True)
    return {"skopeo push s": push[0], "skopeo pull s": pull[0],
            "skopeo push server CPU s": push[1], "skopeo push client CPU s": push[2],
            "skopeo pull server CPU s": pull[1], "skopeo pull client CPU s": pull[2]}


def measure(target: Target, args: argparse.Namespace, blob: Path, digest: str, layout: Path, work: Path,
            round_no: int) -> dict[str, float]:
    mib = blob.stat().st_size / CHUNK
    repo = f"bench/r{round_no}"
    phases = set(args.phases.split(","))
    out: dict[str, float] = {}
    if "blob" in phases:
        cpu, busy = cpu_seconds(target.pid), machine_busy_seconds()
        with RssSampler(target.pid) as up_rss:
            up = upload(target, repo, blob, digest)
        up_cpu, up_busy = cpu_seconds(target.pid) - cpu, machine_busy_seconds() - busy
        cpu, busy = cpu_seconds(target.pid), machine_busy_seconds()
        with RssSampler(target.pid) as down_rss:
            down = download(target, repo, digest)
        down_cpu, down_busy = cpu_seconds(target.pid) - cpu, machine_busy_seconds() - busy
        out |= {"upload MB/s": mib * 1.048576 / up, "download MB/s": mib * 1.048576 / down,
                "peak RSS upload MiB": up_rss.peak, "peak RSS download MiB": down_rss.peak,
                # CPU seconds the server spent per GiB, and the cores the whole machine was busy
                # (server, client, kernel writeback and everyone else's work): a noisy machine shows here.
                "upload server CPU s/GiB": up_cpu * 1024 / mib, "upload machine cores": up_busy / up,
                "download server CPU s/GiB": down_cpu * 1024 / mib, "download machine cores": down_busy / down}
    if "manifest" in phases:
        push_small_image(target, f"{repo}-small")
        out["manifest HEAD req/s"] = manifest_rps(target, f"{repo}-small", "HEAD", args.connections, args.duration)
        out["manifest GET req/s"] = manifest_rps(target, f"{repo}-small", "GET", args.connections, args.duration)
    if "skopeo" in phases:
        out |= skopeo_copy(target, layout, f"{repo}-skopeo", work)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--blob-mib", type=int, default=1024)
    parser.add_argument("--image-mib", type=int, default=500)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--phases", default="blob,manifest,skopeo",
                        help="comma-separated among blob (upload + download), manifest, skopeo")
    parser.add_argument("--targets", default="minicloud,distribution",
                        help="comma-separated among minicloud, distribution")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-registry-") as tmp:
        work = Path(tmp)
        blob = work / "blob.bin"
        hasher = hashlib.sha256()
        with blob.open("wb") as f:
            for _ in range(args.blob_mib):
                data = os.urandom(CHUNK)
                hasher.update(data)
                f.write(data)
        digest = f"sha256:{hasher.hexdigest()}"
        layout = make_layout(work, 10, args.image_mib) if "skopeo" in args.phases else work
        results: dict[str, list[dict[str, float]]] = {}
        wanted = set(args.targets.split(","))
        starters = [(name, starter) for name, starter in [("minicloud", start_minicloud_target),
                                                          ("distribution 2.8", None)]
                    if name.split()[0] in wanted]
        for round_no in range(args.rounds):
            order = starters if round_no % 2 == 0 else list(reversed(starters))
            for name, starter in order:
                peer_dir = Path(tempfile.mkdtemp(dir=work))
                target = starter() if starter else start_distribution(peer_dir)
                try:
                    results.setdefault(name, []).append(measure(target, args, blob, digest, layout, work, round_no))
                finally:
                    target.stop()
                    shutil.rmtree(peer_dir, ignore_errors=True)
        report(results, args)
    return 0


def report(results: dict[str, list[dict[str, float]]], args: argparse.Namespace) -> None:
    names = list(results)
    metrics = list(results[names[0]][0])
    print(f"\nregistry benchmark: median of {args.rounds} rounds; {args.blob_mib} MiB blob, "
          f"{args.connections} connections, 10-layer {args.image_mib} MiB image\n")
    print(f"| {'figure':<24} | " + " | ".join(f"{n:>16}" for n in names) + " | ratio |")
    print(f"|{'-' * 26}|" + "|".join("-" * 18 for _ in names) + "|-------|")
    for metric in metrics:
        values = [statistics.median(r[metric] for r in results[n]) for n in names]
        ratio = values[0] / values[1] if len(values) > 1 and values[1] else float("nan")  # minicloud first
        print(f"| {metric:<24} | " + " | ".join(f"{v:>16.1f}" for v in values) + f" | {ratio:5.2f} |")


if __name__ == "__main__":
    raise SystemExit(main())
