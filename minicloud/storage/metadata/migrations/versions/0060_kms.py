"""KMS: keys (wrapped key material, key policy, tags, state) and aliases.

Revision ID: 0060_kms
Revises: 0020_s3
"""

import sqlalchemy as sa
from alembic import op

from minicloud.storage.metadata.schema import UtcDateTime

revision = "0060_kms"
down_revision = "0020_s3"
branch_labels = ("kms",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "kms_keys",
        sa.Column("key_id", sa.String(36), primary_key=True),
        sa.Column("account_id", sa.String(12), nullable=False),
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("manager", sa.String(16), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("deletion_date", UtcDateTime, nullable=True),
        sa.Column("pending_days", sa.Integer, nullable=True),
        sa.Column("policy", sa.Text, nullable=False),
        sa.Column("tags", sa.Text, nullable=False),
        sa.Column("material", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_kms_keys_account", "kms_keys", ["account_id", "region", "key_id"])
    op.create_table(
        "kms_aliases",
        sa.Column("account_id", sa.String(12), primary_key=True),
        sa.Column("region", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(256), primary_key=True),
        sa.Column("key_id", sa.String(36), sa.ForeignKey("kms_keys.key_id", ondelete="CASCADE"), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("kms_aliases")
    op.drop_index("ix_kms_keys_account", "kms_keys")
    op.drop_table("kms_keys")
