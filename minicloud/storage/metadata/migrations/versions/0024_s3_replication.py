"""S3 replication: each object version's x-amz-replication-status (None, PENDING, COMPLETED,
FAILED or REPLICA), and a partial index of the versions still PENDING, which the replication
controller works through (the index holds only those: a write that replicates nothing never
touches it).

Revision ID: 0024_s3_replication
Revises: 0022_s3_bucket_configs
"""

import sqlalchemy as sa
from alembic import op

revision = "0024_s3_replication"
down_revision = "0022_s3_bucket_configs"

_PENDING = sa.text("replication_status = 'PENDING'")


def upgrade() -> None:
    with op.batch_alter_table("s3_objects") as batch:
        batch.add_column(sa.Column("replication_status", sa.String(16), nullable=True))
    op.create_index("ix_s3_objects_replication_pending", "s3_objects", ["id"],
                    sqlite_where=_PENDING, postgresql_where=_PENDING)


def downgrade() -> None:
    op.drop_index("ix_s3_objects_replication_pending", table_name="s3_objects")
    with op.batch_alter_table("s3_objects") as batch:
        batch.drop_column("replication_status")
