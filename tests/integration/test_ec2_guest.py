"""The debian AMI as a real instance: built by ``minicloud.images`` into a running minicloud's
registry, pulled by an engine (in-process, as inside minicloud) and run in namespace ``ec2`` with the
guest's boot script as PID 1, in a network namespace made here. A second namespace, joined to the
instance's by a veth pair, plays the outside world: Debian's ssh client logs in from there, and
the instance metadata service answers there at 169.254.169.254 (a route in the instance's namespace
sends it across, as the VPC router does). Nothing is added to the host's own network namespace.

Measured and printed (pytest -s): the time from the container's start to sshd's banner, and the
memory of the idle instance (its cgroup)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import minicloud.services.ec2.guest as guest
from minicloud.engine.images.registry import Credentials
from minicloud.engine.network.netns import NamespaceThread
from minicloud.engine.service import Engine, EngineSettings
from minicloud.engine.workloads import WorkloadSpec
from minicloud.services.ec2.imds import InstanceInfo, MetadataServer, RoleCredentials
from tests.integration.test_engine_workloads import LoopThread
from tests.support.images import base_images, image_cache  # noqa: F401 - fixtures
from tests.support.server import MinicloudServer

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("runc") or not shutil.which("ssh"),
    reason="an instance needs root, runc and Debian's ssh client")

INSTANCE_IP = "10.77.0.2"
OUTSIDE_IP = "10.77.0.1"
IMDS_IP = "169.254.169.254"
SSH_OPTIONS = ("-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
               "-o", "ConnectTimeout=5", "-o", "LogLevel=ERROR")
USER_DATA = b"""#!/bin/bash
echo "user-data-ran as $(id -un) on $(hostname)"
date >> /var/tmp/user-data-runs
"""


class Network:
    """The instance's namespace and an outside one, joined by a veth pair."""

    def __init__(self) -> None:
        suffix = uuid.uuid4().hex[:8]
        self.instance, self.outside = f"mcgi-{suffix}", f"mcgo-{suffix}"
        self.made: list[str] = []
        for name in (self.instance, self.outside):
            self._ip("netns", "add", name)
            self.made.append(name)
            self._ip("-n", name, "link", "set", "lo", "up")
        self._ip("-n", self.outside, "link", "add", "o0", "type", "veth", "peer", "name", "eth0",
                 "netns", self.instance)
        self._ip("-n", self.outside, "addr", "add", f"{OUTSIDE_IP}/24", "dev", "o0")
        self._ip("-n", self.outside, "addr", "add", f"{IMDS_IP}/32", "dev", "o0")
        self._ip("-n", self.outside, "link", "set", "o0", "up")
        self._ip("-n", self.instance, "addr", "add", f"{INSTANCE_IP}/24", "dev", "eth0")
        self._ip("-n", self.instance, "link", "set", "eth0", "up")
        self._ip("-n", self.instance, "route", "add", IMDS_IP, "via", OUTSIDE_IP)

    @property
    def instance_path(self) -> str:
        return f"/run/netns/{self.instance}"

    def outside_run(self, *command: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ip", "netns", "exec", self.outside, *command], capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)

    @staticmethod
    def _ip(*args: str) -> None:
        subprocess.run(["ip", *args], check=True, capture_output=True)

    def close(self) -> None:
        for name in self.made:
            subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)


class Metadata:
    """The EC2 provider's side of the metadata service, for the one instance of this test."""

    def __init__(self, info: InstanceInfo) -> None:
        self.info = info

    async def lookup(self, vpc_id: str, private_ip: str) -> InstanceInfo | None:
        return self.info if (vpc_id, private_ip) == ("vpc-test", self.info.private_ip) else None

    async def credentials(self, info: InstanceInfo) -> RoleCredentials | None:
        return RoleCredentials("ASIAGUESTTEST", "secret", "token", datetime.now(UTC) + timedelta(hours=1))


class Instance:
    def __init__(self, loop: LoopThread, engine: Engine, network: Network, work: Path, image: str) -> None:
        self.loop, self.engine, self.network, self.work = loop, engine, network, work
        self.instance_id = f"i-{uuid.uuid4().hex[:17]}"
        self.key = work / "key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.key)], check=True)
        public = (work / "key.pub").read_text().strip()
        guest.write_seed(work, guest.Seed(self.instance_id, "ip-10-77-0-2.ec2.internal", USER_DATA, (public,)))
        spec = WorkloadSpec(namespace="ec2", name=self.instance_id, image=image, command=guest.boot_command(),
                            entrypoint=[], hostname="ip-10-77-0-2.ec2.internal", memory_bytes=512 << 20,
                            pids_limit=512, netns=network.instance_path, binds=guest.guest_binds(work),
                            labels={"minicloud.test": "ec2-guest"})
        self.container = loop.run(engine.workloads.create(spec), timeout=300)

    def start(self) -> float:
        """Start it; the seconds until sshd's banner arrives from the outside namespace."""
        prober = NamespaceThread(Path(f"/run/netns/{self.network.outside}"))
        try:
            started = time.monotonic()
            self.loop.run(self.engine.workloads.start(self.container.id, "ec2"))
            self.loop.run(prober.call(lambda: wait_for_banner(INSTANCE_IP, 22, 20)), timeout=30)
            return time.monotonic() - started
        finally:
            prober.close()

    def stop(self) -> None:
        self.loop.run(self.engine.workloads.stop(self.container.id, "ec2"))

    def wait_exit(self, timeout: float = 30) -> int:
        done = self.loop.run(self.engine.workloads.wait(self.container.id, "ec2"), timeout=timeout)
        return done.state.exit_code

    def ssh(self, command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = self.network.outside_run("ssh", *SSH_OPTIONS, "-i", str(self.key), f"admin@{INSTANCE_IP}", command)
        if check and result.returncode != 0:
            raise AssertionError(f"ssh {command!r}: {result.returncode} {result.stderr}\nconsole:\n{self.console()}")
        return result

    def console(self) -> str:
        path = Path(self.engine.workloads.log_path(self.container))
        if not path.exists():
            return ""
        return "".join(json.loads(line)["log"] for line in path.read_text().splitlines() if line.strip())

    def memory(self) -> dict[str, int]:
        """The cgroup's charge, and the proportional set size of its processes and of the
        engine's supervisor (shim) of the container, which lives outside the cgroup."""
        cgroup = Path(f"/sys/fs/cgroup/memory/minicloud/{self.container.id}")
        stat = dict(line.split() for line in (cgroup / "memory.stat").read_text().splitlines())
        current = self.engine.workloads.find("ec2", self.container.id)
        assert current is not None
        tasks = [int(pid) for pid in (cgroup / "tasks").read_text().split()]
        return {"usage": int((cgroup / "memory.usage_in_bytes").read_text()), "rss": int(stat["total_rss"]),
                "cache": int(stat["total_cache"]), "processes": len(tasks), "pss": sum(map(pss, tasks)),
                "shim_pss": pss(current.state.shim_pid)}

    def remove(self) -> None:
        self.loop.run(self.engine.workloads.remove(self.container.id, "ec2"))


def pss(pid: int) -> int:
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    return next(int(line.split()[1]) * 1024 for line in rollup.splitlines() if line.startswith("Pss:"))


def wait_for_banner(host: str, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=1) as sock:
                if sock.recv(64).startswith(b"SSH-2.0-"):
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"no SSH banner from {host}:{port} within {timeout} s")
        time.sleep(0.01)


@pytest.fixture(scope="module")
def ami_images(server: MinicloudServer, base_images) -> dict[str, str]:  # type: ignore[no-untyped-def]  # noqa: F811
    """Every AMI's image reference, once they are in the server's registry."""
    refs = base_images.push(server, [recipe.name for recipe in guest.AMI_RECIPES])
    assert refs[guest.DEBIAN_AMI.name].endswith("/minicloud/ami-debian:bookworm")
    return {ami.recipe.name: ami.image for ami in guest.AMIS}


@pytest.fixture
def instance(request: pytest.FixtureRequest, server: MinicloudServer, ami_images: dict[str, str],
             tmp_path: Path) -> Iterator[Instance]:
    """An instance of the debian AMI (or of the recipe named by the test's ``ami`` parameter)."""
    ami_image = ami_images[getattr(request, "param", guest.DEBIAN_AMI.name)]
    assert server.root is not None
    loop = LoopThread()
    data = tmp_path / "engine"
    data.mkdir()
    engine = Engine(EngineSettings(data_dir=data, socket_path=data / "docker.sock", mirror=server.endpoint,
                                   mirror_credentials=Credentials(server.root.access_key_id,
                                                                  server.root.secret_access_key)))
    loop.run(engine.start())
    network = Network()
    created: Instance | None = None
    try:
        created = Instance(loop, engine, network, tmp_path, ami_image)
        yield created
    finally:
        if created is not None:
            loop.run(engine.workloads.remove(created.container.id, "ec2"))
        loop.run(engine.stop())
        loop.close()
        network.close()


def serve_metadata(instance: Instance) -> MetadataServer:
    info = InstanceInfo(
        instance_id=instance.instance_id, ami_id="ami-0debian0000000001", instance_type="t3.micro",
        private_ip=INSTANCE_IP, public_ip=None, availability_zone="us-east-1a", region="us-east-1",
        hostname="ip-10-77-0-2.ec2.internal", mac="02:00:0a:4d:00:02", user_data=USER_DATA, role_name="guest-role",
        security_groups=("default",), account_id="000000000000", vpc_id="vpc-test")
    server = MetadataServer(Metadata(info))

    def listening() -> socket.socket:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((IMDS_IP, 80))
        sock.listen()
        return sock

    thread = NamespaceThread(Path(f"/run/netns/{instance.network.outside}"))
    try:
        sock = instance.loop.run(thread.call(listening))
    finally:
        thread.close()
    instance.loop.run(server.serve("vpc-test", sock))
    return server


def test_debian_instance_boots_with_ssh_user_data_and_metadata(instance: Instance) -> None:
    to_ssh = instance.start()
    time.sleep(0.3)  # the user data runs just after sshd starts
    console = instance.console()
    print(f"\n--- console of {instance.instance_id} ---\n{console}---", file=sys.stderr)
    assert "Cloud-init v. " in console
    block = console.split("-----BEGIN SSH HOST KEY FINGERPRINTS-----\n", 1)[1].split("-----END SSH HOST KEY KEYS", 1)[0]
    assert len([line for line in block.splitlines() if line.startswith("ec2: 256 SHA256:")]) == 2
    assert "-----BEGIN SSH HOST KEY KEYS-----" in block and "Server listening" not in block

    # admin logs in with the seed's key; passwordless sudo; the key file as sshd wants it
    out = instance.ssh("id -un; hostname; sudo -n true && echo sudo-ok; stat -c '%a %U' ~/.ssh/authorized_keys")
    assert out.stdout.split("\n")[:4] == ["admin", "ip-10-77-0-2.ec2.internal", "sudo-ok", "600 admin"]
    assert "user-data-ran as root on ip-10-77-0-2.ec2.internal" in instance.console()
    # the fingerprint sshd presents is the one the console printed
    scanned = instance.network.outside_run("ssh-keyscan", "-t", "ed25519", INSTANCE_IP).stdout
    keyfile = instance.work / "scanned.pub"
    keyfile.write_text(scanned.split(" ", 1)[1])
    fingerprint = subprocess.run(["ssh-keygen", "-l", "-f", str(keyfile)], capture_output=True, text=True).stdout
    assert fingerprint.split()[1] in instance.console()
    # a password login is not offered
    refused = instance.network.outside_run(
        "ssh", *SSH_OPTIONS, "-o", "PreferredAuthentications=password", f"admin@{INSTANCE_IP}", "true")
    assert refused.returncode != 0 and "Permission denied" in refused.stderr

    # the metadata service, from the instance, with curl: IMDSv1 and v2
    metadata = serve_metadata(instance)
    try:
        out = instance.ssh("curl -sf http://169.254.169.254/latest/meta-data/instance-id; echo; "
                           "T=$(curl -sf -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' "
                           "http://169.254.169.254/latest/api/token); "
                           "curl -sf -H \"X-aws-ec2-metadata-token: $T\" "
                           "http://169.254.169.254/latest/meta-data/local-ipv4; echo; "
                           "curl -s -o /dev/null -w '%{http_code}' -H 'X-aws-ec2-metadata-token: bad' "
                           "http://169.254.169.254/latest/meta-data/local-ipv4; echo; "
                           "curl -sf http://169.254.169.254/latest/meta-data/iam/security-credentials/guest-role")
        lines = out.stdout.split("\n")
        assert lines[:3] == [instance.instance_id, INSTANCE_IP, "401"]
        assert json.loads("\n".join(lines[3:]))["AccessKeyId"] == "ASIAGUESTTEST"
    finally:
        instance.loop.run(metadata.close())

    time.sleep(2)
    memory = instance.memory()
    mib = {k: v / 2**20 for k, v in memory.items()}
    print(f"\nEC2 guest: container start -> sshd banner {to_ssh:.2f} s; idle instance: cgroup "
          f"{mib['usage']:.1f} MiB (rss {mib['rss']:.1f}, cache {mib['cache']:.1f}), {memory['processes']} processes "
          f"PSS {mib['pss']:.1f} MiB, engine shim PSS {mib['shim_pss']:.1f} MiB", file=sys.stderr)
    assert memory["pss"] + memory["shim_pss"] < 40 << 20

    # stop and start: files kept, user data not run again, new boot on the console
    instance.stop()
    assert instance.wait_exit() == guest.STOPPED_EXIT_CODE
    to_ssh_again = instance.start()
    assert instance.ssh("wc -l < /var/tmp/user-data-runs").stdout.strip() == "1"
    assert instance.console().count("user-data-ran as") == 1
    assert instance.console().count("running 'init'") == 2
    print(f"EC2 guest: second boot -> sshd banner {to_ssh_again:.2f} s", file=sys.stderr)

    # poweroff inside ends the container with the power-off code
    instance.ssh("sudo poweroff", check=False)
    assert instance.wait_exit() == guest.POWEROFF_EXIT_CODE
    assert "powered off" in instance.console()


def test_reboot_inside_exits_with_the_reboot_code(instance: Instance) -> None:
    instance.start()
    instance.ssh("sudo reboot", check=False)
    assert instance.wait_exit() == guest.REBOOT_EXIT_CODE
    instance.start()  # the controller starts it again: same files, user data not repeated
    assert instance.ssh("wc -l < /var/tmp/user-data-runs").stdout.strip() == "1"


@pytest.mark.parametrize("instance", ["busybox"], indirect=True)
def test_busybox_instance_runs_user_data_and_powers_off(instance: Instance) -> None:
    guest.write_seed(instance.work, guest.Seed(instance.instance_id, "ip-10-77-0-2.ec2.internal", b"#!/bin/sh\n"
                                               b"echo hello from $(hostname) as $(id -u)\npoweroff\n", ()))
    instance.loop.run(instance.engine.workloads.start(instance.container.id, "ec2"))
    assert instance.wait_exit() == guest.POWEROFF_EXIT_CODE
    console = instance.console()
    assert "hello from ip-10-77-0-2.ec2.internal as 0" in console and "Cloud-init v. " in console
    assert "SSH HOST KEY" not in console  # no SSH server in busybox
