"""Names and addresses the data plane chooses: interface names (short, stable, recognisably
ours), the transit addressing between the host and each VPC's router, and validation of what it
is given. Pure functions (tested without root).

Transit addressing (unique on the host whatever the VPCs' own CIDRs):

    LINK_HOST    198.19.0.1/32 on the host end of every VPC's uplink veth (the same address on
                 each: the host is one machine); public traffic is masqueraded to it, so this is
                 the source address security groups see for connections from the host
    LINK_ROUTER  198.19.0.2/32 on the router's end, ``uplink``, in every router namespace
    transit pool 198.18.0.0/16: one address per public IP, routed on the host to its VPC's
                 uplink (a /32 route of ours) and translated by the router to the private IP
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Iterable, Iterator

from minicloud.vpcnet.model import InvalidInput

LINK_HOST = "198.19.0.1"
LINK_ROUTER = "198.19.0.2"
DEFAULT_TRANSIT_POOL = "198.18.0.0/16"
DEFAULT_PUBLIC_POOL = "127.100.0.0/16"
METADATA_ADDRESS = "169.254.169.254"
UPLINK = "uplink"  # the router's end of the host link
INSTANCE_IFNAME = "eth0"
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def instance_tag(state_dir: str) -> str:
    """Four hex digits naming one data plane (its state directory) on the host, so that two
    minicloud processes on one machine never touch each other's interfaces or table."""
    return _digest(state_dir)[:4]


def host_table(tag: str) -> str:
    return f"minicloud_vpc_{tag}"


def host_link_prefix(tag: str) -> str:
    return f"vx{tag}"


def host_link(tag: str, vpc_id: str) -> str:
    """The host end of a VPC's uplink (15 characters, the kernel's limit)."""
    return f"{host_link_prefix(tag)}{_digest(vpc_id)[:9]}"


def router_port(instance_id: str) -> str:
    """The router's end of an instance's veth, inside the VPC's router namespace."""
    return f"p{_digest(instance_id)[:12]}"


def check_id(value: str, what: str) -> str:
    if not _ID.match(value):
        raise InvalidInput(f"invalid {what} {value!r}")
    return value


def network(cidr: str, what: str = "CIDR") -> ipaddress.IPv4Network:
    try:
        net = ipaddress.ip_network(cidr, strict=True)
    except ValueError:
        raise InvalidInput(f"invalid {what} {cidr!r}") from None
    if not isinstance(net, ipaddress.IPv4Network):
        raise InvalidInput(f"invalid {what} {cidr!r}: IPv4 only")
    if net.prefixlen > 28:
        raise InvalidInput(f"invalid {what} {cidr!r}: the smallest is a /28")
    return net


def address(text: str, what: str = "address") -> ipaddress.IPv4Address:
    try:
        value = ipaddress.ip_address(text)
    except ValueError:
        raise InvalidInput(f"invalid {what} {text!r}") from None
    if not isinstance(value, ipaddress.IPv4Address):
        raise InvalidInput(f"invalid {what} {text!r}: IPv4 only")
    return value


def gateway(subnet: ipaddress.IPv4Network) -> ipaddress.IPv4Address:
    """A subnet's router address: its first host (x.x.x.1 of a /24), as in AWS."""
    return subnet.network_address + 1


def check_private_ip(subnet: ipaddress.IPv4Network, ip: str) -> ipaddress.IPv4Address:
    value = address(ip, "private IP")
    reserved = {subnet.network_address, subnet.broadcast_address, gateway(subnet)}
    if value not in subnet or value in reserved:
        raise InvalidInput(f"private IP {ip} is not a usable address of subnet {subnet}")
    return value


def check_mac(mac: str) -> str:
    mac = mac.lower()
    if not _MAC.match(mac) or int(mac[:2], 16) & 1:
        raise InvalidInput(f"invalid MAC address {mac!r} (six bytes, unicast)")
    return mac


def check_public_ip(ip: str, pool: ipaddress.IPv4Network) -> ipaddress.IPv4Address:
    value = address(ip, "public IP")
    if value not in pool or value in (pool.network_address, pool.broadcast_address):
        raise InvalidInput(f"public IP {ip} is not in the public address pool {pool}")
    return value


def transit_candidates(pool: ipaddress.IPv4Network, used: Iterable[str]) -> Iterator[str]:
    """Free addresses of the transit pool, in order (the host's routing table has the last word:
    a candidate another process already routes is skipped by the caller)."""
    taken = set(used)
    for candidate in pool.hosts():
        text = str(candidate)
        if text not in taken:
            yield text
