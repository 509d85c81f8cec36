"""More of the engine through the unmodified docker CLI: top, stats, diff, cp both ways, rename,
port, events, prune (containers, images), system df, ``--network host`` and ``container:``.

A server of the module's own (prune must only meet what these tests made), with a busybox image
built from Debian's busybox-static and ``docker import``-ed.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.test_engine import DOCKER, Engine, busybox_rootfs_tar
from tests.support.server import MinicloudServer, free_port

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("runc") or not Path("/bin/busybox").exists(),
    reason="the engine needs root, runc and busybox-static")


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    work = tmp_path_factory.mktemp("engine-more")
    server = MinicloudServer(work / "data", env={"MINICLOUD_CONTROLLERS": "0"})
    server.start()
    (work / "docker-config").mkdir()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(work),
           "DOCKER_HOST": f"unix://{work / 'data' / 'docker.sock'}", "DOCKER_CONFIG": str(work / "docker-config")}
    eng = Engine(server, env, work)
    eng.docker("import", str(busybox_rootfs_tar(work)), "busybox")
    yield eng
    eng.docker("rm", "-f", *eng.docker("ps", "-aq").stdout.split(), check=False)
    server.stop()


@pytest.fixture
def sleeper(engine: Engine) -> Iterator[str]:
    name = f"sleeper{time.monotonic_ns()}"
    engine.docker("run", "-d", "--name", name, "busybox", "sleep", "1000")
    yield name
    engine.docker("rm", "-f", name, check=False)


def test_top_lists_the_containers_processes(engine: Engine, sleeper: str) -> None:
    engine.docker("exec", "-d", sleeper, "sh", "-c", "sleep 777")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and "sleep 777" not in engine.docker("top", sleeper).stdout:
        time.sleep(0.1)
    lines = engine.docker("top", sleeper).stdout.splitlines()
    assert lines[0].split()[:3] == ["UID", "PID", "PPID"]
    commands = sorted(line.split(None, 7)[7] for line in lines[1:])
    assert commands == ["sleep 1000", "sleep 777"]  # nothing of the host's
    custom = engine.docker("top", sleeper, "-o", "pid,comm").stdout.splitlines()
    assert custom[0].split() == ["PID", "COMMAND"] and len(custom) == 3
    stopped = engine.docker("create", "busybox", "true").stdout.strip()
    failed = engine.docker("top", stopped, check=False)
    assert failed.returncode != 0 and "is not running" in failed.stderr
    engine.docker("rm", stopped)


def test_stats_no_stream(engine: Engine, sleeper: str) -> None:
    out = engine.docker("stats", "--no-stream", "--format", "{{json .}}", sleeper).stdout
    doc = json.loads(out)
    assert doc["Name"] == sleeper and doc["PIDs"] == "1"
    used, _, limit = doc["MemUsage"].partition(" / ")
    assert used.endswith(("KiB", "MiB", "B")) and limit.endswith("GiB")
    assert doc["CPUPerc"].endswith("%") and doc["NetIO"].count("/") == 1
    limited = engine.docker("run", "-d", "--memory", "64m", "busybox", "sleep", "1000").stdout.strip()
    try:
        doc = json.loads(engine.docker("stats", "--no-stream", "--format", "{{json .}}", limited).stdout)
        assert doc["MemUsage"].endswith("/ 64MiB")
        everything = engine.docker("stats", "--no-stream", "--format", "{{.Name}}").stdout.split()
        assert sleeper in everything and len(everything) == 2
    finally:
        engine.docker("rm", "-f", limited)


def test_diff_shows_added_changed_deleted(engine: Engine, sleeper: str) -> None:
    engine.docker("exec", sleeper, "sh", "-c", "echo new > /tmp/new; rm /etc/group; mkdir -p /srv/app")
    lines = engine.docker("diff", sleeper).stdout.splitlines()
    assert lines == ["C /etc", "D /etc/group", "A /srv", "A /srv/app", "C /tmp", "A /tmp/new"]
    fresh = engine.docker("create", "busybox", "true").stdout.strip()
    assert engine.docker("diff", fresh).stdout == ""
    engine.docker("rm", fresh)


def test_cp_both_ways(engine: Engine, sleeper: str, tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("payload\n")
    (tmp_path / "tree" / "sub").mkdir(parents=True)
    (tmp_path / "tree" / "sub" / "f").write_text("deep\n")
    os.chmod(tmp_path / "tree" / "sub" / "f", 0o751)
    engine.docker("cp", str(tmp_path / "in.txt"), f"{sleeper}:/tmp/")
    engine.docker("cp", str(tmp_path / "tree"), f"{sleeper}:/tmp/tree")
    assert engine.docker("exec", sleeper, "cat", "/tmp/in.txt", "/tmp/tree/sub/f").stdout == "payload\ndeep\n"
    assert engine.docker("exec", sleeper, "stat", "-c", "%a", "/tmp/tree/sub/f").stdout.strip() == "751"
    engine.docker("cp", f"{sleeper}:/etc/passwd", str(tmp_path / "passwd"))
    assert (tmp_path / "passwd").read_text().startswith("root:x:0:0:")
    engine.docker("cp", f"{sleeper}:/tmp/tree", str(tmp_path / "back"))
    parent_missing = engine.docker("cp", str(tmp_path / "tree"), f"{sleeper}:/opt/tree", check=False)
    assert parent_missing.returncode != 0 and "Could not find the file /opt" in parent_missing.stderr
    assert (tmp_path / "back" / "sub" / "f").read_text() == "deep\n"
    out = subprocess.run([DOCKER, "cp", f"{sleeper}:/etc/passwd", "-"], env=engine.env, capture_output=True,
                         check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(out)) as tar:
        assert tar.getnames() == ["passwd"]
    missing = engine.docker("cp", f"{sleeper}:/no/such", str(tmp_path / "x"), check=False)
    assert missing.returncode != 0 and "Could not find the file /no/such" in missing.stderr


def test_cp_stays_inside_the_container(engine: Engine, sleeper: str, tmp_path: Path) -> None:
    """A link to / inside the container is the container's /, never the host's."""
    engine.docker("exec", sleeper, "sh", "-c", "ln -s / /tmp/root; ln -s ../../../../../etc /tmp/up")
    (tmp_path / "marker").write_text("mine\n")
    engine.docker("cp", str(tmp_path / "marker"), f"{sleeper}:/tmp/root/")
    engine.docker("cp", str(tmp_path / "marker"), f"{sleeper}:/tmp/up/")
    assert not Path("/marker").exists()
    assert engine.docker("exec", sleeper, "cat", "/marker", "/etc/marker").stdout == "mine\nmine\n"
    engine.docker("cp", f"{sleeper}:/tmp/up/passwd", str(tmp_path / "p"))
    assert (tmp_path / "p").read_text().startswith("root:x:0:0:root:/root:/bin/sh\nnobody")


def test_cp_with_a_stopped_container_and_a_volume(engine: Engine, tmp_path: Path) -> None:
    engine.docker("create", "--name", "cpstopped", "-v", "cpdata:/data", "busybox", "cat", "/data/in", "/made")
    try:
        (tmp_path / "in").write_text("into the volume\n")
        engine.docker("cp", str(tmp_path / "in"), "cpstopped:/data/in")
        (tmp_path / "made").write_text("into the layer\n")
        engine.docker("cp", str(tmp_path / "made"), "cpstopped:/made")
        assert engine.docker("start", "-a", "cpstopped").stdout == "into the volume\ninto the layer\n"
        engine.docker("cp", "cpstopped:/made", str(tmp_path / "out"))
        assert (tmp_path / "out").read_text() == "into the layer\n"
        assert engine.docker("diff", "cpstopped").stdout.splitlines() == ["A /made"]
    finally:
        engine.docker("rm", "-v", "cpstopped", check=False)
        engine.docker("volume", "rm", "cpdata", check=False)


def test_a_failed_create_takes_back_its_anonymous_volumes_only(engine: Engine, tmp_path: Path) -> None:
    # As Docker: a named volume a failed create made stays (another create may be using it by
    # then); the anonymous ones, named for that create alone, go.
    before = set(engine.docker("volume", "ls", "-q").stdout.split())
    missing = tmp_path / "no-such-dir"
    failed = engine.docker("create", "-v", "keptvol:/data", "-v", "/anon",
                           "--mount", f"type=bind,source={missing},target=/x", "busybox", "true", check=False)
    assert failed.returncode != 0 and "bind source path does not exist" in failed.stderr
    try:
        assert set(engine.docker("volume", "ls", "-q").stdout.split()) - before == {"keptvol"}
    finally:
        engine.docker("volume", "rm", "keptvol", check=False)


def test_rename_port_and_events(engine: Engine) -> None:
    port = free_port()
    since = str(int(time.time()) - 1)
    engine.docker("network", "create", "renames")
    engine.docker("run", "-d", "--name", "before", "--network", "renames", "-p", f"127.0.0.1:{port}:80",
                  "busybox", "httpd", "-f", "-p", "80")
    try:
        engine.docker("rename", "before", "after")
        assert engine.docker("inspect", "-f", "{{.Name}}", "after").stdout.strip() == "/after"
        assert engine.docker("inspect", "before", check=False).returncode != 0
        assert engine.docker("port", "after").stdout.strip() == f"80/tcp -> 127.0.0.1:{port}"
        assert engine.docker("port", "after", "80").stdout.strip() == f"127.0.0.1:{port}"
        resolved = engine.docker("run", "--rm", "--network", "renames", "busybox", "sh", "-c",
                                 "for i in $(seq 50); do wget -q -O /dev/null http://after/ 2>&1 | grep -q 404 "
                                 "&& echo found && exit; sleep 0.1; done").stdout
        assert resolved == "found\n"  # the network's DNS answers to the new name
        engine.docker("run", "-d", "--name", "taken", "busybox", "true")
        conflict = engine.docker("rename", "after", "taken", check=False)
        assert conflict.returncode != 0 and 'The container name "/taken" is already in use' in conflict.stderr
        events = engine.docker("events", "--since", since, "--until", str(int(time.time()) + 1), "--filter",
                               "event=rename", "--format", "{{.Actor.Attributes.oldName}} {{.Actor.Attributes.name}}")
        assert events.stdout.strip() == "/before after"
    finally:
        engine.docker("rm", "-f", "after", "taken", check=False)
        engine.docker("network", "rm", "renames", check=False)


def test_container_and_image_prune_and_system_df(engine: Engine) -> None:
    engine.docker("run", "--name", "done1", "busybox", "sh", "-c", "echo x > /big")
    engine.docker("create", "--name", "done2", "--label", "keep=yes", "busybox", "true")
    engine.docker("run", "-d", "--name", "alive", "busybox", "sleep", "1000")
    try:
        df = engine.docker("system", "df", "--format", "{{json .}}").stdout.splitlines()
        kinds = {json.loads(line)["Type"]: json.loads(line) for line in df}
        assert kinds["Containers"]["TotalCount"] == "3" and kinds["Containers"]["Active"] == "1"
        assert kinds["Images"]["TotalCount"] == "1"
        pruned = engine.docker("container", "prune", "-f", "--filter", "label!=keep=yes").stdout
        names = {c.strip() for c in engine.docker("ps", "-a", "--format", "{{.Names}}").stdout.split()}
        assert names == {"done2", "alive"} and "Total reclaimed space" in pruned
        engine.docker("container", "prune", "-f")
        assert engine.docker("ps", "-a", "--format", "{{.Names}}").stdout.split() == ["alive"]
    finally:
        engine.docker("rm", "-f", "alive", "done1", "done2", check=False)
    engine.docker("tag", "busybox", "spare:1")
    engine.docker("commit", engine.docker("create", "busybox", "true").stdout.strip(), "dangling:1")
    engine.docker("tag", "busybox", "dangling:1")  # dangling:1 moves: the committed image has no tag left
    engine.docker("container", "prune", "-f")
    before = engine.docker("images", "-a", "--format", "{{.ID}}").stdout.split()
    out = engine.docker("image", "prune", "-f").stdout
    assert "deleted: sha256:" in out
    after = engine.docker("images", "-a", "--format", "{{.ID}}").stdout.split()
    assert len(after) == len(before) - 1
    user = engine.docker("run", "-d", "busybox", "sleep", "1000").stdout.strip()
    try:
        engine.docker("image", "prune", "-a", "-f")  # busybox is used by a container: it stays
        assert engine.docker("images", "--format", "{{.Repository}}:{{.Tag}}", "busybox").stdout.strip() != ""
    finally:
        engine.docker("rm", "-f", user)
    engine.docker("rmi", "spare:1", "dangling:1", check=False)


def test_network_host_and_container_modes(engine: Engine, sleeper: str) -> None:
    port = free_port()
    host_links = engine.docker("run", "--rm", "--network", "host", "busybox", "cat", "/proc/net/dev").stdout
    with open("/proc/net/dev") as f:
        assert sorted(line.split(":")[0].strip() for line in host_links.splitlines()[2:]) == \
            sorted(line.split(":")[0].strip() for line in f.read().splitlines()[2:])
    web = engine.docker("run", "-d", "--network", "host", "busybox", "httpd", "-f", "-p", f"127.0.0.1:{port}").stdout
    try:
        deadline = time.monotonic() + 10
        status = 0
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1)
            except urllib.error.HTTPError as exc:  # busybox httpd with no index: 404 is the answer
                status = exc.code
                break
            except OSError:
                time.sleep(0.1)
        assert status == 404
    finally:
        engine.docker("rm", "-f", web.strip())
    engine.docker("exec", "-d", sleeper, "httpd", "-f", "-p", "127.0.0.1:8081")
    joined = engine.docker("run", "--rm", f"--network=container:{sleeper}", "busybox", "sh", "-c",
                           "for i in $(seq 300); do wget -q -O /dev/null http://127.0.0.1:8081/ 2>&1 | grep -q 404 "
                           "&& echo shared && exit; sleep 0.1; done; echo unreachable").stdout
    assert joined == "shared\n"


def test_exec_and_volumes_have_dockers_modes(engine: Engine) -> None:
    engine.docker("run", "-d", "--name", "modes", "-v", "modesdata:/data", "busybox", "sleep", "1000")
    try:
        assert engine.docker("exec", "modes", "sh", "-c", "umask").stdout.strip() == "0022"
        assert engine.docker("exec", "modes", "stat", "-c", "%a", "/data").stdout.strip() == "755"
    finally:
        engine.docker("rm", "-f", "-v", "modes")
        engine.docker("volume", "rm", "modesdata", check=False)


def wait_for_status(engine: Engine, name: str, wanted: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    status = ""
    while time.monotonic() < deadline:
        status = engine.docker("ps", "--filter", f"name={name}", "--format", "{{.Status}}").stdout.strip()
        if status.endswith(wanted):
            break
        time.sleep(0.2)
    return status


def test_healthchecks(engine: Engine) -> None:
    since = str(time.time() - 1)
    engine.docker("run", "-d", "--name", "checked", "--health-cmd", "test -e /tmp/ready && echo ok",
                  "--health-interval", "300ms", "--health-retries", "2", "busybox", "sleep", "1000")
    engine.docker("run", "-d", "--name", "unchecked", "--no-healthcheck", "busybox", "sleep", "1000")
    try:
        assert wait_for_status(engine, "checked", "(unhealthy)").endswith("(unhealthy)")
        health = json.loads(engine.docker("inspect", "-f", "{{json .State.Health}}", "checked").stdout)
        assert health["Status"] == "unhealthy" and health["FailingStreak"] >= 2
        assert health["Log"][-1]["ExitCode"] == 1 and len(health["Log"]) <= 5
        engine.docker("exec", "checked", "touch", "/tmp/ready")
        assert wait_for_status(engine, "checked", "(healthy)").endswith("(healthy)")
        health = json.loads(engine.docker("inspect", "-f", "{{json .State.Health}}", "checked").stdout)
        assert health["Log"][-1] == {**health["Log"][-1], "ExitCode": 0, "Output": "ok\n"}
        assert engine.docker("inspect", "-f", "{{.ExecIDs}}", "checked").stdout.strip() == "[]"
        assert engine.docker("ps", "--filter", "health=healthy", "--format", "{{.Names}}").stdout.split() == \
            ["checked"]
        assert "unchecked" in engine.docker("ps", "--filter", "health=none", "--format", "{{.Names}}").stdout
        assert "health" not in engine.docker("ps", "--filter", "name=unchecked", "--format", "{{.Status}}").stdout
        assert engine.docker("inspect", "-f", "{{.State.Health}}", "unchecked").stdout.strip() == "<nil>"
        events = engine.docker("events", "--since", since, "--until", str(time.time()), "--filter",
                               "container=checked", "--format", "{{.Action}}").stdout.splitlines()
        assert [e for e in events if e.startswith("health_status")] == \
            ["health_status: unhealthy", "health_status: healthy"]
    finally:
        engine.docker("rm", "-f", "checked", "unchecked")


def test_events_filters_and_bad_times(engine: Engine) -> None:
    since = str(time.time())
    engine.docker("run", "--rm", "--name", "evented", "busybox", "true")
    seen = engine.docker("events", "--since", since, "--until", str(time.time()), "--filter", "event=start",
                         "--filter", "type=container", "--format", "{{.Actor.Attributes.name}} {{.Action}}").stdout
    assert seen.splitlines() == ["evented start"]
    bad = engine.docker("events", "--since", "yesterday-ish", "--until", "0", check=False)
    assert bad.returncode != 0


def test_published_udp_port(engine: Engine) -> None:
    """``-p 127.0.0.1:PORT:9999/udp`` next to TCP on the same number; each client gets its own
    replies. The echo server is the host's python3, bind-mounted read-only into busybox."""
    port = free_port()
    server = ("import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.bind(('0.0.0.0', 9999))\n"
              "while True:\n    data, peer = s.recvfrom(2048)\n    s.sendto(b'echo:' + data, peer)\n")
    mounts = [arg for path in ("/usr", "/lib", "/lib64") if os.path.isdir(path)
              for arg in ("-v", f"{path}:{path}:ro")]
    engine.docker("run", "-d", "--name", "udpecho", "-p", f"127.0.0.1:{port}:9999/udp", "-p",
                  f"127.0.0.1:{port}:9999/tcp", *mounts, "busybox", "/usr/bin/python3", "-c", server)
    try:
        assert sorted(engine.docker("port", "udpecho").stdout.splitlines()) == \
            [f"9999/tcp -> 127.0.0.1:{port}", f"9999/udp -> 127.0.0.1:{port}"]
        clients = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2)]
        replies: list[bytes] = []
        for n, client in enumerate(clients):
            client.settimeout(0.5)
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:  # until the server in the container is up
                client.sendto(f"hello {n}".encode(), ("127.0.0.1", port))
                try:
                    replies.append(client.recvfrom(2048)[0])
                    break
                except TimeoutError:
                    continue
            client.close()
        assert replies == [b"echo:hello 0", b"echo:hello 1"]
    finally:
        engine.docker("rm", "-f", "udpecho")
    refused = engine.docker("run", "--rm", "-p", "127.0.0.1:5000:5000/sctp", "busybox", "true", check=False)
    assert refused.returncode != 0 and "sctp" in refused.stderr


def test_export_and_import_round_trip(engine: Engine, tmp_path: Path) -> None:
    engine.docker("run", "--name", "exported", "-v", "exportvol:/data", "busybox", "sh", "-c",
                  "echo layer > /made; echo vol > /data/v")
    try:
        archive = tmp_path / "exported.tar"
        engine.docker("export", "-o", str(archive), "exported")
        with tarfile.open(archive) as tar:
            names = set(tar.getnames())
        assert {"made", "bin/busybox", "etc/passwd"} <= names and "data/v" not in names  # volumes are not in it
        engine.docker("import", str(archive), "reimported:1")
        assert engine.docker("run", "--rm", "reimported:1", "cat", "/made").stdout == "layer\n"
    finally:
        engine.docker("rm", "-v", "exported", check=False)
        engine.docker("volume", "rm", "exportvol", check=False)
        engine.docker("rmi", "reimported:1", check=False)


def test_events_of_service_workloads_stay_hidden(tmp_path: Path) -> None:
    """EC2/Lambda containers (engine namespaces) never show in the Docker API's events."""
    from minicloud.engine.workloads import WorkloadSpec
    from tests.integration.test_engine_workloads import Harness

    harness = Harness(tmp_path)
    try:
        harness.docker("import", str(busybox_rootfs_tar(tmp_path)), "busybox")
        since = str(time.time())
        workloads = harness.engine.workloads
        hidden = harness.loop.run(workloads.create(WorkloadSpec(namespace="svc", name="hidden", image="busybox",
                                                                command=["true"])))
        harness.loop.run(workloads.start(hidden.id, "svc"))
        harness.docker("run", "--rm", "--name", "shown", "busybox", "true")
        harness.loop.run(workloads.remove(hidden.id, "svc"))
        seen = harness.docker("events", "--since", since, "--until", str(time.time()), "--format",
                              "{{.Actor.ID}} {{.Action}}").stdout
        assert hidden.id not in seen
        assert [line.split()[1] for line in seen.splitlines()] == ["create", "start", "die", "destroy"]
    finally:
        harness.close()


def test_update_limits_and_restart_policy(engine: Engine) -> None:
    engine.docker("run", "-d", "--name", "updated", "--memory", "64m", "busybox", "sleep", "1000")
    try:
        engine.docker("update", "--memory", "96m", "--cpus", "0.5", "--pids-limit", "30", "--restart",
                      "on-failure:3", "updated")
        limits = engine.docker("exec", "updated", "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes",
                               "/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/pids/pids.max").stdout.split()
        assert limits == [str(96 << 20), "50000", "30"]
        host = json.loads(engine.docker("inspect", "-f", "{{json .HostConfig}}", "updated").stdout)
        assert host["Memory"] == 96 << 20 and host["NanoCpus"] == 500_000_000 and host["PidsLimit"] == 30
        assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
        engine.docker("restart", "-t", "0", "updated")  # kept for the next start
        assert engine.docker("exec", "updated", "cat", "/sys/fs/cgroup/pids/pids.max").stdout.strip() == "30"
        small = engine.docker("update", "--memory", "1m", "updated", check=False)
        assert small.returncode != 0 and "Minimum memory limit allowed is 6MB" in small.stderr
        other = engine.docker("update", "--cpuset-cpus", "0", "updated", check=False)
        assert other.returncode != 0 and "not available yet" in other.stderr
    finally:
        engine.docker("rm", "-f", "updated")
    engine.docker("create", "--name", "autoremoved", "--rm", "busybox", "true")
    refused = engine.docker("update", "--restart", "always", "autoremoved", check=False)
    assert refused.returncode != 0 and "AutoRemove is enabled" in refused.stderr
    engine.docker("rm", "autoremoved")



def test_a_container_can_trap_sighup_even_when_minicloud_ignores_it(tmp_path: Path) -> None:
    """``nohup minicloud up`` ignores SIGHUP; a container's processes must still be able to trap it
    (a guest's `reboot` is a SIGHUP to its PID 1). The OCI runtimes (crun, runc) reset signals before
    the container's process runs; this holds minicloud's chain (zygote, supervisor, exec) to it."""
    import signal as signals
    import urllib.request

    from tests.support.server import MINICLOUD, REPO

    port, data = free_port(), tmp_path / "data"
    data.mkdir()
    with open(data / "server.log", "ab") as log:
        server = subprocess.Popen([*MINICLOUD, "up", "--port", str(port), "--data-dir", str(data)], stdout=log,
                                  stderr=subprocess.STDOUT, cwd=REPO, env={**os.environ, "MINICLOUD_CONTROLLERS": "0"},
                                  preexec_fn=lambda: signals.signal(signals.SIGHUP, signals.SIG_IGN))
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_minicloud/health", timeout=1):
                    break
            except OSError:
                time.sleep(0.1)
        (tmp_path / "docker-config").mkdir()
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
               "DOCKER_HOST": f"unix://{data / 'docker.sock'}", "DOCKER_CONFIG": str(tmp_path / "docker-config")}
        subprocess.run([DOCKER, "import", str(busybox_rootfs_tar(tmp_path)), "busybox"], env=env, check=True,
                       capture_output=True, timeout=60)
        script = 'trap "echo trapped; exit 3" HUP; kill -HUP $$; sleep 5; echo ignored'
        ran = subprocess.run([DOCKER, "run", "--rm", "busybox", "sh", "-c", script], env=env, capture_output=True,
                             text=True, timeout=60)
        assert (ran.returncode, ran.stdout.strip()) == (3, "trapped"), ran
        name = "hup-exec"
        subprocess.run([DOCKER, "run", "-d", "--name", name, "busybox", "sleep", "100"], env=env, check=True,
                       capture_output=True, timeout=60)
        ran = subprocess.run([DOCKER, "exec", name, "sh", "-c", script], env=env, capture_output=True, text=True,
                             timeout=60)
        assert (ran.returncode, ran.stdout.strip()) == (3, "trapped"), ran
        subprocess.run([DOCKER, "rm", "-f", name], env=env, capture_output=True, timeout=60)
    finally:
        server.send_signal(signals.SIGTERM)
        server.wait(30)
