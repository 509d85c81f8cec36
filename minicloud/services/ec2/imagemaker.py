"""CreateImage's second half, run by the instance controller: a ``pending`` AMI's source instance
container is committed (Engine.commit in the ``ec2`` namespace; a running one is paused meanwhile)
and pushed into minicloud's registry as ``ec2-images/<account>/<ami-id>:latest``; the AMI becomes
``available`` (or ``failed``, with its StateReason)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import sqlalchemy as sa

from minicloud.services.ec2 import store
from minicloud.services.ec2.store import Resource

if TYPE_CHECKING:
    from minicloud.runtime import Runtime

log = logging.getLogger("minicloud.ec2")

NAMESPACE = "ec2"


async def make_pending_images(runtime: Runtime) -> None:
    images = await runtime.db.read(lambda conn: store.select(conn, None, None, "image", states=["pending"]))
    for image in images:
        try:
            await make_image(runtime, image)
            change = _image_state("available", None)
        except Exception as exc:
            log.warning("image %s: %s", image.id, exc, exc_info=True)
            change = _image_state("failed", {"Code": "Client.InternalError",
                                             "Message": f"Client.InternalError: {exc}"})
        await runtime.db.write(_image_updater(image.id, change))


async def make_image(runtime: Runtime, image: Resource) -> None:
    """Commit the source instance's container and push it into minicloud's registry."""
    from minicloud.engine.images.push import Pusher
    from minicloud.engine.images.reference import parse

    engine = runtime.engine
    instance_id = image.doc["_source_instance"]
    container = engine.workloads.find(NAMESPACE, instance_id)
    if container is None:
        raise RuntimeError(f"instance {instance_id} has no root filesystem (it was never started)")
    reference = image.doc["_image"]
    await engine.commit(container.id, reference, namespace=NAMESPACE)
    pusher = Pusher(engine.content, engine.images, engine.puller.mirror, engine.puller.mirror_credentials)
    await pusher.push(parse(reference), None, lambda _progress: None)


def _image_state(state: str, reason: dict[str, str] | None) -> Callable[[Resource], None]:
    def change(image: Resource) -> None:
        image.state = state
        image.doc["State"] = state
        if reason:
            image.doc["StateReason"] = reason
    return change


def _image_updater(image_id: str, change: Callable[[Resource], None]) -> Callable[[sa.Connection], None]:
    def update(conn: sa.Connection) -> None:
        image = store.get(conn, image_id, kind="image")
        if image is not None and image.state == "pending":
            change(image)
            store.save(conn, image)
    return update
