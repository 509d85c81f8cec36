"""The data plane's own nftables table in the host's namespace (the host's other tables are never
read or written), rendered as text for one ``nft -f`` transaction (pure; tested without root).

    output       (nat) a connection the host opens to a public IP (127.x.y.z, which the host's
                 ``local`` routing table would otherwise deliver to itself) is sent to the
                 public IP's transit address instead, which a /32 route of ours leads into the
                 VPC's uplink veth (route_localnet on that veth lets the 127/8 source leave)
    postrouting  (nat) such connections leave with the uplink's address (LINK_HOST) as source,
                 so that the router can answer and security groups see one host address
    input        nothing but replies comes in from an uplink
    forward      the host never routes anything into or out of an uplink (nothing reaches a VPC
                 from outside the machine, nothing leaves it)
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping


def ruleset(table: str, links: Iterable[str], public: Mapping[str, str]) -> str:
    """``public`` maps each public IP to its transit address."""
    names = sorted(set(links))
    elements = f" elements = {{ {', '.join(f'{chr(34)}{n}{chr(34)}' for n in names)} }}" if names else ""
    lines = [f"table inet {table}", f"delete table inet {table}", f"table inet {table} {{",
             f"  set links {{ type ifname;{elements} }}",
             "  chain output_nat {", "    type nat hook output priority -100; policy accept;"]
    if public:
        pairs = sorted(public.items(), key=lambda kv: ipaddress.IPv4Address(kv[0]))
        lines.append(f"    dnat ip to ip daddr map {{ {', '.join(f'{p} : {t}' for p, t in pairs)} }}")
    lines += ["  }",
              "  chain postrouting_nat {", "    type nat hook postrouting priority srcnat; policy accept;",
              "    oifname @links masquerade", "  }",
              "  chain input {", "    type filter hook input priority filter; policy accept;",
              "    iifname @links ct state established,related accept", "    iifname @links drop", "  }",
              "  chain forward {", "    type filter hook forward priority filter; policy accept;",
              "    iifname @links drop", "    oifname @links drop", "  }",
              "}"]
    return "\n".join(lines) + "\n"


def removal(table: str) -> str:
    """Delete the table if it is there (a no-op otherwise), in one transaction."""
    return f"table inet {table}\ndelete table inet {table}\n"
