"""Lambda benchmark: minicloud side by side with MiniStack (its local executor: functions as host child
processes), both driven through boto3 with the same python3.11 handler.

1. Cold: CreateFunction, wait until Active, then the first Invoke (timed: the invoke only), for
   ``--cold`` new functions; median and each value. A first function (not counted) makes sure the
   runtime's image is in minicloud's engine.
2. Warm: ``--warm`` sequential invocations of one function: p50 / p99.
3. Throughput: 8 threads (one boto3 client each) invoking one function for ``--seconds``: invocations/s.

minicloud runs each function in a container (engine ``lambda`` namespace, own network namespace,
memory cgroup) and checks SigV4 + IAM on every call; MiniStack runs the handler in a host process.

    .venv/bin/python bench/run.py lambda [--cold 5] [--warm 300] [--seconds 10] [--only minicloud]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config as BotoConfig

from bench import peers
from bench.proc import LOOPBACK, ServerProcess, clean_env, free_port

REPO = Path(__file__).resolve().parents[1]
REGION = "us-east-1"
HANDLER = "def handler(event, context):\n    return {'ok': True, 'n': event.get('n')}\n"
TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}


def package() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", HANDLER)
    return buffer.getvalue()


@dataclass
class Target:
    name: str
    endpoint: str
    keys: tuple[str, str]
    stop: Callable[[], None]
    role: str = "arn:aws:iam::000000000000:role/lambda-role"
    results: dict[str, Any] = field(default_factory=dict)

    def client(self) -> Any:
        return boto3.session.Session().client(
            "lambda", endpoint_url=self.endpoint, region_name=REGION, aws_access_key_id=self.keys[0],
            aws_secret_access_key=self.keys[1],
            config=BotoConfig(retries={"max_attempts": 1}, read_timeout=120, max_pool_connections=16))


def start_minicloud() -> Target:
    tmp = tempfile.TemporaryDirectory(prefix="bench-lambda-")
    root = Path(tmp.name)
    data_dir = root / "data"
    data_dir.mkdir()
    port = free_port()
    # The runtime images are built once into the user's image cache, not into the temporary HOME.
    cache = os.environ.get("MINICLOUD_IMAGE_CACHE") or str(Path.home() / ".cache" / "minicloud" / "images")
    server = ServerProcess(
        name="minicloud", argv=[sys.executable, "-m", "minicloud.cli", "up", "--host", LOOPBACK, "--port", str(port),
                                "--data-dir", str(data_dir)],
        env=clean_env({"HOME": str(root), "MINICLOUD_IMAGE_CACHE": cache}, tmp_dir=root), cwd=REPO,
        log_path=root / "server.log", port=port, ready_path="/_minicloud/health", ready=lambda s, b: s == 200)
    server.start(60)
    creds = json.loads((data_dir / "credentials.json").read_text())
    keys = (creds["access_key_id"], creds["secret_access_key"])

    def stop() -> None:
        try:
            server.stop(grace=30)
        finally:
            tmp.cleanup()

    target = Target("minicloud", server.endpoint, keys, stop)
    iam = boto3.session.Session().client("iam", endpoint_url=server.endpoint, region_name=REGION,
                                         aws_access_key_id=keys[0], aws_secret_access_key=keys[1])
    target.role = iam.create_role(RoleName="bench", AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
    return target


def start_ministack() -> Target:
    peer = peers.start_ministack()
    return Target(f"MiniStack {peer.version}", peer.endpoint, (peer.access_key_id, peer.secret_access_key), peer.stop)


def create(target: Target, client: Any, name: str) -> None:
    client.create_function(FunctionName=name, Runtime="python3.11", Role=target.role, Handler="app.handler",
                           Code={"ZipFile": package()}, Timeout=30)
    deadline = time.monotonic() + 900
    while client.get_function_configuration(FunctionName=name).get("State", "Active") != "Active":
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} never became Active on {target.name}")
        time.sleep(0.05)


def invoke(client: Any, name: str, n: int) -> float:
    started = time.perf_counter()
    response = client.invoke(FunctionName=name, Payload=json.dumps({"n": n}).encode())
    body = json.loads(response["Payload"].read())
    elapsed = time.perf_counter() - started
    if response.get("FunctionError") or body != {"ok": True, "n": n}:
        raise RuntimeError(f"unexpected result {response.get('FunctionError')} {body}")
    return elapsed * 1000


def cold(target: Target, count: int) -> None:
    client = target.client()
    create(target, client, "warmup")  # the runtime image pulled, the first environment's costs paid
    invoke(client, "warmup", 0)
    times = []
    for i in range(count):
        name = f"cold-{uuid.uuid4().hex[:8]}"
        create(target, client, name)
        times.append(invoke(client, name, i))
    target.results["cold"] = times


def warm(target: Target, count: int) -> None:
    client = target.client()
    create(target, client, "warm")
    for i in range(10):
        invoke(client, "warm", i)
    times = sorted(invoke(client, "warm", i) for i in range(count))
    target.results["warm_p50"] = statistics.median(times)
    target.results["warm_p99"] = times[min(len(times) - 1, int(len(times) * 0.99))]


def throughput(target: Target, seconds: float, threads: int = 8) -> None:
    clients = [target.client() for _ in range(threads)]
    for client in clients:  # every thread's environment warm first
        invoke(client, "warm", 0)
    counts = [0] * threads
    errors: list[str] = []
    stop_at = time.monotonic() + seconds

    def worker(index: int) -> None:
        client = clients[index]
        while time.monotonic() < stop_at:
            try:
                invoke(client, "warm", index)
                counts[index] += 1
            except Exception as exc:
                errors.append(str(exc)[:200])
                return

    started = time.monotonic()
    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    target.results["per_second"] = sum(counts) / (time.monotonic() - started)
    if errors:
        target.results["errors"] = errors[:3]


def report(targets: list[Target]) -> None:
    print("\n| | cold first invoke, median (ms) | warm p50 (ms) | warm p99 (ms) | invocations/s @8 |")
    print("|---|---:|---:|---:|---:|")
    for t in targets:
        r = t.results
        cold_ms = statistics.median(r["cold"]) if r.get("cold") else float("nan")
        print(f"| {t.name} | {cold_ms:.1f} | {r.get('warm_p50', float('nan')):.2f} | "
              f"{r.get('warm_p99', float('nan')):.2f} | {r.get('per_second', float('nan')):.0f} |")
    for t in targets:
        print(f"# {t.name} cold values: {', '.join(f'{v:.0f}' for v in t.results.get('cold', []))}"
              + (f"; errors: {t.results['errors']}" if t.results.get("errors") else ""))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/run.py lambda", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cold", type=int, default=5)
    parser.add_argument("--warm", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--only", choices=("minicloud", "ministack"))
    args = parser.parse_args(argv)
    starters = {"minicloud": start_minicloud, "ministack": start_ministack}
    names = [args.only] if args.only else list(starters)
    targets: list[Target] = []
    try:
        for name in names:
            targets.append(starters[name]())
        phases: list[Callable[[Target], None]] = [lambda t: cold(t, args.cold), lambda t: warm(t, args.warm),
                                                  lambda t: throughput(t, args.seconds)]
        for phase in phases:
            for target in targets:  # alternating: each phase on every target before the next
                phase(target)
        report(targets)
    finally:
        for target in targets:
            target.stop()
    return 0


if __name__ == "__main__":
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    raise SystemExit(main())
