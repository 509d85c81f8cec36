"""Network records (``<engine>/networks/<id>.json``, written atomically) and endpoints (kept in
the container's record, one per network it is connected to, with its address: the allocations).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from minicloud.engine.errors import InvalidArgument
from minicloud.storage.durable import replace_file

DEFAULT_BRIDGE = "bridge"
PREDEFINED = ("bridge", "host", "none")


@dataclass(slots=True)
class Network:
    id: str
    name: str
    subnet: str
    gateway: str
    created: str
    driver: str = "bridge"
    ip_range: str = ""
    internal: bool = False
    attachable: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    user_subnet: bool = False  # the subnet was given by the user (required for --ip, as in Docker)

    @property
    def builtin(self) -> bool:
        return self.name == DEFAULT_BRIDGE

    @property
    def resolves_names(self) -> bool:
        """Docker resolves container names on user-defined networks only."""
        return not self.builtin

    @property
    def bridge(self) -> str:
        """The bridge's interface name in the engine's namespace (at most 15 characters)."""
        return f"mcb-{self.id[:11]}"

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.subnet)

    @property
    def prefixlen(self) -> int:
        return self.network.prefixlen

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Network:
        known = {k: v for k, v in raw.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass(slots=True)
class Endpoint:
    """One container's attachment to one network."""

    network_id: str
    endpoint_id: str
    ip: str
    mac: str
    ifname: str  # inside the container: eth0, eth1, ...
    aliases: list[str] = field(default_factory=list)
    requested_ip: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Endpoint:
        known = {k: v for k, v in raw.items() if k in cls.__dataclass_fields__}
        return cls(**known)


class NetworkStore:
    """Network records on disk, one JSON file each."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def load(self) -> list[Network]:
        networks = []
        for path in sorted(self.root.glob("*.json")):
            with contextlib.suppress(OSError, ValueError, TypeError):
                networks.append(Network.from_json(json.loads(path.read_text())))
        return networks

    def save(self, network: Network) -> None:
        replace_file(self.root / f"{network.id}.json", json.dumps(network.to_json()).encode())

    def delete(self, network: Network) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.root / f"{network.id}.json").unlink()


def validate_name(name: str) -> str:
    import re

    if not re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*", name or ""):
        raise InvalidArgument(f"invalid network name {name!r}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    return name


def network_mode_is_path(host_config: dict[str, Any]) -> bool:
    return str(host_config.get("NetworkMode") or "").startswith("ns:")


def network_mode(host_config: dict[str, Any]) -> tuple[str, str]:
    """``(kind, target)``: ``("bridge", network)``, ``("none", "")``, ``("host", "")`` or
    ``("container", container reference)``."""
    mode = str(host_config.get("NetworkMode") or "default")
    if mode in ("default", DEFAULT_BRIDGE):
        return "bridge", DEFAULT_BRIDGE
    if mode in ("none", "host"):
        return mode, ""
    if mode.startswith("ns:"):  # a network namespace made by a minicloud service (EC2's VPCs)
        return "ns", mode.split(":", 1)[1]
    if mode.startswith("container:"):
        target = mode.split(":", 1)[1]
        if not target:
            raise InvalidArgument("invalid network mode: container: needs a container name or id")
        return "container", target
    return "bridge", mode
