"""The overlay snapshotter, modelled on containerd's: snapshots form chains by parent; a committed
snapshot is one layer's files in overlayfs format (whiteouts as 0:0 character devices, opaque
directories marked with ``trusted.overlay.opaque``); an active snapshot adds an upper and a work
directory. Image layers are committed under their chain id, so images that share layers share
the directories. ``prepare`` and ``mounts`` return mounts; nothing here mounts anything.

Layout under ``root``: ``snapshots/<n>/fs`` (+ ``work`` for active ones) and ``metadata.json``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from minicloud.engine.errors import Conflict, NotFound
from minicloud.engine.snapshots.mounts import Mount
from minicloud.storage.durable import replace_file

Kind = Literal["committed", "active"]


@dataclass(frozen=True, slots=True)
class Snapshot:
    key: str
    id: int
    kind: Kind
    parent: str | None
    size: int = 0  # bytes of the layer's files (committed snapshots)


class OverlaySnapshotter:
    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "snapshots").mkdir(parents=True, exist_ok=True)
        self._meta = root / "metadata.json"
        self._lock = threading.RLock()
        self._next = 1
        self._snapshots: dict[str, Snapshot] = {}
        if self._meta.exists():
            doc = json.loads(self._meta.read_text())
            self._next = doc["next"]
            self._snapshots = {k: Snapshot(k, **v) for k, v in doc["snapshots"].items()}
        self._sweep()

    # -- queries --------------------------------------------------------------------------------
    def stat(self, key: str) -> Snapshot:
        with self._lock:
            try:
                return self._snapshots[key]
            except KeyError:
                raise NotFound(f"snapshot {key} does not exist") from None

    def exists(self, key: str) -> bool:
        with self._lock:
            return key in self._snapshots

    def list_keys(self) -> list[str]:
        with self._lock:
            return list(self._snapshots)

    def fs_dir(self, key: str) -> Path:
        return self._dir(self.stat(key).id) / "fs"

    def mounts(self, key: str) -> list[Mount]:
        with self._lock:
            snap = self.stat(key)
            lowers = [str(self.fs_dir(k)) for k in self._chain(snap.parent)]
            if snap.kind == "committed":
                lowers.insert(0, str(self.fs_dir(key)))
                if len(lowers) == 1:
                    return [Mount("bind", lowers[0], ("ro", "rbind"))]
                return [Mount("overlay", "overlay", (f"lowerdir={':'.join(lowers)}",))]
            upper = self._dir(snap.id)
            if not lowers:
                lowers = [str(self._empty())]
            return [Mount("overlay", "overlay", (
                f"lowerdir={':'.join(lowers)}", f"upperdir={upper / 'fs'}", f"workdir={upper / 'work'}",
                "index=off"))]

    def usage(self, key: str) -> int:
        total = 0
        for base, _dirs, files in os.walk(self.fs_dir(key)):
            for name in files:
                with contextlib.suppress(OSError):
                    total += os.lstat(os.path.join(base, name)).st_size
        return total

    def children(self, key: str) -> list[str]:
        with self._lock:
            return [s.key for s in self._snapshots.values() if s.parent == key]

    # -- changes --------------------------------------------------------------------------------
    def prepare(self, key: str, parent: str | None, *, durable: bool = True) -> list[Mount]:
        """A new active snapshot on ``parent``; not ``durable``: the caller calls ``sync`` later."""
        with self._lock:
            if key in self._snapshots:
                raise Conflict(f"snapshot {key} already exists")
            if parent is not None and self.stat(parent).kind != "committed":
                raise Conflict(f"parent snapshot {parent} is not committed")
            snap = Snapshot(key, self._next, "active", parent)
            self._next += 1
            directory = self._dir(snap.id)
            (directory / "fs").mkdir(parents=True)
            (directory / "fs").chmod(0o755)  # a container's / is 0755, whatever minicloud's umask (077)
            (directory / "work").mkdir()
            self._snapshots[key] = snap
            self._save(durable)
        return self.mounts(key)

    def commit(self, name: str, key: str, size: int = 0) -> None:
        with self._lock:
            snap = self.stat(key)
            if snap.kind != "active":
                raise Conflict(f"snapshot {key} is not active")
            if name in self._snapshots:
                raise Conflict(f"snapshot {name} already exists")
            shutil.rmtree(self._dir(snap.id) / "work", ignore_errors=True)
            del self._snapshots[key]
            self._snapshots[name] = Snapshot(name, snap.id, "committed", snap.parent, size)
            self._save()

    def remove(self, key: str) -> None:
        with self._lock:
            snap = self.stat(key)
            if self.children(key):
                raise Conflict(f"snapshot {key} has children")
            del self._snapshots[key]
            # an active snapshot's removal need not survive a host crash (start-up removes the
            # writable layers no container owns) and must not hold the lock for an fsync while
            # the next container's prepare waits for it; a layer's removal must
            self._save(durable=snap.kind == "committed")
        shutil.rmtree(self._dir(snap.id), ignore_errors=True)

    # -- internals ------------------------------------------------------------------------------
    def _chain(self, key: str | None) -> list[str]:
        chain: list[str] = []
        while key is not None:
            chain.append(key)
            key = self._snapshots[key].parent
        return chain

    def _dir(self, snapshot_id: int) -> Path:
        return self.root / "snapshots" / str(snapshot_id)

    def _empty(self) -> Path:
        path = self.root / "empty"
        path.mkdir(exist_ok=True)
        return path

    def _sweep(self) -> None:
        """Remove directories that no snapshot owns (left by a crash between mkdir and save)."""
        owned = {str(s.id) for s in self._snapshots.values()}
        for entry in (self.root / "snapshots").iterdir():
            if entry.name not in owned:
                shutil.rmtree(entry, ignore_errors=True)

    def _save(self, durable: bool = True) -> None:
        doc = {"next": self._next, "snapshots": {
            k: {"id": s.id, "kind": s.kind, "parent": s.parent, "size": s.size}
            for k, s in self._snapshots.items()}}
        replace_file(self._meta, json.dumps(doc).encode(), durable=durable)

    def sync(self) -> None:
        """Make the metadata written by a non-durable ``prepare`` durable."""
        with self._lock:
            fd = os.open(self._meta, os.O_RDONLY | os.O_CLOEXEC)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
