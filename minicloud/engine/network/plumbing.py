"""Bridges in the engine's namespace (``ip`` commands, at start-up and ``network create``) and
the veth pairs that connect a container's namespace to them: one end (``eth0``, ``eth1``...) in
the container, the other enslaved to the network's bridge in the engine's namespace, made with
rtnetlink requests from a thread (no process on the path of a start: ``rtnl``). The ``ip``
commands' rendering is pure (tested without root); ``Plumber`` runs the work.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

from minicloud.engine.network import netns
from minicloud.engine.network.model import Endpoint, Network
from minicloud.netlink import namespaces, rtnl

# sysctls of the engine's namespace: no routing between bridges or anywhere else, no bridged
# traffic through the inet hooks, ARP answered only for an interface's own addresses, no IPv6
ENGINE_SYSCTLS = {
    "net.ipv4.ip_forward": "0",
    "net.bridge.bridge-nf-call-iptables": "0",
    "net.bridge.bridge-nf-call-ip6tables": "0",
    "net.bridge.bridge-nf-call-arptables": "0",
    "net.ipv4.conf.all.arp_ignore": "1",
    "net.ipv4.conf.default.arp_ignore": "1",
    "net.ipv6.conf.all.disable_ipv6": "1",
    "net.ipv6.conf.default.disable_ipv6": "1",
}


@dataclass(frozen=True, slots=True)
class Link:
    """One endpoint as interfaces: ``host`` in the engine's namespace, ``endpoint.ifname`` inside."""

    endpoint: Endpoint
    bridge: str
    prefixlen: int
    host: str


def host_ifname(container_id: str, index: int) -> str:
    return f"mv{container_id[:10]}{index}"


def bridge_commands(network: Network, existing: set[str]) -> list[str]:
    commands = [] if network.bridge in existing else [f"link add {network.bridge} type bridge"]
    return [*commands,
            f"addr replace {network.gateway}/{network.prefixlen} dev {network.bridge}",
            f"link set {network.bridge} up"]


def parse_link_names(ip_output: str) -> set[str]:
    """Interface names from ``ip link show`` (lines ``N: name[@peer]: <FLAGS> ...``)."""
    names = set()
    for line in ip_output.splitlines():
        parts = line.split(":", 2)
        if len(parts) >= 2 and parts[0].strip().isdigit():
            names.add(parts[1].strip().split("@", 1)[0])
    return names


class Plumber:
    def __init__(self, engine_netns: Path) -> None:
        self.engine_netns = engine_netns

    async def links(self) -> set[str]:
        return parse_link_names(await netns.run_ip(self.engine_netns, ["link show"]))

    async def bridges(self, networks: list[Network]) -> None:
        existing = await self.links()
        commands = [c for n in networks for c in bridge_commands(n, existing)]
        await netns.run_ip(self.engine_netns, ["link set lo up", *commands])

    async def remove_bridge(self, network: Network) -> None:
        await netns.run_ip(self.engine_netns, [f"link del {network.bridge}"], tolerate=True)

    async def sandbox(self, path: Path, links: list[Link]) -> None:
        """A new namespace for a container at ``path``, connected to its bridges by ``links``."""
        try:
            await namespaces.in_own_thread(lambda: self._build(path, links, new=True))
        except OSError as exc:
            raise netns.NetworkSetupFailed(f"cannot connect the container's namespace {path.name[:12]}: "
                                           f"{exc.strerror or exc}") from None

    async def connect(self, container_netns: Path, links: list[Link]) -> None:
        """Connect the running container's namespace to more bridges."""
        try:
            await namespaces.in_own_thread(lambda: self._build(container_netns, links, new=False))
        except OSError as exc:
            raise netns.NetworkSetupFailed(f"cannot connect {container_netns.name[:12]}: {exc.strerror or exc}") \
                from None

    def _build(self, path: Path, links: list[Link], *, new: bool) -> None:
        """Blocking, in a thread of its own: a socket in the engine's namespace creates the pairs
        and enslaves the host ends; one in the container's (new, or entered) sets addresses up."""
        namespaces.enter(self.engine_netns)
        masters = {link.bridge: socket.if_nametoindex(link.bridge) for link in links}
        with rtnl.Rtnl() as engine:
            if new:
                namespaces.unshare_to(path)
            else:
                namespaces.enter(path)
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                for link in links:
                    _add_pair(engine, link, fd)
                    engine.set_master(link.host, masters[link.bridge], up=True)
            finally:
                os.close(fd)
            with rtnl.Rtnl() as inside:
                if new:
                    inside.set_up("lo")
                for link in links:
                    inside.add_address(link.endpoint.ifname, link.endpoint.ip, link.prefixlen)
                    inside.set_up(link.endpoint.ifname)

    async def disconnect(self, links: list[Link]) -> None:
        """Delete the pairs (deleting one end deletes both), at once rather than whenever the
        kernel gets round to freeing the container's namespace."""
        if links:
            await namespaces.in_own_thread(lambda: self._delete(links))

    def _delete(self, links: list[Link]) -> None:
        namespaces.enter(self.engine_netns)
        with rtnl.Rtnl() as engine:
            for link in links:
                engine.delete_link(link.host)


def _add_pair(engine: rtnl.Rtnl, link: Link, container_netns_fd: int) -> None:
    try:
        engine.add_veth(link.host, link.endpoint.ifname, container_netns_fd, peer_mac=link.endpoint.mac)
    except FileExistsError:  # a pair left by a crash under the same name: once more
        engine.delete_link(link.host)
        engine.add_veth(link.host, link.endpoint.ifname, container_netns_fd, peer_mac=link.endpoint.mac)
