"""S3's metadata tables (created by migration ``0020_s3``).

    s3_buckets        one row per bucket: owner, region, versioning, policy, tags, CORS
    s3_objects        one row per object version (``version_id`` "null" when unversioned);
                      ``latest`` marks the current version; a delete marker has no data.
                      Data is one blob (``digest``) or, after a multipart upload, ``parts``:
                      a JSON list of [digest, size] in order.
    s3_blobs          reference counts of blobs: a blob is deleted when its count reaches zero
    s3_uploads        multipart uploads in progress
    s3_upload_parts   their parts, each a blob
    s3_event_outbox   S3 event messages for Lambda (written here, drained by the Lambda service;
                      addressed with a lightweight ``sa.table`` so that either side may declare it)

Keys compare as bytes (S3 lists in UTF-8 binary order): SQLite's default collation does so,
PostgreSQL is told ``COLLATE "C"``.
"""

from __future__ import annotations

import sqlalchemy as sa

from minicloud.storage.metadata.schema import UtcDateTime, metadata


def key_type(length: int) -> sa.types.TypeEngine[str]:
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

s3_buckets = sa.Table(
    "s3_buckets", metadata,
    sa.Column("name", sa.String(63), primary_key=True),
    sa.Column("account_id", sa.String(12), nullable=False, index=True),
    sa.Column("region", sa.String(32), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("versioning", sa.String(16), nullable=True),  # None, Enabled, Suspended
    sa.Column("policy", sa.Text, nullable=True),
    sa.Column("tags", sa.Text, nullable=True),  # JSON [[key, value], ...]
    sa.Column("cors", sa.Text, nullable=True),  # JSON list of rules
    # from 0021_s3_features: JSON documents of each configuration, None when unset
    sa.Column("encryption", sa.Text, nullable=True),
    sa.Column("object_lock", sa.Text, nullable=True),
    sa.Column("lifecycle", sa.Text, nullable=True),
    sa.Column("notification", sa.Text, nullable=True),
    sa.Column("acl", sa.Text, nullable=True),
    sa.Column("ownership", sa.Text, nullable=True),
    sa.Column("public_access_block", sa.Text, nullable=True),
    # from 0022_s3_bucket_configs
    sa.Column("accelerate", sa.Text, nullable=True),
    sa.Column("request_payment", sa.Text, nullable=True),
    sa.Column("logging", sa.Text, nullable=True),
    sa.Column("replication", sa.Text, nullable=True),
    sa.Column("website", sa.Text, nullable=True),
    # from 0025_s3_inventory: {"configurations": {id: configuration}, "runs": {id: ISO-8601}}
    sa.Column("inventory", sa.Text, nullable=True),
)

s3_objects = sa.Table(
    "s3_objects", metadata,
    sa.Column("id", ROW_ID, primary_key=True, autoincrement=True),
    sa.Column("bucket", sa.String(63), nullable=False),
    sa.Column("key", key_type(1024), nullable=False),
    sa.Column("version_id", sa.String(64), nullable=False),
    sa.Column("latest", sa.Boolean, nullable=False),
    sa.Column("delete_marker", sa.Boolean, nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("etag", sa.String(64), nullable=False),
    sa.Column("last_modified", UtcDateTime, nullable=False),
    sa.Column("storage_class", sa.String(32), nullable=False),
    sa.Column("owner", sa.String(12), nullable=False),
    sa.Column("digest", sa.String(80), nullable=True),
    sa.Column("parts", sa.Text, nullable=True),
    sa.Column("meta", sa.Text, nullable=True),  # JSON: content headers and user metadata
    sa.Column("checksums", sa.Text, nullable=True),  # JSON {"CRC32": "...", "type": ...}
    sa.Column("tags", sa.Text, nullable=True),
    sa.Column("encryption", sa.Text, nullable=True),  # JSON: SSE algorithm, wrapped data key, SSE-C key HMAC
    sa.Column("lock", sa.Text, nullable=True),  # JSON: retention mode/until, legal hold
    sa.Column("acl", sa.Text, nullable=True),  # JSON grants
    # from 0024_s3_replication: x-amz-replication-status (PENDING, COMPLETED, FAILED, REPLICA), None if none
    sa.Column("replication_status", sa.String(16), nullable=True),
    # from 0022_s3_restore: an archived version's restore (JSON, see ``archive.Restore``) and when
    # the restore controller must next look at it (the restore's end, then its copy's expiry)
    sa.Column("restore", sa.Text, nullable=True),
    sa.Column("restore_due", UtcDateTime, nullable=True),
    sa.Index("ix_s3_objects_bucket_key_id", "bucket", "key", "id"),
    sa.Index("ix_s3_objects_bucket_latest_key", "bucket", "latest", "key"),
    sa.Index("ix_s3_objects_replication_pending", "id", sqlite_where=sa.text("replication_status = 'PENDING'"),
             postgresql_where=sa.text("replication_status = 'PENDING'")),
    # (partial: only versions with a restore to look at pay for it, not every PUT)
    sa.Index("ix_s3_objects_restore_due", "restore_due", sqlite_where=sa.text("restore_due IS NOT NULL"),
             postgresql_where=sa.text("restore_due IS NOT NULL")),
)

# from 0026_s3_replication_syncs: metadata changes (tags, ACL, Object Lock) of a version, waiting for
# the replication controller to copy them to the version's other copy (see ``metadata_sync``); written
# in the transaction of the change itself, deleted in the one that copies it
s3_replication_syncs = sa.Table(
    "s3_replication_syncs", metadata,
    sa.Column("id", ROW_ID, primary_key=True, autoincrement=True),
    sa.Column("bucket", sa.String(63), nullable=False),
    sa.Column("key", key_type(1024), nullable=False),
    sa.Column("version_id", sa.String(64), nullable=False),
    sa.Column("field", sa.String(16), nullable=False),  # tags, acl or lock
    sa.Column("origin", sa.String(16), nullable=False),  # the version's status before: PENDING, COMPLETED, REPLICA
    sa.Index("ix_s3_replication_syncs_version", "bucket", "key", "version_id", "id"),
)

s3_blobs = sa.Table(
    "s3_blobs", metadata,
    sa.Column("digest", sa.String(80), primary_key=True),
    sa.Column("refs", sa.Integer, nullable=False),
)

s3_uploads = sa.Table(
    "s3_uploads", metadata,
    sa.Column("upload_id", sa.String(96), primary_key=True),
    sa.Column("bucket", sa.String(63), nullable=False),
    sa.Column("key", key_type(1024), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("storage_class", sa.String(32), nullable=False),
    sa.Column("owner", sa.String(12), nullable=False),
    sa.Column("meta", sa.Text, nullable=True),
    sa.Column("checksum_algorithm", sa.String(16), nullable=True),
    sa.Column("tags", sa.Text, nullable=True),
    sa.Column("extra", sa.Text, nullable=True),  # JSON: encryption, lock and ACL for the object
    sa.Index("ix_s3_uploads_bucket_key_upload_id", "bucket", "key", "upload_id"),
)

s3_upload_parts = sa.Table(
    "s3_upload_parts", metadata,
    sa.Column("upload_id", sa.String(96), primary_key=True),
    sa.Column("part_number", sa.Integer, primary_key=True),
    sa.Column("digest", sa.String(80), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("etag", sa.String(64), nullable=False),
    sa.Column("last_modified", UtcDateTime, nullable=False),
    sa.Column("checksums", sa.Text, nullable=True),
)


s3_event_outbox = sa.table(
    "s3_event_outbox",
    sa.column("id", sa.Integer), sa.column("account_id", sa.Text), sa.column("region", sa.Text),
    sa.column("function_arn", sa.Text), sa.column("bucket", sa.Text), sa.column("event_json", sa.Text),
    sa.column("created_at", UtcDateTime),
)
