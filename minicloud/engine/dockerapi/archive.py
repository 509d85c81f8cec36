"""``docker cp`` both ways (``GET``/``HEAD``/``PUT /containers/{id}/archive``) and ``docker export``.

Paths are resolved as the container sees them: symbolic links are followed inside the container's
root (an absolute link starts again at the container's ``/``, ``..`` never leaves it), and a path
under a volume or bind mount is that mount's directory on the host. A running container's root
filesystem is its mounted rootfs; a stopped one's snapshot is mounted for the copy (under the
container's lock, so that a start waits). Archives are plain tar, as the docker CLI sends and reads.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import posixpath
import shutil
import stat
import tarfile
import tempfile
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING

import orjson

from minicloud.engine.containers.bundle import mount_rootfs
from minicloud.engine.containers.model import Container
from minicloud.engine.containers.state import Status
from minicloud.engine.dockerapi.http import Request, Response, StreamResponse
from minicloud.engine.errors import InvalidArgument, NotFound, NotImplementedYet
from minicloud.engine.snapshots.mounts import unmount

if TYPE_CHECKING:
    from minicloud.engine.dockerapi.server import Route
    from minicloud.engine.service import Engine

MAX_LINKS = 40
_GO_MODE_BITS = ((stat.S_ISDIR, 1 << 31), (stat.S_ISLNK, 1 << 27), (stat.S_ISBLK, 1 << 26),
                 (stat.S_ISCHR, (1 << 26) | (1 << 21)), (stat.S_ISFIFO, 1 << 25), (stat.S_ISSOCK, 1 << 24))


class ContainerView:
    """A container's file tree seen from the host: its root plus its volume and bind mounts."""

    def __init__(self, engine: Engine, container: Container) -> None:
        files = engine.containers.files(container)
        self.root = files.rootfs
        self.mounts: dict[str, Path | None] = {}  # destination -> host directory (None: tmpfs)
        for spec in container.mounts:
            kind, source = spec.get("type"), str(spec.get("source") or "")
            host = engine.volumes.data(source) if kind == "volume" else Path(source) if kind == "bind" else None
            self.mounts[str(spec["destination"])] = host
        for inside, host_file in (("/etc/hostname", files.dir / "hostname"), ("/etc/hosts", files.dir / "hosts"),
                                  ("/etc/resolv.conf", files.dir / "resolv.conf")):
            if host_file.exists():
                self.mounts[inside] = host_file

    def host_path(self, inside: str) -> Path:
        """Where the container's absolute, already resolved path ``inside`` is on the host."""
        best = max((d for d in self.mounts if inside == d or inside.startswith(d.rstrip("/") + "/")),
                   key=len, default=None)
        if best is None:
            return self.root / inside.lstrip("/")
        host = self.mounts[best]
        if host is None:
            raise NotImplementedYet(f"copying to or from a tmpfs mount ({best}) is not available yet in "
                                    "minicloud's engine")
        rest = inside[len(best):].lstrip("/")
        return host / rest if rest else host

    def resolve(self, path: str, follow_last: bool = True) -> str:
        """``path`` with every symbolic link resolved inside the container (the last one only when
        ``follow_last``): an absolute path that never leaves the container's root."""
        pending = [p for p in path.split("/") if p not in ("", ".")]
        done: list[str] = []
        links = 0
        while pending:
            part = pending.pop(0)
            if part == "..":
                if done:
                    done.pop()
                continue
            candidate = "/" + "/".join([*done, part])
            host = self.host_path(candidate)
            if (pending or follow_last) and os.path.islink(host):
                links += 1
                if links > MAX_LINKS:
                    raise InvalidArgument(f"too many levels of symbolic links: {path}")
                target = os.readlink(host)
                if target.startswith("/"):
                    done = []
                pending = [p for p in target.split("/") if p not in ("", ".")] + pending
                continue
            done.append(part)
        return "/" + "/".join(done)


@contextlib.asynccontextmanager
async def _quiet(engine: Engine, container: Container) -> AsyncIterator[None]:
    """No start, stop or exit's clean-up (the rootfs's unmount) in progress for the time of a copy."""
    handle = engine.containers.handle(container)
    async with handle.lock:
        await handle.cleaned()
        yield


@contextlib.contextmanager
def _mounted(engine: Engine, container: Container) -> Iterator[None]:
    """The container's root filesystem mounted for the time of a copy (already so while it runs)."""
    if container.state.status in (Status.RUNNING, Status.PAUSED):
        yield
        return
    files = engine.containers.files(container)
    mount_rootfs(files, engine.containers.snapshots.mounts(container.id))
    try:
        yield
    finally:
        unmount(files.rootfs)


def _stat_header(inside: str, host: Path) -> str:
    info = os.lstat(host)
    mode = stat.S_IMODE(info.st_mode)
    for test, bits in _GO_MODE_BITS:
        if test(info.st_mode):
            mode |= bits
            break
    mtime = datetime.fromtimestamp(info.st_mtime, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    doc = {"name": posixpath.basename(inside) or "/", "size": info.st_size, "mode": mode, "mtime": mtime,
           "linkTarget": os.readlink(host) if stat.S_ISLNK(info.st_mode) else ""}
    return base64.b64encode(orjson.dumps(doc)).decode()


def _locate(view: ContainerView, container: Container, path: str) -> tuple[str, Path]:
    if not path:
        raise InvalidArgument("path cannot be empty")
    # a trailing "/" or "/." asks for what a link points to; otherwise the link itself
    follow = path.endswith("/") or path.endswith("/.")
    inside = view.resolve(path, follow_last=follow)
    host = view.host_path(inside)
    if not os.path.lexists(host):
        raise NotFound(f"Could not find the file {path} in container {container.name}")
    if path.endswith("/") and not host.is_dir():
        raise InvalidArgument(f"not a directory: {path}")
    return inside, host


def _add(tar: tarfile.TarFile, view: ContainerView, inside: str, host: Path, arcname: str) -> None:
    """``host`` and, for a directory, what is under it (volumes mounted below are followed)."""
    tar.add(str(host), arcname=arcname, recursive=False)
    if host.is_dir() and not host.is_symlink():
        for entry in sorted(os.listdir(host)):
            child = posixpath.join(inside, entry)
            _add(tar, view, child, view.host_path(child), f"{arcname}/{entry}")


def _pack(engine: Engine, container: Container, path: str, out: IO[bytes]) -> str:
    with _mounted(engine, container):
        view = ContainerView(engine, container)
        inside, host = _locate(view, container, path)
        header = _stat_header(inside, host)
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            _add(tar, view, inside, host, posixpath.basename(inside) or ".")
    return header


async def get_archive(engine: Engine, request: Request) -> Response | StreamResponse:
    container = engine.containers.get(request.params["id"])
    path = request.arg("path")
    if request.method == "HEAD":
        async with _quiet(engine, container):
            header = await asyncio.to_thread(_head, engine, container, path)
        return Response(200, b"", headers=[("X-Docker-Container-Path-Stat", header)])
    spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed by the body
    try:
        async with _quiet(engine, container):
            header = await asyncio.to_thread(_pack, engine, container, path, spool)
    except BaseException:
        spool.close()
        raise

    return StreamResponse(_stream(spool), content_type="application/x-tar",
                          headers=[("X-Docker-Container-Path-Stat", header)])


def _head(engine: Engine, container: Container, path: str) -> str:
    with _mounted(engine, container):
        view = ContainerView(engine, container)
        inside, host = _locate(view, container, path)
        return _stat_header(inside, host)


def _extract(engine: Engine, container: Container, path: str, archive: IO[bytes], no_overwrite_dir: bool) -> None:
    with _mounted(engine, container):
        view = ContainerView(engine, container)
        inside, host = _locate(view, container, path)
        if not host.is_dir():
            raise InvalidArgument("extraction point is not a directory")
        with tarfile.open(fileobj=archive, mode="r:*") as tar:
            for member in tar:
                _extract_member(tar, view, inside, member, no_overwrite_dir)


def _extract_member(tar: tarfile.TarFile, view: ContainerView, base: str, member: tarfile.TarInfo,
                    no_overwrite_dir: bool) -> None:
    name = posixpath.normpath(member.name.lstrip("/"))
    if name in (".", ""):
        return
    parent = view.resolve(posixpath.join(base, posixpath.dirname(name)))
    inside = posixpath.join(parent, posixpath.basename(name))
    target = view.host_path(inside)
    existing = os.path.lexists(target)
    if existing and no_overwrite_dir and target.is_dir() != member.isdir():
        kind = "directory" if target.is_dir() else "non-directory"
        raise InvalidArgument(f"cannot overwrite {kind} {inside} with "
                              f"{'directory' if member.isdir() else 'non-directory'}")
    if existing and not (member.isdir() and target.is_dir()):
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        else:
            target.unlink()
    if member.islnk():
        source = view.host_path(view.resolve(posixpath.join(base, member.linkname.lstrip("/")), follow_last=False))
        os.link(source, target)
        return
    # the target was resolved inside the container above: extract as it is (modes, owners by number)
    member = member.replace(name=target.name, deep=False)
    tar.extract(member, path=str(target.parent), numeric_owner=True, filter="fully_trusted")


def _export(engine: Engine, container: Container, out: IO[bytes]) -> None:
    """The container's root filesystem (image and writable layer; volumes and binds are not part
    of it, as in Docker) as one tar."""
    with _mounted(engine, container):
        root = engine.containers.files(container).rootfs
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            for directory, dirs, files in os.walk(root):
                dirs.sort()
                for name in [*dirs, *sorted(files)]:
                    path = os.path.join(directory, name)
                    tar.add(path, arcname=os.path.relpath(path, root), recursive=False)


async def export(engine: Engine, request: Request) -> StreamResponse:
    """``docker export``."""
    container = engine.containers.get(request.params["id"])
    spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed by the body
    try:
        async with _quiet(engine, container):
            await asyncio.to_thread(_export, engine, container, spool)
    except BaseException:
        spool.close()
        raise
    return StreamResponse(_stream(spool), content_type="application/x-tar")


async def _stream(spool: IO[bytes]) -> AsyncIterator[bytes]:
    try:
        spool.seek(0)
        while chunk := await asyncio.to_thread(spool.read, 1 << 20):
            yield chunk
    finally:
        spool.close()


async def put_archive(engine: Engine, request: Request) -> Response:
    container = engine.containers.get(request.params["id"])
    path = request.arg("path")
    if container.host_config.get("ReadonlyRootfs"):
        raise InvalidArgument("container rootfs is marked read-only")
    spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed below
    try:
        async for chunk in request.chunks():
            await asyncio.to_thread(spool.write, chunk)
        spool.seek(0)
        async with _quiet(engine, container):
            await asyncio.to_thread(_extract, engine, container, path, spool, request.flag("noOverwriteDirNonDir"))
    except tarfile.TarError as exc:
        raise InvalidArgument(f"the archive cannot be extracted: {exc}") from None
    finally:
        spool.close()
    return Response(200)


ROUTES: list[Route] = [
    ("GET", r"/containers/(?P<id>[^/]+)/archive", get_archive),
    ("PUT", r"/containers/(?P<id>[^/]+)/archive", put_archive),
    ("GET", r"/containers/(?P<id>[^/]+)/export", export),
]
