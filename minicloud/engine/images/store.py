"""The image store: image records (config digest = image id, layers, diff ids) and tags.

Manifests and configs themselves live in the content store; this keeps what points at them, in
one JSON document written atomically (temporary file, fsync, rename), so a restart finds every
image and tag again. Methods are quick and thread-safe (one lock).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from minicloud.engine.content import ContentStore, Digest
from minicloud.engine.errors import Conflict, NotFound
from minicloud.engine.images.reference import Reference, looks_like_id, parse
from minicloud.storage.durable import replace_file

MEDIA_LAYER_TAR = "application/vnd.docker.image.rootfs.diff.tar"
MEDIA_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
MEDIA_OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
MEDIA_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MEDIA_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MEDIA_DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
MEDIA_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"


@dataclass(frozen=True, slots=True)
class Layer:
    digest: str
    size: int
    media_type: str


@dataclass(slots=True)
class Image:
    id: str  # the config's digest
    layers: list[Layer]
    diff_ids: list[str]
    manifest_digest: str | None = None
    repo_tags: list[str] = field(default_factory=list)  # normalised: docker.io/library/busybox:latest
    repo_digests: list[str] = field(default_factory=list)  # docker.io/library/busybox@sha256:...
    added: float = 0.0

    @property
    def size(self) -> int:
        return sum(layer.size for layer in self.layers)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Image:
        raw = dict(raw)
        raw["layers"] = [Layer(**layer) for layer in raw["layers"]]
        return cls(**raw)


class ImageStore:
    def __init__(self, root: Path, content: ContentStore) -> None:
        self._path = root / "images.json"
        root.mkdir(parents=True, exist_ok=True)
        self.content = content
        self._lock = threading.RLock()
        self._images: dict[str, Image] = {}
        self._tags: dict[str, str] = {}  # normalised reference -> image id
        self._configs: dict[str, dict[str, Any]] = {}
        if self._path.exists():
            doc = json.loads(self._path.read_text())
            self._images = {i["id"]: Image.from_json(i) for i in doc["images"]}
            self._tags = dict(doc["tags"])

    # -- queries --------------------------------------------------------------------------------
    def list(self) -> list[Image]:
        with self._lock:
            return list(self._images.values())

    def get(self, image_id: str) -> Image:
        with self._lock:
            try:
                return self._images[image_id]
            except KeyError:
                raise NotFound(f"No such image: {image_id}") from None

    def config(self, image: Image) -> dict[str, Any]:
        with self._lock:
            cached = self._configs.get(image.id)
        if cached is None:
            cached = json.loads(self.content.read(Digest(image.id)))
            with self._lock:
                self._configs[image.id] = cached
        return cached

    def lookup(self, name: str) -> Image | None:
        """By tag, by ``repo@digest``, by full or short id (as ``docker image inspect`` does)."""
        with self._lock:
            if looks_like_id(name):
                full = name if name.startswith("sha256:") else f"sha256:{name}"
                if full in self._images:
                    return self._images[full]
            try:
                ref = parse(name)
            except Exception:
                ref = None
            if ref is not None:
                if ref.digest:
                    for image in self._images.values():
                        if f"{ref.repository}@{ref.digest}" in image.repo_digests:
                            return image
                elif str(ref) in self._tags:
                    return self._images.get(self._tags[str(ref)])
            prefix = name.removeprefix("sha256:")
            if len(prefix) >= 4 and all(c in "0123456789abcdef" for c in prefix):
                matches = [i for i in self._images.values() if i.id[7:].startswith(prefix)]
                if len(matches) == 1:
                    return matches[0]
            return None

    def resolve(self, name: str) -> Image:
        image = self.lookup(name)
        if image is None:
            raise NotFound(f"No such image: {name}")
        return image

    def tag_target(self, ref: Reference) -> str | None:
        with self._lock:
            return self._tags.get(str(ref))

    # -- changes --------------------------------------------------------------------------------
    def add(self, image: Image, tags: Sequence[Reference] = (), digest_ref: str | None = None) -> Image:
        with self._lock:
            current = self._images.get(image.id)
            if current is None:
                self._images[image.id] = image
                current = image
            elif image.manifest_digest and not current.manifest_digest:
                current.manifest_digest = image.manifest_digest
            if digest_ref and digest_ref not in current.repo_digests:
                current.repo_digests.append(digest_ref)
            for ref in tags:
                self._tag_locked(current, ref)
            self._save()
            return current

    def tag(self, image: Image, ref: Reference) -> None:
        with self._lock:
            self._tag_locked(self._images[image.id], ref)
            self._save()

    def _tag_locked(self, image: Image, ref: Reference) -> None:
        key = str(ref)
        previous = self._tags.get(key)
        if previous == image.id:
            return
        if previous is not None and previous in self._images:
            self._images[previous].repo_tags.remove(key)
        self._tags[key] = image.id
        image.repo_tags.append(key)

    def untag(self, ref: Reference) -> Image:
        with self._lock:
            key = str(ref)
            image_id = self._tags.pop(key, None)
            if image_id is None:
                raise NotFound(f"No such image: {ref.familiar()}")
            image = self._images[image_id]
            image.repo_tags.remove(key)
            if not any(parse(t).repository == ref.repository for t in image.repo_tags):
                image.repo_digests = [d for d in image.repo_digests if not d.startswith(ref.repository + "@")]
            self._save()
            return image

    def remove(self, image: Image, *, force: bool = False) -> None:
        with self._lock:
            if len(image.repo_tags) > 1 and not force:
                raise Conflict(f"conflict: unable to delete {image.id[7:19]} (must be forced) - image is "
                               f"referenced in multiple repositories")
            for key in image.repo_tags:
                self._tags.pop(key, None)
            self._images.pop(image.id, None)
            self._configs.pop(image.id, None)
            self._save()

    def referenced_blobs(self) -> set[str]:
        with self._lock:
            blobs: set[str] = set()
            for image in self._images.values():
                blobs.add(image.id)
                blobs.update(layer.digest for layer in image.layers)
                if image.manifest_digest:
                    blobs.add(image.manifest_digest)
            return blobs

    def _save(self) -> None:
        doc = {"images": [i.to_json() for i in self._images.values()], "tags": self._tags}
        replace_file(self._path, json.dumps(doc).encode())
