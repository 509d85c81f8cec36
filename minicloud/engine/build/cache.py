"""The classic builder's layer cache: a step is reused when an image was already made from the
same parent image by the same instruction (after variable expansion; RUN with the build
arguments it saw; COPY and ADD with a content hash of their sources), as Docker's classic builder
keys it. Kept in one JSON document written atomically; entries whose image is gone are ignored.

The images a build makes for its intermediate steps are recorded too, so that ``docker images``
can hide them as Docker does (they stay for the cache).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

from minicloud.storage.durable import replace_file


def step_key(parent: str, instruction: str) -> str:
    return hashlib.sha256(f"{parent}\n{instruction}".encode()).hexdigest()


class BuildCache:
    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self._path = root / "cache.json"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One writer at a time, whichever build (or process) it is."""
        with open(self._path.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _load(self) -> dict[str, dict[str, str]]:
        try:
            doc = json.loads(self._path.read_text())
        except (FileNotFoundError, ValueError):
            return {"steps": {}, "intermediate": {}}
        return {"steps": dict(doc.get("steps") or {}), "intermediate": dict(doc.get("intermediate") or {})}

    def _save(self, doc: dict[str, dict[str, str]]) -> None:
        replace_file(self._path, json.dumps(doc).encode())

    def lookup(self, parent: str, instruction: str) -> str | None:
        with self._locked():
            return self._load()["steps"].get(step_key(parent, instruction))

    def record(self, parent: str, instruction: str, image_id: str) -> None:
        with self._locked():
            doc = self._load()
            doc["steps"][step_key(parent, instruction)] = image_id
            doc["intermediate"][image_id] = parent
            self._save(doc)

    def parents(self) -> set[str]:
        """Images that a build step made another image from: ``docker images`` hides them unless
        tagged (Docker's intermediate images; they stay for the cache)."""
        with self._locked():
            return set(self._load()["intermediate"].values())

    def forget(self, image_ids: set[str]) -> None:
        with self._locked():
            doc = self._load()
            doc["steps"] = {k: v for k, v in doc["steps"].items() if v not in image_ids}
            doc["intermediate"] = {k: v for k, v in doc["intermediate"].items() if k not in image_ids}
            self._save(doc)
