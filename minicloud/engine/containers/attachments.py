"""What a container is attached to: its networks (endpoints reserved at create, its namespace
connected at start and removed at exit, published ports while it runs) and its mounts (volumes
created at create, removed with ``rm -v``). The lifecycle in ``manager.py`` calls these at its
steps; the work is done by ``engine.network`` and ``engine.volumes``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable
from typing import Any

from minicloud.engine.containers.bundle import NetworkPlan, VolumePlan, hostname_of
from minicloud.engine.containers.model import Container, ContainerFiles, now_rfc3339
from minicloud.engine.containers.state import Status
from minicloud.engine.errors import Conflict, InvalidArgument, NotFound
from minicloud.engine.network.manager import NetworkManager
from minicloud.engine.network.model import DEFAULT_BRIDGE, network_mode
from minicloud.engine.network.ports import PortBinding, parse_bindings
from minicloud.engine.volumes.mounts import MountSpec, requested
from minicloud.engine.volumes.store import VolumeStore


def wanted_networks(host_config: dict[str, Any], networking: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The networks of a create request, the one of ``NetworkMode`` first."""
    endpoints = dict((networking or {}).get("EndpointsConfig") or {})
    kind, primary = network_mode(host_config)
    if kind != "bridge":
        if any(name not in ("none", "host", "default", DEFAULT_BRIDGE) and not name.startswith("container:")
               for name in endpoints):
            raise InvalidArgument(f"container cannot be connected to other networks with network mode "
                                  f"{host_config.get('NetworkMode')}")
        return []
    first = endpoints.pop(primary, None) or endpoints.pop("default", None) or {}
    if primary == DEFAULT_BRIDGE:
        first = endpoints.pop(DEFAULT_BRIDGE, None) or first
    return [(primary, first), *endpoints.items()]


def published(container: Container) -> list[PortBinding]:
    host = container.host_config
    bindings = parse_bindings(host.get("PortBindings"))
    if host.get("PublishAllPorts"):
        taken = {b.key for b in bindings}
        exposed = {k: [{"HostIp": "", "HostPort": ""}] for k in (container.config.get("ExposedPorts") or {})
                   if (k if "/" in k else f"{k}/tcp") not in taken}
        bindings += parse_bindings(exposed)
    return bindings


class Attachments:
    def __init__(self, networks: NetworkManager, volumes: VolumeStore) -> None:
        self.networks = networks
        self.volumes = volumes

    # -- create and remove ----------------------------------------------------------------------
    async def reserve(self, container_id: str, name: str, body: dict[str, Any], config: dict[str, Any],
                      host_config: dict[str, Any], get: Callable[[str], Container]) -> None:
        """Endpoints (addresses) and volumes for a container being created; ``abandon`` undoes."""
        kind, target = network_mode(host_config)
        if kind == "container":
            get(target)  # it must exist (and run when this one starts)
            if body.get("Hostname"):
                raise InvalidArgument("conflicting options: hostname and the network mode")
        self.networks.register(container_id, name, {})
        wanted = wanted_networks(host_config, body.get("NetworkingConfig") or {})
        if wanted:
            self.networks.plan(container_id, wanted)
        parse_bindings(host_config.get("PortBindings"))  # refused now rather than at start

    def endpoints(self, container_id: str) -> dict[str, Any]:
        return self.networks.endpoints_json(container_id)

    async def create_volumes(self, config: dict[str, Any], host_config: dict[str, Any]) -> list[dict[str, Any]]:
        specs = requested(host_config, config.get("Volumes"))
        created: list[str] = []
        try:
            for spec in specs:
                if spec.type == "volume":
                    volume = await asyncio.to_thread(self.volumes.create, spec.source or None, now_rfc3339(),
                                                     anonymous=spec.anonymous)
                    spec.source = volume.name
                    # A failed create takes back its anonymous volumes (named by it alone), never a
                    # named one, as Docker does: another create may have found that one meanwhile.
                    if spec.anonymous:
                        created.append(volume.name)
                elif spec.type == "bind" and not spec.create_source and not os.path.exists(spec.source):
                    raise InvalidArgument(f'invalid mount config for type "bind": bind source path does not '
                                          f"exist: {spec.source}")
        except BaseException:
            for name in created:
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(self.volumes.remove, name, [])
            raise
        return [spec.to_json() for spec in specs]

    def abandon(self, container_id: str) -> None:
        self.networks.forget(container_id)

    async def release(self, container: Container, remove_volumes: bool, users: Callable[[str], list[str]]) -> None:
        """The container is gone: its addresses are free; its anonymous volumes go with ``-v``."""
        self.networks.forget(container.id)
        if not remove_volumes:
            return
        for raw in container.mounts:
            spec = MountSpec.from_json(raw)
            volume = self.volumes.volumes.get(spec.source) if spec.type == "volume" else None
            if volume is not None and volume.anonymous and not users(volume.name):
                with contextlib.suppress(Conflict, NotFound, OSError):
                    await asyncio.to_thread(self.volumes.remove, volume.name, [])

    # -- start and exit -------------------------------------------------------------------------
    def connect(self, container: Container, get: Callable[[str], Container],
                container_files: Callable[[Container], ContainerFiles]) -> tuple[NetworkPlan, Awaitable[None]]:
        """How the starting container is networked, and the work that connects it (a bridge
        network's namespace and veths), to be awaited before the container runs."""
        kind, target = network_mode(container.host_config)
        if kind in ("none", "host"):
            return NetworkPlan(mode=kind), _nothing()
        if kind == "ns":
            if not os.path.exists(target):
                raise Conflict(f"network namespace {target} does not exist")
            return NetworkPlan(mode="join", netns=target), _nothing()
        if kind == "container":
            other = get(target)
            if other.state.status not in (Status.RUNNING, Status.PAUSED):
                raise Conflict(f"cannot join network namespace of a non running container: container "
                               f"{other.id} is {other.state.status.value}")
            own = self.networks.netns_dir / other.id
            path = str(own) if own.exists() else f"/proc/{other.state.pid}/ns/net"
            return NetworkPlan(mode="join", netns=path, etc_from=container_files(other).dir,
                               hostname=hostname_of(other)), _nothing()
        sandbox, work = self.networks.sandbox(container.id, hostname_of(container))
        return NetworkPlan(mode="join", netns=str(sandbox.netns), hosts=tuple(sandbox.hosts),
                           nameserver=sandbox.nameserver), work

    async def publish(self, container: Container, preferred: bool = False) -> dict[str, list[dict[str, str]]]:
        """Open published ports (bridge networks only: Docker discards them with host and none)."""
        kind, _ = network_mode(container.host_config)
        bindings = published(container)
        if kind != "bridge" or not bindings:
            return {}
        wishes = {key: [int(e["HostPort"]) for e in entries if e.get("HostPort", "").isdigit()]
                  for key, entries in container.ports.items()} if preferred else None
        return await self.networks.publish(container.id, bindings, wishes)

    def disconnect(self, container: Container) -> Awaitable[None]:
        """Disconnected now; the returned work deletes the namespace (see ``NetworkManager.detach``)."""
        return self.networks.detach(container.id)

    def volume_plan(self, container: Container) -> VolumePlan:
        specs = tuple(MountSpec.from_json(m) for m in container.mounts)
        data = tuple((s.source, self.volumes.data(s.source)) for s in specs if s.type == "volume")
        for name, path in data:
            if not path.is_dir():
                raise NotFound(f"volume {name} of container {container.id[:12]} is gone ({path})")
        return VolumePlan(specs, data)

    async def readopt(self, container: Container) -> None:
        """A running container found at start-up: its namespace is still there; ports reopen."""
        if self.networks.readopt(container.id):
            with contextlib.suppress(Exception):
                container.ports = await self.publish(container, preferred=True)


def volume_users(containers: list[Container], name: str) -> list[str]:
    return [c.id for c in containers
            if any(m.get("type") == "volume" and m.get("source") == name for m in c.mounts)]


async def _nothing() -> None:
    return None
