"""Address management for bridge networks: a subnet per network, chosen from Docker's default
pools unless given, its gateway, and addresses handed out in order.

Pure functions over ``ipaddress`` values; the allocations themselves are the containers' records
(each endpoint keeps its address), so a restart rebuilds them from disk.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator

from minicloud.engine.errors import Conflict, InvalidArgument

Subnet = ipaddress.IPv4Network
Address = ipaddress.IPv4Address
DEFAULT_BRIDGE_SUBNET = ipaddress.IPv4Network("172.17.0.0/16")


def default_pools() -> Iterator[Subnet]:
    """Docker's default address pools after the default bridge's: 172.18-31.0.0/16, then
    192.168.0.0/16 in /20 slices."""
    for second in range(18, 32):
        yield ipaddress.IPv4Network(f"172.{second}.0.0/16")
    yield from ipaddress.IPv4Network("192.168.0.0/16").subnets(new_prefix=20)


def parse_subnet(text: str) -> Subnet:
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise InvalidArgument(f"invalid subnet {text}: not a CIDR") from None
    if not isinstance(network, ipaddress.IPv4Network):
        raise InvalidArgument(f"invalid subnet {text}: IPv6 networks are not available yet in minicloud's engine")
    if network.prefixlen > 30:
        raise InvalidArgument(f"invalid subnet {text}: too small for a gateway and one container")
    return network


def parse_address(text: str, what: str = "address") -> Address:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise InvalidArgument(f"invalid {what} {text}") from None
    if not isinstance(address, ipaddress.IPv4Address):
        raise InvalidArgument(f"invalid {what} {text}: IPv6 is not available yet in minicloud's engine")
    return address


def choose_subnet(requested: str | None, taken: Iterable[Subnet]) -> Subnet:
    """The requested subnet (refused when it overlaps another network's), or the first free pool."""
    taken = list(taken)
    if requested:
        subnet = parse_subnet(requested)
        if any(subnet.overlaps(other) for other in taken):
            raise Conflict(f"invalid pool request: Pool overlaps with other one on this address space ({subnet})")
        return subnet
    for pool in default_pools():
        if not any(pool.overlaps(other) for other in taken):
            return pool
    raise Conflict("all predefined address pools have been fully subnetted")


def choose_gateway(subnet: Subnet, requested: str | None) -> Address:
    if not requested:
        return next(subnet.hosts())
    gateway = parse_address(requested, "gateway")
    if gateway not in subnet or gateway in (subnet.network_address, subnet.broadcast_address):
        raise InvalidArgument(f"gateway {gateway} is not a host address of subnet {subnet}")
    return gateway


def allocate(subnet: Subnet, gateway: Address, used: Iterable[Address], requested: str | None = None,
             ip_range: Subnet | None = None) -> Address:
    """A free host address of ``subnet`` (inside ``ip_range`` when given), or the requested one."""
    busy = {*used, gateway}
    if requested:
        address = parse_address(requested)
        if address not in subnet or address in (subnet.network_address, subnet.broadcast_address):
            raise InvalidArgument(f"no available IPv4 addresses on this network's address pools: "
                                  f"{address} is not in {subnet}")
        if address in busy:
            raise Conflict(f"Address already in use: {address}")
        return address
    for address in (ip_range or subnet).hosts():
        if address in subnet and address not in busy:
            return address
    raise Conflict(f"no available IPv4 addresses on this network's address pools: {subnet}")


def mac_for(address: Address) -> str:
    """Docker's MAC address for an IPv4 endpoint: 02:42 then the four bytes of the address."""
    return "02:42:" + ":".join(f"{b:02x}" for b in address.packed)
