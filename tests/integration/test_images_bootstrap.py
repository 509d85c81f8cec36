"""``minicloud images bootstrap`` end to end: the CLI builds busybox, debian and nginx from Debian's
packages (or takes them from the build cache) and pushes them into a real ``minicloud up``; the
unmodified docker CLI then pulls and runs them through minicloud's engine, docker.io being
mirrored to minicloud's own registry (nothing comes from the internet)."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.support.images import NEEDS, can_build, image_cache  # noqa: F401 - fixture
from tests.support.server import REPO, MinicloudServer, free_port

pytestmark = pytest.mark.skipif(not can_build() or not shutil.which("runc"), reason=f"{NEEDS}; the engine runc")

DOCKER = shutil.which("docker", path="/usr/local/bin") or shutil.which("docker") or "docker"
CLI = [sys.executable, "-m", "minicloud.cli"]


def bootstrap(server: MinicloudServer, cache: Path, *names: str, env: dict[str, str] | None = None,
              data_dir: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "images", "bootstrap", *names, "--data-dir", str(data_dir or server.data_dir),
         "--endpoint", server.endpoint, "--cache-dir", str(cache)],
        capture_output=True, text=True, timeout=900, cwd=REPO, env={**os.environ, **(env or {})})


def http_get(url: str, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return str(response.read().decode())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.mark.timeout(900)  # with a cold build cache: four Debian builds, about 4 minutes on 2 busy cores
def test_bootstrap_then_docker_pull_and_run(fresh_server: MinicloudServer, image_cache: Path,  # noqa: F811
                                            tmp_path: Path) -> None:
    fresh_server.env["MINICLOUD_CONTROLLERS"] = "0"
    fresh_server.start()
    first = bootstrap(fresh_server, image_cache, "busybox", "debian", "nginx")
    assert first.returncode == 0, f"{first.stdout}\n{first.stderr}"
    assert re.search(r"^3 images: \d built, \d+ blobs uploaded", first.stdout, re.M), first.stdout
    assert f"127.0.0.1:{fresh_server.port}/library/nginx:latest" in first.stdout

    (tmp_path / "docker-config").mkdir()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
           "DOCKER_HOST": f"unix://{fresh_server.data_dir / 'docker.sock'}",
           "DOCKER_CONFIG": str(tmp_path / "docker-config")}

    def docker(*args: str) -> str:
        result = subprocess.run([DOCKER, *args], env=env, capture_output=True, text=True, timeout=120,
                                stdin=subprocess.DEVNULL)
        assert result.returncode == 0, f"docker {' '.join(args)}: {result.stderr}\n{fresh_server.log()[-2000:]}"
        return result.stdout

    assert "Downloaded newer image for busybox:latest" in docker("pull", "busybox")
    assert docker("run", "--rm", "busybox", "sh", "-c", "echo $PATH; ls /bin | wc -l").split()[0] == \
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    assert docker("run", "--rm", "debian", "echo", "Hello, world!") == "Hello, world!\n"
    assert docker("run", "--rm", "debian:bookworm", "cat", "/etc/debian_version").startswith("12.")

    port = free_port()
    cid = docker("run", "-d", "-p", f"127.0.0.1:{port}:80", "nginx").strip()
    try:
        assert "<title>Welcome to nginx!</title>" in http_get(f"http://127.0.0.1:{port}/")
    finally:
        docker("rm", "-f", cid)
    inspect = json.loads(docker("image", "inspect", "nginx"))[0]
    assert (inspect["Os"], inspect["Architecture"]) == ("linux", "amd64")
    assert inspect["Config"]["Cmd"] == ["nginx", "-g", "daemon off;"]
    assert inspect["Config"]["ExposedPorts"] == {"80/tcp": {}}
    debian = json.loads(docker("image", "inspect", "debian"))[0]
    # nginx is debian:bookworm-slim's layer plus its own; debian is one layer of its own
    assert len(inspect["RootFS"]["Layers"]) == 2 and len(debian["RootFS"]["Layers"]) == 1

    again = bootstrap(fresh_server, image_cache, "busybox", "debian", "nginx")
    assert again.returncode == 0, again.stderr
    assert "3 images: 0 built, 0 blobs uploaded" in again.stdout, again.stdout
    for name in ("busybox", "debian", "nginx"):
        line = next(line for line in again.stdout.splitlines() if line.strip().startswith(f"{name} "))
        assert "cached; 0 blobs uploaded (0.0 MB), 0 mounted" in line and "0 tags updated" in line, line

    # debian:bookworm-slim is nginx's base: its layer is mounted from library/nginx, not uploaded again
    slim = bootstrap(fresh_server, image_cache, "debian:bookworm-slim")
    assert slim.returncode == 0, slim.stderr
    assert "1 blobs uploaded" in slim.stdout and "1 mounted" in slim.stdout, slim.stdout
    listing = docker("run", "--rm", "debian:bookworm-slim", "sh", "-c",
                     "ls /usr/share/man 2>/dev/null | wc -l; ls /usr/share/doc/*")
    assert listing.splitlines()[0] == "0" and "copyright" in listing


def test_bad_names_and_missing_credentials(fresh_server: MinicloudServer, image_cache: Path,  # noqa: F811
                                           tmp_path: Path) -> None:
    fresh_server.env["MINICLOUD_CONTROLLERS"] = "0"
    fresh_server.env["MINICLOUD_ENGINE"] = "0"
    fresh_server.start()
    unknown = bootstrap(fresh_server, image_cache, "busybox", "no-such-image")
    assert unknown.returncode == 1 and "unknown image 'no-such-image'" in unknown.stderr
    empty = tmp_path / "empty-data"
    empty.mkdir()
    keyless = {k: "" for k in ("MINICLOUD_ROOT_ACCESS_KEY_ID", "MINICLOUD_ROOT_SECRET_ACCESS_KEY")}
    missing = bootstrap(fresh_server, image_cache, "busybox", data_dir=empty, env=keyless)
    assert missing.returncode == 2 and "no root credentials" in missing.stderr
    wrong = bootstrap(fresh_server, image_cache, "busybox", data_dir=empty,
                      env={"MINICLOUD_ROOT_ACCESS_KEY_ID": "AKIAWRONGWRONGWRONG1",
                           "MINICLOUD_ROOT_SECRET_ACCESS_KEY": "wrong"})
    assert wrong.returncode == 1 and "refused the credentials" in wrong.stderr


ALL_IMAGES = "MINICLOUD_IMAGES_ALL"


@pytest.mark.skipif(not os.environ.get(ALL_IMAGES), reason=f"{ALL_IMAGES}=1 builds and runs postgres, mariadb and "
                    "python too (each build takes a minute or more on 2 busy cores)")
@pytest.mark.timeout(1800)  # a cold build cache: four Debian builds
def test_database_and_python_images(fresh_server: MinicloudServer, image_cache: Path,  # noqa: F811
                                    tmp_path: Path) -> None:
    fresh_server.env["MINICLOUD_CONTROLLERS"] = "0"
    fresh_server.start()
    result = bootstrap(fresh_server, image_cache, "postgres", "mariadb", "python-slim", "python")
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    (tmp_path / "docker-config").mkdir()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
           "DOCKER_HOST": f"unix://{fresh_server.data_dir / 'docker.sock'}",
           "DOCKER_CONFIG": str(tmp_path / "docker-config")}

    def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([DOCKER, *args], env=env, capture_output=True, text=True, timeout=180,
                              stdin=subprocess.DEVNULL)
        assert not check or done.returncode == 0, f"docker {' '.join(args)}: {done.stderr}"
        return done

    python = docker("run", "--rm", "python:3.11-slim", "python", "-c", "import ssl, sqlite3; print(6 * 7)")
    assert python.stdout == "42\n"
    assert docker("run", "--rm", "python:3.11", "pip", "--version").stdout.startswith("pip ")

    refused = docker("run", "--rm", "postgres", check=False)
    assert refused.returncode == 1 and "POSTGRES_PASSWORD" in refused.stderr
    pg_port = free_port()
    docker("run", "-d", "--name", "pg", "-e", "POSTGRES_PASSWORD=s3cret", "-e", "POSTGRES_USER=alice",
           "-e", "POSTGRES_DB=app", "-p", f"127.0.0.1:{pg_port}:5432", "postgres")
    db_port = free_port()
    docker("run", "-d", "--name", "db", "-e", "MARIADB_ROOT_PASSWORD=r00t'pw", "-e", "MARIADB_DATABASE=shop",
           "-e", "MARIADB_USER=bob", "-e", "MARIADB_PASSWORD=bobpw", "-p", f"127.0.0.1:{db_port}:3306", "mariadb")
    try:
        psql = ["psql", "-h", "127.0.0.1", "-p", str(pg_port), "-U", "alice", "-d", "app", "-tAc",
                "select current_user || ' ' || current_database()"]
        deadline = time.monotonic() + 60
        while True:
            answer = subprocess.run(psql, env={**os.environ, "PGPASSWORD": "s3cret"}, capture_output=True, text=True)
            if answer.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert answer.stdout.strip() == "alice app", answer.stderr + docker("logs", "pg").stderr
        wrong = subprocess.run(psql, env={**os.environ, "PGPASSWORD": "nope"}, capture_output=True, text=True)
        assert wrong.returncode != 0 and "password authentication failed" in wrong.stderr

        query = ["exec", "db", "mariadb", "-h", "127.0.0.1", "-ubob", "-pbobpw", "shop", "-Nse", "select database()"]
        deadline = time.monotonic() + 60
        while (reply := docker(*query, check=False)).returncode != 0 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert reply.stdout.strip() == "shop", reply.stderr + docker("logs", "db").stderr
        root = docker("exec", "db", "mariadb", "-h", "127.0.0.1", "-uroot", "-pr00t'pw", "-Nse", "select 1")
        assert root.stdout.strip() == "1"
        with socket.create_connection(("127.0.0.1", db_port), timeout=10) as conn:  # the server's greeting
            assert b"MariaDB" in conn.recv(256)
    finally:
        docker("rm", "-f", "pg", "db", check=False)
