"""Content-addressed blobs, one replica root per availability zone (shared by the registry and S3)."""

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

__all__ = [
    "BlobError", "BlobInfo", "BlobNotFound", "BlobStore", "Digest", "DigestMismatch", "Ingest",
    "IngestStatus", "InvalidDigest", "NoReplicaAvailable", "OffsetMismatch", "Replica",
    "ReplicatedBlobStore", "ReplicatedIngest", "SizeMismatch", "WritePolicy",
]
