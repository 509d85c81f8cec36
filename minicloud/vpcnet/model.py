"""What the data plane is told: security groups (rules already expanded per protocol and range),
instance ports, and the errors it answers."""

from __future__ import annotations

from dataclasses import dataclass


class VpcNetError(Exception):
    """Base of the data plane's errors."""


class InvalidInput(VpcNetError):
    """A value the data plane cannot use (a malformed CIDR, MAC, identifier, port range...)."""


class NotFound(VpcNetError):
    """An unknown VPC, subnet or port."""


class Conflict(VpcNetError):
    """Something already taken: a public address mapped to another port, a CIDR in use..."""


@dataclass(frozen=True)
class Rule:
    """One security-group permission, already expanded to one protocol/range."""

    protocol: str  # "tcp" | "udp" | "icmp" | "all" (also EC2's numbers: "6", "17", "1", "-1", "47"...)
    from_port: int  # -1 for all (icmp: the type), as EC2 reports it
    to_port: int  # (icmp: the code)
    cidrs: tuple[str, ...] = ()  # IPv4 CIDRs
    peer_group_ids: tuple[str, ...] = ()  # source (ingress) / destination (egress) security groups


@dataclass(frozen=True)
class SecurityGroup:
    group_id: str
    vpc_id: str
    ingress: tuple[Rule, ...]
    egress: tuple[Rule, ...]


@dataclass(frozen=True)
class Port:
    """An instance's network interface."""

    instance_id: str
    vpc_id: str
    subnet_id: str
    subnet_cidr: str
    private_ip: str
    mac: str
    group_ids: tuple[str, ...]
    public_ip: str | None  # a 127.x.y.z host address, or None
