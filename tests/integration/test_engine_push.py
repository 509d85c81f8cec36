"""``docker login`` and ``docker push`` through the unmodified docker CLI against a real
``minicloud up``: to minicloud's own registry (Bearer tokens, IAM credentials), skopeo reads what
was pushed, and a second engine pulls it. Only missing blobs are sent; a blob known in another
repository of the same registry is mounted from there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.test_engine import DOCKER, Engine, Registry, busybox_rootfs_tar, push_to_registry
from tests.integration.test_engine import registry as registry  # the fixture, for these tests
from tests.support.server import MinicloudServer

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("runc") or not Path("/bin/busybox").exists(),
    reason="the engine needs root, runc and busybox-static")


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    work = tmp_path_factory.mktemp("enginepush")
    server = MinicloudServer(work / "data", env={"MINICLOUD_CONTROLLERS": "0"})
    server.start()
    (work / "docker-config").mkdir()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(work),
           "DOCKER_HOST": f"unix://{work / 'data' / 'docker.sock'}", "DOCKER_CONFIG": str(work / "docker-config")}
    eng = Engine(server, env, work)
    eng.docker("import", str(busybox_rootfs_tar(work)), "busybox")
    yield eng
    server.stop()


def registry_of(engine: Engine) -> str:
    return f"127.0.0.1:{engine.server.port}"


def login(engine: Engine) -> None:
    assert engine.server.root is not None
    keys = engine.server.root
    out = engine.docker("login", "-u", keys.access_key_id, "--password-stdin", registry_of(engine),
                        stdin=keys.secret_access_key)
    assert "Login Succeeded" in out.stdout


def test_login_refuses_a_wrong_password(engine: Engine) -> None:
    assert engine.server.root is not None
    failed = engine.docker("login", "-u", engine.server.root.access_key_id, "--password-stdin", registry_of(engine),
                           stdin="not-the-secret", check=False)
    assert failed.returncode != 0 and "incorrect username or password" in failed.stderr


def test_push_sends_only_missing_blobs_and_mounts(engine: Engine) -> None:
    login(engine)
    app = f"{registry_of(engine)}/team/app:v1"
    engine.docker("tag", "busybox", app)
    first = engine.docker("push", app).stdout
    assert f"The push refers to repository [{registry_of(engine)}/team/app]" in first
    assert ": Pushed" in first and "v1: digest: sha256:" in first
    digest = first.split("digest: ")[1].split()[0]
    again = engine.docker("push", app).stdout
    assert "Layer already exists" in again and ": Pushed" not in again and digest in again
    other = f"{registry_of(engine)}/team/other:v2"
    engine.docker("tag", "busybox", other)
    mounted = engine.docker("push", other).stdout
    assert "Mounted from team/app" in mounted and ": Pushed" not in mounted
    repo_digests = json.loads(engine.docker("image", "inspect", app).stdout)[0]["RepoDigests"]
    assert f"{registry_of(engine)}/team/app@{digest}" in repo_digests
    assert engine.server.root is not None
    keys = f"{engine.server.root.access_key_id}:{engine.server.root.secret_access_key}"
    inspected = json.loads(subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", "--creds", keys, f"docker://{other}"],
        capture_output=True, text=True, check=True, timeout=60).stdout)
    assert inspected["Digest"] == digest and len(inspected["Layers"]) == 1
    engine.docker("rmi", app, other)


def test_a_second_engine_pulls_what_was_pushed(engine: Engine, tmp_path: Path) -> None:
    login(engine)
    ref = f"{registry_of(engine)}/team/shipped:1"
    engine.docker("run", "--name", "maker", "busybox", "sh", "-c", "echo shipped > /made")
    engine.docker("commit", "maker", ref)
    engine.docker("rm", "maker")
    engine.docker("push", ref)
    second = MinicloudServer(tmp_path / "data", env={"MINICLOUD_CONTROLLERS": "0"}).start()
    try:
        env = {**engine.env, "DOCKER_HOST": f"unix://{tmp_path / 'data' / 'docker.sock'}"}

        def docker(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([DOCKER, *args], env=env, capture_output=True, text=True, timeout=60,
                                  stdin=subprocess.DEVNULL)

        pulled = docker("pull", ref)
        assert pulled.returncode == 0, pulled.stderr
        ran = docker("run", "--rm", ref, "cat", "/made")
        assert ran.stdout == "shipped\n", ran.stderr
    finally:
        second.stop()
    engine.docker("rmi", ref)


def test_docker_io_names_go_to_minicloud_registry(engine: Engine) -> None:
    engine.docker("tag", "busybox", "someone/tool:1")
    out = engine.docker("push", "someone/tool:1").stdout
    assert "The push refers to repository [docker.io/someone/tool]" in out and "1: digest: sha256:" in out
    engine.docker("rmi", "someone/tool:1")
    assert engine.docker("run", "--rm", "someone/tool:1", "echo", "back").stdout == "back\n"
    engine.docker("rmi", "someone/tool:1")


def test_push_to_another_registry_by_name(engine: Engine, registry: Registry) -> None:
    """Debian's CNCF distribution on loopback (plain HTTP, no authentication); a pulled image with
    gzip layers keeps its manifest digest when pushed on."""
    target = f"{registry.host}/ext/box:1"
    engine.docker("tag", "busybox", target)
    out = engine.docker("push", target).stdout
    assert ": Pushed" in out and "1: digest: sha256:" in out
    assert "Layer already exists" in engine.docker("push", target).stdout
    inspected = json.loads(subprocess.run(["skopeo", "inspect", "--tls-verify=false", f"docker://{target}"],
                                          capture_output=True, text=True, check=True, timeout=60).stdout)
    assert inspected["Digest"] == out.split("digest: ")[1].split()[0]
    push_to_registry(engine, registry, "ext/gzipped:1")  # skopeo, with gzip-compressed layers
    source = f"{registry.host}/ext/gzipped:1"
    engine.docker("pull", source)
    source_digest = json.loads(engine.docker("image", "inspect", source).stdout)[0]["RepoDigests"][0].split("@")[1]
    login(engine)
    onward = f"{registry_of(engine)}/team/gzipped:1"
    engine.docker("tag", source, onward)
    assert f"1: digest: {source_digest}" in engine.docker("push", onward).stdout
    engine.docker("rmi", target, source, onward)


def test_docker_py_push(engine: Engine) -> None:
    docker = pytest.importorskip("docker")
    assert engine.server.root is not None
    client = docker.DockerClient(base_url=engine.env["DOCKER_HOST"])
    try:
        repository = f"{registry_of(engine)}/team/frompy"
        client.images.get("busybox").tag(repository, "2")
        auth = {"username": engine.server.root.access_key_id, "password": engine.server.root.secret_access_key}
        events = list(client.images.push(repository, "2", auth_config=auth, stream=True, decode=True))
        assert not [e for e in events if "error" in e], events
        aux = [e["aux"] for e in events if "aux" in e]
        assert aux and aux[0]["Tag"] == "2" and aux[0]["Digest"].startswith("sha256:")
        client.images.remove(f"{repository}:2")
    finally:
        client.close()


def test_push_of_a_missing_image(engine: Engine) -> None:
    failed = engine.docker("push", f"{registry_of(engine)}/team/none:1", check=False)
    assert failed.returncode != 0 and "An image does not exist locally with the tag" in failed.stderr
