"""Real registry clients against ``minicloud up``: Debian's dockerd driven by the docker CLI, and skopeo.

dockerd runs as a fixture with folders of its own and no container networking; it is stopped by
its PID. Images come from ``docker import`` of a busybox root file system (Debian's busybox-static).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import tarfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.server import Keys, MinicloudServer

pytestmark = pytest.mark.skipif(not (shutil.which("dockerd") and shutil.which("docker") and shutil.which("skopeo")
                                     and Path("/bin/busybox").exists()),
                                reason="needs dockerd (docker.io), the docker CLI, skopeo and busybox-static")


@dataclass
class Docker:
    root: Path
    env: dict[str, str]

    def run(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(["docker", *args], env=self.env, input=input, capture_output=True, text=True,
                                timeout=180)
        if check and result.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result


@pytest.fixture(scope="module")
def docker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Docker]:
    root = tmp_path_factory.mktemp("dockerd")
    sock = root / "docker.sock"
    log = open(root / "dockerd.log", "wb")  # noqa: SIM115 - owned by the process
    process = subprocess.Popen(
        ["dockerd", "--data-root", str(root / "data"), "--exec-root", str(root / "exec"), "-H", f"unix://{sock}",
         "--pidfile", str(root / "pid"), "--bridge", "none", "--iptables=false", "--ip6tables=false"],
        stdout=log, stderr=subprocess.STDOUT)
    env = {**os.environ, "DOCKER_HOST": f"unix://{sock}", "DOCKER_CONFIG": str(root / "config")}
    client = Docker(root, env)
    deadline = time.monotonic() + 60
    while client.run("version", check=False).returncode != 0:
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            raise RuntimeError((root / "dockerd.log").read_text()[-3000:])
        time.sleep(0.3)
    yield client
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    log.close()
    shutil.rmtree(root / "data", ignore_errors=True)


def busybox_rootfs(path: Path, marker: str) -> Path:
    """A busybox root file system as a tar, with a file that makes each image distinct."""
    with tarfile.open(path, "w") as tar:
        tar.add("/bin/busybox", "bin/busybox")
        for applet in ("sh", "cat", "echo", "ls"):
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type, info.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(info)
        data = marker.encode()
        info = tarfile.TarInfo("etc/marker")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return path


def image(docker: Docker, tmp_path: Path, marker: str) -> str:
    ref = f"local/{marker}:latest"
    docker.run("import", str(busybox_rootfs(tmp_path / f"{marker}.tar", marker)), ref)
    return ref


def login(docker: Docker, server: MinicloudServer) -> str:
    password = server.aws("ecr", "get-login-password").stdout.strip()
    result = docker.run("login", "--username", "AWS", "--password-stdin", f"127.0.0.1:{server.port}", input=password)
    assert "Login Succeeded" in result.stdout
    return password


def test_docker_login_push_pull_and_mount(docker: Docker, server: MinicloudServer, tmp_path: Path) -> None:
    login(docker, server)
    host = f"127.0.0.1:{server.port}"
    repo = f"docker/{uuid.uuid4().hex[:8]}"
    local = image(docker, tmp_path, "one")
    docker.run("tag", local, f"{host}/{repo}:v1")
    pushed = docker.run("push", f"{host}/{repo}:v1").stdout
    assert "digest: sha256:" in pushed
    digest = pushed.split("digest: ")[1].split()[0]
    described = server.client("ecr").describe_images(repositoryName=repo)["imageDetails"]
    assert described[0]["imageDigest"] == digest and described[0]["imageTags"] == ["v1"]
    assert described[0]["imageManifestMediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    docker.run("rmi", f"{host}/{repo}:v1", local)
    docker.run("pull", f"{host}/{repo}:v1")
    marker = docker.run("run", "--rm", "--network", "none", f"{host}/{repo}:v1", "cat", "/etc/marker")
    assert marker.stdout.strip() == "one"
    docker.run("pull", f"{host}/{repo}@{digest}")
    # the same layers into another repository: docker mounts them across repositories
    docker.run("tag", f"{host}/{repo}:v1", f"{host}/{repo}-copy:v1")
    again = docker.run("push", f"{host}/{repo}-copy:v1").stdout
    assert f"Mounted from {repo}" in again


def test_docker_push_respects_immutable_tags_and_iam(docker: Docker, server: MinicloudServer,
                                                     tmp_path: Path) -> None:
    login(docker, server)
    host = f"127.0.0.1:{server.port}"
    repo = f"frozen/{uuid.uuid4().hex[:8]}"
    server.client("ecr").create_repository(repositoryName=repo, imageTagMutability="IMMUTABLE")
    docker.run("tag", image(docker, tmp_path, "first"), f"{host}/{repo}:v1")
    docker.run("push", f"{host}/{repo}:v1")
    docker.run("tag", image(docker, tmp_path, "second"), f"{host}/{repo}:v1")
    refused = docker.run("push", f"{host}/{repo}:v1", check=False)
    assert refused.returncode != 0 and "immutable" in refused.stderr
    iam = server.client("iam")
    user = f"reader-{uuid.uuid4().hex[:6]}"
    iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName="pull", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": [
            "ecr:GetAuthorizationToken", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"], "Resource": "*"}]}))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    reader = Keys(key["AccessKeyId"], key["SecretAccessKey"])
    password = server.aws("ecr", "get-login-password", keys=reader).stdout.strip()
    docker.run("login", "--username", "AWS", "--password-stdin", host, input=password)
    docker.run("pull", f"{host}/{repo}:v1")
    docker.run("tag", f"{host}/{repo}:v1", f"{host}/{repo}:v2")
    denied = docker.run("push", f"{host}/{repo}:v2", check=False)
    assert denied.returncode != 0
    assert "denied" in denied.stderr.lower() or "unauthorized" in denied.stderr.lower()
    bad = docker.run("login", "--username", "AWS", "--password-stdin", host, input="not-a-password", check=False)
    assert bad.returncode != 0


def test_docker_multi_platform_index(docker: Docker, server: MinicloudServer, tmp_path: Path) -> None:
    login(docker, server)
    host = f"127.0.0.1:{server.port}"
    repo = f"multi/{uuid.uuid4().hex[:8]}"
    refs = []
    for arch in ("amd64", "arm64"):
        ref = f"{host}/{repo}:{arch}"
        docker.run("tag", image(docker, tmp_path, f"plat-{arch}"), ref)
        docker.run("push", ref)
        refs.append(ref)
    docker.run("manifest", "create", "--insecure", f"{host}/{repo}:latest", *refs)
    docker.run("manifest", "annotate", "--arch", "arm64", f"{host}/{repo}:latest", refs[1])
    pushed = docker.run("manifest", "push", "--insecure", f"{host}/{repo}:latest").stdout.strip()
    assert pushed.startswith("sha256:")
    got = server.client("ecr").batch_get_image(repositoryName=repo, imageIds=[{"imageTag": "latest"}])["images"][0]
    index = json.loads(got["imageManifest"])
    assert got["imageManifestMediaType"] == "application/vnd.docker.distribution.manifest.list.v2+json"
    assert sorted(m["platform"]["architecture"] for m in index["manifests"]) == ["amd64", "arm64"]
    docker.run("pull", f"{host}/{repo}:latest")


def test_skopeo_copies_both_ways(docker: Docker, server: MinicloudServer, tmp_path: Path) -> None:
    password = server.aws("ecr", "get-login-password").stdout.strip()
    creds = f"AWS:{password}"
    host = f"127.0.0.1:{server.port}"
    repo = f"skopeo/{uuid.uuid4().hex[:8]}"
    archive = tmp_path / "image.tar"
    docker.run("save", "-o", str(archive), image(docker, tmp_path, "skopeo"))

    def skopeo(*args: str) -> str:
        result = subprocess.run(["skopeo", "--insecure-policy", *args], capture_output=True, text=True, timeout=180)
        assert result.returncode == 0, result.stderr
        return result.stdout
    skopeo("copy", "--dest-tls-verify=false", "--dest-creds", creds, f"docker-archive:{archive}",
           f"docker://{host}/{repo}:v1")
    inspected = json.loads(skopeo("inspect", "--tls-verify=false", "--creds", creds, f"docker://{host}/{repo}:v1"))
    assert inspected["Name"].endswith(repo) and len(inspected["Layers"]) == 1
    skopeo("copy", "--src-tls-verify=false", "--src-creds", creds, f"docker://{host}/{repo}:v1",
           f"oci:{tmp_path / 'layout'}:v1")
    assert json.loads((tmp_path / "layout" / "index.json").read_text())["manifests"]
    skopeo("copy", "--dest-tls-verify=false", "--dest-creds", creds, f"oci:{tmp_path / 'layout'}:v1",
           f"docker://{host}/{repo}-oci:v1")
    oci = server.client("ecr").describe_images(repositoryName=f"{repo}-oci")["imageDetails"][0]
    assert oci["imageManifestMediaType"] == "application/vnd.oci.image.manifest.v1+json"
    skopeo("copy", "--src-tls-verify=false", "--dest-tls-verify=false", "--src-creds", creds, "--dest-creds", creds,
           f"docker://{host}/{repo}:v1", f"docker://{host}/{repo}-copy:v1")
    tags = json.loads(skopeo("list-tags", "--tls-verify=false", "--creds", creds, f"docker://{host}/{repo}-copy"))
    assert tags["Tags"] == ["v1"]
