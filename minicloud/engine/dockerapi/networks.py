"""Network routes: create, list, inspect, remove, connect, disconnect, prune. ``host`` and
``none`` are listed as Docker lists them; they are modes of a container, not bridges."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from minicloud.engine.containers.model import Container
from minicloud.engine.dockerapi.http import Request, Response, json_response
from minicloud.engine.dockerapi.views import require_body
from minicloud.engine.errors import Conflict, InvalidArgument, NotFound, NotImplementedYet
from minicloud.engine.network.model import Network, network_mode

if TYPE_CHECKING:
    from minicloud.engine.dockerapi.server import Route
    from minicloud.engine.service import Engine

# Docker's ids of the two mode networks are random per daemon; these are fixed per engine
_MODES = {"host": "host", "none": "null"}


def _mode_id(name: str) -> str:
    import hashlib

    return hashlib.sha256(f"minicloud-network-{name}".encode()).hexdigest()


def network_doc(engine: Engine, network: Network, verbose: bool = True) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "Name": network.name, "Id": network.id, "Created": network.created, "Scope": "local",
        "Driver": "bridge", "EnableIPv4": True, "EnableIPv6": False,
        "IPAM": {"Driver": "default", "Options": None,
                 "Config": [{"Subnet": network.subnet, "Gateway": network.gateway,
                             **({"IPRange": network.ip_range} if network.ip_range else {})}]},
        "Internal": network.internal, "Attachable": network.attachable, "Ingress": False,
        "ConfigFrom": {"Network": ""}, "ConfigOnly": False, "Options": network.options,
        "Labels": network.labels,
    }
    if verbose:
        doc["Containers"] = engine.networks.network_containers(network)
    return doc


def _mode_doc(name: str) -> dict[str, Any]:
    return {"Name": name, "Id": _mode_id(name), "Created": "0001-01-01T00:00:00Z", "Scope": "local",
            "Driver": _MODES[name], "EnableIPv4": True, "EnableIPv6": False,
            "IPAM": {"Driver": "default", "Options": None, "Config": None}, "Internal": False,
            "Attachable": False, "Ingress": False, "ConfigFrom": {"Network": ""}, "ConfigOnly": False,
            "Containers": {}, "Options": {}, "Labels": {}}


def _all_docs(engine: Engine) -> list[dict[str, Any]]:
    docs = [network_doc(engine, n) for n in engine.networks.networks.values()]
    return docs + [_mode_doc(name) for name in _MODES]


def _values(filters: dict[str, Any], name: str) -> list[str]:
    value = filters.get(name) or []
    return list(value.keys()) if isinstance(value, dict) else list(value)


def _matches(doc: dict[str, Any], filters: dict[str, Any]) -> bool:
    if (names := _values(filters, "name")) and not any(n in doc["Name"] for n in names):
        return False
    if (ids := _values(filters, "id")) and not any(doc["Id"].startswith(i) for i in ids):
        return False
    if (drivers := _values(filters, "driver")) and doc["Driver"] not in drivers:
        return False
    builtin = doc["Name"] in ("bridge", "host", "none")
    if (kinds := _values(filters, "type")) and ("builtin" if builtin else "custom") not in kinds:
        return False
    if dangling := _values(filters, "dangling"):
        unused = not doc.get("Containers")
        if (dangling[0] in ("true", "1")) != (unused and not builtin):
            return False
    for label in _values(filters, "label"):
        key, sep, value = label.partition("=")
        if key not in doc["Labels"] or (sep and doc["Labels"][key] != value):
            return False
    return True


async def list_networks(engine: Engine, request: Request) -> Response:
    filters = request.json_arg("filters") or {}
    return json_response([d for d in _all_docs(engine) if _matches(d, filters)])


def _find(engine: Engine, ref: str) -> dict[str, Any]:
    for name in _MODES:
        if ref in (name, _mode_id(name)) or (len(ref) >= 12 and _mode_id(name).startswith(ref)):
            return _mode_doc(name)
    return network_doc(engine, engine.networks.get(ref))


async def inspect(engine: Engine, request: Request) -> Response:
    return json_response(_find(engine, request.params["id"]))


async def create(engine: Engine, request: Request) -> Response:
    body = require_body(await request.json())
    driver = body.get("Driver") or "bridge"
    if driver != "bridge":
        raise NotImplementedYet(f"network driver {driver} is not available: minicloud's engine has bridge "
                                "networks (and the host and none modes)")
    if body.get("EnableIPv6"):
        raise NotImplementedYet("IPv6 networks are not available yet in minicloud's engine")
    if body.get("Internal") is False and body.get("ConfigOnly"):
        raise NotImplementedYet("config-only networks are not available in minicloud's engine")
    configs = (body.get("IPAM") or {}).get("Config") or []
    if len(configs) > 1:
        raise NotImplementedYet("one subnet per network in minicloud's engine")
    ipam = configs[0] if configs else {}
    network = await engine.networks.create(
        str(body.get("Name") or ""), subnet=ipam.get("Subnet"), gateway=ipam.get("Gateway"),
        ip_range=ipam.get("IPRange"), internal=bool(body.get("Internal")), attachable=bool(body.get("Attachable")),
        labels=body.get("Labels") or {}, options=body.get("Options") or {})
    engine.events.publish("network", "create", network.id, {"name": network.name, "type": "bridge"})
    return json_response({"Id": network.id, "Warning": ""}, 201)


async def delete(engine: Engine, request: Request) -> Response:
    network = await engine.networks.remove(request.params["id"])
    engine.events.publish("network", "destroy", network.id, {"name": network.name, "type": "bridge"})
    return Response(204)


def _bridged(container: Container) -> None:
    kind, _ = network_mode(container.host_config)
    if kind == "host":
        raise Conflict("container cannot be disconnected from host network or connected to host network")
    if kind != "bridge":
        raise Conflict("container sharing network namespace with another container or host cannot be "
                       "connected to any other network")


async def connect(engine: Engine, request: Request) -> Response:
    body = require_body(await request.json())
    container = engine.containers.get(str(body.get("Container") or ""))
    ref = request.params["id"]
    if ref in _MODES:
        raise Conflict(f"container cannot be disconnected from host network or connected to {ref} network")
    _bridged(container)
    network = engine.networks.get(ref)
    await engine.networks.connect(container.id, network.id, body.get("EndpointConfig") or {})
    container.endpoints = engine.networks.endpoints_json(container.id)
    await engine.containers.save(container)
    engine.events.publish("network", "connect", network.id, {"container": container.id, "name": network.name,
                                                             "type": "bridge"})
    return Response(200)


async def disconnect(engine: Engine, request: Request) -> Response:
    body = require_body(await request.json())
    ref = request.params["id"]
    if ref in _MODES:
        raise Conflict(f"container cannot be disconnected from {ref} network")
    container = engine.containers.get(str(body.get("Container") or ""))
    network = engine.networks.get(ref)
    await engine.networks.disconnect(container.id, network.id)
    container.endpoints = engine.networks.endpoints_json(container.id)
    await engine.containers.save(container)
    engine.events.publish("network", "disconnect", network.id, {"container": container.id,
                                                                "name": network.name, "type": "bridge"})
    return Response(200)


async def prune(engine: Engine, request: Request) -> Response:
    filters = request.json_arg("filters") or {}
    if set(filters) - {"label", "until"}:
        raise InvalidArgument(f"invalid filter {sorted(set(filters) - {'label', 'until'})[0]!r}")
    deleted = []
    for network in list(engine.networks.networks.values()):
        if network.builtin or engine.networks.users(network):
            continue
        if not _matches(network_doc(engine, network), {"label": filters.get("label") or []}):
            continue
        try:
            await engine.networks.remove(network.id)
        except (Conflict, NotFound):
            continue
        deleted.append(network.name)
    return json_response({"NetworksDeleted": deleted or None})


ROUTES: list[Route] = [
    ("GET", r"/networks", list_networks),
    ("POST", r"/networks/create", create),
    ("POST", r"/networks/prune", prune),
    ("GET", r"/networks/(?P<id>[^/]+)", inspect),
    ("DELETE", r"/networks/(?P<id>[^/]+)", delete),
    ("POST", r"/networks/(?P<id>[^/]+)/connect", connect),
    ("POST", r"/networks/(?P<id>[^/]+)/disconnect", disconnect),
]
