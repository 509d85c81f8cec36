"""Containers' confinement through the unmodified docker CLI against a real ``minicloud up``:
Docker's default seccomp profile (a system call outside it fails with EPERM even where the
capabilities would allow it), custom and unconfined profiles, capabilities opening their system
calls, no-new-privileges on request, and --privileged."""

from __future__ import annotations

import json
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.test_engine import Engine, busybox_rootfs_tar
from tests.support.images import BaseImages
from tests.support.images import base_images as base_images  # the fixtures, for the Debian test
from tests.support.images import image_cache as image_cache
from tests.support.server import MinicloudServer

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("runc") or not Path("/bin/busybox").exists(),
    reason="the engine needs root, runc and busybox-static")

STATUS = "grep -E '^(Seccomp|NoNewPrivs|CapEff):' /proc/self/status"


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    work = tmp_path_factory.mktemp("enginesec")
    server = MinicloudServer(work / "data", env={"MINICLOUD_CONTROLLERS": "0"})
    server.start()
    (work / "docker-config").mkdir()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(work), "DOCKER_BUILDKIT": "0",
           "DOCKER_HOST": f"unix://{work / 'data' / 'docker.sock'}", "DOCKER_CONFIG": str(work / "docker-config")}
    eng = Engine(server, env, work)
    eng.docker("import", str(busybox_rootfs_tar(work)), "busybox")
    yield eng
    server.stop()


def status(engine: Engine, *options: str, script: str = "") -> dict[str, str]:
    out = engine.docker("run", "--rm", *options, "busybox", "sh", "-c", f"{script}{STATUS}").stdout
    return dict(line.split(":\t", 1) for line in out.splitlines() if ":\t" in line)


def test_default_profile_blocks_with_eperm(engine: Engine) -> None:
    assert status(engine)["Seccomp"] == "2"  # a filter is installed
    info = engine.docker("info", "--format", "{{json .SecurityOptions}}").stdout
    assert json.loads(info) == ["name=seccomp,profile=builtin"]
    # creating a user namespace needs no capability: only the profile refuses it
    blocked = engine.docker("run", "--rm", "busybox", "unshare", "-U", "true", check=False)
    assert blocked.returncode != 0 and "Operation not permitted" in blocked.stderr
    unconfined = engine.docker("run", "--rm", "--security-opt", "seccomp=unconfined", "busybox", "unshare", "-U",
                               "echo", "in a user namespace")
    assert unconfined.stdout == "in a user namespace\n"
    assert status(engine, "--security-opt", "seccomp=unconfined")["Seccomp"] == "0"


def test_privileged_and_capabilities(engine: Engine) -> None:
    denied = engine.docker("run", "--rm", "busybox", "mount", "-t", "tmpfs", "none", "/tmp", check=False)
    assert denied.returncode != 0
    privileged = engine.docker("run", "--rm", "--privileged", "busybox", "sh", "-c",
                               "mount -t tmpfs none /tmp && unshare -U true && echo both; " + STATUS).stdout
    assert privileged.startswith("both\n") and "Seccomp:\t0" in privileged
    with_cap = engine.docker("run", "--rm", "--cap-add", "SYS_ADMIN", "busybox", "sh", "-c",
                             "mount -t tmpfs none /tmp && echo mounted; " + STATUS).stdout
    assert with_cap.startswith("mounted\n") and "Seccomp:\t2" in with_cap  # the profile follows the capabilities


def test_no_new_privileges_and_custom_profiles(engine: Engine, tmp_path: Path) -> None:
    assert status(engine)["NoNewPrivs"] == "0"
    assert status(engine, "--security-opt", "no-new-privileges")["NoNewPrivs"] == "1"
    profile = tmp_path / "no-mkdir.json"
    profile.write_text(json.dumps({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}))
    refused = engine.docker("run", "--rm", "--security-opt", f"seccomp={profile}", "busybox", "mkdir", "/tmp/x",
                            check=False)
    assert refused.returncode != 0 and "Operation not permitted" in refused.stderr
    bad = engine.docker("run", "--rm", "--security-opt", "apparmor=docker-default", "busybox", "true", check=False)
    assert bad.returncode != 0 and "invalid --security-opt" in bad.stderr


def test_ordinary_work_still_runs(engine: Engine) -> None:
    out = engine.docker("run", "--rm", "busybox", "sh", "-c",
                        "ping -c 1 -W 1 127.0.0.1 >/dev/null && echo ping; date +%Y >/dev/null && echo date; "
                        "echo x | md5sum >/dev/null && echo pipes; (sleep 0.1 &) ; wait; echo forks").stdout
    assert out.split() == ["ping", "date", "pipes", "forks"]
    assert engine.docker("ps", "-aq").stdout.strip() == ""


def test_debian_shells_apt_and_python_under_the_profile(engine: Engine, base_images: BaseImages) -> None:
    """A Debian image: bash and apt under Docker's profile, apt-get install in a build (through the
    build network), python's processes and threads in the image it made."""
    try:
        socket.create_connection(("deb.debian.org", 80), timeout=5).close()
    except OSError:
        pytest.skip("this machine cannot reach deb.debian.org, which apt-get needs")
    ref = base_images.push(engine.server, ["debian-slim"])["debian-slim"]
    assert engine.server.root is not None
    engine.docker("login", "-u", engine.server.root.access_key_id, "--password-stdin", ref.split("/")[0],
                  stdin=engine.server.root.secret_access_key)
    engine.docker("pull", ref)
    shell = engine.docker("run", "--rm", ref, "bash", "-c", "echo bash $BASH_VERSINFO; apt-get --version | head -1; "
                          + STATUS).stdout
    assert shell.startswith("bash 5\napt ") and "Seccomp:\t2" in shell
    context = engine.work / "debian-build"
    context.mkdir(exist_ok=True)
    (context / "Dockerfile").write_text(
        f"FROM {ref}\nRUN apt-get update -qq && apt-get install -y -qq --no-install-recommends python3-minimal "
        ">/dev/null && rm -rf /var/lib/apt/lists/*\n")
    engine.docker("build", "-t", "withpython:1", str(context), timeout=300)
    script = "\n".join([
        "import os, subprocess, threading",
        "t = threading.Thread(target=print, args=('thread',)); t.start(); t.join()",
        "print(subprocess.run(['echo', 'child'], capture_output=True, text=True).stdout.strip())",
        "pid = os.fork()",
        "os._exit(7) if pid == 0 else print('forked', os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))"])
    out = engine.docker("run", "--rm", "withpython:1", "python3", "-c", script).stdout
    assert out.split() == ["thread", "child", "forked", "7"]
    engine.docker("rmi", "withpython:1", ref)
