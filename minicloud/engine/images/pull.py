"""Pull: a walk over the manifest graph (index -> manifest -> config + layers), as containerd does
it. Layers download concurrently under a semaphore, each verified against its digest before it is
committed to the content store; a blob already there is "Already exists"; an interrupted download
resumes from its partial ingest. Layers are then unpacked into snapshots. Progress is reported as
Docker's JSON messages through a callback.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

from minicloud.engine.content import ContentStore, Digest
from minicloud.engine.errors import InvalidArgument, NotFound
from minicloud.engine.images.reference import DEFAULT_DOMAIN, Reference
from minicloud.engine.images.registry import Credentials, Manifest, RegistryClient, endpoint_for
from minicloud.engine.images.store import (
    MEDIA_DOCKER_LIST,
    MEDIA_OCI_INDEX,
    Image,
    ImageStore,
    Layer,
)
from minicloud.engine.snapshots.unpack import Unpacker

Progress = Callable[[dict[str, Any]], None]
CONCURRENT_DOWNLOADS = 3
_PROGRESS_INTERVAL = 0.1


def transfer_reporter(progress: Progress, status: str, short: str | None, total: int) -> Callable[[int], None]:
    """A callback for a transfer thread: at most every ``_PROGRESS_INTERVAL`` seconds, a Docker
    progress message for layer ``short`` is handed to the event loop (nothing when ``short`` is None)."""
    loop = asyncio.get_running_loop()
    last = [0.0]

    def report(current: int) -> None:
        now = time.monotonic()
        if short and now - last[0] >= _PROGRESS_INTERVAL:
            last[0] = now
            loop.call_soon_threadsafe(progress, {
                "status": status, "progressDetail": {"current": current, "total": total},
                "progress": progress_bar(current, total), "id": short})
    return report


def progress_bar(current: int, total: int) -> str:
    width = 50
    filled = int(width * current / total) if total else 0
    bar = "=" * max(0, filled - 1) + (">" if filled else "") + " " * (width - filled)
    return f"[{bar}] {_human(current)}/{_human(total)}"


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.3g}{unit}" if unit != "B" else f"{int(size)}B"
        size /= 1000
    return f"{n}B"


class Puller:
    def __init__(self, content: ContentStore, images: ImageStore, unpacker: Unpacker, mirror: str | None,
                 mirror_credentials: Credentials | None = None) -> None:
        self.mirror_credentials = mirror_credentials
        self.content = content
        self.images = images
        self.unpacker = unpacker
        self.mirror = mirror

    async def pull(self, ref: Reference, credentials: Credentials | None, progress: Progress) -> Image:
        if credentials is None and ref.domain == DEFAULT_DOMAIN:
            credentials = self.mirror_credentials
        client = RegistryClient(endpoint_for(ref, self.mirror), ref.path, credentials)
        manifest = await asyncio.to_thread(client.manifest, ref.digest or ref.tag or "latest")
        progress({"status": f"Pulling from {ref.path}", "id": ref.tag or ref.digest})
        manifest = await self._platform_manifest(client, manifest)
        doc = json.loads(manifest.data)
        await asyncio.to_thread(self.content.put, manifest.data, manifest.digest)
        config_desc = doc.get("config") or {}
        layers = [Layer(d["digest"], int(d["size"]), d.get("mediaType", "")) for d in doc.get("layers") or []]
        if not config_desc:
            raise InvalidArgument(f"unsupported manifest type {manifest.media_type!r}")
        previous = self.images.tag_target(ref) if ref.tag else None
        config_digest = Digest(config_desc["digest"])
        await self._fetch(client, config_digest, int(config_desc["size"]), None, progress)
        config = json.loads(await asyncio.to_thread(self.content.read, config_digest))
        diff_ids = list((config.get("rootfs") or {}).get("diff_ids") or [])
        semaphore = asyncio.Semaphore(CONCURRENT_DOWNLOADS)

        async def download(layer: Layer) -> None:
            async with semaphore:
                await self._fetch(client, Digest(layer.digest), layer.size, layer.digest[7:19], progress)

        for layer in layers:
            if not self.content.exists(Digest(layer.digest)):
                progress({"status": "Pulling fs layer", "progressDetail": {}, "id": layer.digest[7:19]})
        try:
            async with asyncio.TaskGroup() as group:
                for layer in layers:
                    group.create_task(download(layer))
        except BaseExceptionGroup as failed:  # report the first failure itself, as Docker does
            raise failed.exceptions[0] from None
        await self.unpacker.unpack([layer.digest for layer in layers], diff_ids)
        for layer in layers:
            progress({"status": "Pull complete", "progressDetail": {}, "id": layer.digest[7:19]})
        image = Image(id=config_digest, layers=layers, diff_ids=diff_ids, manifest_digest=manifest.digest,
                      added=time.time())
        tags = [ref] if ref.tag else []
        image = self.images.add(image, tags, f"{ref.repository}@{manifest.digest}")
        progress({"status": f"Digest: {manifest.digest}"})
        shown = ref.familiar()
        if previous == image.id:
            progress({"status": f"Status: Image is up to date for {shown}"})
        else:
            progress({"status": f"Status: Downloaded newer image for {shown}"})
        return image

    async def _platform_manifest(self, client: RegistryClient, manifest: Manifest) -> Manifest:
        if manifest.media_type not in (MEDIA_OCI_INDEX, MEDIA_DOCKER_LIST):
            return manifest
        index = json.loads(manifest.data)
        for entry in index.get("manifests") or []:
            platform = entry.get("platform") or {}
            if platform.get("os") == "linux" and platform.get("architecture") == "amd64":
                child = await asyncio.to_thread(client.manifest, entry["digest"])
                await asyncio.to_thread(self.content.put, manifest.data, manifest.digest)
                return child
        raise NotFound("no matching manifest for linux/amd64 in the manifest list entries")

    async def _fetch(self, client: RegistryClient, digest: Digest, size: int, short: str | None,
                     progress: Progress) -> None:
        if self.content.exists(digest):
            if short:
                progress({"status": "Already exists", "progressDetail": {}, "id": short})
            return
        loop = asyncio.get_running_loop()
        report = transfer_reporter(progress, "Downloading", short, size)

        def fetch() -> None:
            writer = self.content.writer(digest)
            try:
                if self.content.exists(digest):  # another pull committed it while we waited
                    writer.close()
                    return
                client.fetch_blob(digest, size, writer, report)
            except BaseException:
                writer.close()  # keep the partial data: a later pull resumes it
                raise
            if short:
                loop.call_soon_threadsafe(progress, {"status": "Verifying Checksum", "progressDetail": {},
                                                     "id": short})
            writer.commit(digest, size)

        await asyncio.to_thread(fetch)
        if short:
            progress({"status": "Download complete", "progressDetail": {}, "id": short})
