"""OCI image config and manifest documents for a built image (image-spec v1.1)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

from minicloud.images.recipes import ImageConfig

MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"


@dataclass(frozen=True, slots=True)
class LayerRecord:
    digest: str
    diff_id: str
    size: int
    created: str  # RFC 3339
    created_by: str

    def to_json(self) -> dict[str, object]:
        return {"digest": self.digest, "diff_id": self.diff_id, "size": self.size, "created": self.created,
                "created_by": self.created_by}

    @classmethod
    def from_json(cls, doc: dict[str, object]) -> LayerRecord:
        return cls(str(doc["digest"]), str(doc["diff_id"]), int(str(doc["size"])), str(doc["created"]),
                   str(doc["created_by"]))


@dataclass(frozen=True, slots=True)
class Document:
    media_type: str
    data: bytes

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.data).hexdigest()

    @property
    def size(self) -> int:
        return len(self.data)


def _encode(doc: dict[str, object]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def image_config(config: ImageConfig, layers: Sequence[LayerRecord]) -> Document:
    """The config blob: platform linux/amd64, runtime config, one history entry per layer."""
    if not layers:
        raise ValueError("an image needs at least one layer")
    doc: dict[str, object] = {
        "created": layers[-1].created,
        "architecture": "amd64",
        "os": "linux",
        "config": config.to_oci(),
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        "history": [{"created": layer.created, "created_by": layer.created_by} for layer in layers],
    }
    return Document(MEDIA_CONFIG, _encode(doc))


def image_manifest(config: Document, layers: Sequence[LayerRecord],
                   annotations: dict[str, str] | None = None) -> Document:
    doc: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": {"mediaType": config.media_type, "digest": config.digest, "size": config.size},
        "layers": [{"mediaType": MEDIA_LAYER_GZIP, "digest": layer.digest, "size": layer.size} for layer in layers],
    }
    if annotations:
        doc["annotations"] = dict(sorted(annotations.items()))
    return Document(MEDIA_MANIFEST, _encode(doc))
