"""Commit: a container's writable layer becomes an image layer (``docker commit``, each build step).

The overlayfs upper directory is written as a tar layer with its whiteouts converted to the OCI
layer format: a 0:0 character device ``NAME`` becomes an empty ``.wh.NAME``, a directory marked
``trusted.overlay.opaque=y`` gets a ``.wh..wh..opq`` entry. The mount points the runtime creates
(``/etc/hosts`` and friends, ``/proc``, ``/sys``, ``/dev`` when they were missing) are left out,
as Docker's init layer leaves them out. The layer is stored uncompressed (its digest is its diff
id); the new image's config is the parent's with the new configuration, diff id and history.
"""

from __future__ import annotations

import asyncio
import copy
import os
import stat
import tarfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

from minicloud.engine.content import ContentStore, Writer
from minicloud.engine.errors import Conflict
from minicloud.engine.images.archive import rfc3339, store_image
from minicloud.engine.images.reference import Reference
from minicloud.engine.images.store import MEDIA_LAYER_TAR, Image, ImageStore, Layer
from minicloud.engine.snapshots.overlay import OverlaySnapshotter
from minicloud.engine.snapshots.unpack import chain_ids

if TYPE_CHECKING:
    from minicloud.engine.service import Engine

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
# What the runtime makes in a container's root so that it can mount over it: never part of a layer.
RUNTIME_MOUNT_POINTS = frozenset({"proc", "sys", "dev", "etc/hosts", "etc/hostname", "etc/resolv.conf",
                                  ".dockerenv"})
_KEPT_XATTRS = ("security.capability", "user.")


def is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(0, 0)


def is_opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def _runtime_artifact(relative: str, path: str, st: os.stat_result) -> bool:
    if relative not in RUNTIME_MOUNT_POINTS:
        return False
    if stat.S_ISDIR(st.st_mode):
        return not os.listdir(path)
    return stat.S_ISREG(st.st_mode) and st.st_size == 0


def _entries(root: str) -> Iterator[tuple[str, str, os.stat_result]]:
    """Depth-first, sorted, parents before children."""
    def visit(relative_dir: str) -> Iterator[tuple[str, str, os.stat_result]]:
        directory = os.path.join(root, relative_dir) if relative_dir else root
        for name in sorted(os.listdir(directory)):
            relative = f"{relative_dir}/{name}" if relative_dir else name
            path = os.path.join(directory, name)
            st = os.lstat(path)
            yield relative, path, st
            if stat.S_ISDIR(st.st_mode):
                yield from visit(relative)

    return visit("")


def _xattrs(path: str) -> dict[str, str]:
    headers: dict[str, str] = {}
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return headers
    for name in names:
        if name.startswith(_KEPT_XATTRS):
            try:
                value = os.getxattr(path, name, follow_symlinks=False)
            except OSError:
                continue
            headers[f"SCHILY.xattr.{name}"] = value.decode("utf-8", "surrogateescape")
    return headers


def write_layer(upper: Path, out: IO[bytes], exclude: frozenset[str] = RUNTIME_MOUNT_POINTS) -> None:
    """Write the overlay upper directory ``upper`` to ``out`` as an OCI layer tarball."""
    root = str(upper)
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for relative, path, st in _entries(root):
            if relative in exclude and _runtime_artifact(relative, path, st):
                continue
            if is_whiteout(st):
                directory, name = os.path.split(relative)
                info = tarfile.TarInfo(os.path.join(directory, WHITEOUT_PREFIX + name))
                info.mtime = int(st.st_mtime)
                tar.addfile(info)
                continue
            info = tar.gettarinfo(path, arcname=relative)
            info.uname = info.gname = ""
            info.pax_headers = _xattrs(path)
            if info.isreg():
                with open(path, "rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)
            if info.isdir() and is_opaque(path):
                marker = tarfile.TarInfo(f"{relative}/{OPAQUE_MARKER}")
                marker.mtime = int(st.st_mtime)
                tar.addfile(marker)


def store_layer(content: ContentStore, upper: Path) -> Layer:
    """Blocking: the layer of ``upper`` in the content store (uncompressed: its digest is its diff id)."""
    writer = content.writer(f"commit:{upper}:{os.getpid()}:{os.urandom(8).hex()}")
    try:
        write_layer(upper, cast(IO[bytes], _WriterFile(writer)))
    except BaseException:
        writer.abort()
        raise
    info = writer.commit()
    return Layer(str(info.digest), info.size, MEDIA_LAYER_TAR)


def adopt_snapshot(snapshots: OverlaySnapshotter, key: str, parent_diff_ids: Sequence[str], layer: Layer) -> bool:
    """Blocking: make the active snapshot ``key`` (whose upper directory ``layer`` was written from)
    the committed snapshot of that layer, so that it need not be unpacked again; False when the
    layer's snapshot exists already (``key`` is then left to its owner)."""
    chain = chain_ids([*parent_diff_ids, layer.digest])[-1]
    if snapshots.exists(chain):
        return False
    upper = snapshots.fs_dir(key)
    for relative in sorted(RUNTIME_MOUNT_POINTS, reverse=True):  # as the layer leaves them out
        path = upper / relative
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue
        if _runtime_artifact(relative, str(path), st):
            path.rmdir() if stat.S_ISDIR(st.st_mode) else path.unlink()
    try:
        snapshots.commit(chain, key, layer.size)
    except Conflict:
        if snapshots.exists(chain):  # another build or a pull made the same layer meanwhile
            return False
        raise
    return True


class _WriterFile:
    """The content store's writer seen as a binary file by ``tarfile``."""

    def __init__(self, writer: Writer) -> None:
        self._writer = writer

    def write(self, data: bytes) -> int:
        self._writer.write(bytes(data))
        return len(data)

    def tell(self) -> int:
        return int(self._writer.offset)


@dataclass(frozen=True, slots=True)
class History:
    created_by: str
    comment: str = ""
    author: str = ""
    empty_layer: bool = False

    def to_json(self, created: str) -> dict[str, Any]:
        entry: dict[str, Any] = {"created": created, "created_by": self.created_by}
        if self.comment:
            entry["comment"] = self.comment
        if self.author:
            entry["author"] = self.author
        if self.empty_layer:
            entry["empty_layer"] = True
        return entry


def base_config(images: ImageStore, parent: Image | None) -> dict[str, Any]:
    """A copy of the parent's image config (or an empty one for ``FROM scratch``)."""
    if parent is None:
        return {"architecture": "amd64", "os": "linux", "config": {}, "rootfs": {"type": "layers", "diff_ids": []},
                "history": []}
    return copy.deepcopy(images.config(parent))


def derive_image(content: ContentStore, images: ImageStore, parent: Image | None, container_config: dict[str, Any],
                 layer: Layer | None, history: History, tags: Sequence[Reference] = (),
                 extra: dict[str, Any] | None = None) -> Image:
    """Blocking: the image made of ``parent`` plus ``layer`` (none: a metadata-only step) with
    ``container_config`` as its configuration."""
    config = base_config(images, parent)
    created = rfc3339()
    config["created"] = created
    config["config"] = {k: v for k, v in container_config.items() if v is not None}
    config.pop("container_config", None)
    config.pop("container", None)
    if extra:
        config.update(extra)
    if history.author:
        config["author"] = history.author
    layers = list(parent.layers) if parent is not None else []
    diff_ids = list((config.get("rootfs") or {}).get("diff_ids") or [])
    if layer is not None:
        layers.append(layer)
        diff_ids.append(layer.digest)
    config["rootfs"] = {"type": "layers", "diff_ids": diff_ids}
    config["history"] = [*(config.get("history") or []), history.to_json(created)]
    return store_image(content, images, config, layers, list(tags))


# What Docker's commit drops from the container's configuration (runtime-only settings).
_RUNTIME_KEYS = ("Hostname", "Domainname", "AttachStdin", "AttachStdout", "AttachStderr", "Tty", "OpenStdin",
                 "StdinOnce", "Image", "NetworkDisabled", "MacAddress", "StopTimeout")


async def commit_container(engine: Engine, container_ref: str, repo_tag: str | None = None,
                           changes: Sequence[str] = (), *, message: str = "", author: str = "",
                           pause: bool = True, config: dict[str, Any] | None = None,
                           namespace: str = "docker") -> Image:
    """``docker commit``: the container's writable layer on top of its image, as a new image
    tagged ``repo_tag``; ``changes`` are Dockerfile instructions (CMD, ENV, ONBUILD, ...) applied to
    the configuration, ``config`` a Docker Config merged over the container's. ``namespace``: the
    engine namespace the container lives in (the Docker API's, or a service's)."""
    from minicloud.engine.containers.state import Status
    from minicloud.engine.images.archive import apply_changes
    from minicloud.engine.images.reference import parse

    container = engine.containers.get(container_ref, namespace)
    tags = [parse(repo_tag)] if repo_tag else []
    parent = engine.images.get(container.image_id)
    new_config = {k: v for k, v in container.config.items() if k not in _RUNTIME_KEYS}
    for key, value in (config or {}).items():
        if value not in (None, "", [], {}):
            new_config[key] = value
    triggers = [c.strip()[len("ONBUILD"):].strip() for c in changes if c.strip().upper().startswith("ONBUILD ")]
    apply_changes(new_config, [c for c in changes if not c.strip().upper().startswith("ONBUILD ")])
    if triggers:
        new_config["OnBuild"] = [*(new_config.get("OnBuild") or []), *triggers]
    paused_here = pause and container.state.status is Status.RUNNING
    if paused_here:
        await engine.containers.pause(container.id, container.namespace)
    try:
        layer = await asyncio.to_thread(store_layer, engine.content, engine.snapshots.fs_dir(container.id))
    finally:
        if paused_here:
            await engine.containers.unpause(container.id, container.namespace)
    args = container.config.get("Entrypoint") or []
    args = [*([args] if isinstance(args, str) else args), *(container.config.get("Cmd") or [])]
    history = History(created_by=" ".join(str(a) for a in args), comment=message, author=author)
    image = await asyncio.to_thread(derive_image, engine.content, engine.images, parent, new_config, layer,
                                    history, tags)
    await engine.unpacker.unpack([layer.digest for layer in image.layers], image.diff_ids)
    engine.events.publish("container", "commit", container.id, {"name": container.name,
                                                                "comment": message, "imageID": image.id})
    return image
