"""``VpcDataPlane``: builds and removes the namespaces, veth pairs, routes and nftables tables of
VPCs (the topology is described in the package's docstring). State is in memory: after a restart
``start`` sweeps whatever a previous run left and the EC2 controller ensures everything again."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import socket
from dataclasses import dataclass, field, replace
from pathlib import Path

from minicloud.engine.network import netns
from minicloud.engine.network.plumbing import parse_link_names
from minicloud.engine.snapshots.mounts import unmount
from minicloud.netlink import namespaces
from minicloud.vpcnet import addressing as addr
from minicloud.vpcnet import hosttable, kernel, rules
from minicloud.vpcnet.claims import RUN_DIR, Orphan, PlaneLock, PublicIpClaims
from minicloud.vpcnet.model import Conflict, InvalidInput, NotFound, Port, SecurityGroup
from minicloud.vpcnet.nftlib import Nft
from minicloud.vpcnet.relay import Relay

log = logging.getLogger("minicloud.vpcnet")

@dataclass(eq=False)
class _Vpc:
    vpc_id: str
    cidr: ipaddress.IPv4Network
    router: Path
    link: str
    thread: netns.NamespaceThread
    nft: Nft
    subnets: dict[str, ipaddress.IPv4Network] = field(default_factory=dict)
    groups: dict[str, SecurityGroup] = field(default_factory=dict)
    services: set[rules.Service] = field(default_factory=set)
    relays: dict[rules.Service, Relay] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    changes: int = 0
    applied: int = 0


@dataclass(eq=False)
class _PortState:
    port: Port
    ifname: str
    netns: Path
    transit: str | None = None


class VpcDataPlane:
    def __init__(self, state_dir: Path, *, public_pool: str = addr.DEFAULT_PUBLIC_POOL,
                 transit_pool: str = addr.DEFAULT_TRANSIT_POOL, run_dir: Path = RUN_DIR) -> None:
        self.state_dir = state_dir
        self.netns_dir = state_dir / "netns"
        self.tag = addr.instance_tag(str(state_dir.resolve()))
        self.table = addr.host_table(self.tag)
        self.public_pool = ipaddress.IPv4Network(public_pool)
        if not self.public_pool.subnet_of(ipaddress.IPv4Network("127.0.0.0/8")):
            raise InvalidInput(f"the public address pool {public_pool} must be inside 127.0.0.0/8")
        self.transit_pool = ipaddress.IPv4Network(transit_pool)
        self._claims = PublicIpClaims(run_dir / "vpc-public-ips")
        self._lock = PlaneLock(run_dir / "vpc-planes", self.tag, state_dir.resolve())
        self._vpcs: dict[str, _Vpc] = {}
        self._ports: dict[str, _PortState] = {}
        self._port_locks: dict[str, asyncio.Lock] = {}
        self._host_lock = asyncio.Lock()
        self._host_nft: Nft | None = None
        self._started = False

    # -- start and stop -------------------------------------------------------------------------
    async def start(self) -> None:
        """Own the host table; sweep what a previous run left (namespaces, veths, routes, table)."""
        if self._started:
            return
        await asyncio.to_thread(self._lock.acquire)
        try:
            await asyncio.to_thread(netns.private_directory, self.netns_dir)
            self._host_nft = Nft(None, None)
            await self._sweep(self.tag, self.netns_dir)
            for orphan in await asyncio.to_thread(self._lock.orphans):
                try:
                    await self._sweep_orphan(orphan)
                except Exception as exc:  # another's leftovers: never a reason not to start
                    log.warning("cannot sweep what the dead VPC data plane %s left: %s", orphan.tag, exc)
            await self._host_nft.load(hosttable.ruleset(self.table, [], {}))
        except BaseException:
            if self._host_nft is not None:
                await self._host_nft.close()
                self._host_nft = None
            self._lock.release()
            raise
        self._started = True

    async def stop(self) -> None:
        """Remove everything added on the host and every namespace."""
        for vpc_id in list(self._vpcs):
            with contextlib.suppress(Exception):
                await self.remove_vpc(vpc_id)
        if self._host_nft is not None:
            await self._sweep(self.tag, self.netns_dir)
            await self._host_nft.close()
            self._host_nft = None
        self._claims.release_all()
        await asyncio.to_thread(unmount, self.netns_dir)
        self._lock.release()
        self._started = False

    async def _sweep(self, tag: str, netns_dir: Path | None) -> None:
        """Remove the host links (with their routes), host table and namespaces of the data plane
        named ``tag`` (this one, or a dead one)."""
        prefix = addr.host_link_prefix(tag)
        links = parse_link_names(await netns.run_ip(None, ["link show"]))
        await netns.run_ip(None, [f"link del {name}" for name in sorted(links) if name.startswith(prefix)],
                           tolerate=True)
        assert self._host_nft is not None
        await self._host_nft.load(hosttable.removal(addr.host_table(tag)))
        if netns_dir is not None:
            await asyncio.to_thread(_remove_namespace_files, netns_dir)
        await asyncio.to_thread(self._claims.sweep)

    async def _sweep_orphan(self, orphan: Orphan) -> None:
        """What a dead data plane left (its state directory may be gone)."""
        try:
            netns_dir = orphan.state_dir / "netns" if orphan.state_dir else None
            if netns_dir is not None and not netns.exists(netns_dir):
                netns_dir = None
            await self._sweep(orphan.tag, netns_dir)
            if netns_dir is not None:
                await asyncio.to_thread(unmount, netns_dir)
        finally:
            orphan.forget()

    # -- VPCs -----------------------------------------------------------------------------------
    def router_netns(self, vpc_id: str) -> Path:
        return self._vpc(vpc_id).router

    def _vpc(self, vpc_id: str) -> _Vpc:
        vpc = self._vpcs.get(vpc_id)
        if vpc is None:
            raise NotFound(f"VPC {vpc_id} has no data plane (ensure_vpc first)")
        return vpc

    async def ensure_vpc(self, vpc_id: str, cidr: str) -> None:
        addr.check_id(vpc_id, "VPC id")
        net = addr.network(cidr, "VPC CIDR")
        self._require_started()
        known = self._vpcs.get(vpc_id)
        if known is not None and known.cidr == net and not _held(known.router):
            await self.remove_vpc(vpc_id)  # its router went missing: rebuilt below, its ports ensured again
        async with self._host_lock:
            existing = self._vpcs.get(vpc_id)
            if existing is not None:
                if existing.cidr != net:
                    raise Conflict(f"VPC {vpc_id} already has CIDR {existing.cidr}, not {net}")
                if _held(existing.router):
                    return
                await self._drop_vpc(existing)
            vpc = await self._build_router(vpc_id, net)
            self._vpcs[vpc_id] = vpc
            try:
                await self._refresh_router(vpc)
                await self._apply_host_table()
            except BaseException:
                self._vpcs.pop(vpc_id, None)
                await self._drop_vpc(vpc)
                raise

    async def _build_router(self, vpc_id: str, net: ipaddress.IPv4Network) -> _Vpc:
        router = self.netns_dir / f"router.{vpc_id}"
        link = addr.host_link(self.tag, vpc_id)
        await asyncio.to_thread(netns.remove, router)
        await asyncio.to_thread(netns.create, router)
        thread = netns.NamespaceThread(router)
        vpc = _Vpc(vpc_id, net, router, link, thread, Nft(thread, router))
        try:
            await asyncio.to_thread(kernel.build_uplink, link, router)
            await thread.call(lambda: kernel.configure_router(thread))
        except BaseException:
            await self._drop_vpc(vpc)
            raise
        vpc.services.add(rules.Service(addr.METADATA_ADDRESS, 80))
        return vpc

    async def remove_vpc(self, vpc_id: str) -> None:
        """Remove the VPC's ports, router namespace, uplink (and its routes). Idempotent."""
        vpc = self._vpcs.get(vpc_id)
        if vpc is None:
            return
        for instance_id in [i for i, s in self._ports.items() if s.port.vpc_id == vpc_id]:
            await self.remove_port(instance_id)
        async with self._host_lock:
            self._vpcs.pop(vpc_id, None)
            await self._drop_vpc(vpc)
            await self._apply_host_table()

    async def _drop_vpc(self, vpc: _Vpc) -> None:
        for relay in vpc.relays.values():
            await relay.close()
        vpc.relays.clear()
        await asyncio.to_thread(kernel.delete_link, vpc.link)
        await vpc.nft.close()
        vpc.thread.close()
        await asyncio.to_thread(netns.remove, vpc.router)

    # -- subnets --------------------------------------------------------------------------------
    async def ensure_subnet(self, vpc_id: str, subnet_id: str, cidr: str) -> None:
        """The subnet's gateway (its first host address) on the router. Idempotent."""
        addr.check_id(subnet_id, "subnet id")
        net = addr.network(cidr, "subnet CIDR")
        vpc = self._vpc(vpc_id)
        known = vpc.subnets.get(subnet_id)
        if known == net:
            return
        if known is not None:
            raise Conflict(f"subnet {subnet_id} already has CIDR {known}, not {net}")
        for other_id, other in vpc.subnets.items():
            if other.overlaps(net):
                raise Conflict(f"subnet CIDR {net} overlaps {other} of subnet {other_id}")
        vpc.subnets[subnet_id] = net
        try:
            await vpc.thread.call(lambda: kernel.loopback_address(str(addr.gateway(net))))
            await self._refresh_router(vpc)
        except BaseException:
            vpc.subnets.pop(subnet_id, None)
            raise

    async def remove_subnet(self, vpc_id: str, subnet_id: str) -> None:
        """Remove the subnet's ports and its gateway. Idempotent."""
        vpc = self._vpcs.get(vpc_id)
        if vpc is None or subnet_id not in vpc.subnets:
            return
        for instance_id in [i for i, s in self._ports.items()
                            if s.port.vpc_id == vpc_id and s.port.subnet_id == subnet_id]:
            await self.remove_port(instance_id)
        net = vpc.subnets.pop(subnet_id)
        await vpc.thread.call(lambda: kernel.loopback_address(str(addr.gateway(net)), delete=True))
        await self._refresh_router(vpc)

    # -- ports ----------------------------------------------------------------------------------
    def port_netns(self, instance_id: str) -> Path | None:
        state = self._ports.get(instance_id)
        return None if state is None else state.netns

    async def ensure_port(self, port: Port) -> str:
        """The instance's namespace, connected to its VPC's router; returns its path. Idempotent:
        a port already there as asked is left alone; changed groups or public IP are applied; a
        changed address, MAC or subnet rebuilds it."""
        addr.check_id(port.instance_id, "instance id")
        subnet = addr.network(port.subnet_cidr, "subnet CIDR")
        addr.check_private_ip(subnet, port.private_ip)
        port = replace(port, mac=addr.check_mac(port.mac), group_ids=tuple(dict.fromkeys(port.group_ids)))
        if port.public_ip is not None:
            addr.check_public_ip(port.public_ip, self.public_pool)
        vpc = self._vpc(port.vpc_id)
        lock = self._port_locks.setdefault(port.instance_id, asyncio.Lock())
        async with lock:
            state = self._ports.get(port.instance_id)
            if state is not None and _same_link(state.port, port) and _held(state.netns):
                await self._update_port(vpc, state, port)
                return str(state.netns)
            if state is not None:
                await self.remove_port(port.instance_id, _locked=True)
            self._check_free(port)
            await self.ensure_subnet(port.vpc_id, port.subnet_id, port.subnet_cidr)
            state = await self._build_port(vpc, subnet, port)
            return str(state.netns)

    def _check_free(self, port: Port) -> None:
        for other in self._ports.values():
            if other.port.instance_id == port.instance_id:
                continue
            if other.port.vpc_id == port.vpc_id and other.port.private_ip == port.private_ip:
                raise Conflict(f"private IP {port.private_ip} is used by {other.port.instance_id} in {port.vpc_id}")
            if port.public_ip is not None and other.port.public_ip == port.public_ip:
                raise Conflict(f"public IP {port.public_ip} is mapped to {other.port.instance_id}")

    async def _build_port(self, vpc: _Vpc, subnet: ipaddress.IPv4Network, port: Port) -> _PortState:
        path = self.netns_dir / f"instance.{port.instance_id}"
        ifname = addr.router_port(port.instance_id)
        transit = None
        if port.public_ip is not None:  # (no lock needed: a claim is taken at once, and the kernel
            self._claims.claim(port.public_ip)  # refuses a transit route that another port just took)
            try:
                transit = await self._route_transit(vpc)
            except BaseException:
                self._claims.release(port.public_ip)
                raise
        await asyncio.to_thread(netns.remove, path)
        await vpc.thread.call(lambda: kernel.delete_link(ifname))  # a pair left under this name
        try:
            await namespaces.in_own_thread(lambda: kernel.build_instance_side(
                path, vpc.router, ifname, port.mac, port.private_ip, subnet.prefixlen, str(addr.gateway(subnet))))
            await vpc.thread.call(lambda: kernel.attach_router_side(ifname, port.private_ip))
            state = _PortState(port, ifname, path, transit)
            self._ports[port.instance_id] = state
            await self._refresh_router(vpc)
            if transit is not None:
                async with self._host_lock:
                    await self._apply_host_table()
        except BaseException:
            registered = self._ports.pop(port.instance_id, None) is not None
            await vpc.thread.call(lambda: kernel.delete_link(ifname))
            await asyncio.to_thread(netns.remove, path)
            if transit is not None and port.public_ip is not None:
                await asyncio.to_thread(kernel.unroute_transit, transit, vpc.link)
                async with self._host_lock:
                    if registered:
                        await self._apply_host_table()
                    self._claims.release(port.public_ip)
            raise
        return state

    async def _update_port(self, vpc: _Vpc, state: _PortState, port: Port) -> None:
        if port.public_ip != state.port.public_ip:
            self._check_free(port)
            await self._set_public(state, port.public_ip)
        if port.group_ids != state.port.group_ids:
            state.port = replace(state.port, group_ids=port.group_ids)
            await self._refresh_router(vpc)

    async def remove_port(self, instance_id: str, *, _locked: bool = False) -> None:
        """Remove the port: its public mapping, veth pair, route and namespace. Idempotent."""
        if not _locked:
            async with self._port_locks.setdefault(instance_id, asyncio.Lock()):
                await self.remove_port(instance_id, _locked=True)
            return
        state = self._ports.get(instance_id)
        if state is None:
            await asyncio.to_thread(netns.remove, self.netns_dir / f"instance.{instance_id}")
            return
        if state.transit is not None:
            await self._set_public(state, None)
        vpc = self._vpcs.get(state.port.vpc_id)
        self._ports.pop(instance_id, None)
        if vpc is not None:
            await vpc.thread.call(lambda: kernel.delete_link(state.ifname))
            await self._refresh_router(vpc)
        await asyncio.to_thread(netns.remove, state.netns)

    # -- public IPs -----------------------------------------------------------------------------
    async def set_public_ip(self, instance_id: str, public_ip: str | None) -> None:
        """Map (or unmap, with None) a public IP to the instance's private IP."""
        if public_ip is not None:
            addr.check_public_ip(public_ip, self.public_pool)
        async with self._port_locks.setdefault(instance_id, asyncio.Lock()):
            state = self._ports.get(instance_id)
            if state is None:
                raise NotFound(f"instance {instance_id} has no port")
            if public_ip is not None:
                self._check_free(replace(state.port, public_ip=public_ip))
            await self._set_public(state, public_ip)

    async def _set_public(self, state: _PortState, public_ip: str | None) -> None:
        vpc = self._vpc(state.port.vpc_id)
        if public_ip == state.port.public_ip and (public_ip is None) == (state.transit is None):
            return
        old = state.port.public_ip
        async with self._host_lock:
            if public_ip is None:
                transit, state.transit = state.transit, None
                state.port = replace(state.port, public_ip=None)
                await self._apply_host_table()
                if transit is not None:
                    await asyncio.to_thread(kernel.unroute_transit, transit, vpc.link)
                await self._refresh_router(vpc)
            else:
                self._claims.claim(public_ip)
                try:
                    if state.transit is None:
                        state.transit = await self._route_transit(vpc)
                except BaseException:
                    self._claims.release(public_ip)
                    raise
                state.port = replace(state.port, public_ip=public_ip)
                await self._refresh_router(vpc)
                await self._apply_host_table()
            if old is not None and old != public_ip:
                self._claims.release(old)

    async def _route_transit(self, vpc: _Vpc) -> str:
        """A transit address of our own, routed to the VPC's uplink: the kernel's routing table
        decides which is free (another minicloud on this host may route some)."""
        used = [s.transit for s in self._ports.values() if s.transit]
        for candidate in addr.transit_candidates(self.transit_pool, used):
            if await asyncio.to_thread(kernel.route_transit, candidate, vpc.link):
                return candidate
        raise Conflict(f"the transit pool {self.transit_pool} is exhausted")

    # -- security -------------------------------------------------------------------------------
    async def apply_security(self, vpc_id: str, groups: list[SecurityGroup]) -> None:
        """The whole rule set of the VPC, swapped atomically; established connections survive,
        new ones follow the new rules at once."""
        vpc = self._vpc(vpc_id)
        by_id = {g.group_id: g for g in groups}
        if by_id == vpc.groups and vpc.applied == vpc.changes:
            return  # already in force (a controller may apply the same rules on every pass)
        ports = self._views(vpc)
        rules.ruleset(ports, by_id, vpc.services, self._gateways(vpc))  # bad input raises before the swap
        vpc.groups = by_id
        await self._refresh_router(vpc)

    # -- sockets in the router --------------------------------------------------------------------
    async def metadata_socket(self, vpc_id: str) -> socket.socket:
        """A listening TCP socket on 169.254.169.254:80 in the VPC's router namespace; a connection's
        peer address is the asking instance's private IP. The caller closes it."""
        return await self.listen_socket(vpc_id, addr.METADATA_ADDRESS, 80)

    async def listen_socket(self, vpc_id: str, address: str, port: int) -> socket.socket:
        """A listening TCP socket at a link-local address (169.254.0.0/16) of the router, which every
        instance of the VPC may connect to (a service of the VPC, like the metadata service)."""
        value = addr.address(address)
        if value not in ipaddress.IPv4Network("169.254.0.0/16") or not 0 < port < 65536:
            raise InvalidInput(f"a router service listens on a link-local address and port, not {address}:{port}")
        vpc = self._vpc(vpc_id)
        if str(value) != addr.METADATA_ADDRESS:
            await vpc.thread.call(lambda: kernel.loopback_address(str(value)))
        vpc.services.add(rules.Service(str(value), port))
        await self._refresh_router(vpc)
        return await vpc.thread.call(lambda: kernel.listening_socket(str(value), port))

    async def relay(self, vpc_id: str, address: str, port: int, target: tuple[str, int]) -> None:
        """Carry connections to ``address:port`` (link-local, in the VPC) to ``target`` on the host,
        e.g. minicloud's API at ("127.0.0.1", 4566) for the AWS CLI inside instances. Idempotent;
        closed with the VPC."""
        vpc = self._vpc(vpc_id)
        key = rules.Service(str(addr.address(address)), port)
        if key in vpc.relays:
            return
        relay = Relay(target)
        vpc.relays[key] = relay
        try:
            await relay.start(await self.listen_socket(vpc_id, address, port))
        except BaseException:
            vpc.relays.pop(key, None)
            raise

    # -- rendering --------------------------------------------------------------------------------
    def _views(self, vpc: _Vpc) -> list[rules.PortView]:
        return [rules.PortView(s.ifname, s.port.private_ip, s.port.group_ids, s.transit)
                for s in self._ports.values() if s.port.vpc_id == vpc.vpc_id]

    def _gateways(self, vpc: _Vpc) -> list[str]:
        return [str(addr.gateway(net)) for net in vpc.subnets.values()]

    async def _refresh_router(self, vpc: _Vpc) -> None:
        """Load the router's table as the state is now; concurrent callers share one load."""
        vpc.changes += 1
        wanted = vpc.changes
        async with vpc.lock:
            if vpc.applied >= wanted:
                return
            seen = vpc.changes
            text = rules.ruleset(self._views(vpc), vpc.groups, vpc.services, self._gateways(vpc))
            await vpc.nft.load(text)
            vpc.applied = seen

    async def _apply_host_table(self) -> None:
        """Load the host table (called under the host lock)."""
        links = [v.link for v in self._vpcs.values()]
        public = {s.port.public_ip: s.transit for s in self._ports.values() if s.port.public_ip and s.transit}
        assert self._host_nft is not None
        await self._host_nft.load(hosttable.ruleset(self.table, links, public))

    def _require_started(self) -> None:
        if not self._started:
            raise RuntimeError("VpcDataPlane.start() was not called")


def _same_link(old: Port, new: Port) -> bool:
    return (old.vpc_id, old.subnet_id, old.subnet_cidr, old.private_ip, old.mac) == (
        new.vpc_id, new.subnet_id, new.subnet_cidr, new.private_ip, new.mac)


def _remove_namespace_files(directory: Path) -> None:
    if directory.is_dir():
        for path in directory.iterdir():
            netns.remove(path)


def _held(path: Path) -> bool:
    """Whether a namespace is still held at ``path`` (a bind mount of nsfs, so on another device
    than its directory): two stat calls, where reading the mount table would cost a controller
    that ensures hundreds of ports on every pass."""
    try:
        return os.stat(path).st_dev != os.stat(path.parent).st_dev
    except OSError:
        return False
