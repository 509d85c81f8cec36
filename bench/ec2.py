"""EC2 benchmark: instances that really run (minicloud only) and the DescribeInstances API (side by
side with moto and MiniStack, which keep metadata only and run nothing).

1. Launch: ``RunInstances`` of the debian AMI (sshd) for 1 and for 20 instances at once into the
   default VPC (public subnets), timed to ``running`` in DescribeInstances (polled every 20 ms) and to
   the SSH banner on every instance's public address (127.x); for 1 instance also a full
   ``ssh -i key admin@ip true``. Then the memory of each idle instance (its memory cgroup:
   ``memory.usage_in_bytes`` and ``total_rss``), measured after ``--idle`` seconds.
2. API: ``--instances`` (500) instances recorded, then DescribeInstances (all of them in one answer)
   ``--calls`` times: p50 / p95 latency. minicloud runs this part with its controllers off, so the
   instances stay ``pending`` and nothing is started: the same work as the peers do.

    .venv/bin/python bench/run.py ec2 [--instances 500] [--calls 20] [--skip-launch] [--skip-api]
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config as BotoConfig

from bench import peers
from bench.proc import LOOPBACK, ServerProcess, clean_env, free_port

REPO = Path(__file__).resolve().parents[1]
REGION = "us-east-1"
SSH_OPTIONS = ("-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
               "-o", "ConnectTimeout=5", "-o", "LogLevel=ERROR")


@dataclass
class Server:
    process: ServerProcess
    tmp: tempfile.TemporaryDirectory[str]
    data_dir: Path
    keys: tuple[str, str]

    def client(self, service: str = "ec2") -> Any:
        return boto3.session.Session().client(
            service, endpoint_url=self.process.endpoint, region_name=REGION, aws_access_key_id=self.keys[0],
            aws_secret_access_key=self.keys[1], config=BotoConfig(retries={"max_attempts": 1}))

    def stop(self) -> None:
        try:
            self.process.stop(grace=30)
        finally:
            self.tmp.cleanup()


def start_minicloud(env: dict[str, str], timeout: float = 120.0) -> Server:
    tmp = tempfile.TemporaryDirectory(prefix="bench-ec2-")
    root = Path(tmp.name)
    data_dir = root / "data"
    data_dir.mkdir()
    port = free_port()
    process = ServerProcess(
        name="minicloud", argv=[sys.executable, "-m", "minicloud.cli", "up", "--host", LOOPBACK, "--port", str(port),
                                "--data-dir", str(data_dir)],
        env=clean_env({"HOME": str(root), **env}, tmp_dir=root), cwd=REPO, log_path=root / "server.log", port=port,
        ready_path="/_minicloud/health", ready=lambda status, body: status == 200)
    try:
        process.start(timeout)
        creds = json.loads((data_dir / "credentials.json").read_text())
    except BaseException:
        process.stop()
        tmp.cleanup()
        raise
    return Server(process, tmp, data_dir, (creds["access_key_id"], creds["secret_access_key"]))


def push_amis(server: Server, names: list[str]) -> None:
    import asyncio

    import minicloud.services.ec2.guest  # noqa: F401 - registers the AMI recipes
    from minicloud.images import ensure_images
    from minicloud.images.cache import default_cache_dir

    asyncio.run(ensure_images(server.process.endpoint, server.keys, names, default_cache_dir()))


def ami(ec2: Any, name: str) -> str:
    images = ec2.describe_images(Owners=["minicloud"], Filters=[{"Name": "name", "Values": [name]}])["Images"]
    return str(images[0]["ImageId"])


def wait_until(check: Callable[[], bool], timeout: float, every: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark step timed out")
        time.sleep(every)


def ssh_banner(address: str, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((address, 22), timeout=timeout) as conn:
            conn.settimeout(max(timeout, 1.0))
            return conn.recv(64).startswith(b"SSH-")
    except OSError:
        return False


SSH_RULE = [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]


def rule_latency(ec2: Any, group: str, address: str) -> dict[str, float]:
    """Seconds from a security group's RevokeSecurityGroupIngress (port 22) until a running instance
    drops new SSH connections, and from the AuthorizeSecurityGroupIngress that puts it back until
    they are answered again (probed every 20 ms, connects given 0.1 s)."""
    started = time.monotonic()
    ec2.revoke_security_group_ingress(GroupId=group, IpPermissions=SSH_RULE)
    wait_until(lambda: not ssh_banner(address, 0.1), 60)
    revoke = time.monotonic() - started
    started = time.monotonic()
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=SSH_RULE)
    wait_until(lambda: ssh_banner(address, 0.1), 60)
    return {"revoke_s": revoke, "authorize_s": time.monotonic() - started}


# -- 1. launch ---------------------------------------------------------------------------------------------
def instance_memory(data_dir: Path) -> list[tuple[int, int]]:
    """(usage_in_bytes, total_rss) of every running EC2 container's memory cgroup."""
    found = []
    for record in (data_dir / "engine" / "containers").glob("*/container.json"):
        doc = json.loads(record.read_text())
        if doc.get("namespace") != "ec2":
            continue
        cgroup = Path("/sys/fs/cgroup/memory/minicloud") / record.parent.name
        try:
            usage = int((cgroup / "memory.usage_in_bytes").read_text())
            stat = dict(line.split() for line in (cgroup / "memory.stat").read_text().splitlines())
        except OSError:
            continue
        found.append((usage, int(stat.get("total_rss", stat.get("rss", "0")))))
    return found


def launch_round(server: Server, image: str, key: Path, key_name: str,
                 count: int) -> tuple[dict[str, Any], list[str]]:
    ec2 = server.client()
    started = time.monotonic()
    reply = ec2.run_instances(ImageId=image, MinCount=count, MaxCount=count, InstanceType="t3.nano", KeyName=key_name)
    ids = [i["InstanceId"] for i in reply["Instances"]]
    api = time.monotonic() - started
    described: dict[str, dict[str, Any]] = {}

    def all_running() -> bool:
        reservations = ec2.describe_instances(InstanceIds=ids)["Reservations"]
        described.update({i["InstanceId"]: i for r in reservations for i in r["Instances"]})
        return all(i["State"]["Name"] == "running" for i in described.values())
    wait_until(all_running, 180)
    running = time.monotonic() - started
    addresses = [i["PublicIpAddress"] for i in described.values()]
    waiting = set(addresses)

    def banners() -> bool:
        for address in list(waiting):
            if ssh_banner(address):
                waiting.discard(address)
        return not waiting
    wait_until(banners, 180)
    out: dict[str, Any] = {"count": count, "api_s": api, "running_s": running,
                           "ssh_banner_s": time.monotonic() - started}
    if count == 1:
        login = time.monotonic()
        subprocess.run(["ssh", "-i", str(key), *SSH_OPTIONS, f"admin@{addresses[0]}", "true"], check=True,
                       timeout=30, stdin=subprocess.DEVNULL, capture_output=True)
        out["ssh_login_s"] = time.monotonic() - login
        group = described[ids[0]]["SecurityGroups"][0]["GroupId"]
        out.update(rule_latency(ec2, group, addresses[0]))
    return out, ids


def terminate(server: Server, ids: list[str]) -> None:
    ec2 = server.client()
    ec2.terminate_instances(InstanceIds=ids)
    wait_until(lambda: all(i["State"]["Name"] == "terminated" for r in ec2.describe_instances(InstanceIds=ids)[
        "Reservations"] for i in r["Instances"]), 180, every=0.2)


def bench_launch(idle: float) -> dict[str, Any]:
    server = start_minicloud({"MINICLOUD_EC2_MAX_INSTANCES": "50"})
    try:
        push_amis(server, ["ami-debian"])
        ec2 = server.client()
        image = ami(ec2, "debian-12-amd64-minicloud")
        group = ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"][0]["GroupId"]
        ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=SSH_RULE)
        key = server.data_dir.parent / "bench.pem"
        key.write_text(ec2.create_key_pair(KeyName="bench", KeyType="ed25519")["KeyMaterial"])
        key.chmod(0o600)
        _, warm = launch_round(server, image, key, "bench", 1)  # the engine pulls the AMI's image once
        terminate(server, warm)
        results: dict[str, Any] = {"rounds": []}
        for count in (1, 20):
            result, ids = launch_round(server, image, key, "bench", count)
            if count == 20:
                time.sleep(idle)
                memory = instance_memory(server.data_dir)
                result["idle_instances_measured"] = len(memory)
                result["memory_usage_mib_median"] = statistics.median(m[0] for m in memory) / 2**20
                result["memory_rss_mib_median"] = statistics.median(m[1] for m in memory) / 2**20
            results["rounds"].append(result)
            terminate(server, ids)
            print(f"  launch {count:>2}: {result}", flush=True)
        return results
    finally:
        server.stop()


# -- 2. the API with many instances ----------------------------------------------------------------------------
def record_instances(ec2: Any, image: str, total: int) -> None:
    left = total
    while left:
        batch = min(100, left)
        ec2.run_instances(ImageId=image, MinCount=batch, MaxCount=batch, InstanceType="t3.nano")
        left -= batch


def describe_latency(ec2: Any, calls: int, expected: int) -> dict[str, float]:
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        reservations = ec2.describe_instances()["Reservations"]
        times.append(time.perf_counter() - started)
        count = sum(len(r["Instances"]) for r in reservations)
        if count < expected:
            raise RuntimeError(f"DescribeInstances answered {count} instances, expected {expected}")
    times.sort()
    return {"p50_ms": statistics.median(times) * 1000, "p95_ms": times[int(0.95 * (len(times) - 1))] * 1000}


def peer_client(endpoint: str) -> Any:
    return boto3.session.Session().client(
        "ec2", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=peers.PEER_ACCESS_KEY_ID,
        aws_secret_access_key=peers.PEER_SECRET_ACCESS_KEY, config=BotoConfig(retries={"max_attempts": 1}))


def bench_api(total: int, calls: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    server = start_minicloud({"MINICLOUD_CONTROLLERS": "false", "MINICLOUD_EC2_MAX_INSTANCES": str(total + 10)})
    try:
        push_amis(server, ["busybox"])
        ec2 = server.client()
        record_instances(ec2, ami(ec2, "busybox-minicloud"), total)
        results["minicloud"] = describe_latency(ec2, calls, total)
    finally:
        server.stop()
    for name, start in (("moto", peers.start_moto), ("MiniStack", peers.start_ministack)):
        try:
            peer = start()
        except Exception as exc:  # a peer that cannot start is reported, not fatal
            results[name] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        try:
            ec2 = peer_client(peer.endpoint)
            images = ec2.describe_images().get("Images") or []
            image = images[0]["ImageId"] if images else "ami-12345678"
            record_instances(ec2, image, total)
            results[name] = describe_latency(ec2, calls, total)
            results[name]["version"] = peer.version
        except Exception as exc:
            results[name] = {"error": f"{type(exc).__name__}: {exc}"}
        finally:
            peer.stop()
        print(f"  {name}: {results[name]}", flush=True)
    return results


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench/run.py ec2", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=500)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--idle", type=float, default=10.0, help="seconds the 20 instances idle before memory")
    parser.add_argument("--skip-launch", action="store_true")
    parser.add_argument("--skip-api", action="store_true")
    args = parser.parse_args(list(argv))
    if not shutil.which("ssh"):
        print("ec2 bench needs Debian's ssh client", file=sys.stderr)
        return 2
    report: dict[str, Any] = {}
    if not args.skip_launch:
        print("ec2: launch (minicloud)", flush=True)
        report["launch"] = bench_launch(args.idle)
    if not args.skip_api:
        print(f"ec2: DescribeInstances with {args.instances} instances", flush=True)
        report["describe_instances"] = bench_api(args.instances, args.calls)
    results = REPO / "bench" / "results"
    results.mkdir(exist_ok=True)
    path = results / f"ec2-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    print(f"written to {path}")
    return 0
