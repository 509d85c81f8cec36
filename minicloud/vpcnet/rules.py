"""The nftables table inside a VPC's router namespace, rendered from the VPC's ports and security
groups as text for one ``nft -f`` transaction (pure; tested without root).

Every packet between two instances, or from the host to an instance, is forwarded by the router,
so two base chains on its forward hook enforce security groups, statefully (conntrack):

    egress   (priority -10) a NEW connection leaving an instance's port must match one egress rule
             of one of the port's groups, else it is dropped; traffic from the uplink passes on
    ingress  (priority 0, policy drop) a NEW connection arriving at an instance's port must match
             one ingress rule of one of its groups; anything else (the uplink: instances never
             open connections to the host) is dropped

Replies (established, related) pass both. Each group is a pair of chains (``gi<n>``, ``ge<n>``)
whose rules ``accept``; a port's chains jump to its groups' chains in turn. A group's members
(the private IPs of the ports naming it) are a set, used by rules that name the group as source
or destination. The input chain lets instances reach only the router's services (the instance
metadata service) and ping their gateway; the prerouting chain maps the transit addresses of
public IPs to private IPs.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from minicloud.vpcnet.addressing import UPLINK
from minicloud.vpcnet.model import InvalidInput, Rule, SecurityGroup

TABLE = "minicloud_vpc"
_PROTOCOL_NAMES = {"tcp": "tcp", "6": "tcp", "udp": "udp", "17": "udp", "icmp": "icmp", "1": "icmp",
                   "all": "all", "-1": "all"}
_IPV6_ONLY = {"icmpv6", "58"}
_COMMENT_SAFE = re.compile(r"^[A-Za-z0-9_.:/-]{1,100}$")


@dataclass(frozen=True, slots=True)
class PortView:
    """A port as the router sees it."""

    ifname: str
    private_ip: str
    group_ids: tuple[str, ...]
    transit_ip: str | None = None


@dataclass(frozen=True, slots=True)
class Service:
    """A socket of the router that instances may connect to (address, TCP port)."""

    address: str
    port: int


def protocol_match(rule: Rule) -> str | None:
    """The nft expression for a rule's protocol and ports ("" = any packet); None when the rule can
    never match an IPv4 packet (ICMPv6)."""
    proto = rule.protocol.strip().lower()
    if proto in _IPV6_ONLY:
        return None
    name = _PROTOCOL_NAMES.get(proto)
    if name is None:
        if proto.isdigit() and 0 <= int(proto) <= 255:
            return f"meta l4proto {int(proto)}"
        raise InvalidInput(f"invalid protocol {rule.protocol!r}")
    if name == "all":
        return ""
    if name == "icmp":
        return _icmp_match(rule.from_port, rule.to_port)
    return _port_match(name, rule.from_port, rule.to_port)


def _icmp_match(icmp_type: int, code: int) -> str:
    if not -1 <= icmp_type <= 255 or not -1 <= code <= 255:
        raise InvalidInput(f"invalid ICMP type/code {icmp_type}/{code}")
    if icmp_type == -1:
        return "meta l4proto icmp"
    return f"icmp type {icmp_type}" + ("" if code == -1 else f" icmp code {code}")


def _port_match(name: str, low: int, high: int) -> str:
    if low == -1 and high in (-1, 65535):
        return f"meta l4proto {name}"
    if not (0 <= low <= 65535 and 0 <= high <= 65535) or low > high:
        raise InvalidInput(f"invalid port range {low}-{high}")
    if low == 0 and high == 65535:
        return f"meta l4proto {name}"
    return f"{name} dport {low}" if low == high else f"{name} dport {low}-{high}"


def cidr_selector(cidrs: Iterable[str], field: str) -> str | None:
    """``ip saddr { ... }`` for CIDRs (merged, so that overlapping ones stay valid), "" for any
    address, None for no CIDR at all."""
    networks = []
    for cidr in cidrs:
        try:
            net = ipaddress.ip_network(cidr.strip(), strict=False)
        except ValueError:
            raise InvalidInput(f"invalid CIDR {cidr!r}") from None
        if isinstance(net, ipaddress.IPv4Network):
            networks.append(net)
    if not networks:
        return None
    merged = list(ipaddress.collapse_addresses(networks))
    if any(net.prefixlen == 0 for net in merged):
        return ""
    return f"ip {field} {{ {', '.join(str(net) for net in merged)} }}"


def compile_rule(rule: Rule, field: str, group_sets: Mapping[str, str]) -> list[str]:
    """The nft rules (each ending in ``accept``) for one permission; ``field`` is ``saddr`` for
    ingress (the peer is the source) and ``daddr`` for egress."""
    proto = protocol_match(rule)
    if proto is None:
        return []
    selectors = []
    by_cidr = cidr_selector(rule.cidrs, field)
    if by_cidr is not None:
        selectors.append(by_cidr)
    for group_id in sorted(set(rule.peer_group_ids)):
        selectors.append(f"ip {field} @{group_sets[group_id]}")
    lines = []
    for selector in selectors:
        match = " ".join(part for part in (selector, proto) if part)
        lines.append(f"{match} accept" if match else "accept")
    return lines


def _set_block(name: str, members: Iterable[str]) -> list[str]:
    elements = sorted(set(members), key=ipaddress.IPv4Address)
    body = f" elements = {{ {', '.join(elements)} }}" if elements else ""
    return [f"  set {name} {{ type ipv4_addr;{body} }}"]


def _comment(text: str) -> str:
    return f' comment "{text}"' if _COMMENT_SAFE.match(text) else ""


def ruleset(ports: Sequence[PortView], groups: Mapping[str, SecurityGroup], services: Iterable[Service],
            gateways: Iterable[str]) -> str:
    """The router's whole table, replacing the previous one in a single transaction."""
    ports = sorted(ports, key=lambda p: p.ifname)
    referenced = {g for p in ports for g in p.group_ids}
    peers = {g for sg in groups.values() for r in (*sg.ingress, *sg.egress) for g in r.peer_group_ids}
    group_index = {gid: n for n, gid in enumerate(sorted(referenced | peers))}
    group_sets = {gid: f"m{n}" for gid, n in group_index.items()}
    lines = [f"table inet {TABLE}", f"delete table inet {TABLE}", f"table inet {TABLE} {{"]
    for gid in sorted(peers):
        lines += _set_block(group_sets[gid], (p.private_ip for p in ports if gid in p.group_ids))
    lines += _nat_chains(ports)
    lines += _input_chain(services, gateways)
    lines += _forward_chains(ports, group_index)
    for gid in sorted(referenced):
        group = groups.get(gid)
        n = group_index[gid]
        for kind, field, rules in (("gi", "saddr", group.ingress if group else ()),
                                   ("ge", "daddr", group.egress if group else ())):
            lines.append(f"  chain {kind}{n} {{{_comment(gid)}")
            lines += [f"    {line}" for rule in rules for line in compile_rule(rule, field, group_sets)]
            lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _nat_chains(ports: Sequence[PortView]) -> list[str]:
    public = [f"{p.transit_ip} : {p.private_ip}" for p in ports if p.transit_ip]
    lines = ["  chain prerouting {", "    type nat hook prerouting priority dstnat; policy accept;"]
    if public:
        lines.append(f'    iifname "{UPLINK}" dnat ip to ip daddr map {{ {", ".join(public)} }}')
    return [*lines, "  }", "  chain postrouting {", "    type nat hook postrouting priority srcnat; policy accept;",
            "  }"]


def _input_chain(services: Iterable[Service], gateways: Iterable[str]) -> list[str]:
    lines = ["  chain input {", "    type filter hook input priority filter; policy drop;", '    iif "lo" accept',
             "    ct state invalid drop", "    ct state established,related accept"]
    for service in sorted(set(services), key=lambda s: (s.address, s.port)):
        lines.append(f'    iifname != "{UPLINK}" ip daddr {service.address} tcp dport {service.port} accept')
    addresses = sorted(set(gateways), key=ipaddress.IPv4Address)
    if addresses:
        lines.append(f'    iifname != "{UPLINK}" ip daddr {{ {", ".join(addresses)} }} icmp type echo-request accept')
    return [*lines, "  }"]


def _forward_chains(ports: Sequence[PortView], group_index: Mapping[str, int]) -> list[str]:
    """The two forward base chains; ports with the same groups share a pair of chains (``po``/``pi``
    + the number of their combination), so the table grows by a map element per port."""
    combos = {c: n for n, c in enumerate(dict.fromkeys(tuple(dict.fromkeys(p.group_ids)) for p in ports))}
    outs = [f'"{p.ifname}" : jump po{combos[tuple(dict.fromkeys(p.group_ids))]}' for p in ports]
    ins = [f'"{p.ifname}" : jump pi{combos[tuple(dict.fromkeys(p.group_ids))]}' for p in ports]
    lines = ["  chain egress {", "    type filter hook forward priority -10; policy accept;",
             "    ct state invalid drop", "    ct state established,related accept", f'    iifname "{UPLINK}" accept']
    if outs:
        lines.append(f"    iifname vmap {{ {', '.join(outs)} }}")
    lines += ["    drop", "  }", "  chain ingress {", "    type filter hook forward priority filter; policy drop;",
              "    ct state invalid drop", "    ct state established,related accept"]
    if ins:
        lines.append(f"    oifname vmap {{ {', '.join(ins)} }}")
    lines.append("  }")
    for combo, n in combos.items():
        known = [group_index[g] for g in combo]
        lines += [f"  chain po{n} {{", *[f"    jump ge{g}" for g in known], "    drop", "  }"]
        lines += [f"  chain pi{n} {{", *[f"    jump gi{g}" for g in known], "  }"]
    return lines
