"""Networks: the engine's namespace with one bridge per network, the endpoints of containers
(addresses from each network's IPAM), their namespaces and veth pairs, published ports, the
isolation table and the name server.

Where things live:

    <engine>/netns/              a private bind mount of its own
    <engine>/netns/engine        the engine's namespace: every bridge, the host ends of the veths,
                                 the nftables table, the DNS sockets, the relays' outgoing sockets
    <engine>/netns/<container>   a running container's namespace (bridge networks only)
    <engine>/networks/<id>.json  network records; endpoints are in the containers' records

Nothing is created in the host's own namespace but listening sockets on loopback addresses; all
of it goes when minicloud stops (the engine's namespace, and with it every bridge and rule).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from minicloud.engine.errors import Conflict, InvalidArgument, NotFound
from minicloud.engine.network import dns, ipam, netns, nftables
from minicloud.engine.network.model import DEFAULT_BRIDGE, PREDEFINED, Endpoint, Network, NetworkStore, validate_name
from minicloud.engine.network.plumbing import ENGINE_SYSCTLS, Link, Plumber, host_ifname
from minicloud.engine.network.ports import PortBinding, Relay, tcp_socket
from minicloud.engine.network.udp_relay import udp_socket

log = logging.getLogger("minicloud.engine.network")


@dataclass(slots=True)
class Member:
    """What the manager knows of a container: its name and endpoints (from its record)."""

    name: str
    endpoints: dict[str, Endpoint] = field(default_factory=dict)  # by network id
    active: bool = False  # its namespace is connected (it runs)
    netns: Path | None = None
    relay: Relay | None = None


@dataclass(frozen=True, slots=True)
class Sandbox:
    """What a starting container needs: the namespace to join, /etc/hosts lines, a name server."""

    netns: Path
    hosts: list[tuple[str, str]]  # (address, name)
    nameserver: str


class NetworkManager:
    def __init__(self, root: Path, new_id: Any, now: Any) -> None:
        self.netns_dir = root / "netns"
        self.engine_netns = self.netns_dir / "engine"
        self.store = NetworkStore(root / "networks")
        self.networks: dict[str, Network] = {}
        self.members: dict[str, Member] = {}
        self._new_id = new_id
        self._now = now
        self._thread: netns.NamespaceThread | None = None
        self._plumber = Plumber(self.engine_netns)
        self._dns = dns.Responder(self.lookup)
        self._started = False
        # a create checks names and subnets, then waits for its bridge before it is recorded:
        # creates run one at a time, so two cannot take one name or one subnet
        self._creating = asyncio.Lock()

    # -- start and stop -------------------------------------------------------------------------
    async def start(self) -> None:
        await asyncio.to_thread(self._prepare_namespace)
        self._thread = netns.NamespaceThread(self.engine_netns)
        thread = self._thread
        for name, value in ENGINE_SYSCTLS.items():
            await thread.call(lambda n=name, v=value: thread.write_sysctl(n, v))  # type: ignore[misc]
        for network in self.store.load():
            self.networks[network.id] = network
        if not any(n.name == DEFAULT_BRIDGE for n in self.networks.values()):
            bridge = Network(id=self._new_id(), name=DEFAULT_BRIDGE, subnet=str(ipam.DEFAULT_BRIDGE_SUBNET),
                             gateway=str(next(ipam.DEFAULT_BRIDGE_SUBNET.hosts())), created=self._now(),
                             options={"com.docker.network.bridge.default_bridge": "true"})
            await asyncio.to_thread(self.store.save, bridge)
            self.networks[bridge.id] = bridge
        await self._plumber.bridges(list(self.networks.values()))
        await self._apply_rules()
        for network in self.networks.values():
            await self._listen_dns(network)
        self._started = True

    def _prepare_namespace(self) -> None:
        netns.private_directory(self.netns_dir)
        netns.create(self.engine_netns)

    async def stop(self) -> None:
        """Remove everything the networks made (containers are stopped by then)."""
        for member in self.members.values():
            if member.relay is not None:
                await member.relay.close()
                member.relay = None
        self._dns.close_all()
        if self._thread is not None:
            self._thread.close()
            self._thread = None
        await asyncio.to_thread(self._remove_namespaces, set())
        from minicloud.engine.snapshots.mounts import unmount

        await asyncio.to_thread(unmount, self.netns_dir)
        self._started = False

    def _remove_namespaces(self, keep: set[str]) -> None:
        if not self.netns_dir.exists():
            return
        for path in self.netns_dir.iterdir():
            if path.name not in keep:
                netns.remove(path)

    async def sweep(self) -> None:
        """After containers were loaded: namespaces that no running container owns."""
        keep = {"engine", *(cid for cid, m in self.members.items() if m.active)}
        await asyncio.to_thread(self._remove_namespaces, keep)

    async def _apply_rules(self) -> None:
        rules = [nftables.BridgeRule(n.bridge, n.gateway) for n in self.networks.values()]
        await netns.run_nft(self.engine_netns, nftables.ruleset(rules))

    async def _listen_dns(self, network: Network) -> None:
        assert self._thread is not None
        try:
            sock = await self._thread.call(lambda: dns.udp_socket(network.gateway))
        except OSError as exc:
            log.warning("no name server on network %s: %s", network.name, exc)
            return
        await self._dns.listen(network.gateway, sock)

    async def _namespace_socket(self) -> socket.socket:
        if self._thread is None:
            raise OSError("the engine's network namespace is gone")
        return await self._thread.call(tcp_socket)

    async def _namespace_udp_socket(self) -> socket.socket:
        if self._thread is None:
            raise OSError("the engine's network namespace is gone")
        return await self._thread.call(udp_socket)

    # -- networks -------------------------------------------------------------------------------
    def get(self, ref: str) -> Network:
        for network in self.networks.values():
            if network.name == ref or network.id == ref:
                return network
        matches = [n for n in self.networks.values() if n.id.startswith(ref)] if ref else []
        if len(matches) == 1:
            return matches[0]
        raise NotFound(f"network {ref} not found")

    def lookup_optional(self, ref: str) -> Network | None:
        try:
            return self.get(ref)
        except NotFound:
            return None

    async def create(self, name: str, *, subnet: str | None = None, gateway: str | None = None,
                     ip_range: str | None = None, internal: bool = False, attachable: bool = False,
                     labels: dict[str, str] | None = None, options: dict[str, str] | None = None) -> Network:
        validate_name(name)
        async with self._creating:
            if name in PREDEFINED or any(n.name == name for n in self.networks.values()):
                raise Conflict(f"network with name {name} already exists")
            chosen = ipam.choose_subnet(subnet, (n.network for n in self.networks.values()))
            gw = ipam.choose_gateway(chosen, gateway)
            if ip_range:
                within = ipam.parse_subnet(ip_range)
                if not within.subnet_of(chosen):
                    raise InvalidArgument(f"ip-range {ip_range} is not inside subnet {chosen}")
            network = Network(id=self._new_id(), name=name, subnet=str(chosen), gateway=str(gw), created=self._now(),
                              ip_range=ip_range or "", internal=internal, attachable=attachable,
                              labels=dict(labels or {}), options=dict(options or {}), user_subnet=bool(subnet))
            await self._plumber.bridges([network])
            self.networks[network.id] = network
            try:
                await self._apply_rules()
                await asyncio.to_thread(self.store.save, network)
            except BaseException:
                self.networks.pop(network.id, None)
                await self._plumber.remove_bridge(network)
                raise
        await self._listen_dns(network)
        return network

    def users(self, network: Network) -> list[str]:
        return [cid for cid, m in self.members.items() if network.id in m.endpoints]

    async def remove(self, ref: str) -> Network:
        if ref in PREDEFINED:
            raise Conflict(f"{ref} is a pre-defined network and cannot be removed")
        network = self.get(ref)
        if network.builtin:
            raise Conflict(f"{network.name} is a pre-defined network and cannot be removed")
        if users := self.users(network):
            raise Conflict(f"error while removing network: network {network.name} id {network.id} has active "
                           f"endpoints ({', '.join(self.members[c].name for c in users)})")
        self._dns.close(network.gateway)
        self.networks.pop(network.id, None)
        await self._plumber.remove_bridge(network)
        await self._apply_rules()
        await asyncio.to_thread(self.store.delete, network)
        return network

    # -- endpoints (at create, connect, disconnect, remove) -------------------------------------
    def register(self, container_id: str, name: str, endpoints: dict[str, Any]) -> None:
        """A container's record as loaded or created: its endpoints become allocations."""
        self.members[container_id] = Member(name, {nid: Endpoint.from_json(e) for nid, e in endpoints.items()})

    def forget(self, container_id: str) -> None:
        member = self.members.pop(container_id, None)
        if member is not None and member.active:
            log.warning("container %s forgotten while connected", container_id[:12])

    def plan(self, container_id: str, wanted: list[tuple[str, dict[str, Any]]]) -> dict[str, Endpoint]:
        """Endpoints of a registered container for ``wanted`` networks (reference, Docker's
        EndpointSettings), allocated now: the addresses are taken from this moment."""
        planned: dict[str, Endpoint] = {}
        for ref, settings in wanted:
            network = self.get(ref)
            if network.id in planned:
                continue
            planned[network.id] = self._endpoint(network, settings or {}, f"eth{len(planned)}", planned.values())
        self.members[container_id].endpoints = planned
        return planned

    def _endpoint(self, network: Network, settings: dict[str, Any], ifname: str,
                  also_taken: Iterable[Endpoint] = ()) -> Endpoint:
        requested = str(((settings.get("IPAMConfig") or {}).get("IPv4Address")) or "")
        if requested and network.builtin:
            raise InvalidArgument("user specified IP address is supported on user defined networks only")
        if requested and not network.user_subnet:
            raise InvalidArgument("user specified IP address is supported only when connecting to networks "
                                  "with user configured subnets")
        used = [ipaddress.IPv4Address(e.ip) for m in self.members.values() for nid, e in m.endpoints.items()
                if nid == network.id]
        used += [ipaddress.IPv4Address(e.ip) for e in also_taken if e.network_id == network.id]
        ip_range = ipaddress.IPv4Network(network.ip_range) if network.ip_range else None
        address = ipam.allocate(network.network, ipaddress.IPv4Address(network.gateway), used, requested or None,
                                ip_range)
        aliases = [str(a) for a in settings.get("Aliases") or [] if a]
        if network.builtin and aliases:
            raise InvalidArgument("network-scoped alias is supported only for containers in user defined networks")
        return Endpoint(network_id=network.id, endpoint_id=self._new_id(), ip=str(address), mac=ipam.mac_for(address),
                        ifname=ifname, aliases=aliases, requested_ip=requested)

    async def connect(self, container_id: str, ref: str, settings: dict[str, Any]) -> Endpoint:
        member = self.members[container_id]
        network = self.get(ref)
        if network.id in member.endpoints:
            raise Conflict(f"endpoint with name {member.name} already exists in network {network.name}")
        taken = {e.ifname for e in member.endpoints.values()}
        ifname = next(f"eth{i}" for i in range(len(taken) + 1) if f"eth{i}" not in taken)
        endpoint = self._endpoint(network, settings, ifname)
        member.endpoints[network.id] = endpoint
        if member.active and member.netns is not None:
            try:
                await self._plumber.connect(member.netns, [self._link(container_id, endpoint)])
            except BaseException:
                member.endpoints.pop(network.id, None)
                raise
        return endpoint

    async def disconnect(self, container_id: str, ref: str) -> None:
        member = self.members[container_id]
        network = self.get(ref)
        endpoint = member.endpoints.get(network.id)
        if endpoint is None:
            raise Conflict(f"container {container_id[:12]} is not connected to network {network.name}")
        if member.active:
            await self._plumber.disconnect([self._link(container_id, endpoint)])
        del member.endpoints[network.id]

    def endpoints_json(self, container_id: str) -> dict[str, Any]:
        member = self.members.get(container_id)
        return {} if member is None else {nid: e.to_json() for nid, e in member.endpoints.items()}

    def _link(self, container_id: str, endpoint: Endpoint) -> Link:
        network = self.networks[endpoint.network_id]
        return Link(endpoint, network.bridge, network.prefixlen,
                    host_ifname(container_id, int(endpoint.ifname.removeprefix("eth") or 0)))

    # -- sandboxes (at start and exit) ----------------------------------------------------------
    def sandbox(self, container_id: str, hostname: str) -> tuple[Sandbox, Awaitable[None]]:
        """The container's namespace as it will be, and the work that makes it: creating it and
        connecting it to each of its networks (awaited while the rest of the start goes on)."""
        member = self.members[container_id]
        endpoints = sorted(member.endpoints.values(), key=lambda e: e.ifname)
        if not endpoints:
            raise InvalidArgument("the container is connected to no network")
        path = self.netns_dir / container_id
        primary = self.networks[endpoints[0].network_id]
        return Sandbox(path, [(endpoints[0].ip, hostname)], primary.gateway), self._connect_sandbox(member, path)

    async def _connect_sandbox(self, member: Member, path: Path) -> None:
        container_id = path.name
        links = [self._link(container_id, e) for e in sorted(member.endpoints.values(), key=lambda e: e.ifname)]
        if path.exists():  # left by a crash
            await asyncio.to_thread(netns.remove, path)
        member.netns = path
        try:
            await self._plumber.sandbox(path, links)
        except BaseException:
            await self._teardown(None, links, path)
            member.netns = None
            raise
        member.active = True

    def detach(self, container_id: str) -> Awaitable[None]:
        """The container stopped: it is no longer connected from this moment; the work (closing
        its published ports, deleting its veth pairs and namespace) is returned, captured now, so
        that it can run off the exit's path and still finish after the container is removed."""
        member = self.members.get(container_id)
        if member is None or not member.endpoints:
            return _nothing()  # none, host, container: no namespace of ours
        member.active = False
        relay, member.relay, member.netns = member.relay, None, None
        links = [self._link(container_id, e) for e in member.endpoints.values() if e.network_id in self.networks]
        return self._teardown(relay, links, self.netns_dir / container_id)

    async def _teardown(self, relay: Relay | None, links: list[Link], path: Path) -> None:
        if relay is not None:
            await relay.close()
        await self._plumber.disconnect(links)
        await asyncio.to_thread(netns.remove, path)

    def readopt(self, container_id: str) -> bool:
        """A running container found at start-up: connected still, if its namespace is there."""
        member = self.members.get(container_id)
        path = self.netns_dir / container_id
        if member is None or not netns.exists(path):
            return False
        member.active, member.netns = True, path
        return True

    def primary_address(self, container_id: str) -> str | None:
        member = self.members.get(container_id)
        if member is None or not member.endpoints:
            return None
        return min(member.endpoints.values(), key=lambda e: e.ifname).ip

    async def publish(self, container_id: str, bindings: list[PortBinding],
                      preferred: dict[str, list[int]] | None = None) -> dict[str, list[dict[str, str]]]:
        """Open the container's published ports; Docker's ``NetworkSettings.Ports`` of them."""
        member = self.members[container_id]
        address = self.primary_address(container_id)
        if not bindings or address is None:
            return {}
        relay = Relay(self._namespace_socket, self._namespace_udp_socket)
        member.relay = relay
        ports: dict[str, list[dict[str, str]]] = {}
        earlier = {k: list(v) for k, v in (preferred or {}).items()}
        try:
            for binding in bindings:
                target = (address, binding.container_port)
                wish = earlier.get(binding.key, [])
                port = await relay.open(binding, lambda t=target: t if member.active else None,  # type: ignore[misc]
                                        wish.pop(0) if wish else 0)
                ports.setdefault(binding.key, []).append({"HostIp": binding.host_ip, "HostPort": str(port)})
        except BaseException:
            await relay.close()
            member.relay = None
            raise
        return ports

    # -- names ----------------------------------------------------------------------------------
    def lookup(self, name: str, client: str) -> list[str] | None:
        asking = next((m for m in self.members.values() if m.active
                       and any(e.ip == client for e in m.endpoints.values())), None)
        if asking is None:
            return None
        for endpoint in sorted(asking.endpoints.values(), key=lambda e: e.ifname):
            network = self.networks.get(endpoint.network_id)
            if network is None or not network.resolves_names:
                continue
            found = [e.ip for cid, m in self.members.items() if m.active
                     for e in [m.endpoints.get(network.id)] if e is not None
                     and (name in (m.name.lower(), cid[:12]) or name in (a.lower() for a in e.aliases))]
            if found:
                return found
        return None

    def network_containers(self, network: Network) -> dict[str, dict[str, str]]:
        """Docker's ``Containers`` of a network inspect: the running endpoints."""
        result = {}
        for cid, member in self.members.items():
            endpoint = member.endpoints.get(network.id)
            if endpoint is not None and member.active:
                result[cid] = {"Name": member.name, "EndpointID": endpoint.endpoint_id,
                               "MacAddress": endpoint.mac, "IPv4Address": f"{endpoint.ip}/{network.prefixlen}",
                               "IPv6Address": ""}
        return result



async def _nothing() -> None:
    return None
