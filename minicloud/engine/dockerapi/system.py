"""``/_ping``, ``/version``, ``/info``, ``/events``."""

from __future__ import annotations

import asyncio
import os
import platform
import socket
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import orjson

from minicloud.engine.containers.state import Status
from minicloud.engine.dockerapi.http import Request, Response, StreamResponse, json_response

if TYPE_CHECKING:
    from minicloud.engine.dockerapi.server import Route
    from minicloud.engine.service import Engine

ENGINE_VERSION = "0.1.0-minicloud"


async def ping(engine: Engine, request: Request) -> Response:
    return Response(200, b"OK", "text/plain; charset=utf-8",
                    [("Cache-Control", "no-cache, no-store, must-revalidate"), ("Pragma", "no-cache"),
                     ("Builder-Version", "1"), ("Swarm", "inactive")])


async def version(engine: Engine, request: Request) -> Response:
    uname = platform.uname()
    details = {"ApiVersion": "1.50", "MinAPIVersion": "1.24", "Os": "linux", "Arch": "amd64",
               "KernelVersion": uname.release, "GitCommit": "", "GoVersion": "", "BuildTime": ""}
    return json_response({
        "Platform": {"Name": "minicloud engine"},
        "Components": [{"Name": "Engine", "Version": ENGINE_VERSION, "Details": details},
                       {"Name": engine.runc.name, "Version": engine.runc.binary, "Details": {}}],
        "Version": ENGINE_VERSION, **details,
    })


async def info(engine: Engine, request: Request) -> Response:
    containers = engine.containers.in_namespace()
    counts = {s: sum(1 for c in containers if c.state.status is s) for s in Status}
    mem_total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return json_response({
        "ID": "minicloud", "Containers": len(containers), "ContainersRunning": counts[Status.RUNNING],
        "ContainersPaused": counts[Status.PAUSED],
        "ContainersStopped": len(containers) - counts[Status.RUNNING] - counts[Status.PAUSED],
        "Images": len(engine.images.list()), "Driver": "overlay", "DriverStatus": [],
        "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "null"], "Authorization": None,
                    "Log": ["json-file"]},
        "MemoryLimit": True, "SwapLimit": os.path.exists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"),
        "CpuCfsPeriod": True, "CpuCfsQuota": True, "CPUShares": True, "PidsLimit": True, "OomKillDisable": False,
        "IPv4Forwarding": False, "Debug": False, "NFd": len(os.listdir("/proc/self/fd")),
        "NGoroutines": 0, "SystemTime": "", "LoggingDriver": "json-file", "CgroupDriver": "cgroupfs",
        "CgroupVersion": "1", "NEventsListener": 0, "KernelVersion": platform.release(),
        "OperatingSystem": "minicloud", "OSVersion": "", "OSType": "linux", "Architecture": platform.machine(),
        "IndexServerAddress": "https://index.docker.io/v1/", "NCPU": os.cpu_count() or 1, "MemTotal": mem_total,
        "DockerRootDir": str(engine.root), "Name": socket.gethostname(), "Labels": [],
        "ExperimentalBuild": False, "ServerVersion": ENGINE_VERSION,
        "Runtimes": {engine.runc.name: {"path": engine.runc.binary}}, "DefaultRuntime": engine.runc.name,
        "Swarm": {"LocalNodeState": "inactive", "NodeID": "", "NodeAddr": "", "ControlAvailable": False,
                  "Error": "", "RemoteManagers": None},
        "LiveRestoreEnabled": True, "Isolation": "", "InitBinary": "",
        "SecurityOptions": ["name=seccomp,profile=builtin"], "Warnings": [
            "minicloud's engine: published ports listen on loopback addresses only"],
        "RegistryConfig": {"IndexConfigs": {}, "InsecureRegistryCIDRs": ["127.0.0.0/8"], "Mirrors": []},
    })


async def events(engine: Engine, request: Request) -> StreamResponse:
    """Live events; ``since`` replays the kept ones first, ``until`` ends the stream, ``filters``
    keeps what matches (type, event, container, image, network, volume, label)."""
    from minicloud.engine.dockerapi.event_filters import event_time, matches

    since, until = event_time(request.arg("since")), event_time(request.arg("until"))
    filters = request.json_arg("filters") or {}
    owners = engine.events.owners

    def shown(event: dict[str, Any]) -> bool:  # a service's containers (EC2, Lambda...) are not the user's
        return owners.get(event["Actor"]["ID"], "docker") == "docker" and matches(event, filters)

    async def stream() -> AsyncIterator[bytes]:
        backlog, queue = engine.events.listen(int(since * 1e9) if since is not None else None)
        try:
            yield b""  # the header goes out now: the client knows it is listening
            for event in backlog:
                if until is not None and event["timeNano"] > until * 1e9:
                    return
                if shown(event):
                    yield orjson.dumps(event) + b"\n"
            while True:
                left = None if until is None else until - time.time()
                if left is not None and left <= 0:
                    return
                try:
                    event = await asyncio.wait_for(queue.get(), left)
                except TimeoutError:
                    return
                if until is not None and event["timeNano"] > until * 1e9:
                    return
                if shown(event):
                    yield orjson.dumps(event) + b"\n"
        finally:
            engine.events.unlisten(queue)

    return StreamResponse(stream())


ROUTES: list[Route] = [
    ("GET", r"/_ping", ping),
    ("GET", r"/version", version),
    ("GET", r"/info", info),
    ("GET", r"/events", events),
]
