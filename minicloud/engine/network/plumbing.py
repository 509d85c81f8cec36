"""The ``ip`` commands that build bridges in the engine's namespace and connect a container's
namespace to them with veth pairs: one end (``eth0``, ``eth1``...) in the container, the other
enslaved to the network's bridge in the engine's namespace. Rendering is pure (tested without
root); ``Plumber`` runs the commands.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from minicloud.engine.network import netns
from minicloud.engine.network.model import Endpoint, Network

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


def engine_side(links: list[Link], container_netns: Path) -> list[str]:
    commands = []
    for link in links:
        commands += [
            f"link add {link.host} type veth peer name {link.endpoint.ifname} address {link.endpoint.mac} "
            f"netns {container_netns}",
            f"link set {link.host} master {link.bridge}",
            f"link set {link.host} up",
        ]
    return commands


def container_side(links: list[Link], with_loopback: bool = True) -> list[str]:
    commands = ["link set lo up"] if with_loopback else []
    for link in links:
        commands += [f"addr add {link.endpoint.ip}/{link.prefixlen} dev {link.endpoint.ifname}",
                     f"link set {link.endpoint.ifname} up"]
    return commands


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

    async def connect(self, container_netns: Path, links: list[Link], *, first: bool) -> None:
        """Create the veth pairs and configure the container's side."""
        try:
            await netns.run_ip(self.engine_netns, engine_side(links, container_netns))
        except netns.NetworkSetupFailed:  # a pair left by a crash under the same name: once more
            await self.disconnect(links)
            await netns.run_ip(self.engine_netns, engine_side(links, container_netns))
        await netns.run_ip(container_netns, container_side(links, with_loopback=first))

    async def disconnect(self, links: list[Link]) -> None:
        """Delete the pairs (deleting one end deletes both), at once rather than whenever the
        kernel gets round to freeing the container's namespace."""
        if links:
            await netns.run_ip(self.engine_netns, [f"link del {link.host}" for link in links], tolerate=True)
