"""Image routes: create (pull or import), list, inspect, history, tag, delete, load, get (save)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from minicloud.engine.build.cache import BuildCache
from minicloud.engine.dockerapi.http import HttpError, Request, Response, StreamResponse, json_response
from minicloud.engine.dockerapi.views import image_history, image_inspect, image_summary
from minicloud.engine.errors import Conflict, EngineError, InvalidArgument
from minicloud.engine.images import archive
from minicloud.engine.images.push import Pusher
from minicloud.engine.images.reference import DEFAULT_DOMAIN, Reference, looks_like_id, parse
from minicloud.engine.images.registry import Credentials, RegistryClient, endpoint_for

if TYPE_CHECKING:
    from minicloud.engine.dockerapi.server import Route
    from minicloud.engine.service import Engine


def credentials(request: Request) -> Credentials | None:
    raw = request.headers.get("x-registry-auth", "")
    if not raw:
        return None
    try:
        doc = orjson.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        return None
    if not isinstance(doc, dict) or not doc.get("username"):
        return None
    return Credentials(str(doc["username"]), str(doc.get("password") or ""))


def _line(doc: dict[str, Any]) -> bytes:
    return orjson.dumps(doc) + b"\r\n"


async def spool(request: Request, directory: Path) -> Path:
    """The request body in a temporary file (tar handling is blocking and wants a seekable file)."""
    fd, name = tempfile.mkstemp(dir=directory, prefix="upload-")
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as f:
            async for chunk in request.chunks():
                await asyncio.to_thread(f.write, chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


async def create(engine: Engine, request: Request) -> StreamResponse:
    if request.arg("fromSrc"):
        return await _import(engine, request)
    name = request.arg("fromImage")
    if not name:
        raise HttpError(400, "fromImage or fromSrc is required")
    tag = request.arg("tag")
    if tag and ("@" in name or tag.startswith("sha256:")):
        name = f"{name}@{tag}" if tag.startswith("sha256:") else name
    elif tag:
        name = f"{name}:{tag}"
    ref = parse(name)
    if request.arg("platform") not in ("", "linux/amd64", "linux"):
        raise InvalidArgument(f"platform {request.arg('platform')} is not available: only linux/amd64 is")
    queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
    task = asyncio.get_running_loop().create_task(engine.puller.pull(ref, credentials(request), queue.put_nowait))
    task.add_done_callback(lambda _: queue.put_nowait(None))
    first = await queue.get()
    if first is None:
        exc = task.exception()
        if exc is not None:
            raise _pull_error(ref, exc)
    return StreamResponse(_progress(first, queue, task, ref))


def _pull_error(ref: Reference, exc: BaseException) -> BaseException:
    if isinstance(exc, EngineError) and exc.status == 404:
        return type(exc)(f"pull access denied for {ref.familiar_repository}, repository does not exist or "
                         f"may require 'docker login': {exc}")
    return exc


async def _progress(first: dict[str, Any] | None, queue: asyncio.Queue[dict[str, Any] | None],
                    task: asyncio.Task[Any], ref: Reference) -> AsyncIterator[bytes]:
    try:
        event = first
        while event is not None:
            yield _line(event)
            event = await queue.get()
        exc = task.exception()
        if exc is not None:
            message = str(_pull_error(ref, exc))
            yield _line({"errorDetail": {"message": message}, "error": message})
    finally:
        if not task.done():
            task.cancel()


async def _import(engine: Engine, request: Request) -> StreamResponse:
    if request.arg("fromSrc") != "-":
        raise InvalidArgument("importing from a URL is not available: send the tarball in the request body")
    repo = request.arg("repo")
    tags: list[Reference] = []
    if repo:
        tag = request.arg("tag")
        tags.append(parse(f"{repo}:{tag}" if tag else repo))
    changes = request.query.get("changes") or []
    path = await spool(request, engine.root)
    try:
        with open(path, "rb") as source:
            image = await asyncio.to_thread(archive.import_rootfs, engine.content, engine.images, source, tags,
                                            changes, request.arg("message"))
    finally:
        path.unlink(missing_ok=True)
    await engine.unpacker.unpack([layer.digest for layer in image.layers], image.diff_ids)
    engine.events.publish("image", "import", image.id)

    async def body() -> AsyncIterator[bytes]:
        yield _line({"status": image.id})

    return StreamResponse(body())


async def push(engine: Engine, request: Request) -> StreamResponse:
    """``docker push``: the progress stream of ``images.push``; failures end it as ``errorDetail``."""
    name = request.params["name"]
    tag_name = request.arg("tag")
    ref = parse(f"{name}:{tag_name}" if tag_name else name, default_tag=False)
    pusher = Pusher(engine.content, engine.images, engine.puller.mirror, engine.puller.mirror_credentials)
    pusher.tags_to_push(ref)  # a missing image is refused with 404 before the stream starts
    queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
    task = asyncio.get_running_loop().create_task(pusher.push(ref, credentials(request), queue.put_nowait))
    task.add_done_callback(lambda _: queue.put_nowait(None))

    async def body() -> AsyncIterator[bytes]:
        try:
            while (event := await queue.get()) is not None:
                yield _line(event)
            exc = task.exception()
            if exc is not None:
                yield _line({"errorDetail": {"message": str(exc)}, "error": str(exc)})
            else:
                engine.events.publish("image", "push", ref.familiar())
        finally:
            if not task.done():
                task.cancel()

    return StreamResponse(body())


async def login(engine: Engine, request: Request) -> Response:
    """``docker login``: the credentials are checked against the registry (the CLI keeps them)."""
    doc = await request.json()
    if not isinstance(doc, dict) or not doc.get("username"):
        raise InvalidArgument("username and password are required to log in")
    address = str(doc.get("serveraddress") or DEFAULT_DOMAIN)
    host = address.split("://", 1)[-1].split("/", 1)[0]
    if host in ("index.docker.io", "registry-1.docker.io", ""):
        host = DEFAULT_DOMAIN
    base = endpoint_for(Reference(host, "library/x"), engine.puller.mirror)
    client = RegistryClient(base, "", Credentials(str(doc["username"]), str(doc.get("password") or "")))
    await asyncio.to_thread(client.check_login)
    return json_response({"Status": "Login Succeeded", "IdentityToken": ""})


async def list_images(engine: Engine, request: Request) -> Response:
    filters = request.json_arg("filters") or {}
    images = engine.images.list()
    references = _filter_values(filters, "reference")
    dangling = _filter_values(filters, "dangling")
    hidden = set() if request.flag("all") else BuildCache(engine.root / "build").parents()
    docs = []
    for image in images:
        if image.id in hidden and not image.repo_tags:
            continue
        if dangling and ("true" in dangling) == bool(image.repo_tags):
            continue
        if references and not any(_matches_reference(t, r) for t in image.repo_tags for r in references):
            continue
        docs.append(image_summary(engine.images, image, engine.unpacker.unpacked_size(image.diff_ids)))
    docs.sort(key=lambda d: d["Created"], reverse=True)
    return json_response(docs)


def _filter_values(filters: dict[str, Any], name: str) -> list[str]:
    value = filters.get(name) or []
    return list(value.keys()) if isinstance(value, dict) else list(value)


def _matches_reference(tag: str, pattern: str) -> bool:
    import fnmatch

    familiar = parse(tag).familiar()
    repo = familiar.rsplit(":", 1)[0]
    return fnmatch.fnmatch(familiar, pattern) or fnmatch.fnmatch(repo, pattern)


async def inspect(engine: Engine, request: Request) -> Response:
    image = engine.images.resolve(request.params["name"])
    return json_response(image_inspect(engine.images, image, engine.unpacker.unpacked_size(image.diff_ids)))


async def history(engine: Engine, request: Request) -> Response:
    image = engine.images.resolve(request.params["name"])
    return json_response(image_history(engine.images, image))


async def tag(engine: Engine, request: Request) -> Response:
    image = engine.images.resolve(request.params["name"])
    repo = request.arg("repo")
    if not repo:
        raise InvalidArgument("repository name (repo) is required")
    tag_name = request.arg("tag")
    ref = parse(f"{repo}:{tag_name}" if tag_name else repo)
    if ref.digest:
        raise InvalidArgument("refusing to create a tag with a digest reference")
    engine.images.tag(image, ref)
    engine.events.publish("image", "tag", image.id, {"name": ref.familiar()})
    return Response(201, b"")


async def delete(engine: Engine, request: Request) -> Response:
    name = request.params["name"]
    force = request.flag("force")
    image = engine.images.resolve(name)
    users = [c for c in engine.containers.containers.values() if c.image_id == image.id]
    ref = None if looks_like_id(name) else _tag_of(name)
    if ref is not None and str(ref) in image.repo_tags:
        if len(image.repo_tags) > 1:
            engine.images.untag(ref)
            engine.events.publish("image", "untag", image.id)
            return json_response([{"Untagged": ref.familiar()}])
        if users and not force:
            raise Conflict(f'conflict: unable to remove repository reference "{name}" (must force) - container '
                           f"{users[0].id[:12]} is using its referenced image {image.id[7:19]}")
    else:
        if len(image.repo_tags) > 1 and not force:
            raise Conflict(f"conflict: unable to delete {image.id[7:19]} (must be forced) - image is referenced "
                           "in multiple repositories")
        if users and not force:
            raise Conflict(f"conflict: unable to delete {image.id[7:19]} (must be forced) - image is being used "
                           f"by stopped container {users[0].id[:12]}")
    deleted = [{"Untagged": parse(t).familiar()} for t in image.repo_tags]
    deleted += [{"Untagged": parse(d).familiar()} for d in image.repo_digests]
    if users:  # forced: the image stays (untagged) for the containers that use it
        for tag_name in list(image.repo_tags):
            engine.images.untag(parse(tag_name))
    else:
        engine.images.remove(image, force=True)
        deleted.append({"Deleted": image.id})
        await engine.containers.settled()  # removed containers' layers stack on the image's until deleted
        await asyncio.to_thread(_collect, engine)
    engine.events.publish("image", "delete", image.id)
    return json_response(deleted)


def _tag_of(name: str) -> Reference | None:
    try:
        return parse(name)
    except InvalidArgument:
        return None


def _collect(engine: Engine) -> None:
    """Remove blobs and layer snapshots that no image and no container uses any more."""
    from minicloud.engine.snapshots.unpack import chain_ids

    referenced = engine.images.referenced_blobs()
    for info in list(engine.content.walk()):
        if str(info.digest) not in referenced:
            with contextlib.suppress(EngineError):
                engine.content.delete(info.digest)
    chains: set[str] = set()
    for image in engine.images.list():
        chains.update(chain_ids(image.diff_ids))
    progress = True
    while progress:  # children first: a parent goes once nothing stacks on it
        progress = False
        for key in engine.snapshots.list_keys():
            if key.startswith("sha256:") and key not in chains and not engine.snapshots.children(key):
                with contextlib.suppress(EngineError):
                    engine.snapshots.remove(key)
                    progress = True


async def load(engine: Engine, request: Request) -> StreamResponse:
    path = await spool(request, engine.root)
    try:
        with open(path, "rb") as source:
            loaded = await asyncio.to_thread(archive.load_archive, engine.content, engine.images, source)
    finally:
        path.unlink(missing_ok=True)
    lines = []
    for line, image in loaded:
        await engine.unpacker.unpack([layer.digest for layer in image.layers], image.diff_ids)
        engine.events.publish("image", "load", image.id)
        lines.append(line)

    async def body() -> AsyncIterator[bytes]:  # quiet=1 only silences progress, which there is none of
        for line in lines:
            yield _line({"stream": line + "\n"})

    return StreamResponse(body())


async def save(engine: Engine, request: Request) -> StreamResponse:
    names = request.query.get("names") or []
    if not names and "name" in request.params:
        names = [request.params["name"]]
    selected: dict[str, tuple[Any, list[str]]] = {}
    for name in names:
        image = engine.images.resolve(name)
        entry = selected.setdefault(image.id, (image, []))
        if not looks_like_id(name) and not name.startswith("sha256:"):
            ref = parse(name)
            if str(ref) in image.repo_tags:
                entry[1].append(str(ref))
    fd, tmp = tempfile.mkstemp(dir=engine.root, prefix="save-")
    os.close(fd)
    target = Path(tmp)
    try:
        await asyncio.to_thread(archive.save_archive, engine.content, list(selected.values()), target)
    except BaseException:
        target.unlink(missing_ok=True)
        raise

    async def body() -> AsyncIterator[bytes]:
        try:
            with open(target, "rb") as f:
                while chunk := await asyncio.to_thread(f.read, 1 << 20):
                    yield chunk
        finally:
            target.unlink(missing_ok=True)

    return StreamResponse(body(), content_type="application/x-tar")


ROUTES: list[Route] = [
    ("POST", r"/auth", login),
    ("POST", r"/images/create", create),
    ("GET", r"/images/json", list_images),
    ("POST", r"/images/load", load),
    ("GET", r"/images/get", save),
    ("GET", r"/images/(?P<name>.+)/get", save),
    ("GET", r"/images/(?P<name>.+)/json", inspect),
    ("GET", r"/images/(?P<name>.+)/history", history),
    ("POST", r"/images/(?P<name>.+)/tag", tag),
    ("POST", r"/images/(?P<name>.+)/push", push),
    ("DELETE", r"/images/(?P<name>.+)", delete),
]

