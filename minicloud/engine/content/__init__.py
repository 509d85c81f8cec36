"""Blobs by digest: ingest to a temporary file, verify size and digest, fsync, rename, read-only."""

from minicloud.engine.content.store import BlobInfo, ContentStore, Digest, DigestMismatch, Writer

__all__ = ["BlobInfo", "ContentStore", "Digest", "DigestMismatch", "Writer"]
