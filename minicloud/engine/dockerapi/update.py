"""``docker update``: a container's restart policy and cgroup limits (memory, swap, CPUs, CPU
shares, pids), kept in its record for the next starts and applied at once to a running container
with ``runc update``. Other resources are refused by name."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

from minicloud.engine import commands
from minicloud.engine.containers.state import Status
from minicloud.engine.dockerapi.http import Request, Response, json_response
from minicloud.engine.errors import Conflict, EngineError, InvalidArgument

if TYPE_CHECKING:
    from minicloud.engine.dockerapi.server import Route
    from minicloud.engine.service import Engine

CPU_PERIOD = 100_000
MIN_MEMORY = 6 * 1024 * 1024
SWAP_ACCOUNTING = "/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"
SUPPORTED = {"Memory", "MemorySwap", "NanoCpus", "CpuShares", "PidsLimit", "RestartPolicy"}


def _checked(body: dict[str, Any], host: dict[str, Any]) -> dict[str, Any]:
    """The new values (only those given and non-zero, as Docker's update merges), checked."""
    unknown = sorted(k for k, v in body.items() if v not in (None, 0, "", [], {}) and k not in SUPPORTED)
    if unknown:
        raise InvalidArgument(f"updating {', '.join(unknown)} is not available yet in minicloud's engine")
    changes = {k: body[k] for k in SUPPORTED if body.get(k) not in (None, 0, "", {})}
    if not (changes.get("RestartPolicy") or {}).get("Name"):  # the CLI sends an empty policy when not asked
        changes.pop("RestartPolicy", None)
    memory = int(changes.get("Memory") or host.get("Memory") or 0)
    if "Memory" in changes and memory < MIN_MEMORY:
        raise InvalidArgument("Minimum memory limit allowed is 6MB")
    swap = int(changes.get("MemorySwap") or 0)
    if swap > 0 and swap < memory:
        raise InvalidArgument("Minimum memoryswap limit should be larger than memory limit, see usage")
    if "RestartPolicy" in changes and host.get("AutoRemove"):
        raise InvalidArgument("Restart policy cannot be updated because AutoRemove is enabled for the container")
    return changes


def _resources(host: dict[str, Any]) -> dict[str, Any]:
    resources: dict[str, Any] = {}
    if host.get("Memory"):
        resources["memory"] = {"limit": int(host["Memory"])}
        if int(host.get("MemorySwap") or 0) > 0:
            resources["memory"]["swap"] = int(host["MemorySwap"])
        elif os.path.exists(SWAP_ACCOUNTING):  # Docker's default: as much swap as memory
            resources["memory"]["swap"] = 2 * int(host["Memory"])
    cpu: dict[str, Any] = {}
    if host.get("NanoCpus"):
        cpu.update(period=CPU_PERIOD, quota=int(host["NanoCpus"]) * CPU_PERIOD // 1_000_000_000)
    if host.get("CpuShares"):
        cpu["shares"] = int(host["CpuShares"])
    if cpu:
        resources["cpu"] = cpu
    if host.get("PidsLimit"):
        resources["pids"] = {"limit": int(host["PidsLimit"])}
    return resources


async def update(engine: Engine, request: Request) -> Response:
    manager = engine.containers
    container = manager.get(request.params["id"])
    body = await request.json()
    if not isinstance(body, dict):
        raise InvalidArgument("the body must be a JSON object")
    changes = _checked(body, container.host_config)
    updated = {**container.host_config, **changes}
    resources = _resources({k: v for k, v in updated.items() if k in changes or k == "MemorySwap"})
    if resources and container.state.status in (Status.RUNNING, Status.PAUSED):
        result = await commands.run(manager.runc.update_args(container.id),
                                    json.dumps(resources).encode())
        if result.returncode != 0:
            message = result.stderr.decode(errors="replace").strip()
            if any(cause in message.lower() for cause in ("device or resource busy", "invalid argument")):
                raise Conflict(f"Cannot update container {container.id}: {message}")
            raise EngineError(f"Cannot update container {container.id}: {message}")
    container.host_config = updated
    await manager.save(container)
    engine.events.publish("container", "update", container.id, {"name": container.name})
    return json_response({"Warnings": []})


ROUTES: list[Route] = [("POST", r"/containers/(?P<id>[^/]+)/update", update)]
