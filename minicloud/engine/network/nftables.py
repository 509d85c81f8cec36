"""The engine's own nftables table, loaded inside the engine's network namespace (the host's
ruleset is never read or written).

All bridges live in that namespace, where IP forwarding is off, so no packet is ever routed from
one network to another, nor anywhere else. The table says the same as policy, and closes the
namespace itself to containers: a container may only send DNS queries to its own network's
gateway (the engine's responder) and answer connections the engine opened (published ports).

Traffic between containers of one network is switched by its bridge and never reaches these
hooks (bridge-nf-call-iptables is off in the namespace).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

TABLE = "minicloud_engine"


@dataclass(frozen=True, slots=True)
class BridgeRule:
    bridge: str
    gateway: str


def ruleset(bridges: Iterable[BridgeRule]) -> str:
    """The whole table, replacing any previous one in a single transaction."""
    dns = []
    for b in sorted(bridges, key=lambda b: b.bridge):
        for proto in ("udp", "tcp"):
            dns.append(f'    iifname "{b.bridge}" ip daddr {b.gateway} {proto} dport 53 accept')
    lines = [
        f"table inet {TABLE}",
        f"delete table inet {TABLE}",
        f"table inet {TABLE} {{",
        "  chain input {",
        "    type filter hook input priority filter; policy drop;",
        '    iif "lo" accept',
        "    ct state established,related accept",
        *dns,
        "  }",
        "  chain forward {",
        "    type filter hook forward priority filter; policy drop;",
        "  }",
        "}",
    ]
    return "\n".join(lines) + "\n"
