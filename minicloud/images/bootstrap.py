"""Build (or take from the cache) and push images: what ``minicloud images bootstrap`` and other
parts of minicloud call."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from minicloud.images import library  # noqa: F401 - registers the built-in recipes
from minicloud.images.builder import Builder, BuildResult
from minicloud.images.cache import ImageCache, default_cache_dir
from minicloud.images.oci import image_config, image_manifest
from minicloud.images.push import BlobSource, Pusher, PushStats, RegistryHTTP
from minicloud.images.recipes import RECIPES, Recipe, select
from minicloud.images.rootfs import DebianSource

MAX_PARALLEL_BUILDS = 2
Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Outcome:
    recipe: Recipe
    references: tuple[str, ...]  # every tag pushed, host/repository:tag
    manifest_digest: str
    build: BuildResult
    push: PushStats

    @property
    def reference(self) -> str:
        return self.references[0]


def default_names() -> list[str]:
    """What a bare ``minicloud images bootstrap`` builds: the Docker Hub ``library/`` images."""
    return [name for name, recipe in RECIPES.items() if recipe.repository.startswith("library/")]


async def bootstrap(endpoint: str, keys: tuple[str, str], names: Sequence[str] = (), cache_dir: Path | None = None,
                    *, source: DebianSource | None = None, progress: Progress | None = None,
                    parallel: int = MAX_PARALLEL_BUILDS) -> list[Outcome]:
    """Build what is missing from the cache and push what is missing from the registry at
    ``endpoint`` (``http://host:port``), as ``keys`` (access key id, secret)."""
    report = progress or (lambda _message: None)
    recipes = select(names or default_names())
    cache = ImageCache(cache_dir or default_cache_dir())
    builder = Builder(cache, source, min(parallel, MAX_PARALLEL_BUILDS), report)
    pusher = Pusher(RegistryHTTP(endpoint, keys))
    await asyncio.to_thread(pusher.http.ping)
    host = urlsplit(endpoint).netloc

    async def one(recipe: Recipe) -> Outcome:
        built = await builder.build(recipe.name)
        layers = built.image.layers
        config = image_config(recipe.config, layers)
        manifest = image_manifest(config, layers)
        blobs = [BlobSource(layer.digest, layer.size, path=cache.blob_path(layer.digest)) for layer in layers]
        blobs.append(BlobSource(config.digest, config.size, data=config.data))
        stats = await pusher.push(recipe.repository, recipe.tags, blobs, manifest)
        references = tuple(recipe.reference(host, tag) for tag in recipe.tags)
        report(f"{recipe.name}: {'built' if built.built else 'cached'}, pushed {references[0]} "
               f"({stats.uploaded} uploaded, {stats.mounted} mounted, {stats.present} present, "
               f"{stats.manifests_put} tags updated)")
        return Outcome(recipe, references, manifest.digest, built, stats)

    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(recipe)) for recipe in recipes]
    except BaseExceptionGroup as failed:  # the first failure itself, not a group
        raise failed.exceptions[0] from None
    return [task.result() for task in tasks]


async def ensure_images(endpoint: str, keys: tuple[str, str], names: list[str],
                        cache_dir: Path | None = None) -> dict[str, str]:
    """Make sure the images ``names`` (recipe names, or repositories such as ``debian``) are in the
    registry at ``endpoint``; returns recipe name -> the reference of its first tag."""
    outcomes = await bootstrap(endpoint, keys, names, cache_dir)
    return {outcome.recipe.name: outcome.reference for outcome in outcomes}
