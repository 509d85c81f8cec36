"""EC2 and VPC: resources as JSON documents, public addresses in use.

Revision ID: 0030_ec2
Revises: 0020_s3
"""

import sqlalchemy as sa
from alembic import op

from minicloud.storage.metadata.schema import UtcDateTime

revision = "0030_ec2"
down_revision = "0020_s3"
branch_labels = ("ec2",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ec2_resources",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("account_id", sa.String(12), nullable=False),
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("vpc_id", sa.String(32), nullable=True),
        sa.Column("state", sa.String(16), nullable=True),
        sa.Column("name", sa.String(255), nullable=True),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.Column("doc", sa.Text, nullable=False),
    )
    op.create_index("ix_ec2_resources_account_id_region_kind", "ec2_resources", ["account_id", "region", "kind"])
    op.create_index("ix_ec2_resources_kind_state", "ec2_resources", ["kind", "state"])
    op.create_index("ix_ec2_resources_vpc_id", "ec2_resources", ["vpc_id"])
    op.create_table(
        "ec2_public_ips",
        sa.Column("address", sa.String(15), primary_key=True),
        sa.Column("account_id", sa.String(12), nullable=False),
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("owner_id", sa.String(64), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ec2_public_ips")
    op.drop_index("ix_ec2_resources_vpc_id", "ec2_resources")
    op.drop_index("ix_ec2_resources_kind_state", "ec2_resources")
    op.drop_index("ix_ec2_resources_account_id_region_kind", "ec2_resources")
    op.drop_table("ec2_resources")
