"""``docker top``, ``docker stats`` and ``docker diff``: what a container runs, uses and changed.

top runs the host's ``ps`` (``ps_args``, ``-ef`` by default) and keeps the rows of the processes in
the container's cgroup, as Docker does. stats reads the container's cgroups (v1: cpuacct, memory,
pids) and its network namespace's counters. diff walks the container's upper directory: overlay
whiteouts are deletions, files the image has are changes, the rest additions.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import stat
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from minicloud.engine.containers.manager import CGROUP_PARENT
from minicloud.engine.containers.model import ZERO_TIME, Container, now_rfc3339
from minicloud.engine.containers.state import Status
from minicloud.engine.dockerapi.http import Request, Response, StreamResponse, json_response
from minicloud.engine.errors import Conflict, InvalidArgument

if TYPE_CHECKING:
    from minicloud.engine.dockerapi.server import Route
    from minicloud.engine.service import Engine

CGROUPS = Path("/sys/fs/cgroup")
_RUNNING = (Status.RUNNING, Status.PAUSED)
# files the engine itself puts into every container (bind mounts), which Docker's diff never shows
_ENGINE_FILES = {"/etc/hosts", "/etc/hostname", "/etc/resolv.conf"}


def _cgroup(controller: str, container: Container) -> Path:
    return CGROUPS / controller / CGROUP_PARENT.lstrip("/") / container.id


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _int(path: Path) -> int:
    text = _read(path).strip()
    return int(text) if text.lstrip("-").isdigit() else 0


def _running(engine: Engine, ref: str) -> Container:
    container = engine.containers.get(ref)
    if container.state.status not in _RUNNING:
        raise Conflict(f"Container {container.id} is not running")
    return container


# -- top --------------------------------------------------------------------------------------------
def _top(container: Container, ps_args: str) -> dict[str, Any]:
    pids = {int(p) for p in _read(_cgroup("pids", container) / "cgroup.procs").split()}
    try:
        args = shlex.split(ps_args)
    except ValueError as exc:
        raise InvalidArgument(f"invalid ps arguments: {exc}") from None
    result = subprocess.run(["ps", *args], capture_output=True, text=True, timeout=30, check=False)
    if result.returncode != 0:
        raise InvalidArgument(f"ps: exit status {result.returncode}: {result.stderr.strip()}")
    lines = result.stdout.splitlines()
    titles = lines[0].split() if lines else []
    if "PID" not in titles:
        raise InvalidArgument(f"Couldn't find PID field in ps output: {lines[0] if lines else ''}")
    column = titles.index("PID")
    processes = []
    for line in lines[1:]:
        fields = line.split(None, len(titles) - 1)
        if len(fields) > column and fields[column].isdigit() and int(fields[column]) in pids:
            processes.append(fields)
    return {"Titles": titles, "Processes": processes}


async def top(engine: Engine, request: Request) -> Response:
    container = _running(engine, request.params["id"])
    return json_response(await asyncio.to_thread(_top, container, request.arg("ps_args") or "-ef"))


# -- stats ------------------------------------------------------------------------------------------
def _system_cpu_ns() -> int:
    fields = _read(Path("/proc/stat")).splitlines()[0].split()[1:9]
    return sum(int(f) for f in fields) * 1_000_000_000 // os.sysconf("SC_CLK_TCK")


def _cpu_stats(container: Container) -> dict[str, Any]:
    cpuacct = _cgroup("cpuacct", container)
    ticks = dict(line.split() for line in _read(cpuacct / "cpuacct.stat").splitlines() if len(line.split()) == 2)
    to_ns = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
    percpu = [int(v) for v in _read(cpuacct / "cpuacct.usage_percpu").split()]
    throttle = dict(line.split() for line in _read(_cgroup("cpu", container) / "cpu.stat").splitlines()
                    if len(line.split()) == 2)
    return {"cpu_usage": {"total_usage": _int(cpuacct / "cpuacct.usage"), "percpu_usage": percpu,
                          "usage_in_kernelmode": int(ticks.get("system", 0)) * to_ns,
                          "usage_in_usermode": int(ticks.get("user", 0)) * to_ns},
            "system_cpu_usage": _system_cpu_ns(), "online_cpus": os.cpu_count() or 1,
            "throttling_data": {"periods": int(throttle.get("nr_periods", 0)),
                                "throttled_periods": int(throttle.get("nr_throttled", 0)),
                                "throttled_time": int(throttle.get("throttled_time", 0))}}


def _memory_stats(container: Container) -> dict[str, Any]:
    memory = _cgroup("memory", container)
    stats = {k: int(v) for k, v in (line.split() for line in _read(memory / "memory.stat").splitlines()
                                     if len(line.split()) == 2)}
    limit = _int(memory / "memory.limit_in_bytes")
    host_total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {"usage": _int(memory / "memory.usage_in_bytes"), "max_usage": _int(memory / "memory.max_usage_in_bytes"),
            "failcnt": _int(memory / "memory.failcnt"), "stats": stats,
            "limit": limit if 0 < limit < host_total else host_total}


def _networks(container: Container) -> dict[str, dict[str, int]]:
    """The container's interfaces (its network namespace's /proc/net/dev), loopback left out."""
    names = ("rx_bytes", "rx_packets", "rx_errors", "rx_dropped", "tx_bytes", "tx_packets", "tx_errors",
             "tx_dropped")
    out: dict[str, dict[str, int]] = {}
    for line in _read(Path(f"/proc/{container.state.pid}/net/dev")).splitlines()[2:]:
        name, _, counters = line.partition(":")
        values = counters.split()
        if name.strip() == "lo" or len(values) < 16:
            continue
        picked = [values[0], values[1], values[2], values[3], values[8], values[9], values[10], values[11]]
        out[name.strip()] = dict(zip(names, (int(v) for v in picked), strict=True))
    return out


def _sample(container: Container, previous: dict[str, Any] | None) -> dict[str, Any]:
    running = container.state.status in _RUNNING
    pids = _cgroup("pids", container)
    max_pids = _read(pids / "pids.max").strip()
    empty_cpu: dict[str, Any] = {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
                                 "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}}
    doc: dict[str, Any] = {
        "read": now_rfc3339() if running else ZERO_TIME,
        "preread": previous["read"] if previous else ZERO_TIME,
        "pids_stats": {"current": _int(pids / "pids.current"), **({"limit": int(max_pids)} if max_pids.isdigit()
                                                                    else {})} if running else {},
        "blkio_stats": {"io_service_bytes_recursive": None, "io_serviced_recursive": None,
                        "io_queue_recursive": None, "io_service_time_recursive": None,
                        "io_wait_time_recursive": None, "io_merged_recursive": None, "io_time_recursive": None,
                        "sectors_recursive": None},
        "num_procs": 0, "storage_stats": {},
        "cpu_stats": _cpu_stats(container) if running else empty_cpu,
        "precpu_stats": previous["cpu_stats"] if previous else empty_cpu,
        "memory_stats": _memory_stats(container) if running else {},
        "name": f"/{container.name}", "id": container.id,
    }
    if running:
        doc["networks"] = _networks(container)
    return doc


async def stats(engine: Engine, request: Request) -> StreamResponse:
    container = engine.containers.get(request.params["id"])
    stream = request.flag("stream", True)
    one_shot = request.flag("one-shot") and not stream

    async def body() -> AsyncIterator[bytes]:
        previous = None
        if not one_shot and container.state.status in _RUNNING:
            previous = await asyncio.to_thread(_sample, container, None)  # so that the CPU percentage has a base
            await asyncio.sleep(0.5 if not stream else 1.0)
        while True:
            doc = await asyncio.to_thread(_sample, container, previous)
            yield orjson.dumps(doc) + b"\n"
            if not stream or container.state.status not in _RUNNING:
                return
            previous = doc
            await asyncio.sleep(1.0)

    return StreamResponse(body())


# -- diff -------------------------------------------------------------------------------------------
MODIFIED, ADDED, DELETED = 0, 1, 2


def _lowers(engine: Engine, container: Container) -> list[Path]:
    for mount in engine.containers.snapshots.mounts(container.id):
        for option in mount.options:
            if option.startswith("lowerdir="):
                return [Path(p) for p in option.removeprefix("lowerdir=").split(":")]
    return []


def _changes(engine: Engine, container: Container) -> list[dict[str, Any]]:
    snapshots = engine.containers.snapshots
    if not snapshots.exists(container.id):
        return []
    upper = snapshots.fs_dir(container.id)
    lowers = _lowers(engine, container)
    mount_points = {m.get("destination") for m in container.mounts}
    changes: list[dict[str, Any]] = []
    copied_up: list[str] = []
    for directory, dirs, files in os.walk(upper):
        for name in [*dirs, *files]:
            path = Path(directory) / name
            inside = "/" + str(path.relative_to(upper))
            if inside in _ENGINE_FILES or inside in mount_points:
                continue
            with contextlib.suppress(OSError):
                info = os.lstat(path)
                if (info.st_mode & 0o170000) == 0o020000 and info.st_rdev == 0:  # a whiteout
                    changes.append({"Path": inside, "Kind": DELETED})
                    continue
                in_lower = next((lower / inside.lstrip("/") for lower in lowers
                                 if os.path.lexists(lower / inside.lstrip("/"))), None)
                if in_lower is None:
                    changes.append({"Path": inside, "Kind": ADDED})
                elif not stat.S_ISDIR(info.st_mode) or _metadata_differs(info, in_lower):
                    changes.append({"Path": inside, "Kind": MODIFIED})
                else:  # a directory that overlayfs copied up: changed if something under it is
                    copied_up.append(inside)
    reported = {str(c["Path"]) for c in changes}
    changes += [{"Path": d, "Kind": MODIFIED} for d in copied_up
                if any(p.startswith(d + "/") for p in reported)]
    return sorted(changes, key=lambda c: str(c["Path"]))


def _metadata_differs(info: os.stat_result, lower: Path) -> bool:
    before = os.lstat(lower)
    return (info.st_mode, info.st_uid, info.st_gid) != (before.st_mode, before.st_uid, before.st_gid)


async def changes(engine: Engine, request: Request) -> Response:
    container = engine.containers.get(request.params["id"])
    return json_response(await asyncio.to_thread(_changes, engine, container) or None)


ROUTES: list[Route] = [
    ("GET", r"/containers/(?P<id>[^/]+)/top", top),
    ("GET", r"/containers/(?P<id>[^/]+)/stats", stats),
    ("GET", r"/containers/(?P<id>[^/]+)/changes", changes),
]
