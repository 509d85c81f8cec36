"""Images in and out of tarballs: ``docker import`` (a root filesystem tarball becomes a one-layer
image), ``docker load`` (docker-archive: ``manifest.json`` with legacy or OCI-layout paths) and
``docker save`` (docker-archive in the OCI layout, as Docker 25+ writes it).

Everything here is blocking (tar, hashing, file I/O): the API calls it in a thread, on a spooled
copy of the request body.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import shlex
import tarfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from minicloud.engine.content import ContentStore, Digest
from minicloud.engine.errors import InvalidArgument
from minicloud.engine.images.reference import Reference, parse
from minicloud.engine.images.store import (
    MEDIA_DOCKER_CONFIG,
    MEDIA_DOCKER_MANIFEST,
    MEDIA_LAYER_GZIP,
    MEDIA_LAYER_TAR,
    MEDIA_OCI_INDEX,
    MEDIA_OCI_MANIFEST,
    Image,
    ImageStore,
    Layer,
)

_GZIP = b"\x1f\x8b"
_ZSTD = b"\x28\xb5\x2f\xfd"


def rfc3339(ts: float | None = None) -> str:
    return datetime.fromtimestamp(time.time() if ts is None else ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def layer_media_type(head: bytes) -> str:
    if head.startswith(_GZIP):
        return MEDIA_LAYER_GZIP
    if head.startswith(_ZSTD):
        return "application/vnd.oci.image.layer.v1.tar+zstd"
    return MEDIA_LAYER_TAR


def diff_id(content: ContentStore, digest: Digest) -> str:
    """The digest of the uncompressed layer."""
    with content.open(digest) as blob:
        head = blob.read(4)
        blob.seek(0)
        if head.startswith(_ZSTD):
            raise InvalidArgument("zstd-compressed layers need the 'zstandard' Python module to compute diff ids")
        if not head.startswith(_GZIP):
            return str(digest)
        hasher = hashlib.sha256()
        with gzip.GzipFile(fileobj=blob) as stream:
            while chunk := stream.read(1 << 20):
                hasher.update(chunk)
        return "sha256:" + hasher.hexdigest()


def apply_changes(config: dict[str, Any], changes: list[str]) -> None:
    """``--change`` instructions of ``docker import``: CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL, EXPOSE,
    VOLUME."""
    for change in changes:
        keyword, _, rest = change.strip().partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        if keyword in ("CMD", "ENTRYPOINT"):
            value = json.loads(rest) if rest.startswith("[") else ["/bin/sh", "-c", rest]
            config["Cmd" if keyword == "CMD" else "Entrypoint"] = value
        elif keyword in ("ENV", "LABEL"):
            target = config.setdefault("Env", []) if keyword == "ENV" else config.setdefault("Labels", {})
            for item in shlex.split(rest):
                key, sep, value = item.partition("=")
                if not sep:
                    raise InvalidArgument(f"{keyword} needs key=value pairs: {change}")
                if isinstance(target, list):
                    target.append(f"{key}={value}")
                else:
                    target[key] = value
        elif keyword == "WORKDIR":
            config["WorkingDir"] = rest
        elif keyword == "USER":
            config["User"] = rest
        elif keyword == "EXPOSE":
            for port in rest.split():
                config.setdefault("ExposedPorts", {})[port if "/" in port else f"{port}/tcp"] = {}
        elif keyword == "VOLUME":
            paths = json.loads(rest) if rest.startswith("[") else rest.split()
            for path in paths:
                config.setdefault("Volumes", {})[str(path)] = {}
        else:
            raise InvalidArgument(f"{keyword} is not a valid change command")


def store_image(content: ContentStore, images: ImageStore, config: dict[str, Any], layers: list[Layer],
                tags: list[Reference]) -> Image:
    config_bytes = json.dumps(config, separators=(",", ":")).encode()
    config_info = content.put(config_bytes)
    manifest = {"schemaVersion": 2, "mediaType": MEDIA_DOCKER_MANIFEST,
                "config": {"mediaType": MEDIA_DOCKER_CONFIG, "size": config_info.size,
                           "digest": config_info.digest},
                "layers": [{"mediaType": layer.media_type, "size": layer.size, "digest": layer.digest}
                           for layer in layers]}
    manifest_info = content.put(json.dumps(manifest, separators=(",", ":")).encode())
    image = Image(id=config_info.digest, layers=layers, diff_ids=list(config["rootfs"]["diff_ids"]),
                  manifest_digest=manifest_info.digest, added=time.time())
    return images.add(image, tags)


def import_rootfs(content: ContentStore, images: ImageStore, source: IO[bytes], tags: list[Reference],
                  changes: list[str], message: str) -> Image:
    head = source.read(4)
    source.seek(0)
    info = content.ingest_file(source)
    layer = Layer(info.digest, info.size, layer_media_type(head))
    created = rfc3339()
    container_config: dict[str, Any] = {}
    apply_changes(container_config, changes)
    config = {"architecture": "amd64", "os": "linux", "created": created, "config": container_config,
              "rootfs": {"type": "layers", "diff_ids": [diff_id(content, info.digest)]},
              "history": [{"created": created, "comment": message or "Imported from -"}]}
    return store_image(content, images, config, [layer], tags)


def load_archive(content: ContentStore, images: ImageStore, source: IO[bytes]) -> list[tuple[str, Image]]:
    """Load a docker-archive; returns Docker's "Loaded image: ..." lines with their images."""
    blobs: dict[str, Digest] = {}
    small: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=source, mode="r|*") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                stream = tar.extractfile(member)
                assert stream is not None
                name = member.name.removeprefix("./")
                if name in ("manifest.json", "index.json", "repositories"):
                    small[name] = stream.read()
                    continue
                blobs[name] = content.ingest_file(stream).digest
    except tarfile.TarError as exc:
        raise InvalidArgument(f"invalid tar archive: {exc}") from None
    if "manifest.json" not in small:
        raise InvalidArgument("invalid archive: no manifest.json (an OCI layout without it is not supported yet)")
    loaded: list[tuple[str, Image]] = []
    for entry in json.loads(small["manifest.json"]):
        config_digest = blobs.get(entry["Config"])
        if config_digest is None:
            raise InvalidArgument(f"invalid archive: missing {entry['Config']}")
        config = json.loads(content.read(config_digest))
        layers = []
        for path in entry.get("Layers") or []:
            digest = blobs.get(path)
            if digest is None:
                raise InvalidArgument(f"invalid archive: missing layer {path}")
            with content.open(digest) as f:
                head = f.read(4)
            layers.append(Layer(digest, content.info(digest).size, layer_media_type(head)))
        expected = list((config.get("rootfs") or {}).get("diff_ids") or [])
        actual = [diff_id(content, Digest(layer.digest)) for layer in layers]
        if expected != actual:
            raise InvalidArgument(f"invalid archive: the layers of {entry['Config']} do not match its diff ids")
        tags = [parse(tag) for tag in entry.get("RepoTags") or []]
        image = store_image(content, images, config, layers, tags)
        if tags:
            loaded += [(f"Loaded image: {tag.familiar()}", image) for tag in tags]
        else:
            loaded.append((f"Loaded image ID: {image.id}", image))
    return loaded


def save_archive(content: ContentStore, images: list[tuple[Image, list[str]]], target: Path) -> None:
    """Write a docker-archive (OCI layout plus ``manifest.json``) of ``(image, tags)`` to ``target``."""
    manifest_entries: list[dict[str, Any]] = []
    index_manifests: list[dict[str, Any]] = []
    written: set[str] = set()
    with tarfile.open(target, "w") as tar:
        _add_bytes(tar, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')

        def add_blob(digest: str) -> str:
            path = f"blobs/sha256/{digest[7:]}"
            if digest not in written:
                written.add(digest)
                tar.add(str(content.blob_path(Digest(digest))), arcname=path, recursive=False)
            return path

        for image, tags in images:
            config_path = add_blob(image.id)
            layer_paths = [add_blob(layer.digest) for layer in image.layers]
            manifest = {"schemaVersion": 2, "mediaType": MEDIA_OCI_MANIFEST,
                        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                   "digest": image.id, "size": content.info(Digest(image.id)).size},
                        "layers": [{"mediaType": _oci_layer_type(layer.media_type), "digest": layer.digest,
                                    "size": layer.size} for layer in image.layers]}
            manifest_bytes = json.dumps(manifest, separators=(",", ":")).encode()
            manifest_info = content.put(manifest_bytes)
            add_blob(manifest_info.digest)
            for tag in tags or [""]:
                descriptor: dict[str, Any] = {"mediaType": MEDIA_OCI_MANIFEST, "digest": manifest_info.digest,
                                              "size": manifest_info.size}
                if tag:
                    descriptor["annotations"] = {"io.containerd.image.name": str(parse(tag)),
                                                 "org.opencontainers.image.ref.name": parse(tag).tag or ""}
                index_manifests.append(descriptor)
            manifest_entries.append({"Config": config_path, "RepoTags": [parse(t).familiar() for t in tags],
                                     "Layers": layer_paths})
        _add_bytes(tar, "index.json", json.dumps({"schemaVersion": 2, "mediaType": MEDIA_OCI_INDEX,
                                                  "manifests": index_manifests}).encode())
        _add_bytes(tar, "manifest.json", json.dumps(manifest_entries).encode())


def _oci_layer_type(media_type: str) -> str:
    if media_type in (MEDIA_LAYER_GZIP, "application/vnd.oci.image.layer.v1.tar+gzip"):
        return "application/vnd.oci.image.layer.v1.tar+gzip"
    if media_type.endswith("zstd"):
        return "application/vnd.oci.image.layer.v1.tar+zstd"
    return "application/vnd.oci.image.layer.v1.tar"


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    import io

    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(time.time())
    tar.addfile(info, io.BytesIO(data))
