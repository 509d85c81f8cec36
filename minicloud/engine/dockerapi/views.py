"""Engine objects rendered as the Docker Engine API's JSON documents (inspect, list, history)."""

from __future__ import annotations

import shlex
import time
from typing import Any

from minicloud.engine.containers.bundle import command
from minicloud.engine.containers.logs import timestamp
from minicloud.engine.containers.manager import ContainerManager
from minicloud.engine.containers.model import Container
from minicloud.engine.containers.state import Status
from minicloud.engine.dockerapi.http import HttpError
from minicloud.engine.images.reference import parse
from minicloud.engine.images.store import Image, ImageStore
from minicloud.engine.network.model import Endpoint, network_mode
from minicloud.engine.volumes.mounts import MountSpec


def human_duration(seconds: float) -> str:
    """Docker's ``units.HumanDuration``."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = s // 60
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = round(s / 3600)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{hours // 24 // 365} years"


def status_text(container: Container) -> str:
    state = container.state
    now = time.time()
    if state.status is Status.RUNNING:
        health = (container.health or {}).get("Status")
        shown = {"starting": " (health: starting)", "healthy": " (healthy)", "unhealthy": " (unhealthy)"}
        return f"Up {human_duration(now - timestamp(state.started_at))}{shown.get(health or '', '')}"
    if state.status is Status.PAUSED:
        return f"Up {human_duration(now - timestamp(state.started_at))} (Paused)"
    if state.status is Status.EXITED:
        return f"Exited ({state.exit_code}) {human_duration(now - timestamp(state.finished_at))} ago"
    if state.status is Status.CREATED:
        return "Created"
    if state.status is Status.REMOVING:
        return "Removal In Progress"
    return state.status.value.capitalize()


def _args(container: Container) -> list[str]:
    try:
        return command(container.config)
    except Exception:
        return []


def _networks(manager: ContainerManager, container: Container) -> dict[str, dict[str, Any]]:
    """Docker's ``NetworkSettings.Networks``: addresses shown while the container runs."""
    networks = manager.attachments.networks
    running = container.state.status in (Status.RUNNING, Status.PAUSED)
    kind, _ = network_mode(container.host_config)
    if kind in ("host", "none"):
        return {kind: {"IPAMConfig": None, "Links": None, "Aliases": None, "MacAddress": "", "DriverOpts": None,
                       "GwPriority": 0, "NetworkID": "", "EndpointID": "", "Gateway": "", "IPAddress": "",
                       "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
                       "DNSNames": None}}
    result = {}
    for network_id, raw in container.endpoints.items():
        network = networks.networks.get(network_id)
        if network is None:
            continue
        endpoint = Endpoint.from_json(raw)
        dns_names = [container.name, container.id[:12], *endpoint.aliases] if network.resolves_names else None
        result[network.name] = {
            "IPAMConfig": {"IPv4Address": endpoint.requested_ip} if endpoint.requested_ip else None,
            "Links": None, "Aliases": endpoint.aliases or None, "MacAddress": endpoint.mac if running else "",
            "DriverOpts": None, "GwPriority": 0, "NetworkID": network.id,
            "EndpointID": endpoint.endpoint_id if running else "", "Gateway": network.gateway if running else "",
            "IPAddress": endpoint.ip if running else "", "IPPrefixLen": network.prefixlen if running else 0,
            "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "DNSNames": dns_names}
    return result


def _ports(container: Container) -> dict[str, Any]:
    """Docker's ``NetworkSettings.Ports``: exposed ports, with their bindings while it runs."""
    ports: dict[str, Any] = {}
    for key in container.config.get("ExposedPorts") or {}:
        ports[key if "/" in key else f"{key}/tcp"] = None
    for key in container.host_config.get("PortBindings") or {}:
        ports.setdefault(key if "/" in key else f"{key}/tcp", None)
    ports.update(container.ports)
    return ports


def _mounts(manager: ContainerManager, container: Container) -> list[dict[str, Any]]:
    docs = []
    for raw in container.mounts:
        spec = MountSpec.from_json(raw)
        doc: dict[str, Any] = {"Type": spec.type, "Destination": spec.destination, "Mode": spec.mode,
                               "RW": not spec.readonly, "Propagation": "rprivate" if spec.type == "bind" else ""}
        if spec.type == "volume":
            doc.update(Name=spec.source, Source=str(manager.attachments.volumes.data(spec.source)), Driver="local")
        else:
            doc["Source"] = spec.source
        docs.append(doc)
    return docs


def _port_summary(container: Container) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for key, bindings in _ports(container).items():
        port, _, proto = key.partition("/")
        if not bindings:
            rows.append({"PrivatePort": int(port), "Type": proto})
        for binding in bindings or []:
            rows.append({"IP": binding["HostIp"], "PrivatePort": int(port), "PublicPort": int(binding["HostPort"]),
                         "Type": proto})
    return rows


def container_summary(manager: ContainerManager, container: Container) -> dict[str, Any]:
    args = _args(container)
    return {
        "Id": container.id, "Names": [f"/{container.name}"], "Image": container.image_name,
        "ImageID": container.image_id, "Command": " ".join(shlex.quote(a) if " " in a else a for a in args),
        "Created": int(timestamp(container.created)), "Ports": _port_summary(container),
        "Labels": container.config.get("Labels") or {},
        "State": container.state.status.value, "Status": status_text(container),
        "HostConfig": {"NetworkMode": container.host_config.get("NetworkMode") or "default"},
        "NetworkSettings": {"Networks": _networks(manager, container)}, "Mounts": _mounts(manager, container),
    }


def container_inspect(manager: ContainerManager, container: Container) -> dict[str, Any]:
    state = container.state
    files = manager.files(container)
    args = _args(container)
    snapshot_dir = str(manager.snapshots.fs_dir(container.id)) if manager.snapshots.exists(container.id) else ""
    return {
        "Id": container.id, "Created": container.created, "Path": args[0] if args else "",
        "Args": args[1:],
        "State": {"Status": state.status.value, "Running": state.status in (Status.RUNNING, Status.PAUSED),
                  "Paused": state.status is Status.PAUSED, "Restarting": state.status is Status.RESTARTING,
                  "OOMKilled": state.oom_killed, "Dead": state.status is Status.DEAD, "Pid": state.pid,
                  "ExitCode": state.exit_code, "Error": state.error, "StartedAt": state.started_at,
                  "FinishedAt": state.finished_at, **({"Health": container.health} if container.health else {})},
        "Image": container.image_id, "ResolvConfPath": str(files.dir / "resolv.conf"),
        "HostnamePath": str(files.dir / "hostname"), "HostsPath": str(files.dir / "hosts"),
        "LogPath": str(files.log), "Name": f"/{container.name}", "RestartCount": container.restart_count,
        "Driver": "overlay", "Platform": "linux", "MountLabel": "", "ProcessLabel": "", "AppArmorProfile": "",
        "ExecIDs": [e.id for e in _execs(manager, container)] or None,
        "HostConfig": host_config_view(container.host_config),
        "GraphDriver": {"Name": "overlay", "Data": {"UpperDir": snapshot_dir, "MergedDir": str(files.rootfs)}},
        "Mounts": _mounts(manager, container), "Config": {**container.config, "Image": container.image_name},
        "NetworkSettings": _network_settings(manager, container),
    }


def _network_settings(manager: ContainerManager, container: Container) -> dict[str, Any]:
    networks = _networks(manager, container)
    running = container.state.status in (Status.RUNNING, Status.PAUSED)
    netns = manager.attachments.networks.netns_dir / container.id
    settings: dict[str, Any] = {
        "Bridge": "", "SandboxID": container.id if running and container.endpoints else "",
        "SandboxKey": str(netns) if running and container.endpoints else "", "HairpinMode": False,
        "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0, "Ports": _ports(container),
        "SecondaryIPAddresses": None, "SecondaryIPv6Addresses": None, "EndpointID": "", "Gateway": "",
        "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "",
        "MacAddress": "", "Networks": networks,
    }
    default = networks.get("bridge")
    if default is not None:  # Docker repeats the default bridge's endpoint at the top level
        for key in ("EndpointID", "Gateway", "IPAddress", "IPPrefixLen", "MacAddress"):
            settings[key] = default[key]
    return settings


def _execs(manager: ContainerManager, container: Container) -> list[Any]:
    return []


def host_config_view(host: dict[str, Any]) -> dict[str, Any]:
    defaults: dict[str, Any] = {
        "NetworkMode": "default", "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
        "AutoRemove": False, "Memory": 0, "MemorySwap": 0, "NanoCpus": 0, "CpuShares": 0, "PidsLimit": None,
        "Privileged": False, "ReadonlyRootfs": False, "CapAdd": None, "CapDrop": None, "Binds": None,
        "PortBindings": {}, "LogConfig": {"Type": "json-file", "Config": {}},
    }
    return {**defaults, **{k: v for k, v in host.items() if v is not None}}


def image_created(images: ImageStore, image: Image) -> str:
    return str(images.config(image).get("created") or "")


def image_summary(images: ImageStore, image: Image, size: int | None = None) -> dict[str, Any]:
    config = images.config(image)
    created = config.get("created")
    return {
        "Id": image.id, "ParentId": "", "RepoTags": [parse(t).familiar() for t in image.repo_tags],
        "RepoDigests": [_familiar_digest(d) for d in image.repo_digests],
        "Created": int(timestamp(created)) if created else 0, "Size": image.size if size is None else size,
        "SharedSize": -1,
        "Labels": (config.get("config") or {}).get("Labels") or {}, "Containers": -1,
    }


def _familiar_digest(ref: str) -> str:
    try:
        return parse(ref).familiar()
    except Exception:
        return ref


def image_inspect(images: ImageStore, image: Image, size: int | None = None) -> dict[str, Any]:
    config = images.config(image)
    history = config.get("history") or []
    return {
        "Id": image.id, "RepoTags": [parse(t).familiar() for t in image.repo_tags],
        "RepoDigests": [_familiar_digest(d) for d in image.repo_digests], "Parent": "",
        "Comment": history[-1].get("comment", "") if history else "", "Created": config.get("created", ""),
        "DockerVersion": config.get("docker_version", ""), "Author": config.get("author", ""),
        "Config": config.get("config") or {}, "Architecture": config.get("architecture", "amd64"),
        "Os": config.get("os", "linux"), "Size": image.size if size is None else size,
        "GraphDriver": {"Name": "overlay", "Data": None},
        "RootFS": {"Type": "layers", "Layers": image.diff_ids},
        "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
    }


def image_history(images: ImageStore, image: Image) -> list[dict[str, Any]]:
    config = images.config(image)
    history = config.get("history") or [{} for _ in image.layers]
    layers = iter(image.layers)
    rows: list[dict[str, Any]] = []
    for entry in history:
        size = 0
        if not entry.get("empty_layer"):
            layer = next(layers, None)
            size = layer.size if layer else 0
        created = entry.get("created")
        rows.append({"Id": "<missing>", "Created": int(timestamp(created)) if created else 0,
                     "CreatedBy": entry.get("created_by", ""), "Tags": None, "Size": size,
                     "Comment": entry.get("comment", "")})
    rows.reverse()
    if rows:
        rows[0]["Id"] = image.id
        rows[0]["Tags"] = [parse(t).familiar() for t in image.repo_tags] or None
    return rows


def require_body(doc: Any) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise HttpError(400, "request body must be a JSON object")
    return doc
