"""``docker rename``, ``docker container prune``, ``docker image prune`` and ``docker system df``."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from minicloud.engine.containers.model import Container, name_key
from minicloud.engine.containers.state import Status
from minicloud.engine.dockerapi.event_filters import event_time
from minicloud.engine.dockerapi.http import Request, Response, json_response
from minicloud.engine.dockerapi.views import container_summary, image_summary
from minicloud.engine.errors import Conflict, InvalidArgument, NotFound
from minicloud.engine.images.reference import parse

if TYPE_CHECKING:
    from minicloud.engine.dockerapi.server import Route
    from minicloud.engine.images.store import Image
    from minicloud.engine.service import Engine

_STOPPED = (Status.CREATED, Status.EXITED, Status.DEAD)


async def rename(engine: Engine, request: Request) -> Response:
    manager = engine.containers
    container = manager.get(request.params["id"])
    new = request.arg("name").removeprefix("/")
    if not new:
        raise InvalidArgument("Neither old nor new names may be empty")
    if new == container.name:
        raise Conflict(f'Renaming a container with the same name as its current name: "{new}"')
    claimed = manager._claim_name(new)  # Docker's name rules and its "already in use" conflict
    old = container.name
    manager.names.pop(name_key(container.namespace, old), None)
    manager.names[name_key(container.namespace, claimed)] = container.id
    container.name = claimed
    member = engine.networks.members.get(container.id)
    if member is not None:  # network DNS answers to the new name from now on
        member.name = claimed
    await manager.save(container)
    engine.events.publish("container", "rename", container.id, {"name": claimed, "oldName": f"/{old}"})
    return Response(204)


def _label_filters(filters: dict[str, Any]) -> tuple[list[str], list[str]]:
    def values(name: str) -> list[str]:
        value = filters.get(name) or []
        return list(value.keys()) if isinstance(value, dict) else list(value)

    return values("label"), values("label!")


def _labels_match(labels: dict[str, str], wanted: list[str], unwanted: list[str]) -> bool:
    def has(item: str) -> bool:
        key, sep, value = item.partition("=")
        return key in labels and (not sep or labels[key] == value)

    return all(has(w) for w in wanted) and not any(has(u) for u in unwanted)


def _until(filters: dict[str, Any]) -> float | None:
    value = filters.get("until") or []
    raw = next(iter(value.keys() if isinstance(value, dict) else value), None)
    return event_time(raw) if raw else None


async def prune_containers(engine: Engine, request: Request) -> Response:
    from minicloud.engine.containers.logs import timestamp

    filters = request.json_arg("filters") or {}
    wanted, unwanted = _label_filters(filters)
    until = _until(filters)
    deleted: list[str] = []
    reclaimed = 0
    for container in list(engine.containers.in_namespace()):
        if container.state.status not in _STOPPED:
            continue
        if not _labels_match(container.config.get("Labels") or {}, wanted, unwanted):
            continue
        if until is not None and timestamp(container.created) > until:
            continue
        reclaimed += await asyncio.to_thread(_writable_size, engine, container)
        try:
            await engine.containers.remove(container.id)
        except (NotFound, Conflict):
            continue  # started or removed meanwhile
        deleted.append(container.id)
    engine.events.publish("container", "prune", "", {"reclaimed": str(reclaimed)})
    return json_response({"ContainersDeleted": deleted or None, "SpaceReclaimed": reclaimed})


def _writable_size(engine: Engine, container: Container) -> int:
    snapshots = engine.containers.snapshots
    return snapshots.usage(container.id) if snapshots.exists(container.id) else 0


def _images_in_use(engine: Engine) -> set[str]:
    return {c.image_id for c in engine.containers.containers.values()}  # every namespace's containers


async def prune_images(engine: Engine, request: Request) -> Response:
    from minicloud.engine.dockerapi.images import _collect

    filters = request.json_arg("filters") or {}
    dangling_values = filters.get("dangling") or {"true": True}
    dangling = next(iter(dangling_values.keys() if isinstance(dangling_values, dict) else dangling_values))
    if str(dangling).lower() not in ("true", "false", "1", "0"):
        raise InvalidArgument(f"invalid filter 'dangling={dangling}'")
    only_dangling = str(dangling).lower() in ("true", "1")
    wanted, unwanted = _label_filters(filters)
    until = _until(filters)
    in_use = _images_in_use(engine)
    deleted: list[dict[str, str]] = []
    reclaimed = 0
    for image in engine.images.list():
        if image.id in in_use or (only_dangling and image.repo_tags):
            continue
        config = engine.images.config(image)
        if not _labels_match((config.get("config") or {}).get("Labels") or {}, wanted, unwanted):
            continue
        if until is not None and image.added > until:
            continue
        deleted += [{"Untagged": parse(t).familiar()} for t in [*image.repo_tags, *image.repo_digests]]
        engine.images.remove(image, force=True)
        deleted.append({"Deleted": image.id})
        reclaimed += image.size
        engine.events.publish("image", "delete", image.id)
    if deleted:
        await engine.containers.settled()
        await asyncio.to_thread(_collect, engine)
    engine.events.publish("image", "prune", "", {"reclaimed": str(reclaimed)})
    return json_response({"ImagesDeleted": deleted or None, "SpaceReclaimed": reclaimed})


def _system_df(engine: Engine) -> dict[str, Any]:
    manager = engine.containers
    containers = manager.in_namespace()
    users: dict[str, int] = {}
    for container in containers:
        users[container.image_id] = users.get(container.image_id, 0) + 1
    layer_users: dict[str, int] = {}
    images: list[Image] = engine.images.list()
    for image in images:
        for layer in image.layers:
            layer_users[layer.digest] = layer_users.get(layer.digest, 0) + 1
    image_docs = []
    for image in images:
        doc = image_summary(engine.images, image)
        doc["Containers"] = users.get(image.id, 0)
        doc["SharedSize"] = sum(layer.size for layer in image.layers if layer_users[layer.digest] > 1)
        image_docs.append(doc)
    container_docs = []
    for container in containers:
        doc = container_summary(manager, container)
        doc["SizeRw"] = _writable_size(engine, container)
        doc["SizeRootFs"] = doc["SizeRw"] + sum(layer.size for image in images if image.id == container.image_id
                                                for layer in image.layers)
        container_docs.append(doc)
    volume_docs = []
    for volume in list(engine.volumes.volumes.values()):
        refs = len(manager.volume_users(volume.name))
        volume_docs.append({"Name": volume.name, "Driver": "local", "Mountpoint": str(engine.volumes.data(volume.name)),
                            "CreatedAt": volume.created, "Labels": volume.labels or {}, "Scope": "local",
                            "Options": volume.options or {},
                            "UsageData": {"Size": engine.volumes.size(volume.name), "RefCount": refs}})
    unique_layers = {layer.digest: layer.size for image in images for layer in image.layers}
    return {"LayersSize": sum(unique_layers.values()), "Images": image_docs, "Containers": container_docs,
            "Volumes": volume_docs, "BuildCache": []}


async def system_df(engine: Engine, request: Request) -> Response:
    return json_response(await asyncio.to_thread(_system_df, engine))


ROUTES: list[Route] = [
    ("POST", r"/containers/prune", prune_containers),
    ("POST", r"/containers/(?P<id>[^/]+)/rename", rename),
    ("POST", r"/images/prune", prune_images),
    ("GET", r"/system/df", system_df),
]
