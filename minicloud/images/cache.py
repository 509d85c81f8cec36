"""The build cache: layer blobs by digest and, per recipe build key, the layers an image is made of.

    <cache>/blobs/sha256/<hex>        gzip-compressed layers (read-only once written)
    <cache>/images/<key>.json         {"recipe", "layers": [...], "flattened"} for one build key
    <cache>/locks/<key>.lock          held (flock) while a process builds that key

A build key hashes everything a recipe's layers depend on: the builder's version, the Debian
suite and mirrors, the recipe's packages, files and commands, and its base's key. The default
location is ``~/.cache/minicloud/images``; ``MINICLOUD_IMAGE_CACHE`` overrides it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from minicloud.images.oci import LayerRecord

BUILDER_VERSION = "3"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def default_cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    if env.get("MINICLOUD_IMAGE_CACHE"):
        return Path(env["MINICLOUD_IMAGE_CACHE"]).expanduser()
    base = Path(env["XDG_CACHE_HOME"]) if env.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return base / "minicloud" / "images"


def build_key(inputs: Mapping[str, object]) -> str:
    doc = {"builder": BUILDER_VERSION, **inputs}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class CachedImage:
    key: str
    recipe: str
    layers: tuple[LayerRecord, ...]
    flattened: bool = False  # its own layer holds the whole root filesystem instead of a difference


class ImageCache:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.blob_dir = root / "blobs"
        self.images_dir = root / "images"
        self.locks_dir = root / "locks"
        for path in (self.blob_dir / "sha256", self.images_dir, self.locks_dir):
            path.mkdir(parents=True, exist_ok=True)
        self._sweep()

    def work_dir(self) -> Path:
        """A fresh directory for one build, named after this process so a later run can tell
        whether it is abandoned."""
        return Path(tempfile.mkdtemp(dir=self.root, prefix=f".build-{os.getpid()}-"))

    def _sweep(self) -> None:
        """Remove the work directories of builds whose process is gone (killed mid-build)."""
        for path in self.root.glob(".build-*-*"):
            pid = path.name.split("-")[1]
            if pid.isdigit() and not _alive(int(pid)):
                shutil.rmtree(path, ignore_errors=True)

    def blob_path(self, digest: str) -> Path:
        algorithm, _, hexdigest = digest.partition(":")
        if algorithm != "sha256" or len(hexdigest) != 64:
            raise ValueError(f"unsupported digest {digest!r}")
        return self.blob_dir / "sha256" / hexdigest

    def load(self, key: str) -> CachedImage | None:
        """The cached build for ``key`` when its record and every blob are present."""
        try:
            doc = json.loads((self.images_dir / f"{key}.json").read_text())
            layers = tuple(LayerRecord.from_json(layer) for layer in doc["layers"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        for layer in layers:
            try:
                if self.blob_path(layer.digest).stat().st_size != layer.size:
                    return None
            except (OSError, ValueError):
                return None
        return CachedImage(key, str(doc.get("recipe", "")), layers, bool(doc.get("flattened", False)))

    def save(self, image: CachedImage) -> None:
        doc = {"recipe": image.recipe, "flattened": image.flattened,
               "layers": [layer.to_json() for layer in image.layers]}
        path = self.images_dir / f"{image.key}.json"
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        with open(tmp, "w") as handle:
            json.dump(doc, handle, indent=1)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)

    def lock(self, key: str) -> int:
        """Block until this process holds ``key``'s build lock (exclusive across processes, so two
        bootstraps never build the same key at once); ``unlock`` the returned descriptor."""
        fd = os.open(self.locks_dir / f"{key}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        return fd

    @staticmethod
    def unlock(fd: int) -> None:
        os.close(fd)  # closing the descriptor releases the flock
