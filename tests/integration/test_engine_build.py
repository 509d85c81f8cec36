"""Docker's classic build (``DOCKER_BUILDKIT=0 docker build`` and docker-py) against a real
``minicloud up``: a multi-stage Dockerfile, the layer cache, ``.dockerignore``, COPY/ADD options,
and errors shown as dockerd shows them (a failing RUN's exit code, a syntax error's line).
"""

from __future__ import annotations

import io
import json
import os
import queue
import shutil
import socket
import subprocess
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from tests.integration.test_engine import DOCKER, Engine, busybox_rootfs_tar
from tests.support.server import MinicloudServer

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("runc") or not Path("/bin/busybox").exists(),
    reason="the engine needs root, runc and busybox-static")

MULTI_STAGE = """\
# syntax and comments are ignored
ARG BASE=busybox
FROM ${BASE} AS builder
ARG GREETING=hello
ENV OUT=/out \\
    NOTE="two words"
RUN mkdir -p $OUT && echo "$GREETING from stage one" > $OUT/msg && echo "building ${NOTE:-none}"

FROM busybox
WORKDIR /app
COPY --from=builder /out/msg ./
COPY files /app/files/
LABEL stage=final
EXPOSE 8080
CMD ["cat", "/app/msg"]
"""


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    work = tmp_path_factory.mktemp("enginebuild")
    server = MinicloudServer(work / "data", env={"MINICLOUD_CONTROLLERS": "0",
                                                 "MINICLOUD_ENGINE_MIRROR": "http://127.0.0.1:9"})
    server.start()
    (work / "docker-config").mkdir()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(work), "DOCKER_BUILDKIT": "0",
           "DOCKER_HOST": f"unix://{work / 'data' / 'docker.sock'}", "DOCKER_CONFIG": str(work / "docker-config")}
    eng = Engine(server, env, work)
    eng.docker("import", str(busybox_rootfs_tar(work)), "busybox")
    yield eng
    server.stop()


def context(root: Path, dockerfile: str, files: dict[str, str] | None = None) -> Path:
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    (root / "Dockerfile").write_text(dockerfile)
    for name, text in (files or {}).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def image_id(engine: Engine, name: str) -> str:
    return engine.docker("image", "inspect", "-f", "{{.Id}}", name).stdout.strip()


def test_multi_stage_build_and_cache(engine: Engine) -> None:
    ctx = context(engine.work / "multi", MULTI_STAGE,
                  {"files/a.txt": "a\n", "files/sub/b.txt": "b\n", "files/secret.key": "no\n",
                   ".dockerignore": "files/*.key\n"})
    first = engine.docker("build", "-t", "multi:1", "--build-arg", "GREETING=hi", str(ctx))
    out = first.stdout
    assert "Step 1/11 : FROM ${BASE} AS builder" in out and "Step 11/11 : CMD [\"cat\", \"/app/msg\"]" in out
    assert "building two words\n" in out and " ---> Running in " in out and "Removing intermediate container" in out
    assert "Successfully tagged multi:1" in out and "Using cache" not in out
    assert engine.docker("run", "--rm", "multi:1").stdout == "hi from stage one\n"
    listed = engine.docker("run", "--rm", "multi:1", "find", "/app/files").stdout.split()
    assert sorted(listed) == ["/app/files", "/app/files/a.txt", "/app/files/sub", "/app/files/sub/b.txt"]
    config = json.loads(engine.docker("image", "inspect", "multi:1").stdout)[0]["Config"]
    assert config["WorkingDir"] == "/app" and config["Labels"] == {"stage": "final"}
    assert config["ExposedPorts"] == {"8080/tcp": {}}
    images = engine.docker("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
    # the steps' images are hidden; the first stage's result stays, untagged, as Docker shows it
    assert images.count("<none>:<none>") == 1 and len(engine.docker("images", "-aq").stdout.split()) > 5

    built = image_id(engine, "multi:1")
    again = engine.docker("build", "-t", "multi:1", "--build-arg", "GREETING=hi", str(ctx)).stdout
    assert again.count(" ---> Using cache") == 9  # every step but the two FROMs
    assert " ---> Running in " not in again and f"Successfully built {built[7:19]}" in again
    assert image_id(engine, "multi:1") == built

    (ctx / "files" / "a.txt").write_text("changed\n")
    changed = engine.docker("build", "-t", "multi:2", "--build-arg", "GREETING=hi", str(ctx)).stdout
    assert changed.count(" ---> Using cache") == 5  # up to the COPY of the changed file
    uncached = engine.docker("build", "--no-cache", "-q", "--build-arg", "GREETING=hi", str(ctx)).stdout
    assert uncached.strip().startswith("sha256:") and uncached.strip() != image_id(engine, "multi:1")
    history = engine.docker("history", "--format", "{{.CreatedBy}}", "multi:1").stdout
    assert "COPY dir:" in history and "#(nop)  WORKDIR /app" in history
    engine.docker("rmi", "multi:1", "multi:2")


def test_failing_run_shows_the_command_and_its_code(engine: Engine) -> None:
    ctx = context(engine.work / "failing", "FROM busybox\nRUN echo before-failing && exit 3\n")
    failed = engine.docker("build", "--force-rm", str(ctx), check=False)
    assert failed.returncode == 3
    assert "before-failing" in failed.stdout
    assert "The command '/bin/sh -c echo before-failing && exit 3' returned a non-zero code: 3" in failed.stderr
    assert engine.docker("ps", "-aq").stdout.strip() == ""  # --force-rm removed the failed step's container


def test_syntax_error_names_the_line(engine: Engine) -> None:
    ctx = context(engine.work / "syntax", "FROM busybox\n# fine\nRUN echo ok \\\n  && echo still ok\nRUNN nope\n")
    failed = engine.docker("build", str(ctx), check=False)
    assert failed.returncode != 0
    assert "dockerfile parse error line 5: unknown instruction: RUNN" in failed.stderr
    valid = context(engine.work / "valid", "FROM busybox AS one\nRUN true\n")
    target = engine.docker("build", "--target", "nosuch", str(valid), check=False)
    assert "failed to reach build target nosuch in Dockerfile" in target.stderr


def test_add_copy_options_user_and_target(engine: Engine) -> None:
    ctx = context(engine.work / "options", """\
# escape=`
FROM busybox AS base
RUN echo "app:x:1000:1000::/home/app:/bin/sh" >> /etc/passwd && `
    echo "app:x:1000:" >> /etc/group
ADD bundle.tgz /opt/bundle/
COPY --chown=app:app plain.txt /home/app/
USER app
SHELL ["/bin/sh", "-ec"]
RUN id -u > /tmp/uid
HEALTHCHECK --interval=5s --retries=2 CMD true
STOPSIGNAL SIGINT
VOLUME /data
ONBUILD RUN echo triggered > /tmp/trigger
ENTRYPOINT ["/bin/echo"]

FROM base AS child
CMD ["from-child"]

FROM scratch AS empty
COPY plain.txt /
""", {"plain.txt": "plain\n"})
    bundle = ctx / "bundle.tgz"
    with tarfile.open(bundle, "w:gz") as tar:
        info = tarfile.TarInfo("inside/file")
        info.size = 7
        tar.addfile(info, io.BytesIO(b"bundled"))
    engine.docker("build", "-t", "opts:base", "--target", "base", str(ctx))
    out = engine.docker("run", "--rm", "--entrypoint", "sh", "opts:base", "-c",
                        "cat /opt/bundle/inside/file; echo; stat -c %u:%g /home/app/plain.txt; cat /tmp/uid").stdout
    assert out.split() == ["bundled", "1000:1000", "1000"]
    config = json.loads(engine.docker("image", "inspect", "opts:base").stdout)[0]["Config"]
    assert config["User"] == "app" and config["StopSignal"] == "SIGINT" and config["Volumes"] == {"/data": {}}
    assert config["Healthcheck"] == {"Test": ["CMD-SHELL", "true"], "Interval": 5_000_000_000, "Retries": 2}
    assert config["OnBuild"] == ["RUN echo triggered > /tmp/trigger"]
    engine.docker("build", "-t", "opts:child", "--target", "child", str(ctx))
    assert engine.docker("run", "--rm", "opts:child").stdout == "from-child\n"
    trigger = engine.docker("run", "--rm", "--entrypoint", "cat", "opts:child", "/tmp/trigger").stdout
    assert trigger == "triggered\n"
    engine.docker("build", "-t", "opts:empty", str(ctx))
    layers = json.loads(engine.docker("image", "inspect", "opts:empty").stdout)[0]["RootFS"]["Layers"]
    assert len(layers) == 1
    url = context(engine.work / "url", "FROM busybox\nADD http://127.0.0.1:9/file /file\n")
    refused = engine.docker("build", str(url), check=False)
    assert refused.returncode != 0 and "ADD from a URL is not available" in refused.stderr
    engine.docker("rmi", "opts:base", "opts:child", "opts:empty")


def test_docker_py_build(engine: Engine) -> None:
    docker = pytest.importorskip("docker")
    client = docker.DockerClient(base_url=engine.env["DOCKER_HOST"])
    try:
        dockerfile = b'FROM busybox\nARG X=1\nRUN echo "run-$X" > /x\nCMD ["cat", "/x"]\n'
        image, logs = client.images.build(fileobj=io.BytesIO(dockerfile), tag="py:1", buildargs={"X": "7"},
                                           rm=True)
        assert "py:1" in image.tags and any("Successfully built" in e.get("stream", "") for e in logs)
        assert client.containers.run("py:1", remove=True) == b"run-7\n"
        with pytest.raises(docker.errors.BuildError) as failed:
            client.images.build(fileobj=io.BytesIO(b"FROM busybox\nRUN exit 4\n"), forcerm=True)
        assert "returned a non-zero code: 4" in failed.value.msg
        with pytest.raises(docker.errors.APIError) as bad:
            client.images.build(fileobj=io.BytesIO(b"FROM busybox\nBOGUS x\n"))
        assert "unknown instruction: BOGUS" in str(bad.value)
        client.images.remove("py:1")
    finally:
        client.close()


def test_commit_changes_message_and_whiteouts(engine: Engine) -> None:
    engine.docker("run", "--name", "changer", "busybox", "sh", "-c",
                  "echo data > /made && rm /etc/group && mkdir -p /d && echo x > /d/f")
    image = engine.docker("commit", "-c", 'CMD ["cat", "/made"]', "-c", "ENV MODE=committed", "-c",
                          "ONBUILD RUN echo child", "-m", "snapshot", "-a", "tester", "changer",
                          "committed:1").stdout.strip()
    assert image.startswith("sha256:")
    engine.docker("rm", "changer")
    assert engine.docker("run", "--rm", "committed:1").stdout == "data\n"
    out = engine.docker("run", "--rm", "committed:1", "sh", "-c",
                        "ls /etc/group 2>/dev/null || echo gone; cat /d/f; echo $MODE").stdout
    assert out.split() == ["gone", "x", "committed"]
    doc = json.loads(engine.docker("image", "inspect", "committed:1").stdout)[0]
    assert doc["Author"] == "tester" and doc["Comment"] == "snapshot" and len(doc["RootFS"]["Layers"]) == 2
    assert doc["Config"]["OnBuild"] == ["RUN echo child"]
    engine.docker("run", "-d", "--name", "live", "busybox", "sh", "-c", "echo live > /live; sleep 1000")
    engine.docker("exec", "live", "sh", "-c", "while [ ! -f /live ]; do sleep 0.05; done")
    engine.docker("commit", "live", "committed:2")  # paused during the commit, running after it
    assert engine.docker("inspect", "-f", "{{.State.Status}}", "live").stdout.strip() == "running"
    assert engine.docker("run", "--rm", "committed:2", "cat", "/live").stdout == "live\n"
    engine.docker("rm", "-f", "live")
    missing = engine.docker("commit", "nosuchcontainer", check=False)
    assert missing.returncode != 0 and "No such container: nosuchcontainer" in missing.stderr
    engine.docker("rmi", "committed:1", "committed:2")


def test_build_limits_apply_to_run_steps(engine: Engine) -> None:
    ctx = context(engine.work / "limits", "FROM busybox\nRUN cat /sys/fs/cgroup/memory/memory.limit_in_bytes\n")
    out = engine.docker("build", "--no-cache", "--memory", "64m", str(ctx)).stdout
    assert f"\n{64 << 20}\n" in out


def test_an_abandoned_build_stops(engine: Engine) -> None:
    ctx = context(engine.work / "abandoned", "FROM busybox\nRUN echo started; sleep 60\n")
    client = subprocess.Popen([DOCKER, "build", "--no-cache", str(ctx)], env=engine.env, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    assert client.stdout is not None
    try:
        wait_for_line(client.stdout, "started", timeout=120)
    finally:
        client.kill()
    client.wait(5)
    deadline = time.monotonic() + 15
    while engine.docker("ps", "-aq").stdout.strip() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert engine.docker("ps", "-aq").stdout.strip() == ""  # the step's container is gone with the client


def wait_for_line(stream: IO[str], text: str, timeout: float) -> None:
    """Until a line of ``stream`` holds ``text``; fails at EOF or after ``timeout`` seconds (never hangs)."""
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line)
        lines.put("")  # EOF

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + timeout
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise AssertionError(f"no line with {text!r} within {timeout} s") from None
        if text in line:
            return
        assert line, f"the output ended without a line with {text!r}"


def mirror_reachable() -> bool:
    try:
        socket.create_connection(("deb.debian.org", 80), timeout=5).close()
        return True
    except OSError:
        return False


def test_run_steps_reach_only_the_package_mirror(engine: Engine) -> None:
    if not mirror_reachable():
        pytest.skip("this machine cannot reach deb.debian.org (the build network's only destination)")
    ctx = context(engine.work / "mirror", """\
FROM busybox
RUN req='HEAD http://deb.debian.org/debian/dists/bookworm/Release HTTP/1.1\\r\\nHost: deb.debian.org\\r\\n\\r\\n'; \\
    (printf "$req"; sleep 3) | nc 127.0.0.1 3142 | head -n 1
RUN printf 'GET http://192.0.2.1/ HTTP/1.1\\r\\nHost: 192.0.2.1\\r\\n\\r\\n' | nc 127.0.0.1 3142 | head -n 1
RUN echo "proxy=$http_proxy"
""")
    out = engine.docker("build", "--no-cache", "-t", "mirror:1", str(ctx)).stdout
    assert "HTTP/1.1 200 OK" in out and "HTTP/1.1 403 Forbidden" in out and "proxy=http://127.0.0.1:3142" in out
    env = json.loads(engine.docker("image", "inspect", "mirror:1").stdout)[0]["Config"].get("Env") or []
    assert not [e for e in env if "proxy" in e.lower()]  # the proxy is the build's, never the image's
    assert sorted(os.listdir(engine.server.data_dir / "engine" / "netns")) == ["engine"]
    engine.docker("rmi", "mirror:1")


def test_nothing_left_behind(engine: Engine) -> None:
    assert engine.docker("ps", "-aq").stdout.strip() == ""
    build_dir = engine.server.data_dir / "engine" / "build"
    assert sorted(p.name for p in build_dir.iterdir() if not p.name.startswith("cache.")) in ([], ["mnt"])
    if (build_dir / "mnt").exists():
        assert list((build_dir / "mnt").iterdir()) == []
    data = str(engine.server.data_dir)
    with open("/proc/self/mountinfo") as f:
        assert [line.split()[4] for line in f if f"{data}/engine/build" in line] == []
