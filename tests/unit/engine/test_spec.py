from __future__ import annotations

from pathlib import Path

import pytest

from minicloud.engine.containers.spec import (
    DEFAULT_CAPABILITIES,
    DEFAULT_PATH,
    NOFILE_CEILING,
    BundleSpec,
    Limits,
    ProcessSpec,
    User,
    build,
    merge_env,
    resolve_user,
)
from minicloud.engine.errors import InvalidArgument


def spec(**kw: object) -> BundleSpec:
    base: dict[str, object] = {"container_id": "c1", "rootfs": Path("/r"), "hostname": "h",
                               "process": ProcessSpec(args=["sh"], env=["A=1"])}
    base.update(kw)
    return BundleSpec(**base)  # type: ignore[arg-type]


def test_secure_defaults() -> None:
    doc = build(spec())
    process = doc["process"]
    assert process["noNewPrivileges"] is False  # Docker's default; --security-opt no-new-privileges sets it
    assert process["capabilities"]["bounding"] == list(DEFAULT_CAPABILITIES)
    assert "CAP_SYS_ADMIN" not in process["capabilities"]["effective"]
    (nofile,) = [r for r in process["rlimits"] if r["type"] == "RLIMIT_NOFILE"]
    assert nofile["hard"] <= NOFILE_CEILING and nofile["soft"] <= nofile["hard"]
    linux = doc["linux"]
    assert "/proc/kcore" in linux["maskedPaths"] and "/proc/sys" in linux["readonlyPaths"]
    assert {n["type"] for n in linux["namespaces"]} == {"pid", "ipc", "uts", "mount", "network"}
    assert linux["cgroupsPath"] == "/minicloud/c1"
    assert linux["resources"]["devices"] == [{"allow": False, "access": "rwm"}]
    assert {m["destination"] for m in doc["mounts"]} >= {"/proc", "/dev", "/dev/pts", "/sys", "/dev/shm"}
    assert doc["root"] == {"path": "/r", "readonly": False}


def test_host_network_shares_the_namespace() -> None:
    doc = build(spec(network="host"))
    assert "network" not in {n["type"] for n in doc["linux"]["namespaces"]}
    with pytest.raises(InvalidArgument, match="not a network mode"):
        build(spec(network="bridge"))


def test_joined_network_namespace_and_extra_mounts() -> None:
    volume = {"destination": "/data", "type": "bind", "source": "/v/_data", "options": ["rbind", "rprivate", "ro"]}
    doc = build(spec(network="join", netns_path="/n/c1", extra_mounts=[volume]))
    assert {"type": "network", "path": "/n/c1"} in doc["linux"]["namespaces"]
    assert doc["mounts"][-1] == volume
    with pytest.raises(InvalidArgument):
        build(spec(network="join"))  # a namespace to join is required


def test_limits() -> None:
    doc = build(spec(limits=Limits(memory=64 << 20, nano_cpus=1_500_000_000, pids=100, cpu_shares=512),
                     swap_accounting=True))
    resources = doc["linux"]["resources"]
    assert resources["memory"] == {"limit": 64 << 20, "swap": 128 << 20}
    assert resources["cpu"] == {"period": 100_000, "quota": 150_000, "shares": 512}
    assert resources["pids"] == {"limit": 100}
    assert "swap" not in build(spec(limits=Limits(memory=1 << 20)))["linux"]["resources"]["memory"]


def test_tty_and_user() -> None:
    process = ProcessSpec(args=["sh"], env=[], user=User(1000, 1000, (10,)), tty=True, console_size=(24, 80))
    doc = build(spec(process=process))
    assert doc["process"]["terminal"] is True
    assert doc["process"]["consoleSize"] == {"height": 24, "width": 80}
    assert doc["process"]["user"] == {"uid": 1000, "gid": 1000, "additionalGids": [10]}


def test_merge_env() -> None:
    env = merge_env(["PATH=/x", "A=1"], ["A=2", "B=3", "NOVALUE"], {"HOSTNAME": "h"})
    assert env == ["PATH=/x", "A=2", "HOSTNAME=h", "B=3"]
    assert f"PATH={DEFAULT_PATH}" in merge_env([], [], {})


def test_resolve_user(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:App:/home/app:/bin/sh\n")
    (etc / "group").write_text("root:x:0:\napp:x:1001:\nwheel:x:10:app\nstaff:x:50:\n")
    assert resolve_user("", tmp_path) == User(0, 0, (), "/root")
    assert resolve_user("app", tmp_path) == User(1000, 1001, (10,), "/home/app")
    assert resolve_user("app:staff", tmp_path).gid == 50
    assert resolve_user("1234", tmp_path) == User(1234, 0, (), "/")
    assert resolve_user("1000:7", tmp_path).gid == 7
    with pytest.raises(InvalidArgument, match="unable to find user nobody"):
        resolve_user("nobody", tmp_path)
    with pytest.raises(InvalidArgument, match="unable to find group"):
        resolve_user("app:nogroup", tmp_path)
