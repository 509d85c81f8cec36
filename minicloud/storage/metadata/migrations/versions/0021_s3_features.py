"""S3 features: default encryption, Object Lock, ACLs, ownership controls, public access block,
lifecycle and notification configuration on buckets; encryption, lock and ACL on objects and
uploads; and ``s3_event_outbox``, the S3 event messages waiting for Lambda to deliver them.

Revision ID: 0021_s3_features
Revises: 0020_s3
"""

import sqlalchemy as sa
from alembic import op

from minicloud.storage.metadata.schema import UtcDateTime

revision = "0021_s3_features"
down_revision = "0020_s3"

_BUCKET_COLUMNS = ("encryption", "object_lock", "lifecycle", "notification", "acl", "ownership",
                   "public_access_block")
_OBJECT_COLUMNS = ("encryption", "lock", "acl")


def upgrade() -> None:
    with op.batch_alter_table("s3_buckets") as batch:
        for name in _BUCKET_COLUMNS:
            batch.add_column(sa.Column(name, sa.Text, nullable=True))
    with op.batch_alter_table("s3_objects") as batch:
        for name in _OBJECT_COLUMNS:
            batch.add_column(sa.Column(name, sa.Text, nullable=True))
    with op.batch_alter_table("s3_uploads") as batch:
        batch.add_column(sa.Column("extra", sa.Text, nullable=True))
    op.create_table(
        "s3_event_outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.Text, nullable=False),
        sa.Column("region", sa.Text, nullable=False),
        sa.Column("function_arn", sa.Text, nullable=False),
        sa.Column("bucket", sa.Text, nullable=False),
        sa.Column("event_json", sa.Text, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("s3_event_outbox")
    with op.batch_alter_table("s3_uploads") as batch:
        batch.drop_column("extra")
    with op.batch_alter_table("s3_objects") as batch:
        for name in _OBJECT_COLUMNS:
            batch.drop_column(name)
    with op.batch_alter_table("s3_buckets") as batch:
        for name in _BUCKET_COLUMNS:
            batch.drop_column(name)
