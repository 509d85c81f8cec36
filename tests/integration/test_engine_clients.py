"""The engine driven by real clients other than the docker CLI: docker-py (7.1) and
testcontainers-python, against the session's ``minicloud up``.

Images come from ``minicloud images bootstrap`` (busybox and nginx, built from Debian's packages
once per machine and pushed into the server's registry), and are pulled by their Docker Hub
names: the engine takes ``docker.io`` from minicloud's own registry.

testcontainers starts a "ryuk" reaper container by default; its image (testcontainers/ryuk) cannot
be had offline, so the tests turn it off (``TESTCONTAINERS_RYUK_DISABLED=true``, the documented
switch) and remove their containers themselves. Where ``/.dockerenv`` exists testcontainers assumes
Docker-in-Docker; ``TESTCONTAINERS_CONNECTION_MODE=docker_host`` says the engine is local.
"""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker  # type: ignore[import-untyped]
import pytest
from docker.errors import APIError, ImageNotFound, NotFound  # type: ignore[import-untyped]

from tests.support.images import BaseImages, base_images, image_cache  # noqa: F401 - fixtures
from tests.support.server import MinicloudServer, free_port

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("runc"), reason="the engine needs root and runc")

HTTPD = "mkdir -p /www && echo hello from $(hostname) > /www/index.html && exec httpd -f -p 80 -h /www"


@pytest.fixture(scope="module")
def images(server: MinicloudServer, base_images: BaseImages) -> dict[str, str]:  # noqa: F811
    return base_images.push(server, ["busybox", "nginx"])


@pytest.fixture(scope="module")
def client(server: MinicloudServer, images: dict[str, str]) -> Iterator[docker.DockerClient]:
    api = docker.DockerClient(base_url=f"unix://{server.data_dir / 'docker.sock'}", version="1.47", timeout=120)
    api.images.pull("busybox", tag="latest")
    yield api
    for container in api.containers.list(all=True, filters={"label": "test=clients"}):
        container.remove(force=True)
    api.close()


def http_get(url: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return str(response.read().decode())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def run_detached(client: docker.DockerClient, command: str, **kw: Any) -> Any:
    return client.containers.run("busybox", ["sh", "-c", command], detach=True, labels={"test": "clients"}, **kw)


def test_pull_and_run(client: docker.DockerClient) -> None:
    image = client.images.get("busybox:latest")
    assert "busybox:latest" in image.tags and image.id.startswith("sha256:")
    assert client.containers.run("busybox", ["echo", "hello"], remove=True) == b"hello\n"
    with pytest.raises(docker.errors.ContainerError) as failed:
        client.containers.run("busybox", ["sh", "-c", "echo oops >&2; exit 3"], remove=True)
    assert failed.value.exit_status == 3 and b"oops" in (failed.value.stderr or b"")
    with pytest.raises(ImageNotFound):
        client.images.pull("library/no-such-image", tag="latest")


def test_detached_with_a_published_port(client: docker.DockerClient) -> None:
    port = free_port()
    container = run_detached(client, HTTPD, ports={"80/tcp": ("127.0.0.1", port)}, hostname="web1")
    try:
        assert http_get(f"http://127.0.0.1:{port}/index.html") == "hello from web1\n"
        container.reload()
        assert container.status == "running"
        assert container.ports == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}
    finally:
        container.remove(force=True)
    with pytest.raises(NotFound):
        client.containers.get(container.id)


def test_logs_stream_and_exec(client: docker.DockerClient) -> None:
    container = run_detached(client, "i=0; while true; do echo line $i; i=$((i+1)); sleep 0.1; done")
    try:
        stream = container.logs(stream=True, follow=True)
        received = b""
        while received.count(b"\n") < 4:
            received += next(stream)
        assert received.startswith(b"line 0\nline 1\nline 2\nline 3\n")
        code, output = container.exec_run(["sh", "-c", "echo $GREETING; exit 5"], environment={"GREETING": "hi"})
        assert (code, output) == (5, b"hi\n")
        code, (out, err) = container.exec_run(["sh", "-c", "echo out; echo err >&2"], demux=True)
        assert (code, out, err) == (0, b"out\n", b"err\n")
        assert container.exec_run("id -u", user="nobody").output == b"65534\n"
    finally:
        container.remove(force=True)


def test_volumes(client: docker.DockerClient) -> None:
    volume = client.volumes.create("clients-data", labels={"test": "clients"})
    try:
        client.containers.run("busybox", ["sh", "-c", "echo kept > /data/f"], remove=True,
                              volumes={"clients-data": {"bind": "/data", "mode": "rw"}})
        out = client.containers.run("busybox", ["cat", "/data/f"], remove=True,
                                    volumes={"clients-data": {"bind": "/data", "mode": "ro"}})
        assert out == b"kept\n"
        with pytest.raises(docker.errors.ContainerError):
            client.containers.run("busybox", ["touch", "/data/g"], remove=True,
                                  volumes={"clients-data": {"bind": "/data", "mode": "ro"}})
        assert [v.name for v in client.volumes.list(filters={"label": "test=clients"})] == ["clients-data"]
    finally:
        volume.remove()
    with pytest.raises(NotFound):
        client.volumes.get("clients-data")


def test_two_containers_resolve_each_other_on_a_network(client: docker.DockerClient) -> None:
    network = client.networks.create("clients-net", driver="bridge")
    server = run_detached(client, HTTPD, name="clients-web", hostname="web2", network="clients-net")
    try:
        out = client.containers.run(
            "busybox", ["sh", "-c", "for i in $(seq 50); do wget -qO- http://clients-web/ && exit; sleep 0.1; done"],
            remove=True, network="clients-net")
        assert out == b"hello from web2\n"
        network.reload()
        assert [c.name for c in network.containers] == ["clients-web"]
        isolated = client.containers.run("busybox", ["sh", "-c", "nslookup clients-web >/dev/null 2>&1; echo $?"],
                                         remove=True)
        assert isolated.strip() != b"0"  # the default bridge does not resolve names of another network
    finally:
        server.remove(force=True)
        network.remove()


def test_archives_top_stats_diff(client: docker.DockerClient) -> None:
    """put_archive/get_archive (docker cp's API), top, stats and diff through docker-py."""
    container = run_detached(client, "sleep 1000")
    try:
        packed = io.BytesIO()
        with tarfile.open(fileobj=packed, mode="w") as tar:
            info = tarfile.TarInfo("hello.txt")
            info.size, info.mode = 6, 0o640
            tar.addfile(info, io.BytesIO(b"hello\n"))
        assert container.put_archive("/tmp", packed.getvalue()) is True
        assert container.exec_run("stat -c %a /tmp/hello.txt").output == b"640\n"
        chunks, stat = container.get_archive("/tmp/hello.txt")
        assert stat["name"] == "hello.txt" and stat["size"] == 6
        with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
            member = tar.extractfile("hello.txt")
            assert member is not None and member.read() == b"hello\n"
        with pytest.raises(NotFound):
            container.get_archive("/no/such/file")
        top = container.top()
        assert "PID" in top["Titles"] and [p[-1] for p in top["Processes"]] == ["sleep 1000"]
        stats = container.stats(stream=False)
        assert stats["pids_stats"]["current"] == 1 and stats["memory_stats"]["usage"] > 0
        assert stats["cpu_stats"]["system_cpu_usage"] > stats["precpu_stats"].get("system_cpu_usage", 0)
        assert {"Path": "/tmp/hello.txt", "Kind": 1} in container.diff()
    finally:
        container.remove(force=True)


def test_save_and_load(client: docker.DockerClient) -> None:
    image = client.images.get("busybox:latest")
    image.tag("clients/copy", "v1")
    archive = b"".join(client.images.get("clients/copy:v1").save(named="clients/copy:v1"))
    client.images.remove("clients/copy:v1")
    with pytest.raises(ImageNotFound):
        client.images.get("clients/copy:v1")
    loaded = client.images.load(archive)
    assert [i.id for i in loaded] == [image.id] and "clients/copy:v1" in loaded[0].tags
    assert client.containers.run("clients/copy:v1", ["echo", "loaded"], remove=True) == b"loaded\n"
    client.images.remove("clients/copy:v1")


def test_bad_input_gets_dockers_errors(client: docker.DockerClient) -> None:
    with pytest.raises(ImageNotFound):
        client.containers.create("no-such-local-image:v9")
    with pytest.raises(APIError) as failed:
        client.containers.run("busybox", ["no-such-command"], remove=True)
    assert 'exec: "no-such-command": executable file not found in $PATH' in str(failed.value)
    with pytest.raises(NotFound):
        client.containers.get("no-such-container")


@pytest.fixture
def testcontainers_env(server: MinicloudServer, client: docker.DockerClient, tmp_path: Path,
                       monkeypatch: pytest.MonkeyPatch) -> None:
    from testcontainers.core.config import ConnectionMode, testcontainers_config

    monkeypatch.setenv("DOCKER_HOST", f"unix://{server.data_dir / 'docker.sock'}")
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    monkeypatch.setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
    monkeypatch.setattr(testcontainers_config, "ryuk_disabled", True)
    # where /.dockerenv exists (this machine may itself be a container) testcontainers assumes
    # Docker-in-Docker and dials the bridge gateway; minicloud publishes on loopback: say so
    monkeypatch.setenv("TESTCONTAINERS_CONNECTION_MODE", "docker_host")
    monkeypatch.setattr(testcontainers_config, "connection_mode_override", ConnectionMode.docker_host)


def test_testcontainers_starts_nginx(testcontainers_env: None, client: docker.DockerClient) -> None:
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.wait_strategies import HttpWaitStrategy

    client.images.pull("nginx", tag="latest")
    container = DockerContainer("nginx:latest").with_exposed_ports(80).with_kwargs(labels={"test": "clients"})
    container.waiting_for(HttpWaitStrategy(80).for_status_code(200).with_startup_timeout(60))
    with container:
        host, port = container.get_container_host_ip(), container.get_exposed_port(80)
        assert host == "localhost"
        page = http_get(f"http://127.0.0.1:{port}/")
        assert "nginx" in page.lower()
        code, output = container.exec(["nginx", "-v"])
        assert code == 0 and b"nginx/" in output
        wrapped_id = container.get_container_id()
    with pytest.raises(NotFound):
        client.containers.get(wrapped_id)


def test_testcontainers_waits_for_a_log_line(testcontainers_env: None, client: docker.DockerClient,
                                             tmp_path: Path) -> None:
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.wait_strategies import LogMessageWaitStrategy

    container = (DockerContainer("busybox:latest").with_command(["sh", "-c", "sleep 0.3; echo ready; sleep 600"])
                 .with_env("MODE", "test").with_kwargs(labels={"test": "clients"})
                 .with_copy_into_container(b"from the host\n", "/etc/app/settings.txt", 0o600))
    container.waiting_for(LogMessageWaitStrategy("ready").with_startup_timeout(30))
    with container:  # the file goes in before the start: into a created container's layer
        assert container.status == "running"
        code, output = container.exec(["sh", "-c", "echo $MODE; stat -c %a /etc/app/settings.txt"])
        assert (code, output) == (0, b"test\n600\n")
        container.copy_from_container("/etc/app/settings.txt", tmp_path / "settings.txt")
        assert (tmp_path / "settings.txt").read_bytes() == b"from the host\n"
