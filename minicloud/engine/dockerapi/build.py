"""``POST /build``: Docker's classic builder (``DOCKER_BUILDKIT=0 docker build``, docker-py's build).

The context is spooled and unpacked first and the Dockerfile parsed before anything is
streamed, so that a syntax error is answered as dockerd answers it (HTTP 400, "dockerfile parse
error line N: ..."); the steps then stream as JSON messages and a failing step ends the stream
with ``errorDetail`` (the CLI prints it and exits with its code).
"""

from __future__ import annotations

import asyncio
import base64
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from minicloud.engine.build.builder import Builder, BuildOptions, plan
from minicloud.engine.build.context import read_dockerfile, unpack_context
from minicloud.engine.build.dockerfile import DockerfileError, parse
from minicloud.engine.build.errors import BuildError
from minicloud.engine.dockerapi.http import HttpError, Request, StreamResponse
from minicloud.engine.dockerapi.images import spool
from minicloud.engine.errors import InvalidArgument, NotImplementedYet
from minicloud.engine.images.reference import parse as parse_reference
from minicloud.engine.images.registry import Credentials

HEARTBEAT = 1.0  # seconds

if TYPE_CHECKING:
    from minicloud.engine.dockerapi.server import Route
    from minicloud.engine.service import Engine


def _line(doc: dict[str, Any]) -> bytes:
    return orjson.dumps(doc) + b"\r\n"


def registry_credentials(request: Request) -> dict[str, Credentials]:
    """``X-Registry-Config``: base64 JSON of registry -> {username, password} (the CLI's logins)."""
    raw = request.headers.get("x-registry-config", "")
    if not raw:
        return {}
    try:
        doc = orjson.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        return {}
    result: dict[str, Credentials] = {}
    for address, entry in (doc.items() if isinstance(doc, dict) else []):
        if isinstance(entry, dict) and entry.get("username"):
            host = str(address).split("://", 1)[-1].split("/", 1)[0]
            if host in ("index.docker.io", "registry-1.docker.io"):
                host = "docker.io"
            result[host] = Credentials(str(entry["username"]), str(entry.get("password") or ""))
    return result


def options(request: Request) -> BuildOptions:
    build_args = request.json_arg("buildargs") or {}
    labels = request.json_arg("labels") or {}
    if not isinstance(build_args, dict) or not isinstance(labels, dict):
        raise InvalidArgument("buildargs and labels must be JSON objects")
    return BuildOptions(
        tags=[parse_reference(t) for t in request.query.get("t") or [] if t],
        build_args={str(k): None if v is None else str(v) for k, v in build_args.items()},
        target=request.arg("target"), no_cache=request.flag("nocache"), remove=request.flag("rm", True),
        force_remove=request.flag("forcerm"), quiet=request.flag("q"), pull=request.flag("pull"),
        labels={str(k): str(v) for k, v in labels.items()}, network_mode=request.arg("networkmode"),
        credentials=registry_credentials(request), limits=limits(request))


def limits(request: Request) -> dict[str, int]:
    """``--memory``, ``--memory-swap``, ``--cpu-shares``, ``--cpu-period``/``--cpu-quota`` for RUN steps."""
    result: dict[str, int] = {}
    for arg, key in (("memory", "Memory"), ("memswap", "MemorySwap"), ("cpushares", "CpuShares")):
        value = request.int_arg(arg, 0) or 0
        if value:
            result[key] = value
    quota, period = request.int_arg("cpuquota", 0) or 0, request.int_arg("cpuperiod", 0) or 100_000
    if quota > 0:
        result["NanoCpus"] = quota * 1_000_000_000 // period
    return result


async def build(engine: Engine, request: Request) -> StreamResponse:
    if request.arg("remote"):
        raise NotImplementedYet("building from a remote context (a URL or a git repository) is not available in "
                                "minicloud's engine: send the context")
    if request.arg("version") == "2":
        raise NotImplementedYet("BuildKit is not available in minicloud's engine: build with DOCKER_BUILDKIT=0")
    if request.flag("squash"):
        raise InvalidArgument("squash is only supported with experimental mode")
    if request.arg("extrahosts"):
        raise NotImplementedYet("--add-host is not available for builds in minicloud's engine")
    if request.arg("platform") not in ("", "linux/amd64", "linux"):
        raise InvalidArgument(f"platform {request.arg('platform')} is not available: only linux/amd64 is")
    opts = options(request)
    context = engine.root / "build" / f"ctx-{uuid.uuid4().hex}"
    context.mkdir(parents=True)
    try:
        dockerfile = await _prepare(engine, request, context)
        plan(dockerfile, opts.target)
    except DockerfileError as exc:
        shutil.rmtree(context, ignore_errors=True)
        raise HttpError(400, str(exc)) from None
    except BaseException:
        shutil.rmtree(context, ignore_errors=True)
        raise
    queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
    builder = Builder(engine, context, opts, queue.put_nowait)
    task = asyncio.get_running_loop().create_task(builder.build(dockerfile))
    task.add_done_callback(lambda _: queue.put_nowait(None))

    async def body() -> AsyncIterator[bytes]:
        try:
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), HEARTBEAT)
                except TimeoutError:  # a quiet step: whitespace, which JSON readers skip, so that a
                    yield b"\n"  # client that went away is noticed (the write fails) and the build stops
                    continue
                if event is None:
                    break
                yield _line(event)
            exc = task.exception()
            if exc is not None:
                yield _line(_error(exc))
        finally:
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            await asyncio.to_thread(shutil.rmtree, context, True)

    return StreamResponse(body())


async def _prepare(engine: Engine, request: Request, context: Path) -> Any:
    spooled = await spool(request, engine.root)
    try:
        with open(spooled, "rb") as source:
            await asyncio.to_thread(unpack_context, source, context, request.arg("dockerfile") or "Dockerfile")
    finally:
        spooled.unlink(missing_ok=True)
    text = await asyncio.to_thread(read_dockerfile, context, request.arg("dockerfile") or "Dockerfile")
    return parse(text)


def _error(exc: BaseException) -> dict[str, Any]:
    message = str(exc)
    detail: dict[str, Any] = {"message": message}
    if isinstance(exc, BuildError) and exc.code != 1:
        detail["code"] = exc.code
    return {"errorDetail": detail, "error": message}


ROUTES: list[Route] = [
    ("POST", r"/build", build),
]
