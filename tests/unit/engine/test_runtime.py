"""The OCI runtime's command lines: the choice of crun or runc, crun with the cgroup2 hierarchy
hidden, its errors in runc's words, its compiled seccomp filters; and the in-process clean-up of
a stopped container (``Runc.delete``'s fast path) on state directories laid out as runc's and
crun's, with ordinary directories standing in for the cgroups."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from minicloud.engine.containers import runtime
from minicloud.engine.containers.runtime import (
    HIDE_CGROUP2,
    SECCOMP_BPF_ANNOTATION,
    Runc,
    _started_at,
    cgroup_hybrid,
    choose_runtime,
    runc_wording,
)


def _state(root: Path, container_id: str, cgroups: dict[str, Path], pid: int, start: int) -> Path:
    state_dir = root / container_id
    state_dir.mkdir(parents=True)
    (state_dir / "state.json").write_text(json.dumps({
        "id": container_id, "init_process_pid": pid, "init_process_start": start,
        "cgroup_paths": {name: str(path) for name, path in cgroups.items()}}))
    return state_dir


def test_a_stopped_container_is_deleted_in_process(tmp_path: Path) -> None:
    cgroups = {"memory": tmp_path / "memory" / "c1", "cpu": tmp_path / "cpu,cpuacct" / "c1"}
    cgroups["cpuacct"] = cgroups["cpu"]  # joined hierarchies name one directory twice
    for path in cgroups.values():
        path.mkdir(parents=True, exist_ok=True)
    runc = Runc("runc", tmp_path / "runc")
    state_dir = _state(runc.root, "c1", cgroups, 2 ** 22 + 7, 1)  # a pid that does not run
    assert runc._delete_stopped("c1")
    assert not state_dir.exists() and not any(path.exists() for path in cgroups.values())
    assert runc._delete_stopped("c1")  # already gone: nothing left to do


def test_runc_is_left_the_cases_it_must_handle(tmp_path: Path) -> None:
    runc = Runc("runc", tmp_path / "runc")
    busy = tmp_path / "pids" / "c2"
    busy.mkdir(parents=True)
    (busy / "child").mkdir()  # a cgroup with a child cgroup cannot be removed by one rmdir
    _state(runc.root, "c2", {"pids": busy}, 2 ** 22 + 7, 1)
    assert not runc._delete_stopped("c2")
    me = os.getpid()
    started = _started_at(me)
    assert started is not None
    _state(runc.root, "c3", {}, me, started)  # init still runs: runc delete --force kills it
    assert not runc._delete_stopped("c3")
    (runc.root / "c4").mkdir()
    (runc.root / "c4" / "state.json").write_text("{not json")
    assert not runc._delete_stopped("c4")


_V1 = """25 1 0:21 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
30 25 0:26 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
"""
_UNIFIED = "41 25 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
_V2 = "25 1 0:21 / /sys/fs/cgroup rw,relatime - cgroup2 cgroup2 rw\n"


def test_a_hybrid_host_is_recognised(tmp_path: Path) -> None:
    mountinfo = tmp_path / "mountinfo"
    for text, hybrid in ((_V1 + _UNIFIED, True), (_V1, False), (_V2, False)):
        mountinfo.write_text(text)
        assert cgroup_hybrid(str(mountinfo)) is hybrid
    assert cgroup_hybrid(str(tmp_path / "missing")) is False


def test_crun_is_preferred_and_runc_kept_as_the_fallback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "cgroup_hybrid", lambda: True)
    monkeypatch.setattr(runtime, "_runs_hidden", lambda crun: False)  # no namespace can be made here
    assert choose_runtime(tmp_path, runc="/usr/sbin/runc", crun="/usr/bin/crun").name == "runc"
    monkeypatch.setattr(runtime, "_runs_hidden", lambda crun: True)
    crun = choose_runtime(tmp_path, runc="/usr/sbin/runc", crun="/usr/bin/crun")
    assert crun.hide_cgroup2
    assert (crun.name, crun.binary, crun.root) == ("crun", "/usr/bin/crun", tmp_path / "crun")
    assert crun.base()[-3:] == ["/usr/bin/crun", "--root", str(tmp_path / "crun")]
    assert crun.update_args("c1")[-4:] == ["update", "--resources", "/dev/stdin", "c1"]
    runc = choose_runtime(tmp_path, runc="/usr/sbin/runc", crun="/usr/bin/crun", wanted="runc")
    assert (runc.name, runc.root) == ("runc", tmp_path / "runc")
    assert runc.base() == ["/usr/sbin/runc", "--root", str(tmp_path / "runc")]
    assert runc.update_args("c1")[-4:] == ["update", "--resources", "-", "c1"] and runc.terminal_exec_prefix() == []
    (tmp_path / "runc" / "c9").mkdir()  # a container runc started still runs: runc keeps the engine
    assert choose_runtime(tmp_path, runc="/usr/sbin/runc", crun="/usr/bin/crun").name == "runc"


def test_hiding_cgroup2_prefixes_every_command(tmp_path: Path) -> None:
    crun = Runc("/usr/bin/crun", tmp_path / "crun", "crun", hide_cgroup2=True)
    assert crun.base()[:len(HIDE_CGROUP2)] == HIDE_CGROUP2
    assert crun.base()[len(HIDE_CGROUP2):] == ["/usr/bin/crun", "--root", str(tmp_path / "crun")]


def test_crun_start_errors_are_worded_as_runc_words_them() -> None:
    """The docker CLI picks its exit code from these words (127 not found, 126 not executable)."""
    assert runc_wording("executable file `nosuch` not found in $PATH: No such file or directory") == \
        'exec: "nosuch": executable file not found in $PATH'
    assert runc_wording("executable file `/bin/nosuch` not found in $PATH: No such file or directory") == \
        'exec: "/bin/nosuch": stat /bin/nosuch: no such file or directory'
    assert runc_wording("open executable: Permission denied") == "open executable: permission denied"
    assert runc_wording("open executable: Operation not permitted") == "open executable: permission denied"
    assert runc_wording("chdir `/etc/passwd`: Not a directory") == "chdir `/etc/passwd`: not a directory"


def test_a_stopped_crun_container_is_deleted_in_process(tmp_path: Path) -> None:
    crun = Runc("crun", tmp_path / "crun", "crun")
    crun.cgroup_hierarchies = [tmp_path / "memory", tmp_path / "pids", tmp_path / "freezer"]
    for hierarchy in crun.cgroup_hierarchies[:2]:  # none made in the freezer: nothing to remove there
        (hierarchy / "minicloud" / "c1").mkdir(parents=True)
    state_dir = crun.root / "c1"
    state_dir.mkdir(parents=True)
    status = {"pid": 2 ** 22 + 7, "process-start-time": 1, "cgroup-path": "/minicloud/c1"}
    (state_dir / "status").write_text(json.dumps(status))
    assert crun._delete_stopped("c1")
    assert not state_dir.exists() and not any((h / "minicloud" / "c1").exists() for h in crun.cgroup_hierarchies)
    me = os.getpid()
    state_dir.mkdir()
    (state_dir / "status").write_text(json.dumps({**status, "pid": me, "process-start-time": _started_at(me)}))
    assert not crun._delete_stopped("c1")  # init still runs: crun delete --force kills it


def test_crun_gets_the_filter_compiled_for_the_same_profile(tmp_path: Path) -> None:
    crun = Runc("/usr/bin/crun", tmp_path / "crun", "crun")
    profile = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}
    first: dict[str, Any] = {"linux": {"seccomp": profile}}
    crun.use_compiled_seccomp("c1", first)
    assert "annotations" not in first  # nothing compiled yet: crun compiles it
    (crun.root / "c1").mkdir(parents=True)
    (crun.root / "c1" / "seccomp.bpf").write_bytes(b"\x06\x00\x00\x00\x00\x00\xff\x7f")  # what crun left there
    crun.learn_compiled_seccomp("c1")
    second: dict[str, Any] = {"linux": {"seccomp": json.loads(json.dumps(profile))}}
    crun.use_compiled_seccomp("c2", second)
    assert second["annotations"][SECCOMP_BPF_ANNOTATION] == "BgAAAAAA/38="
    other: dict[str, Any] = {"linux": {"seccomp": {**profile, "defaultAction": "SCMP_ACT_KILL"}}}
    crun.use_compiled_seccomp("c3", other)
    assert "annotations" not in other  # another profile: compiled by crun again
    runc = Runc("/usr/sbin/runc", tmp_path / "runc")
    untouched: dict[str, Any] = {"linux": {"seccomp": profile}}
    runc.use_compiled_seccomp("c4", untouched)
    assert "annotations" not in untouched
