"""Unpack an image's layers into committed snapshots keyed by chain id (shared between images).

Each layer is applied by a child process (``untar``) that chroots into the new snapshot's
directory; the uncompressed digest it reports must equal the image config's diff id, otherwise
the snapshot is discarded.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
import uuid
from collections.abc import Sequence

from minicloud.engine.content import ContentStore, Digest
from minicloud.engine.errors import EngineError, InvalidArgument
from minicloud.engine.snapshots.overlay import OverlaySnapshotter


def chain_ids(diff_ids: Sequence[str]) -> list[str]:
    chain: list[str] = []
    for diff_id in diff_ids:
        if not chain:
            chain.append(diff_id)
        else:
            chain.append("sha256:" + hashlib.sha256(f"{chain[-1]} {diff_id}".encode()).hexdigest())
    return chain


class Unpacker:
    def __init__(self, content: ContentStore, snapshots: OverlaySnapshotter) -> None:
        self.content = content
        self.snapshots = snapshots
        self._locks: dict[str, asyncio.Lock] = {}

    async def unpack(self, layer_digests: Sequence[str], diff_ids: Sequence[str]) -> str | None:
        """Make sure every layer is a committed snapshot; return the top chain id (None: no layers)."""
        if len(layer_digests) != len(diff_ids):
            raise InvalidArgument("image config has a different number of diff ids than the manifest has layers")
        chain = chain_ids(diff_ids)
        parent: str | None = None
        for digest, diff_id, chain_id in zip(layer_digests, diff_ids, chain, strict=True):
            lock = self._locks.setdefault(chain_id, asyncio.Lock())
            async with lock:
                if not self.snapshots.exists(chain_id):
                    await self._apply(Digest(digest), diff_id, chain_id, parent)
            parent = chain_id
        return parent

    async def _apply(self, digest: Digest, diff_id: str, chain_id: str, parent: str | None) -> None:
        key = f"extract-{uuid.uuid4().hex}"
        await asyncio.to_thread(self.snapshots.prepare, key, parent)
        try:
            target = self.snapshots.fs_dir(key)
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-I", "-m", "minicloud.engine.snapshots.untar",
                str(self.content.blob_path(digest)), str(target),
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            out, err = await proc.communicate()
            try:
                result = json.loads(out.decode().strip().splitlines()[-1])
            except (ValueError, IndexError):
                raise EngineError(f"failed to register layer {digest}: {err.decode(errors='replace')[-500:]}") from None
            if "error" in result:
                raise EngineError(f"failed to register layer: {result['error']}")
            if result["diff_id"] != diff_id:
                raise InvalidArgument(f"failed to register layer: layer {digest} unpacks to {result['diff_id']}, "
                                      f"but the image config expects {diff_id}")
            await asyncio.to_thread(self.snapshots.commit, chain_id, key, int(result.get("size") or 0))
        except BaseException:
            await asyncio.to_thread(self._discard, key)
            raise

    def unpacked_size(self, diff_ids: Sequence[str]) -> int | None:
        """Bytes of an image's unpacked layers (Docker's image size); None until it is unpacked."""
        total = 0
        for chain_id in chain_ids(diff_ids):
            if not self.snapshots.exists(chain_id):
                return None
            total += self.snapshots.stat(chain_id).size
        return total

    def _discard(self, key: str) -> None:
        if self.snapshots.exists(key):
            self.snapshots.remove(key)
