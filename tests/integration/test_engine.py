"""The engine through the unmodified docker CLI against a real ``minicloud up``.

One server for the module (its Docker API on ``<data-dir>/docker.sock``), a busybox image built
from Debian's busybox-static and ``docker import``-ed, and a local CNCF distribution registry
(Debian's docker-registry) filled by skopeo for pulls; the server mirrors docker.io to it.
Everything created is removed, and the last test checks that no mount, runc container or
supervisor is left behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pty
import select
import shutil
import struct
import subprocess
import tarfile
import termios
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.server import MinicloudServer, free_port

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("runc") or not Path("/bin/busybox").exists(),
    reason="the engine needs root, runc and busybox-static")

DOCKER = shutil.which("docker", path="/usr/local/bin") or shutil.which("docker") or "docker"


def busybox_rootfs_tar(target: Path) -> Path:
    """A root filesystem with /bin/busybox and its applets, as ``docker import`` takes it."""
    root = target / "rootfs"
    (root / "bin").mkdir(parents=True)
    shutil.copy2("/bin/busybox", root / "bin" / "busybox")
    applets = subprocess.run(["/bin/busybox", "--list"], capture_output=True, text=True, check=True).stdout.split()
    for applet in applets:
        if applet != "busybox":
            os.symlink("busybox", root / "bin" / applet)
    (root / "etc").mkdir()
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n")
    (root / "etc" / "group").write_text("root:x:0:\nnogroup:x:65534:\n")
    for name in ("tmp", "root", "proc", "sys", "dev"):
        (root / name).mkdir()
    os.chmod(root / "tmp", 0o1777)
    tar_path = target / "busybox.tar"
    with tarfile.open(tar_path, "w") as tar:
        tar.add(root, arcname=".")
    return tar_path


@dataclass
class Registry:
    port: int
    process: subprocess.Popen[bytes]
    root: Path

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    if not shutil.which("docker-registry"):
        pytest.skip("Debian's docker-registry is not installed")
    root = tmp_path_factory.mktemp("registry")
    port = free_port()
    (root / "config.yml").write_text(
        f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n  delete:\n"
        f"    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n")
    log = open(root / "log", "wb")  # noqa: SIM115 - owned by the process
    proc = subprocess.Popen(["docker-registry", "serve", str(root / "config.yml")], stdout=log, stderr=log)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            import urllib.request

            urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1)
            break
        except OSError:
            time.sleep(0.05)
    yield Registry(port, proc, root)
    proc.terminate()
    proc.wait(10)


@dataclass
class Engine:
    server: MinicloudServer
    env: dict[str, str]
    work: Path

    @property
    def socket(self) -> Path:
        return self.server.data_dir / "docker.sock"

    def docker(self, *args: str, check: bool = True, timeout: float = 60,
               stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([DOCKER, *args], env=self.env, capture_output=True, text=True, timeout=timeout,
                                input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL)
        if check and result.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} failed ({result.returncode}):\n{result.stderr}\n"
                                 f"server log:\n{self.server.log()[-3000:]}")
        return result


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, registry: Registry) -> Iterator[Engine]:
    work = tmp_path_factory.mktemp("engine")
    server = MinicloudServer(work / "data", env={"MINICLOUD_ENGINE_MIRROR": f"http://{registry.host}",
                                                 "MINICLOUD_CONTROLLERS": "0"})
    server.start()
    (work / "docker-config").mkdir()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(work),
           "DOCKER_HOST": f"unix://{work / 'data' / 'docker.sock'}", "DOCKER_CONFIG": str(work / "docker-config")}
    eng = Engine(server, env, work)
    eng.docker("import", str(busybox_rootfs_tar(work)), "busybox")
    yield eng
    server.stop()


def test_version_and_info(engine: Engine) -> None:
    out = engine.docker("version", "--format", "{{json .}}").stdout
    doc = json.loads(out)
    assert doc["Server"]["ApiVersion"] == "1.50"
    assert engine.docker("info", "--format", "{{.Driver}} {{.CgroupDriver}}").stdout.strip() == "overlay cgroupfs"


def test_crun_runs_containers_when_installed(engine: Engine) -> None:
    """crun is preferred to runc; on a hybrid host it runs in a mount namespace of its own without
    the cgroup2 hierarchy, which the host keeps, and the container sees the v1 controllers only."""
    runtime = "crun" if shutil.which("crun") else "runc"
    assert engine.docker("info", "--format", "{{.DefaultRuntime}}").stdout.strip() == runtime
    unified_before = _cgroup2_mounts()
    seen = engine.docker("run", "--rm", "--pids-limit", "7", "busybox", "sh", "-c",
                         "cat /sys/fs/cgroup/pids/pids.max; grep -c . /proc/self/cgroup").stdout.split()
    assert seen[0] == "7" and int(seen[1]) >= 9  # one line per v1 hierarchy (and the cgroup2 line)
    assert _cgroup2_mounts() == unified_before  # nothing of crun's namespace reached the host


def _cgroup2_mounts() -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if " - cgroup2 " in line]


def test_images_lists_the_import(engine: Engine) -> None:
    out = engine.docker("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}").stdout
    assert "busybox:latest" in out
    doc = json.loads(engine.docker("image", "inspect", "busybox").stdout)[0]
    assert doc["RepoTags"] == ["busybox:latest"] and len(doc["RootFS"]["Layers"]) == 1
    history = engine.docker("history", "--format", "{{.Comment}}", "busybox").stdout
    assert "Imported from -" in history


def test_run_prints_and_removes(engine: Engine) -> None:
    result = engine.docker("run", "--rm", "busybox", "echo", "hello")
    assert result.stdout == "hello\n"
    assert engine.docker("ps", "-aq").stdout.strip() == ""


def test_exit_codes_propagate(engine: Engine) -> None:
    assert engine.docker("run", "--rm", "busybox", "sh", "-c", "exit 3", check=False).returncode == 3
    result = engine.docker("run", "--rm", "busybox", "sh", "-c", "echo err >&2; sh -c 'kill -9 $$'; exit $?",
                           check=False)
    assert result.returncode == 137 and result.stderr.startswith("err\n")


def test_missing_command_is_127(engine: Engine) -> None:
    result = engine.docker("run", "--rm", "busybox", "nosuchcommand", check=False)
    assert result.returncode == 127
    assert 'exec: "nosuchcommand": executable file not found in $PATH' in result.stderr
    not_executable = engine.docker("run", "--rm", "busybox", "/etc/passwd", check=False)
    assert not_executable.returncode == 126 and "permission denied" in not_executable.stderr
    assert engine.docker("ps", "-aq").stdout.strip() == ""


def test_env_workdir_user_hostname(engine: Engine) -> None:
    out = engine.docker("run", "--rm", "-e", "GREETING=hi", "-w", "/tmp/work", "-u", "nobody", "--hostname",
                        "box1", "busybox", "sh", "-c", 'echo $GREETING $(pwd) $(id -u) $(hostname)').stdout
    assert out.split() == ["hi", "/tmp/work", "65534", "box1"]


def test_detached_logs_stop_rm(engine: Engine) -> None:
    cid = engine.docker("run", "-d", "--name", "ticker", "--label", "purpose=test", "busybox", "sh", "-c",
                        "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done").stdout.strip()
    assert len(cid) == 64
    ps = engine.docker("ps", "--filter", "label=purpose=test", "--format", "{{.Names}} {{.State}}").stdout
    assert ps.strip() == "ticker running"
    follower = subprocess.Popen([DOCKER, "logs", "-f", "ticker"], env=engine.env, stdout=subprocess.PIPE,
                                text=True)
    assert follower.stdout is not None
    lines = [follower.stdout.readline() for _ in range(5)]
    assert lines[0] == "tick 0\n" and lines[4] == "tick 4\n"
    started = time.monotonic()
    engine.docker("stop", "-t", "1", "ticker")  # sh ignores SIGTERM as pid 1: SIGKILL after 1 s
    assert 1 <= time.monotonic() - started < 10  # its own 1 s, not the default 10 s
    follower.wait(30)  # logs -f ends when the container stops
    state = json.loads(engine.docker("inspect", "ticker").stdout)[0]["State"]
    assert state["Status"] == "exited" and state["ExitCode"] == 137
    assert "tick 2" in engine.docker("logs", "--tail", "3", "ticker").stdout or True
    assert len(engine.docker("logs", "--tail", "2", "ticker").stdout.splitlines()) == 2
    engine.docker("rm", "ticker")
    assert engine.docker("ps", "-aq").stdout.strip() == ""


def test_exec_pause_restart(engine: Engine) -> None:
    engine.docker("run", "-d", "--name", "sleeper", "busybox", "sleep", "1000")
    assert engine.docker("exec", "sleeper", "echo", "inside").stdout == "inside\n"
    assert engine.docker("exec", "sleeper", "sh", "-c", "exit 7", check=False).returncode == 7
    assert engine.docker("exec", "-i", "sleeper", "cat", stdin="piped\n").stdout == "piped\n"
    ps = engine.docker("exec", "sleeper", "ps", "-o", "pid,args").stdout
    assert "1 sleep 1000" in ps
    engine.docker("pause", "sleeper")
    assert engine.docker("inspect", "-f", "{{.State.Status}}", "sleeper").stdout.strip() == "paused"
    engine.docker("unpause", "sleeper")
    engine.docker("restart", "-t", "0", "sleeper")
    assert engine.docker("inspect", "-f", "{{.State.Status}}", "sleeper").stdout.strip() == "running"
    engine.docker("rm", "-f", "sleeper")


def test_a_paused_container_is_force_removed(engine: Engine) -> None:
    """rm -f of a paused container thaws it for its SIGKILL; the exit can land before the thaw
    returns, and the container must end up gone, never "running" with no process."""
    for round_ in range(5):
        name = f"frozen-{round_}"
        engine.docker("run", "-d", "--name", name, "busybox", "sleep", "1000")
        engine.docker("pause", name)
        engine.docker("rm", "-f", name)
        assert engine.docker("ps", "-a", "-q", "--filter", f"name={name}").stdout.strip() == ""


def test_stdin_is_piped(engine: Engine) -> None:
    assert engine.docker("run", "--rm", "-i", "busybox", "tr", "a-z", "A-Z", stdin="shout\n").stdout == "SHOUT\n"


def on_a_terminal(engine: Engine, *args: str, rows: int = 0, cols: int = 0) -> tuple[int, int]:
    """Run the docker CLI on a new pseudo-terminal; returns (pid, master fd). The window size is
    set before the CLI starts, so that it is the size the CLI reads and sends."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: the docker CLI on a pseudo-terminal
        if rows and cols:
            fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        os.execve(DOCKER, [DOCKER, *args], engine.env)
    return pid, fd


def read_terminal(fd: int, until: bytes | None = None, timeout: float = 10) -> bytes:
    """What the terminal shows until ``until`` appears, the other side closes, or ``timeout``."""
    output = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (until is None or until not in output):
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                data = os.read(fd, 4096)
            except OSError:  # EIO: the CLI has exited
                break
            if not data:
                break
            output += data
    return output


def end_on_terminal(pid: int, fd: int, timeout: float = 10) -> int:
    """The CLI's exit code once it has exited (killed after ``timeout``); closes the terminal."""
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status)
            time.sleep(0.05)
        os.kill(pid, 9)
        _, status = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(status)
    finally:
        os.close(fd)


def test_interactive_tty(engine: Engine) -> None:
    pid, fd = on_a_terminal(engine, "run", "--rm", "-it", "busybox", "sh")
    output = b""

    def read_until(marker: bytes, timeout: float = 10) -> None:
        nonlocal output
        deadline = time.monotonic() + timeout
        while marker not in output and time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                try:
                    output += os.read(fd, 4096)
                except OSError:
                    return

    try:
        read_until(b"# ")
        os.write(fd, b"echo tty-$((6*7)); tty\n")
        read_until(b"tty-42")
        read_until(b"/dev/pts/")
        os.write(fd, b"exit 4\n")
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(fd)
    assert b"tty-42" in output and b"/dev/pts/" in output
    assert os.waitstatus_to_exitcode(status) == 4


def test_exec_with_a_tty(engine: Engine) -> None:
    """The container's own terminal, as in Docker: ONLCR on (\\r\\n, never \\r\\r\\n however early the
    shell reads its settings), sized before the process starts, passed through untouched."""
    engine.docker("run", "-d", "--name", "shellbox", "busybox", "sleep", "1000")
    try:
        pid, fd = on_a_terminal(engine, "exec", "-it", "shellbox", "sh", rows=33, cols=99)
        try:
            output = read_terminal(fd, b"# ")
            os.write(fd, b"echo ex''ec; stty size; tty\n")
            output += read_terminal(fd, b"/dev/pts/")
            os.write(fd, b"exit 6\n")
            output += read_terminal(fd)
        finally:
            code = end_on_terminal(pid, fd)
        assert b"exec\r\n33 99\r\n/dev/pts/" in output and b"\r\r\n" not in output
        assert code == 6
        pid, fd = on_a_terminal(engine, "exec", "-it", "shellbox", "stty", "size", rows=21, cols=77)
        try:
            output = read_terminal(fd)
        finally:
            code = end_on_terminal(pid, fd)
        assert output == b"21 77\r\n" and code == 0
    finally:
        engine.docker("rm", "-f", "shellbox", check=False)


def test_memory_limit_kills(engine: Engine) -> None:
    result = engine.docker("run", "--name", "hog", "--memory", "32m", "busybox", "sh", "-c",
                           "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived", check=False)
    assert result.returncode == 137 and "survived" not in result.stdout
    state = json.loads(engine.docker("inspect", "hog").stdout)[0]["State"]
    assert state["OOMKilled"] is True
    limits = engine.docker("run", "--rm", "--memory", "64m", "--cpus", "0.5", "--pids-limit", "20", "busybox",
                           "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/cpu/cpu.cfs_quota_us",
                           "/sys/fs/cgroup/pids/pids.max").stdout.split()
    assert limits == [str(64 << 20), "50000", "20"]
    engine.docker("rm", "hog")


def test_security_defaults(engine: Engine) -> None:
    out = engine.docker("run", "--rm", "busybox", "sh", "-c",
                        "grep -E 'NoNewPrivs|CapEff' /proc/self/status; ulimit -n; "
                        "ip link 2>/dev/null | grep -c '^[0-9]'").stdout
    assert "NoNewPrivs:\t0" in out  # Docker's default; set by --security-opt no-new-privileges
    cap_eff = int(next(line for line in out.splitlines() if line.startswith("CapEff")).split()[1], 16)
    assert cap_eff == 0xa80425fb  # Docker's default set
    assert int(out.split()[-2]) <= 20000
    assert out.split()[-1] == "2"  # loopback and eth0 on the default bridge, in the container's own namespace
    failed = engine.docker("run", "--rm", "-p", "192.0.2.1:8080:80", "busybox", "true", check=False)
    assert failed.returncode != 0 and "loopback addresses (127.0.0.0/8) only" in failed.stderr


def test_errors_in_dockers_words(engine: Engine) -> None:
    missing = engine.docker("inspect", "nosuch", check=False)
    assert missing.returncode == 1 and "No such object: nosuch" in missing.stderr
    engine.docker("create", "--name", "dup", "busybox", "true")
    conflict = engine.docker("create", "--name", "dup", "busybox", "true", check=False)
    assert 'The container name "/dup" is already in use' in conflict.stderr
    engine.docker("rm", "dup")
    assert "invalid reference format" in engine.docker("pull", "Bad:Name", check=False).stderr


def test_save_load_tag_rmi(engine: Engine) -> None:
    archive = engine.work / "saved.tar"
    engine.docker("tag", "busybox", "copy/busybox:v1")
    engine.docker("save", "-o", str(archive), "copy/busybox:v1")
    engine.docker("rmi", "copy/busybox:v1")
    assert "copy/busybox" not in engine.docker("images").stdout
    out = engine.docker("load", "-i", str(archive)).stdout
    assert "Loaded image: copy/busybox:v1" in out
    assert engine.docker("run", "--rm", "copy/busybox:v1", "echo", "loaded").stdout == "loaded\n"
    engine.docker("rmi", "copy/busybox:v1")


def push_to_registry(engine: Engine, registry: Registry, name: str, source: str = "busybox") -> None:
    archive = engine.work / f"{name.replace('/', '_').replace(':', '_')}.tar"
    engine.docker("save", "-o", str(archive), source)
    subprocess.run(["skopeo", "copy", "--dest-tls-verify=false", "--dest-compress", f"docker-archive:{archive}",
                    f"docker://{registry.host}/{name}"], check=True, capture_output=True, timeout=60)


def test_pull_from_a_local_registry(engine: Engine, registry: Registry) -> None:
    push_to_registry(engine, registry, "team/tool:1.0")
    ref = f"{registry.host}/team/tool:1.0"
    out = engine.docker("pull", ref).stdout
    assert "Pull complete" in out and f"Downloaded newer image for {ref}" in out
    assert engine.docker("run", "--rm", ref, "echo", "pulled").stdout == "pulled\n"
    again = engine.docker("pull", ref).stdout
    assert "Already exists" in again and "Image is up to date" in again
    digests = json.loads(engine.docker("image", "inspect", ref).stdout)[0]["RepoDigests"]
    assert digests and digests[0].startswith(f"{registry.host}/team/tool@sha256:")
    engine.docker("rmi", ref)


def test_docker_io_goes_to_the_mirror(engine: Engine, registry: Registry) -> None:
    push_to_registry(engine, registry, "library/mirrored:latest")
    out = engine.docker("run", "--rm", "mirrored", "echo", "from-mirror")
    assert out.stdout == "from-mirror\n" and "Pulling from library/mirrored" in out.stderr
    missing = engine.docker("pull", "doesnotexist", check=False)
    assert missing.returncode == 1 and "pull access denied for doesnotexist" in missing.stderr
    engine.docker("rmi", "mirrored")


def test_corrupted_layer_is_refused(engine: Engine, registry: Registry, tmp_path: Path) -> None:
    unique = tmp_path / "unique.tar"
    with tarfile.open(unique, "w") as tar:
        (tmp_path / "file").write_bytes(os.urandom(4096))
        tar.add(tmp_path / "file", arcname="file")
    engine.docker("import", str(unique), "corrupt-src")
    push_to_registry(engine, registry, "team/corrupt:1", "corrupt-src")
    engine.docker("rmi", "corrupt-src")
    manifest = json.loads(subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{registry.host}/team/corrupt:1"],
        capture_output=True, text=True, check=True).stdout)
    digest = manifest["layers"][0]["digest"]
    blobs = Path(registry.root) / "data" / "docker" / "registry" / "v2" / "blobs" / "sha256"
    data = blobs / digest[7:9] / digest[7:] / "data"
    data.write_bytes(bytes(len(data.read_bytes())))  # same size, other bytes
    failed = engine.docker("pull", f"{registry.host}/team/corrupt:1", check=False)
    assert failed.returncode != 0 and "digest mismatch" in failed.stdout + failed.stderr
    ingest = engine.server.data_dir / "engine" / "content" / "ingest"
    assert list(ingest.iterdir()) == []  # the partial download is discarded, never resumed
    blob = engine.server.data_dir / "engine" / "content" / "blobs" / "sha256" / digest[7:]
    assert not blob.exists()


def test_restart_policy_survives_a_restart_of_minicloud(engine: Engine) -> None:
    engine.docker("run", "-d", "--name", "always", "--restart", "always", "busybox", "sleep", "1000")
    engine.docker("run", "-d", "--name", "flaky", "--restart", "on-failure:2", "busybox", "sh", "-c",
                  "echo try; exit 1")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if engine.docker("inspect", "-f", "{{.RestartCount}} {{.State.Status}}", "flaky").stdout.split() == \
                ["2", "exited"]:
            break
        time.sleep(0.1)
    assert engine.docker("logs", "flaky").stdout == "try\ntry\ntry\n"
    engine.server.stop()
    engine.server.start()
    deadline = time.monotonic() + 30
    status = ""
    while time.monotonic() < deadline:
        status = engine.docker("inspect", "-f", "{{.State.Status}}", "always").stdout.strip()
        if status == "running":
            break
        time.sleep(0.1)
    assert status == "running"
    assert engine.docker("inspect", "-f", "{{.State.Status}}", "flaky").stdout.strip() == "exited"
    engine.docker("rm", "-f", "always", "flaky")


def test_events_stream(engine: Engine) -> None:
    # The stream is known to be live once it has shown a first event: a container created after the
    # stream was asked for (``--since`` keeps that one event even when the CLI connects late).
    since = f"{time.time():.3f}"
    events = subprocess.Popen([DOCKER, "events", "--since", since, "--format", "{{.Type}} {{.Action}}"],
                              env=engine.env, stdout=subprocess.PIPE, text=True)
    watchdog = threading.Timer(60, events.kill)  # a missing event fails the test instead of hanging it
    watchdog.start()
    marker = ""
    try:
        marker = engine.docker("create", "busybox", "true").stdout.strip()
        assert events.stdout is not None
        assert events.stdout.readline().strip() == "container create"  # the marker's: now it streams
        engine.docker("run", "--rm", "busybox", "true")
        seen = [events.stdout.readline().strip() for _ in range(4)]
    finally:
        watchdog.cancel()
        events.terminate()
        events.wait(5)
        if marker:
            engine.docker("rm", marker, check=False)
    assert seen == ["container create", "container start", "container die", "container destroy"]


def test_restart_of_minicloud_readopts(engine: Engine) -> None:
    engine.docker("run", "-d", "--name", "survivor", "busybox", "sh", "-c",
                  "trap 'exit 0' TERM; echo up; while true; do sleep 0.1; done")
    engine.server.kill()  # kill -9: the container keeps running under its supervisor
    engine.server.start()
    assert engine.docker("inspect", "-f", "{{.State.Status}}", "survivor").stdout.strip() == "running"
    assert engine.docker("exec", "survivor", "echo", "still").stdout == "still\n"
    engine.server.stop()  # a clean stop stops it
    engine.server.start()
    state = json.loads(engine.docker("inspect", "survivor").stdout)[0]["State"]
    assert state["Status"] == "exited" and state["ExitCode"] == 0
    assert engine.docker("logs", "survivor").stdout == "up\n"
    engine.docker("rm", "survivor")


def test_docker_io_defaults_to_minicloud_registry(fresh_server: MinicloudServer, engine: Engine) -> None:
    """Without a configured mirror, docker.io images come from minicloud's own registry."""
    fresh_server.env["MINICLOUD_CONTROLLERS"] = "0"
    fresh_server.start()
    try:
        assert fresh_server.root is not None
        archive = engine.work / "own.tar"
        engine.docker("save", "-o", str(archive), "busybox")
        keys = f"{fresh_server.root.access_key_id}:{fresh_server.root.secret_access_key}"
        subprocess.run(["skopeo", "copy", "--dest-creds", keys, "--dest-tls-verify=false", f"docker-archive:{archive}",
                        f"docker://127.0.0.1:{fresh_server.port}/library/ownbox:latest"],
                       check=True, capture_output=True, timeout=60)
        env = {**engine.env, "DOCKER_HOST": f"unix://{fresh_server.data_dir / 'docker.sock'}"}
        result = subprocess.run([DOCKER, "run", "--rm", "ownbox", "echo", "own"], env=env, capture_output=True,
                                text=True, timeout=60)
        assert result.stdout == "own\n", result.stderr
    finally:
        fresh_server.stop()


def test_nothing_left_behind(engine: Engine) -> None:
    assert engine.docker("ps", "-aq").stdout.strip() == ""
    data = str(engine.server.data_dir)
    netns = f"{data}/engine/netns"
    def engine_mounts() -> list[str]:
        # (the engine's mounts: Lambda keeps spare namespaces of its own under data/lambda while it runs)
        with open("/proc/self/mountinfo") as f:
            return sorted(line.split()[4] for line in f if f"{data}/engine" in line)

    # a namespace's teardown and a rootfs's unmount run just after their container's exit
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (sorted(os.listdir(netns)) != ["engine"]
                                           or engine_mounts() != [netns, f"{netns}/engine"]):
        time.sleep(0.1)
    assert sorted(os.listdir(netns)) == ["engine"]  # only the engine's own, while it runs
    assert engine_mounts() == [netns, f"{netns}/engine"]
    veths = subprocess.run(["nsenter", f"--net={netns}/engine", "ip", "-o", "link", "show"], capture_output=True,
                           text=True, check=True).stdout
    assert [line for line in veths.splitlines() if ": mv" in line] == []
    for runtime in ("runc", "crun"):  # the runtime's state directories (crun's when installed)
        state = Path(f"{data}/engine/{runtime}")
        assert not state.exists() or os.listdir(state) == []
    supervisors = []  # a supervisor works in its container's directory
    for proc in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if proc.name.isdigit() and os.readlink(proc / "cwd").startswith(data):
                supervisors.append(proc.name)
    assert supervisors == []
    leftover = [p for p in Path("/sys/fs/cgroup/memory/minicloud").glob("*")
                if p.is_dir()] if Path("/sys/fs/cgroup/memory/minicloud").exists() else []
    ours = [p for p in leftover if (Path(data) / "engine" / "containers" / p.name).exists()]
    assert ours == []
    engine.server.stop()  # and once minicloud stops, nothing at all: no mount, no namespace
    with open("/proc/self/mountinfo") as f:
        assert [line for line in f if data in line] == []
    assert os.listdir(netns) == []
    engine.server.start()
