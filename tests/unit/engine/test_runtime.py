"""The in-process clean-up of a stopped runc container (``Runc.delete``'s fast path) on a state
directory laid out as runc's, with ordinary directories standing in for the cgroups."""

from __future__ import annotations

import json
import os
from pathlib import Path

from minicloud.engine.containers.runtime import Runc, _started_at


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
