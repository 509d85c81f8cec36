"""Manifests: media types, parsing, and what a manifest refers to.

Parsing is lenient where the spec is (unknown fields, ``data`` in descriptors, a missing
``mediaType``, empty layers or manifests) and strict where clients rely on it (malformed JSON,
malformed descriptors, a ``mediaType`` that contradicts the Content-Type).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from minicloud.registry.errors import RegistryError
from minicloud.storage.blobs import Digest, InvalidDigest

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"

IMAGE_MANIFESTS = frozenset({DOCKER_MANIFEST, OCI_MANIFEST})
INDEXES = frozenset({DOCKER_LIST, OCI_INDEX})
MANIFEST_TYPES = IMAGE_MANIFESTS | INDEXES
MAX_MANIFEST_BYTES = 16 << 20

_FOREIGN = ("application/vnd.docker.image.rootfs.foreign.diff.tar",
            "application/vnd.oci.image.layer.nondistributable.")


@dataclass(frozen=True, slots=True)
class Descriptor:
    media_type: str
    digest: Digest
    size: int
    foreign: bool = False


@dataclass(slots=True)
class Manifest:
    digest: Digest
    media_type: str
    content: bytes
    blobs: list[Descriptor] = field(default_factory=list)      # config and layers
    children: list[Descriptor] = field(default_factory=list)   # an index's manifests
    subject: Digest | None = None
    artifact_type: str | None = None
    annotations: dict[str, str] | None = None

    @property
    def size(self) -> int:
        return len(self.content)

    @property
    def image_size(self) -> int:
        return sum(d.size for d in self.blobs)


def digest_of(content: bytes, algorithm: str = "sha256") -> Digest:
    return Digest(algorithm, hashlib.new(algorithm, content).hexdigest())


def _invalid(message: str) -> RegistryError:
    return RegistryError("MANIFEST_INVALID", message)


def _descriptor(value: Any, where: str) -> Descriptor:
    if not isinstance(value, dict):
        raise _invalid(f"{where} is not a descriptor")
    media_type = value.get("mediaType", "")
    digest = value.get("digest")
    size = value.get("size")
    if not isinstance(media_type, str):
        raise _invalid(f"{where}.mediaType is not a string")
    if not isinstance(digest, str):
        raise _invalid(f"{where}.digest is missing")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise _invalid(f"{where}.size is not a non-negative integer")
    try:
        parsed = Digest.parse(digest)
    except InvalidDigest as exc:
        raise _invalid(f"{where}.digest: {exc}") from None
    foreign = media_type.startswith(_FOREIGN)
    return Descriptor(media_type, parsed, size, foreign)


def _descriptors(doc: dict[str, Any], key: str) -> list[Descriptor]:
    value = doc.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise _invalid(f"{key} is not a list")
    return [_descriptor(v, f"{key}[{i}]") for i, v in enumerate(value)]


def _media_type(doc: dict[str, Any], content_type: str | None) -> str:
    declared = doc.get("mediaType")
    if declared is not None and not isinstance(declared, str):
        raise _invalid("mediaType is not a string")
    header = (content_type or "").split(";", 1)[0].strip()
    if declared:
        if header in MANIFEST_TYPES and header != declared:
            raise _invalid(f"mediaType {declared} does not match Content-Type {header}")
        return declared
    if header and header not in ("application/json", "application/octet-stream"):
        return header
    if "manifests" in doc:
        return OCI_INDEX
    if "config" in doc or "layers" in doc:
        return OCI_MANIFEST
    raise _invalid("cannot tell the manifest's media type")


def parse_manifest(content: bytes, content_type: str | None, algorithm: str = "sha256") -> Manifest:
    if len(content) > MAX_MANIFEST_BYTES:
        raise RegistryError("SIZE_INVALID", f"manifests are limited to {MAX_MANIFEST_BYTES} bytes",
                            status=413)
    try:
        doc = orjson.loads(content)
    except orjson.JSONDecodeError as exc:
        raise _invalid(f"malformed JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise _invalid("a manifest is a JSON object")
    media_type = _media_type(doc, content_type)
    if media_type in (DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED) or doc.get("schemaVersion") == 1:
        raise _invalid("Docker image manifest schema 1 is not supported")
    schema_version = doc.get("schemaVersion")
    if schema_version is not None and schema_version != 2:
        raise _invalid(f"unsupported schemaVersion {schema_version!r}")
    manifest = Manifest(digest_of(content, algorithm), media_type, content)
    if media_type in INDEXES or ("manifests" in doc and media_type not in IMAGE_MANIFESTS):
        manifest.children = _descriptors(doc, "manifests")
    else:
        config = doc.get("config")
        if config is not None:
            manifest.blobs.append(_descriptor(config, "config"))
        elif media_type in IMAGE_MANIFESTS:
            raise _invalid("config is missing")
        manifest.blobs.extend(_descriptors(doc, "layers"))
    if doc.get("subject") is not None:
        manifest.subject = _descriptor(doc["subject"], "subject").digest
    artifact_type = doc.get("artifactType")
    if artifact_type is not None and not isinstance(artifact_type, str):
        raise _invalid("artifactType is not a string")
    if not artifact_type and media_type == OCI_MANIFEST and manifest.blobs:
        artifact_type = manifest.blobs[0].media_type  # the config's media type, as the spec says
    manifest.artifact_type = artifact_type or None
    annotations = doc.get("annotations")
    if annotations is not None:
        if not isinstance(annotations, dict) or not all(isinstance(v, str) for v in annotations.values()):
            raise _invalid("annotations must map strings to strings")
        manifest.annotations = annotations
    return manifest
