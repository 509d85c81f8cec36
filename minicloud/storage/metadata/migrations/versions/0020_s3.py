"""S3: buckets, object versions, blob reference counts, multipart uploads and their parts.

Revision ID: 0020_s3
Revises: 0010_registry
"""

import sqlalchemy as sa
from alembic import op

from minicloud.storage.metadata.schema import UtcDateTime

revision = "0020_s3"
down_revision = "0010_registry"


def _key(length: int) -> sa.types.TypeEngine[str]:
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


_ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "s3_buckets",
        sa.Column("name", sa.String(63), primary_key=True),
        sa.Column("account_id", sa.String(12), nullable=False),
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("versioning", sa.String(16), nullable=True),
        sa.Column("policy", sa.Text, nullable=True),
        sa.Column("tags", sa.Text, nullable=True),
        sa.Column("cors", sa.Text, nullable=True),
    )
    op.create_index("ix_s3_buckets_account_id", "s3_buckets", ["account_id"])
    op.create_table(
        "s3_objects",
        sa.Column("id", _ROW_ID, primary_key=True, autoincrement=True),
        sa.Column("bucket", sa.String(63), nullable=False),
        sa.Column("key", _key(1024), nullable=False),
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
        sa.Column("meta", sa.Text, nullable=True),
        sa.Column("checksums", sa.Text, nullable=True),
        sa.Column("tags", sa.Text, nullable=True),
    )
    op.create_index("ix_s3_objects_bucket_key_id", "s3_objects", ["bucket", "key", "id"])
    op.create_index("ix_s3_objects_bucket_latest_key", "s3_objects", ["bucket", "latest", "key"])
    op.create_table(
        "s3_blobs",
        sa.Column("digest", sa.String(80), primary_key=True),
        sa.Column("refs", sa.Integer, nullable=False),
    )
    op.create_table(
        "s3_uploads",
        sa.Column("upload_id", sa.String(96), primary_key=True),
        sa.Column("bucket", sa.String(63), nullable=False),
        sa.Column("key", _key(1024), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("storage_class", sa.String(32), nullable=False),
        sa.Column("owner", sa.String(12), nullable=False),
        sa.Column("meta", sa.Text, nullable=True),
        sa.Column("checksum_algorithm", sa.String(16), nullable=True),
        sa.Column("tags", sa.Text, nullable=True),
    )
    op.create_index("ix_s3_uploads_bucket_key_upload_id", "s3_uploads", ["bucket", "key", "upload_id"])
    op.create_table(
        "s3_upload_parts",
        sa.Column("upload_id", sa.String(96), primary_key=True),
        sa.Column("part_number", sa.Integer, primary_key=True),
        sa.Column("digest", sa.String(80), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("etag", sa.String(64), nullable=False),
        sa.Column("last_modified", UtcDateTime, nullable=False),
        sa.Column("checksums", sa.Text, nullable=True),
    )


def downgrade() -> None:
    for table in ("s3_upload_parts", "s3_uploads", "s3_blobs", "s3_objects", "s3_buckets"):
        op.drop_table(table)
