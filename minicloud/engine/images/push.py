"""Push: an image's layers, config and manifest to a registry, as dockerd does it.

Each blob is checked first (HEAD: "Layer already exists"); a blob that this engine knows in
another repository of the same registry is mounted from there ("Mounted from ..."); the rest are
uploaded concurrently, each in one streamed PUT. The manifest goes last: the image's own bytes
when the engine has them (a pulled image keeps its digest), else one made from the image.
Progress is reported as Docker's JSON messages through a callback.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from minicloud.engine.content import ContentStore, Digest
from minicloud.engine.errors import NotFound
from minicloud.engine.images.pull import transfer_reporter
from minicloud.engine.images.reference import DEFAULT_DOMAIN, Reference, parse
from minicloud.engine.images.registry import Credentials, RegistryClient, endpoint_for
from minicloud.engine.images.store import (
    MEDIA_DOCKER_CONFIG,
    MEDIA_DOCKER_MANIFEST,
    Image,
    ImageStore,
    Layer,
)

Progress = Callable[[dict[str, Any]], None]
CONCURRENT_UPLOADS = 5


def _short(digest: str) -> str:
    return digest[7:19]


class Pusher:
    def __init__(self, content: ContentStore, images: ImageStore, mirror: str | None,
                 mirror_credentials: Credentials | None = None) -> None:
        self.content = content
        self.images = images
        self.mirror = mirror
        self.mirror_credentials = mirror_credentials

    def tags_to_push(self, ref: Reference) -> list[Reference]:
        """``ref`` itself, or with no tag every tag of its repository (``docker push --all-tags``)."""
        if ref.tag or ref.digest:
            if self.images.lookup(str(ref)) is None:
                raise NotFound(f"An image does not exist locally with the tag: {ref.familiar()}")
            return [ref]
        found = sorted({parse(tag) for image in self.images.list() for tag in image.repo_tags
                        if parse(tag).repository == ref.repository}, key=str)
        if not found:
            raise NotFound(f"An image does not exist locally with the tag: {ref.familiar_repository}")
        return found

    async def push(self, ref: Reference, credentials: Credentials | None, progress: Progress) -> None:
        if credentials is None and ref.domain == DEFAULT_DOMAIN:
            credentials = self.mirror_credentials
        targets = self.tags_to_push(ref)
        progress({"status": f"The push refers to repository [{ref.repository}]"})
        client = RegistryClient(endpoint_for(ref, self.mirror), ref.path, credentials,
                                scopes=(f"repository:{ref.path}:pull,push",))
        for target in targets:
            await self._push_one(client, target, progress)

    async def _push_one(self, client: RegistryClient, ref: Reference, progress: Progress) -> None:
        image = self.images.resolve(str(ref))
        manifest, media_type = await asyncio.to_thread(self._manifest, image)
        for layer in image.layers:
            progress({"status": "Preparing", "progressDetail": {}, "id": _short(layer.digest)})
        semaphore = asyncio.Semaphore(CONCURRENT_UPLOADS)

        async def upload(layer: Layer) -> None:
            if semaphore.locked():
                progress({"status": "Waiting", "progressDetail": {}, "id": _short(layer.digest)})
            async with semaphore:
                await self._push_blob(client, ref, Digest(layer.digest), _short(layer.digest), progress)

        try:
            async with asyncio.TaskGroup() as group:
                for layer in reversed(image.layers):
                    group.create_task(upload(layer))
        except BaseExceptionGroup as failed:  # the first failure itself, as Docker reports it
            raise failed.exceptions[0] from None
        config_digest = Digest(json.loads(manifest)["config"]["digest"])
        await self._push_blob(client, ref, config_digest, None, progress)
        reference = ref.tag or ref.digest or "latest"
        digest = await asyncio.to_thread(client.put_manifest, reference, manifest, media_type)
        await asyncio.to_thread(self.images.add, image, (), f"{ref.repository}@{digest}")
        shown = ref.tag or ref.digest or "latest"
        progress({"status": f"{shown}: digest: {digest} size: {len(manifest)}"})
        progress({"progressDetail": {}, "aux": {"Tag": shown, "Digest": digest, "Size": len(manifest)}})

    def _manifest(self, image: Image) -> tuple[bytes, str]:
        """The image's manifest bytes and media type (its own when stored, else a Docker v2 one)."""
        if image.manifest_digest and self.content.exists(Digest(image.manifest_digest)):
            data = self.content.read(Digest(image.manifest_digest))
            doc = json.loads(data)
            if doc.get("config", {}).get("digest") == image.id:
                return data, str(doc.get("mediaType") or MEDIA_DOCKER_MANIFEST)
        config_size = self.content.info(Digest(image.id)).size
        doc = {"schemaVersion": 2, "mediaType": MEDIA_DOCKER_MANIFEST,
               "config": {"mediaType": MEDIA_DOCKER_CONFIG, "size": config_size, "digest": image.id},
               "layers": [{"mediaType": layer.media_type, "size": layer.size, "digest": layer.digest}
                          for layer in image.layers]}
        data = json.dumps(doc, separators=(",", ":")).encode()
        self.content.put(data)
        return data, MEDIA_DOCKER_MANIFEST

    def mount_sources(self, ref: Reference, digest: str) -> list[str]:
        """Other repositories of ``ref``'s registry where this engine saw ``digest`` (pulled or pushed)."""
        sources: list[str] = []
        for image in self.images.list():
            if digest != image.id and all(layer.digest != digest for layer in image.layers):
                continue
            for repo_digest in image.repo_digests:
                try:
                    other = parse(repo_digest)
                except Exception:
                    continue
                if other.domain == ref.domain and other.path != ref.path and other.path not in sources:
                    sources.append(other.path)
        return sources

    async def _push_blob(self, client: RegistryClient, ref: Reference, digest: Digest, short: str | None,
                         progress: Progress) -> None:
        if not self.content.exists(digest):
            raise NotFound(f"blob {digest} of {ref.familiar()} is not in the engine's content store")
        if await asyncio.to_thread(client.blob_exists, digest):
            if short:
                progress({"status": "Layer already exists", "progressDetail": {}, "id": short})
            return
        location: str | None = None
        for source in self.mount_sources(ref, digest):
            mount_client = RegistryClient(client.base_url, client.repository, client.credentials,
                                          scopes=(*client.scopes, f"repository:{source}:pull"))
            location = await asyncio.to_thread(mount_client.mount_blob, digest, source)
            if location is None:
                if short:
                    progress({"status": f"Mounted from {source}", "progressDetail": {}, "id": short})
                return
            break
        await self._upload(client, digest, short, location, progress)
        if short:
            progress({"status": "Pushed", "progressDetail": {}, "id": short})

    async def _upload(self, client: RegistryClient, digest: Digest, short: str | None, location: str | None,
                      progress: Progress) -> None:
        size = self.content.info(digest).size
        report = transfer_reporter(progress, "Pushing", short, size)

        def upload() -> None:
            target = location or client.start_upload()
            with self.content.open(digest) as source:
                client.upload_blob(target, digest, size, source, report)

        await asyncio.to_thread(upload)
