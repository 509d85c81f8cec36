"""Networks, published ports and volumes through the unmodified docker CLI against a real
``minicloud up``. Traffic goes only to loopback and into namespaces the engine created. The last
tests check that stop and rm leave no namespace, veth, nftables rule or mount behind, and that
the host's own interfaces and ruleset are as they were.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.integration.test_engine import Engine, busybox_rootfs_tar
from tests.support.server import MinicloudServer, free_port

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("runc") or not Path("/bin/busybox").exists()
    or not shutil.which("nft"), reason="the engine's networks need root, runc, busybox-static and nftables")

HTTPD = "mkdir -p /www && echo {text} > /www/index.html && exec httpd -f -p 80 -h /www"
GET = 'printf "GET / HTTP/1.0\\r\\n\\r\\n" | nc -w 3 {host} 80'


def host_state() -> tuple[list[str], list[str]]:
    """What of the engine's could show on the host: interfaces named like its bridges and veths, and
    its nftables table. (Only these are compared, so that other programs may change the host.)"""
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True).stdout
    names = sorted(n for n in (line.split(":")[1].strip() for line in links.splitlines())
                   if n.startswith(("mcb-", "mv")))
    rules = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=False).stdout
    return names, [line for line in rules.splitlines() if "minicloud_engine" in line]


@pytest.fixture(scope="module")
def host_before() -> tuple[list[str], list[str]]:
    return host_state()


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, host_before: tuple[list[str], list[str]]) -> Iterator[Engine]:
    work = tmp_path_factory.mktemp("enginenet")
    server = MinicloudServer(work / "data", env={"MINICLOUD_CONTROLLERS": "0",
                                                 "MINICLOUD_ENGINE_MIRROR": "http://127.0.0.1:9"})
    server.start()
    (work / "docker-config").mkdir()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(work),
           "DOCKER_HOST": f"unix://{work / 'data' / 'docker.sock'}", "DOCKER_CONFIG": str(work / "docker-config")}
    eng = Engine(server, env, work)
    eng.docker("import", str(busybox_rootfs_tar(work)), "busybox")
    yield eng
    server.stop()


def wait_for(check: object, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(check) and check():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def address_of(engine: Engine, container: str, network: str) -> str:
    return engine.docker("inspect", "-f", f"{{{{(index .NetworkSettings.Networks \"{network}\").IPAddress}}}}",
                         container).stdout.strip()


def test_containers_of_a_network_reach_each_other_by_name(engine: Engine) -> None:
    engine.docker("network", "create", "appnet")
    engine.docker("run", "-d", "--name", "web", "--network", "appnet", "--network-alias", "site", "busybox",
                  "sh", "-c", HTTPD.format(text="hello-web"))
    out = engine.docker("run", "--rm", "--network", "appnet", "busybox", "sh", "-c",
                        f"{GET.format(host='web')}; {GET.format(host='site')}; nslookup web").stdout
    assert out.count("hello-web") == 2, out
    web_ip = address_of(engine, "web", "appnet")
    assert web_ip.startswith("172.") and f"Address: {web_ip}" in out
    inspect = json.loads(engine.docker("network", "inspect", "appnet").stdout)[0]
    assert [c["Name"] for c in inspect["Containers"].values()] == ["web"]
    assert engine.docker("ps", "--filter", "network=appnet", "--format", "{{.Names}}").stdout == "web\n"
    assert inspect["IPAM"]["Config"][0]["Gateway"].endswith(".1")
    listed = engine.docker("network", "ls", "--format", "{{.Name}} {{.Driver}}").stdout.split("\n")
    assert {"appnet bridge", "bridge bridge", "host host", "none null"} <= set(listed)


def test_networks_are_isolated(engine: Engine) -> None:
    engine.docker("network", "create", "othernet")
    web_ip = address_of(engine, "web", "appnet")
    result = engine.docker("run", "--rm", "--network", "othernet", "--cap-add", "NET_ADMIN", "busybox", "sh", "-c",
                           "nslookup web; gw=$(ip route | awk '/src/ {print $NF}' | sed 's/[0-9]*$/1/'); "
                           "ip route add default via $gw; "
                           f"{GET.format(host=web_ip)}; echo rc=$?", check=False)
    assert "NXDOMAIN" in result.stdout and "hello-web" not in result.stdout and "rc=1" in result.stdout
    default = engine.docker("run", "--rm", "busybox", "sh", "-c", f"{GET.format(host=web_ip)}; echo rc=$?")
    assert "hello-web" not in default.stdout  # nor from the default bridge


def test_network_none_has_only_loopback_and_host_shares(engine: Engine) -> None:
    none = engine.docker("run", "--rm", "--network", "none", "busybox", "sh", "-c", "ip link | grep -c '^[0-9]'")
    assert none.stdout.strip() == "1"
    host = engine.docker("run", "--rm", "--network", "host", "busybox", "sh", "-c", "ip link | grep -c '^[0-9]'")
    assert int(host.stdout.strip()) > 1


def test_ip_hostname_connect_disconnect_and_container_mode(engine: Engine) -> None:
    engine.docker("network", "create", "--subnet", "10.231.7.0/24", "fixednet")
    engine.docker("run", "-d", "--name", "fixed", "--network", "fixednet", "--ip", "10.231.7.50", "--hostname",
                  "alpha", "busybox", "sleep", "300")
    out = engine.docker("exec", "fixed", "sh", "-c", "hostname; ip addr show eth0; tail -1 /etc/hosts").stdout
    assert "alpha" in out and "10.231.7.50/24" in out and "10.231.7.50\talpha" in out
    engine.docker("network", "connect", "appnet", "fixed")
    out = engine.docker("exec", "fixed", "sh", "-c", GET.format(host="web")).stdout
    assert "hello-web" in out  # names of the second network resolve too
    engine.docker("network", "disconnect", "appnet", "fixed")
    assert "eth1" not in engine.docker("exec", "fixed", "ip", "link").stdout
    shared = engine.docker("run", "--rm", "--network", "container:fixed", "busybox", "sh", "-c",
                           "ip addr show eth0; hostname").stdout
    assert "10.231.7.50/24" in shared and "alpha" in shared
    taken = engine.docker("run", "--rm", "--network", "fixednet", "--ip", "10.231.7.50", "busybox", "true",
                          check=False)
    assert taken.returncode != 0 and "in use" in taken.stderr
    in_use = engine.docker("network", "rm", "fixednet", check=False)
    assert in_use.returncode != 0 and "active endpoints" in in_use.stderr
    engine.docker("rm", "-f", "fixed")
    engine.docker("network", "rm", "fixednet")


def test_published_port_on_loopback_only(engine: Engine) -> None:
    port = free_port()
    engine.docker("run", "-d", "--name", "pub", "-p", f"127.0.0.1:{port}:80", "busybox", "sh", "-c",
                  HTTPD.format(text="published"))
    wait_for(lambda: _get(port) == "published\n")
    assert engine.docker("port", "pub").stdout.strip() == f"80/tcp -> 127.0.0.1:{port}"
    assert f"127.0.0.1:{port}->80/tcp" in engine.docker("ps", "--format", "{{.Ports}}").stdout
    assert _listening(port) == ["127.0.0.1"]
    busy = engine.docker("run", "--rm", "-p", f"127.0.0.1:{port}:80", "busybox", "true", check=False)
    assert busy.returncode != 0 and "port is already allocated" in busy.stderr
    refused = engine.docker("run", "--rm", "-p", f"192.0.2.2:{port}:80", "busybox", "true", check=False)
    assert refused.returncode != 0 and "loopback" in refused.stderr
    engine.docker("run", "-d", "--name", "anyaddr", "-p", "80", "busybox", "sh", "-c", HTTPD.format(text="any"))
    any_port = int(engine.docker("port", "anyaddr", "80").stdout.strip().rsplit(":", 1)[1])
    assert _listening(any_port) == ["127.0.0.1"]  # "all addresses" means loopback here
    wait_for(lambda: _get(any_port) == "any\n")
    engine.docker("rm", "-f", "pub", "anyaddr")
    assert _listening(port) == [] and _listening(any_port) == []


def _get(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
            return str(response.read().decode())
    except OSError:
        return ""


def _listening(port: int) -> list[str]:
    found = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, port_hex = local.split(":")
        if state == "0A" and int(port_hex, 16) == port:
            found.append(".".join(str(int(address[i:i + 2], 16)) for i in (6, 4, 2, 0)))
    return found


def test_volumes_persist_and_read_only_refuses_writes(engine: Engine) -> None:
    engine.docker("volume", "create", "keep")
    engine.docker("run", "--name", "writer", "-v", "keep:/data", "busybox", "sh", "-c", "echo kept > /data/f")
    engine.docker("rm", "writer")
    assert engine.docker("run", "--rm", "-v", "keep:/data", "busybox", "cat", "/data/f").stdout == "kept\n"
    ro = engine.docker("run", "--rm", "--mount", "type=volume,source=keep,target=/data,readonly", "busybox", "sh",
                       "-c", "cat /data/f; echo x > /data/g", check=False)
    assert ro.stdout == "kept\n" and "Read-only file system" in ro.stderr and ro.returncode != 0
    host_dir = engine.work / "bind"
    host_dir.mkdir()
    (host_dir / "h").write_text("from-host\n")
    bind = engine.docker("run", "--rm", "-v", f"{host_dir}:/h:ro", "busybox", "sh", "-c", "cat /h/h; touch /h/x",
                         check=False)
    assert bind.stdout == "from-host\n" and "Read-only file system" in bind.stderr
    engine.docker("run", "--rm", "--mount", f"type=bind,source={host_dir},target=/h", "busybox", "sh", "-c",
                  "echo back > /h/w")
    assert (host_dir / "w").read_text() == "back\n"
    missing = engine.docker("run", "--rm", "--mount", "type=bind,source=/nonexistent/x,target=/h", "busybox",
                            "true", check=False)
    assert missing.returncode != 0 and "does not exist" in missing.stderr
    engine.docker("run", "-d", "--name", "holder", "-v", "keep:/data", "busybox", "sleep", "300")
    in_use = engine.docker("volume", "rm", "keep", check=False)
    assert in_use.returncode != 0 and "volume is in use" in in_use.stderr
    engine.docker("rm", "-f", "holder")
    info = json.loads(engine.docker("volume", "inspect", "keep").stdout)[0]
    assert info["Driver"] == "local" and info["Mountpoint"].endswith("/volumes/keep/_data")


def test_anonymous_volumes_from_the_image_and_rm_v(engine: Engine) -> None:
    tar = engine.work / "busybox.tar"
    engine.docker("import", "--change", "VOLUME /etc", str(tar), "withvolume")
    before = set(engine.docker("volume", "ls", "-q").stdout.split())
    out = engine.docker("run", "--name", "anon", "withvolume", "sh", "-c", "cat /etc/passwd | head -1").stdout
    assert out.startswith("root:")  # the image's files were copied into the new volume
    mounts = json.loads(engine.docker("inspect", "-f", "{{json .Mounts}}", "anon").stdout)
    assert mounts[0]["Type"] == "volume" and mounts[0]["Destination"] == "/etc" and len(mounts[0]["Name"]) == 64
    assert set(engine.docker("volume", "ls", "-q").stdout.split()) - before == {mounts[0]["Name"]}
    engine.docker("rm", "-v", "anon")
    assert set(engine.docker("volume", "ls", "-q").stdout.split()) == before
    engine.docker("run", "--rm", "-v", "/scratch", "busybox", "true")  # --rm takes its anonymous volume along
    engine.docker("create", "--name", "later", "-v", "/scratch", "busybox", "true")
    engine.docker("rm", "later")  # without -v it stays, for prune
    assert "Total reclaimed space" in engine.docker("volume", "prune", "-f").stdout
    assert set(engine.docker("volume", "ls", "-q").stdout.split()) == before
    engine.docker("rmi", "withvolume")


def test_restart_keeps_networks_volumes_and_addresses(engine: Engine) -> None:
    port = free_port()
    engine.docker("run", "-d", "--name", "pub", "--network", "appnet", "-p", f"127.0.0.1:{port}:80", "busybox",
                  "sh", "-c", HTTPD.format(text="again"))
    wait_for(lambda: _get(port) == "again\n")
    web_ip = address_of(engine, "web", "appnet")
    engine.server.kill()  # kill -9: containers keep running, and their namespaces with them
    engine.server.start()
    assert address_of(engine, "web", "appnet") == web_ip
    wait_for(lambda: _get(port) == "again\n")  # the published port is open again
    out = engine.docker("run", "--rm", "--network", "appnet", "busybox", "sh", "-c", GET.format(host="web")).stdout
    assert "hello-web" in out
    engine.server.stop()  # a clean stop stops containers and removes all networking
    engine.server.start()
    assert {"appnet", "othernet"} <= set(engine.docker("network", "ls", "--format", "{{.Name}}").stdout.split())
    assert "keep" in engine.docker("volume", "ls", "-q").stdout.split()
    engine.docker("start", "web")
    assert address_of(engine, "web", "appnet") == web_ip  # the address is the container's until rm
    engine.docker("rm", "-f", "web", "pub")


def test_racing_network_creates_take_a_name_and_a_subnet_once(engine: Engine) -> None:
    # A create checks names and subnets, then waits for its bridge: creates that overlapped both
    # passed the check (two networks of one name, or one subnet twice).
    def create(name: str) -> subprocess.CompletedProcess[str]:
        return engine.docker("network", "create", name, check=False)

    with ThreadPoolExecutor(4) as pool:
        same = list(pool.map(create, ["racenet"] * 4))
        others = list(pool.map(create, [f"racenet{i}" for i in range(3)]))
    assert sorted(r.returncode for r in same) == [0, 1, 1, 1]
    assert all("already exists" in r.stderr for r in same if r.returncode)
    assert all(r.returncode == 0 for r in others)
    names = ["racenet", "racenet0", "racenet1", "racenet2"]
    listed = engine.docker("network", "ls", "--format", "{{.Name}}").stdout.split()
    assert listed.count("racenet") == 1
    subnets = [engine.docker("network", "inspect", "-f", "{{(index .IPAM.Config 0).Subnet}}", n).stdout.strip()
               for n in names]
    assert len(set(subnets)) == 4, subnets
    engine.docker("network", "rm", *names)


def test_nothing_left_behind(engine: Engine, host_before: tuple[list[str], list[str]]) -> None:
    engine.docker("network", "rm", "appnet", "othernet")
    engine.docker("volume", "rm", "keep")
    assert engine.docker("ps", "-aq").stdout.strip() == ""
    data = engine.server.data_dir
    netns_dir = data / "engine" / "netns"
    wait_for(lambda: sorted(p.name for p in netns_dir.iterdir()) == ["engine"])  # teardown runs after exit
    links = subprocess.run(["nsenter", f"--net={netns_dir / 'engine'}", "ip", "-o", "link", "show"],
                           capture_output=True, text=True, check=True).stdout
    assert [line.split(":")[1].strip() for line in links.splitlines()] == ["lo", _bridge_of_default(engine)]
    ruleset = subprocess.run(["nsenter", f"--net={netns_dir / 'engine'}", "nft", "list", "ruleset"],
                             capture_output=True, text=True, check=True).stdout
    assert ruleset.count("dport 53") == 2  # the default bridge's name server only
    engine.server.stop()
    with open("/proc/self/mountinfo") as f:
        assert [line for line in f if str(data) in line] == []
    assert list(netns_dir.iterdir()) == []
    assert host_state() == host_before == ([], [])
    engine.server.start()  # for the fixture's own stop


def _bridge_of_default(engine: Engine) -> str:
    network_id = engine.docker("network", "inspect", "-f", "{{.Id}}", "bridge").stdout.strip()
    return f"mcb-{network_id[:11]}"


def test_docker_cli_names_the_subcommands(engine: Engine) -> None:
    """`docker network` and `docker volume` sub-commands end to end, with their errors."""
    assert "not found" in engine.docker("network", "inspect", "nosuchnet", check=False).stderr
    assert "no such volume" in engine.docker("volume", "inspect", "nosuchvol", check=False).stderr
    predefined = engine.docker("network", "rm", "bridge", check=False)
    assert predefined.returncode != 0 and "pre-defined" in predefined.stderr
    engine.docker("network", "create", "--label", "purpose=prune", "short")
    assert "short" in engine.docker("network", "prune", "-f").stdout
