"""EC2 resource ids as AWS makes them: a prefix and 17 hex digits (``vpc-0a1b2c3d4e5f67890``)."""

from __future__ import annotations

import hashlib
import re
import secrets

PREFIXES = {
    "vpc": "vpc", "subnet": "subnet", "route-table": "rtb", "internet-gateway": "igw",
    "security-group": "sg", "network-acl": "acl", "key-pair": "key", "image": "ami", "instance": "i",
    "reservation": "r", "address": "eipalloc", "association": "eipassoc", "rtb-association": "rtbassoc",
    "igw-attachment": "igw-attach", "security-group-rule": "sgr", "dhcp-options": "dopt",
    "network-interface": "eni", "cidr-association": "vpc-cidr-assoc", "subnet-cidr": "subnet-cidr-assoc",
    "acl-association": "aclassoc", "volume": "vol",
}

_ID = re.compile(r"^[a-z]+(?:-[a-z]+)*-[0-9a-f]{8}(?:[0-9a-f]{9})?$")


def new_id(kind: str) -> str:
    return f"{PREFIXES[kind]}-{secrets.token_hex(9)[:17]}"


def stable_id(kind: str, *seed: str) -> str:
    """An id that is always the same for the same seed (the public AMIs of minicloud's images)."""
    digest = hashlib.sha256("\0".join(seed).encode()).hexdigest()
    return f"{PREFIXES[kind]}-{digest[:17]}"


def well_formed(resource_id: str, kind: str) -> bool:
    return resource_id.startswith(PREFIXES[kind] + "-") and bool(_ID.match(resource_id))
