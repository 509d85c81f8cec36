"""S3 replication of metadata changes: the tag, ACL and Object Lock changes of replicated versions
(and of replicas, under ReplicaModifications) that the replication controller has still to copy to
the version's other copy, one row per change, written with the change itself.

Revision ID: 0026_s3_replication_syncs
Revises: 0024_s3_replication
"""

import sqlalchemy as sa
from alembic import op

revision = "0026_s3_replication_syncs"
down_revision = "0024_s3_replication"

_ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_KEY = sa.String(1024).with_variant(sa.String(1024, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "s3_replication_syncs",
        sa.Column("id", _ROW_ID, primary_key=True, autoincrement=True),
        sa.Column("bucket", sa.String(63), nullable=False),
        sa.Column("key", _KEY, nullable=False),
        sa.Column("version_id", sa.String(64), nullable=False),
        sa.Column("field", sa.String(16), nullable=False),
        sa.Column("origin", sa.String(16), nullable=False),
    )
    op.create_index("ix_s3_replication_syncs_version", "s3_replication_syncs", ["bucket", "key", "version_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_s3_replication_syncs_version", table_name="s3_replication_syncs")
    op.drop_table("s3_replication_syncs")
