"""Engine namespaces: a service's workloads (EC2 instances, Lambda environments) run on the same
engine as the user's containers but the Docker API never shows them, and each namespace has its
own names. The engine runs in-process here; the docker CLI talks to its socket."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from minicloud.engine.service import Engine, EngineSettings
from minicloud.engine.workloads import Bind, WorkloadSpec
from tests.integration.test_engine import DOCKER, busybox_rootfs_tar

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("runc") or not Path("/bin/busybox").exists(),
    reason="the engine needs root, runc and busybox-static")

T = TypeVar("T")


class LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


class Harness:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.loop = LoopThread()
        self.engine = Engine(EngineSettings(data_dir=work / "data", socket_path=work / "data" / "docker.sock"))
        (work / "data").mkdir(parents=True, exist_ok=True)
        self.loop.run(self.engine.start())
        (work / "docker-config").mkdir()
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(work),
                    "DOCKER_HOST": f"unix://{work / 'data' / 'docker.sock'}",
                    "DOCKER_CONFIG": str(work / "docker-config")}

    def docker(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([DOCKER, *args], env=self.env, capture_output=True, text=True, timeout=60,
                                stdin=subprocess.DEVNULL)
        if check and result.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)}: {result.stderr}")
        return result

    def close(self) -> None:
        self.loop.run(self.engine.stop())
        self.loop.close()


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    h = Harness(tmp_path_factory.mktemp("workloads"))
    h.docker("import", str(busybox_rootfs_tar(h.work)), "busybox")
    yield h
    h.close()


def test_workloads_are_invisible_to_the_docker_api(harness: Harness, tmp_path: Path) -> None:
    workloads = harness.engine.workloads
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "hello").write_text("from the host\n")
    spec = WorkloadSpec(namespace="svc", name="web", image="busybox", command=["sh", "-c", "cat /mnt/hello; sleep 60"],
                        memory_bytes=64 << 20, binds=(Bind(str(tmp_path / "shared"), "/mnt"),),
                        labels={"minicloud.test": "1"})
    container = harness.loop.run(workloads.create(spec))
    harness.loop.run(workloads.start(container.id, "svc"))
    try:
        assert workloads.find("svc", "web") is not None
        assert workloads.find("docker", "web") is None
        assert [c.id for c in workloads.list("svc")] == [container.id]
        # Docker's user sees nothing of it, not even by its full id, and may use the same name.
        assert container.id not in harness.docker("ps", "-aq", "--no-trunc").stdout
        assert harness.docker("inspect", container.id, check=False).returncode != 0
        assert "No such container" in harness.docker("rm", "-f", container.id, check=False).stderr
        assert workloads.find("svc", container.id) is not None
        harness.docker("create", "--name", "web", "busybox", "true")
        harness.docker("rm", "web")
        log = Path(workloads.log_path(container))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if log.exists() and "from the host" in log.read_text():
                break
            harness.loop.run(asyncio.sleep(0.05))
        assert "from the host" in log.read_text()
        memory = Path(f"/sys/fs/cgroup/memory/minicloud/{container.id}/memory.limit_in_bytes")
        if memory.exists():
            assert int(memory.read_text()) == 64 << 20
        harness.loop.run(workloads.pause(container.id, "svc"))
        harness.loop.run(workloads.unpause(container.id, "svc"))
    finally:
        harness.loop.run(workloads.remove(container.id, "svc"))
    assert workloads.find("svc", "web") is None


def test_a_workload_joins_a_network_namespace_it_is_given(harness: Harness) -> None:
    name = f"mcwl-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "add", "probe0", "type", "veth", "peer", "name", "probe1"],
                       check=True)
        subprocess.run(["ip", "-n", name, "addr", "add", "10.99.0.7/24", "dev", "probe0"], check=True)
        spec = WorkloadSpec(namespace="svc", name="netted", image="busybox", command=["ip", "-4", "addr"],
                            netns=f"/run/netns/{name}")
        workloads = harness.engine.workloads
        container = harness.loop.run(workloads.create(spec))
        harness.loop.run(workloads.start(container.id, "svc"))
        done = harness.loop.run(workloads.wait(container.id, "svc"))
        assert done.state.exit_code == 0
        assert "10.99.0.7" in Path(workloads.log_path(container)).read_text()
        harness.loop.run(workloads.remove(container.id, "svc"))
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def test_the_docker_api_refuses_namespace_paths(harness: Harness) -> None:
    result = harness.docker("run", "--rm", "--network", "ns:/proc/1/ns/net", "busybox", "true", check=False)
    assert result.returncode != 0
