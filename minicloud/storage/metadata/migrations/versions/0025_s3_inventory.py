"""S3 Inventory: each bucket's inventory configurations, and when each last delivered a report
(one JSON document, None when the bucket has none).

Revision ID: 0025_s3_inventory
Revises: 0022_s3_bucket_configs
"""

import sqlalchemy as sa
from alembic import op

revision = "0025_s3_inventory"
down_revision = "0022_s3_bucket_configs"


def upgrade() -> None:
    with op.batch_alter_table("s3_buckets") as batch:
        batch.add_column(sa.Column("inventory", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("s3_buckets") as batch:
        batch.drop_column("inventory")
