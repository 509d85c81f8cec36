"""Container routes: create, list, inspect, start, stop, kill, wait, restart, pause, unpause, delete,
logs, resize."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import orjson

from minicloud.engine.containers import logs as logfile
from minicloud.engine.containers.model import Container
from minicloud.engine.containers.requests import parse_signal
from minicloud.engine.containers.state import Status
from minicloud.engine.dockerapi.http import HttpError, Request, Response, StreamResponse, json_response
from minicloud.engine.dockerapi.views import container_inspect, container_summary, require_body
from minicloud.engine.errors import Conflict, InvalidArgument

if TYPE_CHECKING:
    from minicloud.engine.dockerapi.server import Route
    from minicloud.engine.service import Engine


async def create(engine: Engine, request: Request) -> Response:
    body = require_body(await request.json())
    if request.arg("platform") not in ("", "linux/amd64", "linux"):
        raise InvalidArgument(f"platform {request.arg('platform')} is not available: only linux/amd64 is")
    container = await engine.containers.create(body, request.arg("name") or None)
    warnings: list[str] = []
    return json_response({"Id": container.id, "Warnings": warnings}, 201)


def _matches(engine: Engine, container: Container, filters: dict[str, Any]) -> bool:
    def values(name: str) -> list[str]:
        value = filters.get(name) or []
        return list(value.keys()) if isinstance(value, dict) else list(value)

    if (status := values("status")) and container.state.status.value not in status:
        return False
    if (names := values("name")) and not any(n.lstrip("/") in container.name for n in names):
        return False
    if (ids := values("id")) and not any(container.id.startswith(i) for i in ids):
        return False
    if (health := values("health")) and ((container.health or {}).get("Status") or "none") not in health:
        return False
    if (exited := values("exited")) and (container.state.status is not Status.EXITED or
                                         str(container.state.exit_code) not in exited):
        return False
    if networks := values("network"):
        joined = {engine.networks.networks[n].name for n in container.endpoints if n in engine.networks.networks}
        joined |= set(container.endpoints)
        if not any(n in joined or any(j.startswith(n) for j in container.endpoints) for n in networks):
            return False
    if volumes := values("volume"):
        mounted = {m.get("source") for m in container.mounts} | {m.get("destination") for m in container.mounts}
        if not any(v in mounted for v in volumes):
            return False
    labels = container.config.get("Labels") or {}
    for label in values("label"):
        key, sep, value = label.partition("=")
        if key not in labels or (sep and labels[key] != value):
            return False
    if ancestors := values("ancestor"):
        found = [engine.images.lookup(a) for a in ancestors]
        if not any(image is not None and image.id == container.image_id for image in found) and \
                container.image_name not in ancestors:
            return False
    return True


async def list_containers(engine: Engine, request: Request) -> Response:
    filters = request.json_arg("filters") or {}
    show_all = request.flag("all")
    containers = sorted(engine.containers.in_namespace(), key=lambda c: c.created, reverse=True)
    docs = [container_summary(engine.containers, c) for c in containers
            if (show_all or c.state.status in (Status.RUNNING, Status.PAUSED) or filters.get("status"))
            and _matches(engine, c, filters)]
    limit = request.int_arg("limit", -1) or -1
    if limit > 0:
        docs = docs[:limit]
    return json_response(docs)


async def inspect(engine: Engine, request: Request) -> Response:
    container = engine.containers.get(request.params["id"])
    return json_response(container_inspect(engine.containers, container))


async def start(engine: Engine, request: Request) -> Response:
    container = engine.containers.get(request.params["id"])
    size = container.host_config.get("ConsoleSize") or [0, 0]
    console = (int(size[0]), int(size[1])) if size and size[0] and size[1] else None
    await engine.containers.start(container.id, console)
    return Response(204)


async def stop(engine: Engine, request: Request) -> Response:
    timeout = request.int_arg("t")
    sig = request.arg("signal")
    await engine.containers.stop(request.params["id"], timeout, parse_signal(sig) if sig else None)
    return Response(204)


async def kill(engine: Engine, request: Request) -> Response:
    await engine.containers.kill(request.params["id"], parse_signal(request.arg("signal") or "SIGKILL"))
    return Response(204)


async def restart(engine: Engine, request: Request) -> Response:
    await engine.containers.restart(request.params["id"], request.int_arg("t"))
    return Response(204)


async def pause(engine: Engine, request: Request) -> Response:
    await engine.containers.pause(request.params["id"])
    return Response(204)


async def unpause(engine: Engine, request: Request) -> Response:
    await engine.containers.unpause(request.params["id"])
    return Response(204)


async def wait(engine: Engine, request: Request) -> StreamResponse:
    condition = request.arg("condition") or "not-running"
    if condition not in ("not-running", "next-exit", "removed"):
        raise InvalidArgument(f"invalid condition: {condition!r}")
    waiting = engine.containers.waiter(request.params["id"], condition)

    async def body() -> AsyncIterator[bytes]:
        try:
            yield b""  # the header goes out now: the client knows the wait is registered
            container = await waiting
        finally:
            waiting.close()
        yield orjson.dumps({"StatusCode": container.state.exit_code, "Error": None}) + b"\n"

    return StreamResponse(body())


async def delete(engine: Engine, request: Request) -> Response:
    if request.flag("link"):
        raise InvalidArgument("links are not available in minicloud's engine")
    await engine.containers.remove(request.params["id"], force=request.flag("force"), volumes=request.flag("v"))
    return Response(204)


async def logs(engine: Engine, request: Request) -> StreamResponse:
    container = engine.containers.get(request.params["id"])
    want_out, want_err = request.flag("stdout"), request.flag("stderr")
    if not (want_out or want_err):
        raise InvalidArgument("you must choose at least one stream")
    tail_arg = request.arg("tail", "all")
    tail = None if tail_arg in ("", "all") else int(tail_arg) if tail_arg.lstrip("-").isdigit() else None
    since = logfile.timestamp(request.arg("since")) if request.arg("since") not in ("", "0") else 0.0
    until = logfile.timestamp(request.arg("until")) if request.arg("until") not in ("", "0") else 0.0
    stamps, follow, tty = request.flag("timestamps"), request.flag("follow"), container.tty
    manager = engine.containers
    path = manager.files(container).log

    def keep(entry: logfile.Entry) -> bool:
        if (entry.stream == logfile.STDOUT and not want_out) or (entry.stream == logfile.STDERR and not want_err):
            return False
        when = logfile.timestamp(entry.time) if since or until else 0.0
        return not (since and when < since) and not (until and when > until)

    async def body() -> AsyncIterator[bytes]:
        entries, offset = logfile.read_entries(path, tail)
        for entry in entries:
            if keep(entry):
                yield logfile.render(entry, tty=tty, timestamps=stamps)
        if follow and container.state.status in (Status.RUNNING, Status.PAUSED):
            running = lambda: container.state.status in (Status.RUNNING, Status.PAUSED)  # noqa: E731
            async for entry in logfile.follow(path, offset, running, manager.handle(container).nap):
                if keep(entry):
                    yield logfile.render(entry, tty=tty, timestamps=stamps)

    content_type = "application/vnd.docker.raw-stream" if tty else "application/vnd.docker.multiplexed-stream"
    return StreamResponse(body(), content_type=content_type)


async def resize(engine: Engine, request: Request) -> Response:
    container = engine.containers.get(request.params["id"])
    height, width = request.int_arg("h", 0) or 0, request.int_arg("w", 0) or 0
    if container.state.status not in (Status.RUNNING, Status.PAUSED):
        if container.state.status is Status.CREATED:
            container.host_config["ConsoleSize"] = [height, width]
            return Response(200)
        raise Conflict(f"Container {container.id} is not running")
    if not container.tty:
        return Response(200)
    fifo = engine.containers.files(container).resize
    try:
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise HttpError(500, f"cannot resize the terminal: {exc}") from None
    with contextlib.closing(os.fdopen(fd, "wb", buffering=0)) as f:
        f.write(f"{height} {width}\n".encode())
    return Response(200)


async def commit(engine: Engine, request: Request) -> Response:
    """``docker commit``: the container's changes as a new image (``images/commit.py``)."""
    from minicloud.engine.images.commit import commit_container

    repo, tag = request.arg("repo"), request.arg("tag")
    body = await request.json()
    image = await commit_container(engine, request.arg("container"), f"{repo}:{tag}" if repo and tag else repo or None,
                                   request.query.get("changes") or [], message=request.arg("comment"),
                                   author=request.arg("author"), pause=request.flag("pause", True),
                                   config=body if isinstance(body, dict) else None)
    return json_response({"Id": image.id}, 201)


ROUTES: list[Route] = [
    ("POST", r"/containers/create", create),
    ("GET", r"/containers/json", list_containers),
    ("GET", r"/containers/(?P<id>[^/]+)/json", inspect),
    ("POST", r"/containers/(?P<id>[^/]+)/start", start),
    ("POST", r"/containers/(?P<id>[^/]+)/stop", stop),
    ("POST", r"/containers/(?P<id>[^/]+)/kill", kill),
    ("POST", r"/containers/(?P<id>[^/]+)/restart", restart),
    ("POST", r"/containers/(?P<id>[^/]+)/pause", pause),
    ("POST", r"/containers/(?P<id>[^/]+)/unpause", unpause),
    ("POST", r"/containers/(?P<id>[^/]+)/wait", wait),
    ("POST", r"/containers/(?P<id>[^/]+)/resize", resize),
    ("GET", r"/containers/(?P<id>[^/]+)/logs", logs),
    ("POST", r"/commit", commit),
    ("DELETE", r"/containers/(?P<id>[^/]+)", delete),
]
