"""Volume routes: create, list, inspect, remove, prune."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from minicloud.engine.containers.model import now_rfc3339
from minicloud.engine.dockerapi.http import Request, Response, json_response
from minicloud.engine.dockerapi.views import require_body
from minicloud.engine.errors import InvalidArgument
from minicloud.engine.volumes.store import Volume

if TYPE_CHECKING:
    from minicloud.engine.dockerapi.server import Route
    from minicloud.engine.service import Engine


def volume_doc(engine: Engine, volume: Volume) -> dict[str, Any]:
    return {"Name": volume.name, "Driver": volume.driver, "Mountpoint": str(engine.volumes.data(volume.name)),
            "CreatedAt": volume.created, "Labels": volume.labels or None, "Scope": "local",
            "Options": volume.options or None}


def _values(filters: dict[str, Any], name: str) -> list[str]:
    value = filters.get(name) or []
    return list(value.keys()) if isinstance(value, dict) else list(value)


def _matches(engine: Engine, volume: Volume, filters: dict[str, Any]) -> bool:
    if (names := _values(filters, "name")) and not any(n in volume.name for n in names):
        return False
    if (drivers := _values(filters, "driver")) and volume.driver not in drivers:
        return False
    if dangling := _values(filters, "dangling"):
        unused = not engine.containers.volume_users(volume.name)
        if (dangling[0] in ("true", "1")) != unused:
            return False
    for label in _values(filters, "label"):
        key, sep, value = label.partition("=")
        if key not in volume.labels or (sep and volume.labels[key] != value):
            return False
    return True


async def list_volumes(engine: Engine, request: Request) -> Response:
    filters = request.json_arg("filters") or {}
    docs = [volume_doc(engine, v) for v in sorted(engine.volumes.volumes.values(), key=lambda v: v.name)
            if _matches(engine, v, filters)]
    return json_response({"Volumes": docs, "Warnings": None})


async def create(engine: Engine, request: Request) -> Response:
    body = require_body(await request.json() or {})
    volume = await asyncio.to_thread(engine.volumes.create, body.get("Name") or None, now_rfc3339(),
                                     labels=body.get("Labels") or {}, driver=body.get("Driver") or "local",
                                     options=body.get("DriverOpts") or {})
    engine.events.publish("volume", "create", volume.name, {"driver": volume.driver})
    return json_response(volume_doc(engine, volume), 201)


async def inspect(engine: Engine, request: Request) -> Response:
    return json_response(volume_doc(engine, engine.volumes.get(request.params["name"])))


async def delete(engine: Engine, request: Request) -> Response:
    name = request.params["name"]
    await asyncio.to_thread(engine.volumes.remove, name, engine.containers.volume_users(name), request.flag("force"))
    engine.events.publish("volume", "destroy", name, {"driver": "local"})
    return Response(204)


async def prune(engine: Engine, request: Request) -> Response:
    """Unused anonymous volumes; all unused ones with the filter ``all=true`` (API 1.42 and later)."""
    filters = request.json_arg("filters") or {}
    if set(filters) - {"label", "all"}:
        raise InvalidArgument(f"invalid filter {sorted(set(filters) - {'label', 'all'})[0]!r}")
    everything = (_values(filters, "all") or ["false"])[0] in ("true", "1")
    deleted, reclaimed = [], 0
    for volume in list(engine.volumes.volumes.values()):
        if engine.containers.volume_users(volume.name) or (not everything and not volume.anonymous):
            continue
        if not _matches(engine, volume, {"label": filters.get("label") or []}):
            continue
        size = await asyncio.to_thread(engine.volumes.size, volume.name)
        await asyncio.to_thread(engine.volumes.remove, volume.name, [])
        deleted.append(volume.name)
        reclaimed += size
    return json_response({"VolumesDeleted": deleted or None, "SpaceReclaimed": reclaimed})


ROUTES: list[Route] = [
    ("GET", r"/volumes", list_volumes),
    ("POST", r"/volumes/create", create),
    ("POST", r"/volumes/prune", prune),
    ("GET", r"/volumes/(?P<name>[^/]+)", inspect),
    ("DELETE", r"/volumes/(?P<name>[^/]+)", delete),
]
