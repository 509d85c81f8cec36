"""S3 side by side: minicloud (STANDARD, ONEZONE_IA) and moto server, in one run.

    .venv/bin/python -m bench.s3 [--seconds 5] [--big-mib 1024] [--no-moto]

Figures: PUT and GET operations/s of 4 KiB objects at 16 keep-alive connections (pre-signed
SigV4 requests replayed by ``bench.loadgen``, so the client is not the bottleneck), single-stream
PUT and GET MB/s of one large object (a pre-signed single PUT, then GET), the time to list a
10,000-key bucket (10 pages of ListObjectsV2 through pre-signed URLs), and the server's peak RSS (VmHWM).
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config

from bench.loadgen import LoadSpec, run_load
from bench.minicloud_server import start_minicloud
from bench.peers import start_moto

KiB = 1024
MiB = 1024 * KiB


@dataclass
class Target:
    name: str
    endpoint: str
    port: int
    pid: int
    access_key_id: str
    secret_access_key: str
    storage_class: str | None = None

    def client(self) -> Any:
        return boto3.session.Session().client(
            "s3", endpoint_url=self.endpoint, region_name="us-east-1", aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))


def _frame(method: str, url: str, body: bytes = b"", headers: dict[str, str] | None = None) -> bytes:
    parts = urlsplit(url)
    lines = [f"{method} {parts.path}?{parts.query} HTTP/1.1", f"Host: {parts.netloc}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _presigned(s3: Any, method: str, bucket: str, key: str, extra: dict[str, Any] | None = None) -> str:
    operation = "put_object" if method == "PUT" else "get_object"
    return str(s3.generate_presigned_url(operation, Params={"Bucket": bucket, "Key": key, **(extra or {})},
                                         ExpiresIn=3600))


def _load(target: Target, requests: list[bytes], seconds: float) -> float:
    spec = LoadSpec(host="127.0.0.1", port=target.port, requests=requests, connections=16, warmup_s=1.0,
                    duration_s=seconds, record_latency=False)
    result = run_load(spec, procs=2)
    if result.errors:
        print(f"  {target.name}: {result.errors} errors {result.statuses} {result.error_samples[:1]}")
    return result.rps


def small_objects(target: Target, bucket: str, seconds: float) -> tuple[float, float]:
    s3 = target.client()
    extra = {"StorageClass": target.storage_class} if target.storage_class else {}
    body = os.urandom(4 * KiB)
    headers = {"x-amz-storage-class": target.storage_class} if target.storage_class else {}
    puts = [_frame("PUT", _presigned(s3, "PUT", bucket, f"small/{i}", extra), body, headers) for i in range(2000)]
    put_rps = _load(target, puts, seconds)
    for i in range(200):
        s3.put_object(Bucket=bucket, Key=f"get/{i}", Body=body)
    gets = [_frame("GET", _presigned(s3, "GET", bucket, f"get/{i}")) for i in range(200)]
    get_rps = _load(target, gets, seconds)
    return put_rps, get_rps


def big_object(target: Target, bucket: str, size: int) -> tuple[float, float]:
    s3 = target.client()
    extra = {"StorageClass": target.storage_class} if target.storage_class else {}
    chunk = os.urandom(MiB)
    url = urlsplit(_presigned(s3, "PUT", bucket, "big", extra))
    conn = http.client.HTTPConnection("127.0.0.1", target.port, timeout=600)
    headers = {"Content-Length": str(size)}
    if target.storage_class:
        headers["x-amz-storage-class"] = target.storage_class
    start = time.perf_counter()
    conn.putrequest("PUT", f"{url.path}?{url.query}", skip_accept_encoding=True)
    for k, v in headers.items():
        conn.putheader(k, v)
    conn.endheaders()
    for _ in range(size // MiB):
        conn.send(chunk)
    response = conn.getresponse()
    response.read()
    put_s = time.perf_counter() - start
    assert response.status == 200, response.status
    url = urlsplit(_presigned(s3, "GET", bucket, "big"))
    start = time.perf_counter()
    conn.request("GET", f"{url.path}?{url.query}")
    response = conn.getresponse()
    received = 0
    while True:
        data = response.read(MiB)
        if not data:
            break
        received += len(data)
    get_s = time.perf_counter() - start
    conn.close()
    assert received == size, received
    return size / MiB / put_s, size / MiB / get_s


def listing(target: Target, bucket: str) -> float:
    s3 = target.client()
    body = b"x"
    puts = [_frame("PUT", _presigned(s3, "PUT", bucket, f"list/{i:05d}"), body) for i in range(10_000)]
    spec = LoadSpec(host="127.0.0.1", port=target.port, requests=puts, connections=16, requests_total=10_000,
                    record_latency=False, deadline_s=300)
    result = run_load(spec, procs=2)
    if result.errors:
        print(f"  {target.name}: filling 10k keys: {result.statuses} {result.error_samples[:2]}")
    present = {o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="list/")
               for o in page.get("Contents", [])}
    for i in range(10_000):  # the generator's connections may replay a request twice and skip another
        if f"list/{i:05d}" not in present:
            s3.put_object(Bucket=bucket, Key=f"list/{i:05d}", Body=body)
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        assert _list_raw(s3, target.port, bucket) == 10_000
        best = min(best, time.perf_counter() - start)
    return best


def _list_raw(s3: Any, port: int, bucket: str) -> int:
    """ListObjectsV2 pages fetched with pre-signed URLs and counted, not parsed by boto3 (whose XML
    parsing of 1,000 entries costs more than the server's answer)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    token, count = None, 0
    while True:
        params = {"Bucket": bucket, "Prefix": "list/", **({"ContinuationToken": token} if token else {})}
        url = urlsplit(s3.generate_presigned_url("list_objects_v2", Params=params, ExpiresIn=300))
        conn.request("GET", f"{url.path}?{url.query}")
        body = conn.getresponse().read()
        count += body.count(b"<Key>")
        found = re.search(rb"<NextContinuationToken>([^<]+)</NextContinuationToken>", body)
        if found is None:
            conn.close()
            return count
        token = found.group(1).decode()


def peak_rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def measure(target: Target, seconds: float, big: int) -> dict[str, float]:
    bucket = f"bench-{uuid.uuid4().hex[:8]}"
    target.client().create_bucket(Bucket=bucket)
    put_rps, get_rps = small_objects(target, bucket, seconds)
    put_mb, get_mb = big_object(target, bucket, big)
    list_s = listing(target, bucket)
    return {"put_4k": put_rps, "get_4k": get_rps, "put_MBps": put_mb, "get_MBps": get_mb, "list_10k_s": list_s,
            "peak_rss_MiB": peak_rss_mib(target.pid)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--big-mib", type=int, default=1024)
    parser.add_argument("--no-moto", action="store_true")
    args = parser.parse_args()
    rows: list[tuple[str, dict[str, float]]] = []
    runs: list[tuple[str, Callable[[], Any], str | None]] = [
        ("minicloud STANDARD", start_minicloud, None), ("minicloud ONEZONE_IA", start_minicloud, "ONEZONE_IA")]
    if not args.no_moto:
        runs.append(("moto", start_moto, None))
    for name, start, storage_class in runs:
        server = start()
        try:
            target = Target(name, server.endpoint, server.port, server.pid, server.access_key_id,
                            server.secret_access_key, storage_class)
            rows.append((name, measure(target, args.seconds, args.big_mib * MiB)))
            print(name, {k: round(v, 3) for k, v in rows[-1][1].items()}, flush=True)
        finally:
            server.stop()
    columns = ["put_4k", "get_4k", "put_MBps", "get_MBps", "list_10k_s", "peak_rss_MiB"]
    print("\n| server | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    for name, values in rows:
        print(f"| {name} | " + " | ".join(f"{values[c]:.3g}" for c in columns) + " |")


if __name__ == "__main__":
    main()
