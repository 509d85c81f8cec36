"""Security group rules: parsed from IpPermissions, kept one per peer in the group's document
(``_rules``), rendered back as IpPermissions (grouped as EC2 groups them) and as SecurityGroupRules.

A stored rule: {"id": "sgr-...", "egress": bool, "proto": "tcp"|"udp"|"icmp"|"-1"|"<number>",
"from": int, "to": int, "cidr": "0.0.0.0/0" | None, "group": "sg-..." | None, "owner": account, "desc": str}
"""

from __future__ import annotations

import ipaddress
from typing import Any

from minicloud.services.ec2.errors import InvalidParameterValue, InvalidPermissionMalformed
from minicloud.services.ec2.ids import new_id

Rule = dict[str, Any]

_PROTOCOLS = {"tcp": "tcp", "6": "tcp", "udp": "udp", "17": "udp", "icmp": "icmp", "1": "icmp",
              "-1": "-1", "all": "-1"}


def protocol(raw: Any) -> str:
    text = str(raw if raw is not None else "").lower()
    if text in _PROTOCOLS:
        return _PROTOCOLS[text]
    if text.isdigit() and 0 <= int(text) <= 255:
        return text
    raise InvalidParameterValue(f"Invalid value '{raw}' for IP protocol. Unknown protocol.")


def _ports(proto: str, permission: dict[str, Any]) -> tuple[int, int]:
    if proto in ("-1",) or (proto not in ("tcp", "udp", "icmp")):
        return -1, -1
    low, high = permission.get("FromPort"), permission.get("ToPort")
    if proto == "icmp":
        low = -1 if low is None else int(low)
        high = -1 if high is None else int(high)
        if not (-1 <= low <= 255 and -1 <= high <= 255):
            raise InvalidParameterValue(f"Invalid value '{low}' for ICMP type/code")
        return low, high
    if low is None or high is None:
        raise InvalidParameterValue("Invalid value 'Must specify both from and to ports with TCP/UDP.' "
                                    "for portRange.")
    low, high = int(low), int(high)
    if low == -1 and high == -1:
        return 0, 65535
    if not (0 <= low <= 65535 and 0 <= high <= 65535) or low > high:
        raise InvalidParameterValue(f"Invalid TCP/UDP port range {low}:{high}")
    return low, high


def parse(permissions: list[dict[str, Any]], *, egress: bool, account_id: str) -> list[Rule]:
    """IpPermissions as stored rules (without ids): one per CIDR and per referenced group."""
    rules: list[Rule] = []
    for permission in permissions:
        proto = protocol(permission.get("IpProtocol"))
        low, high = _ports(proto, permission)
        base = {"egress": egress, "proto": proto, "from": low, "to": high}
        peers = 0
        for ip_range in permission.get("IpRanges") or []:
            cidr = ip_range.get("CidrIp") or ""
            try:
                network = ipaddress.IPv4Network(cidr, strict=False)
            except ValueError:
                raise InvalidParameterValue(f"CIDR block {cidr} is malformed") from None
            rules.append({**base, "cidr": str(network), "group": None, "owner": account_id,
                          "desc": ip_range.get("Description") or ""})
            peers += 1
        for pair in permission.get("UserIdGroupPairs") or []:
            rules.append({**base, "cidr": None, "group": pair.get("GroupId") or None,
                          "group_name": pair.get("GroupName"), "owner": pair.get("UserId") or account_id,
                          "desc": pair.get("Description") or ""})
            peers += 1
        if permission.get("Ipv6Ranges") or permission.get("PrefixListIds"):
            raise InvalidParameterValue("minicloud's VPCs are IPv4 only: Ipv6Ranges and PrefixListIds are not "
                                        "supported")
        if not peers:
            raise InvalidPermissionMalformed("Invalid IpPermissions: no IP range or source security group")
    return rules


def same(a: Rule, b: Rule) -> bool:
    keys = ("egress", "proto", "from", "to", "cidr", "group")
    return all(a.get(k) == b.get(k) for k in keys)


def with_ids(rules: list[Rule]) -> list[Rule]:
    return [{**r, "id": new_id("security-group-rule")} for r in rules]


def describe_peer(rule: Rule) -> str:
    peer = rule["cidr"] or rule["group"]
    proto = {"-1": "ALL", "tcp": "TCP", "udp": "UDP", "icmp": "ICMP"}.get(rule["proto"], rule["proto"])
    return f'peer: {peer}, {proto}, from port: {rule["from"]}, to port: {rule["to"]}, ALLOW'


def ip_permissions(rules: list[Rule], *, egress: bool) -> list[dict[str, Any]]:
    """Stored rules as IpPermissions: one permission per protocol and port range."""
    grouped: dict[tuple[str, int, int], dict[str, Any]] = {}
    for rule in rules:
        if rule["egress"] != egress:
            continue
        key = (rule["proto"], rule["from"], rule["to"])
        permission = grouped.get(key)
        if permission is None:
            permission = grouped[key] = {"IpProtocol": rule["proto"], "IpRanges": [], "Ipv6Ranges": [],
                                         "PrefixListIds": [], "UserIdGroupPairs": []}
            if rule["proto"] in ("tcp", "udp", "icmp"):
                permission["FromPort"], permission["ToPort"] = rule["from"], rule["to"]
        if rule["cidr"]:
            ip_range = {"CidrIp": rule["cidr"]}
            if rule["desc"]:
                ip_range["Description"] = rule["desc"]
            permission["IpRanges"].append(ip_range)
        else:
            pair = {"GroupId": rule["group"], "UserId": rule["owner"]}
            if rule["desc"]:
                pair["Description"] = rule["desc"]
            permission["UserIdGroupPairs"].append(pair)
    return list(grouped.values())


def security_group_rule(rule: Rule, group_id: str, owner: str) -> dict[str, Any]:
    """DescribeSecurityGroupRules' SecurityGroupRule."""
    out: dict[str, Any] = {"SecurityGroupRuleId": rule["id"], "GroupId": group_id, "GroupOwnerId": owner,
                           "IsEgress": rule["egress"], "IpProtocol": rule["proto"], "FromPort": rule["from"],
                           "ToPort": rule["to"], "Tags": rule.get("tags") or []}
    if rule["cidr"]:
        out["CidrIpv4"] = rule["cidr"]
    else:
        out["ReferencedGroupInfo"] = {"GroupId": rule["group"], "UserId": rule["owner"]}
    if rule["desc"]:
        out["Description"] = rule["desc"]
    return out
