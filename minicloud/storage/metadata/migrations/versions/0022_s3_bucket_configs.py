"""S3 bucket configurations: transfer acceleration, request payment, server access logging,
replication and static website hosting (JSON documents, None when unset).

Revision ID: 0022_s3_bucket_configs
Revises: 0021_s3_features
"""

import sqlalchemy as sa
from alembic import op

revision = "0022_s3_bucket_configs"
down_revision = "0021_s3_features"

_BUCKET_COLUMNS = ("accelerate", "request_payment", "logging", "replication", "website")


def upgrade() -> None:
    with op.batch_alter_table("s3_buckets") as batch:
        for name in _BUCKET_COLUMNS:
            batch.add_column(sa.Column(name, sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("s3_buckets") as batch:
        for name in _BUCKET_COLUMNS:
            batch.drop_column(name)
