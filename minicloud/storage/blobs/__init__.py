"""Content-addressed blobs, one replica root per availability zone (shared by the registry and S3).

The names below are imported on first use (PEP 562): a process that needs only a part of the
package (the small-blob writer process: ``small``, ``core``, ``replica``) does not load the rest,
asyncio included.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from minicloud.storage.blobs.core import (
        BlobError,
        BlobInfo,
        BlobNotFound,
        BlobStore,
        Digest,
        DigestMismatch,
        Ingest,
        IngestStatus,
        InvalidDigest,
        NoReplicaAvailable,
        OffsetMismatch,
        SizeMismatch,
    )
    from minicloud.storage.blobs.replica import Replica
    from minicloud.storage.blobs.store import ReplicatedBlobStore, ReplicatedIngest, WritePolicy

_MODULE_OF = {
    **dict.fromkeys(["BlobError", "BlobInfo", "BlobNotFound", "BlobStore", "Digest", "DigestMismatch", "Ingest",
                     "IngestStatus", "InvalidDigest", "NoReplicaAvailable", "OffsetMismatch", "SizeMismatch"],
                    "core"),
    "Replica": "replica",
    **dict.fromkeys(["ReplicatedBlobStore", "ReplicatedIngest", "WritePolicy"], "store"),
}

__all__ = [
    "BlobError", "BlobInfo", "BlobNotFound", "BlobStore", "Digest", "DigestMismatch", "Ingest",
    "IngestStatus", "InvalidDigest", "NoReplicaAvailable", "OffsetMismatch", "Replica",
    "ReplicatedBlobStore", "ReplicatedIngest", "SizeMismatch", "WritePolicy",
]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
