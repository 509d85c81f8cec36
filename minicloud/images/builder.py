"""Build recipes into cached layers: a recipe's base first, at most ``parallel`` mmdebstrap runs at
once, each build key built once (per process by a shared task, across processes by a lock).

A recipe with a base gets one new layer: what its root filesystem adds to or changes in the base's
(compared by content, mode, owner and xattrs). Should the new root filesystem lack a file of the
base (a package removing something), the image is flattened into a single full layer instead, so
that no layer ever carries a whiteout.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from minicloud.images import layers as layerlib
from minicloud.images.busybox import busybox_layer
from minicloud.images.cache import CachedImage, ImageCache, build_key
from minicloud.images.oci import LayerRecord
from minicloud.images.recipes import RECIPES, Recipe, chain
from minicloud.images.rootfs import SOURCE_DATE_EPOCH, DebianSource, build_rootfs

log = logging.getLogger("minicloud.images")
Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class BuildResult:
    recipe: Recipe
    image: CachedImage
    built: bool  # False when it came from the cache
    seconds: float


def describe(recipe: Recipe, source: DebianSource) -> str:
    """The history line of a recipe's own layer."""
    if recipe.kind == "busybox":
        return f"busybox-static from Debian {source.suite} (minicloud images bootstrap)"
    what = f"debian {source.suite} minbase{' slim' if recipe.slim else ''}" if recipe.base is None else \
        f"on {recipe.base}"
    if recipe.packages:
        what += ": " + " ".join(recipe.packages)
    return f"mmdebstrap {what} (minicloud images bootstrap {recipe.name})"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _own_layer(recipe: Recipe, rootfs: Path, base: CachedImage | None, cache: ImageCache) -> tuple[layerlib.Blob, bool]:
    """The recipe's layer from its root filesystem tar, and whether it had to be flattened."""
    if recipe.kind == "busybox":
        return busybox_layer(rootfs, cache.blob_dir, SOURCE_DATE_EPOCH), False
    tree = layerlib.RootfsTar.open(rootfs)
    try:
        names: set[str] = set(tree.members)
        flattened = False
        if base is not None:
            lower: dict[str, layerlib.Signature] = {}
            for layer in base.layers:
                lower.update(layerlib.signatures(cache.blob_path(layer.digest)))
            changed, deleted = layerlib.changed_paths(lower, layerlib.signatures(rootfs))
            if deleted:
                log.warning("%s removes %d paths of %s (e.g. %s): flattened into one layer", recipe.name,
                            len(deleted), recipe.base, sorted(deleted)[0])
                flattened = True
            else:
                names = layerlib.with_parents(changed, tree.members)
        return layerlib.write_layer(layerlib.rootfs_entries(tree, names, SOURCE_DATE_EPOCH), cache.blob_dir), flattened
    finally:
        tree.close()


class Builder:
    def __init__(self, cache: ImageCache, source: DebianSource | None = None, parallel: int = 2,
                 progress: Progress | None = None) -> None:
        self.cache = cache
        self.source = source or DebianSource()
        self.progress = progress or (lambda _message: None)
        self._slots = asyncio.Semaphore(parallel)
        self._tasks: dict[str, asyncio.Task[BuildResult]] = {}

    async def build(self, name: str) -> BuildResult:
        """The cached layers of recipe ``name`` (built, with its bases, when missing)."""
        chain(name)  # unknown names and cycles fail here, before anything runs
        task = self._tasks.get(name)
        if task is None:
            task = asyncio.ensure_future(self._build(RECIPES[name]))
            self._tasks[name] = task
        return await asyncio.shield(task)

    def key_for(self, recipe: Recipe, base: CachedImage | None) -> str:
        return build_key({"source": self.source.identity(), "recipe": recipe.layer_inputs(),
                          "base": base.key if base else None})

    async def _build(self, recipe: Recipe) -> BuildResult:
        base = (await self.build(recipe.base)).image if recipe.base else None
        key = self.key_for(recipe, base)
        started = time.monotonic()
        cached = self.cache.load(key)
        if cached is not None:
            return BuildResult(recipe, cached, False, time.monotonic() - started)
        async with self._slots:
            fd = await asyncio.to_thread(self.cache.lock, key)
            try:
                cached = self.cache.load(key)  # another process may have built it meanwhile
                if cached is not None:
                    return BuildResult(recipe, cached, False, time.monotonic() - started)
                self.progress(f"{recipe.name}: building (mmdebstrap)")
                image = await self._make(recipe, key, base)
                self.cache.save(image)
            finally:
                self.cache.unlock(fd)
        seconds = time.monotonic() - started
        self.progress(f"{recipe.name}: built in {seconds:.1f} s")
        return BuildResult(recipe, image, True, seconds)

    async def _make(self, recipe: Recipe, key: str, base: CachedImage | None) -> CachedImage:
        root = chain(recipe.name)[0]
        base_layers = [self.cache.blob_path(layer.digest) for layer in base.layers] if base else []
        work = self.cache.work_dir()
        try:
            rootfs = work / "rootfs.tar"
            await build_rootfs(recipe, self.source, rootfs, base_layers, slim=root.slim)
            blob, flattened = await asyncio.to_thread(_own_layer, recipe, rootfs, base, self.cache)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        own = LayerRecord(blob.digest, blob.diff_id, blob.size, _now(), describe(recipe, self.source))
        layers = (own,) if flattened or base is None else (*base.layers, own)
        return CachedImage(key, recipe.name, layers, flattened)

