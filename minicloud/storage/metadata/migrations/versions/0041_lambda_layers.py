"""Lambda layers: a layer per name (its next version number) and its published versions.

Revision ID: 0041_lambda_layers
Revises: 0040_lambda
"""

import sqlalchemy as sa
from alembic import op

revision = "0041_lambda_layers"
down_revision = "0040_lambda"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "lambda_layers",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("account_id", sa.String(12), nullable=False),
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("name", sa.String(140), nullable=False),
        sa.Column("next_version", sa.Integer, nullable=False),
        sa.UniqueConstraint("account_id", "region", "name", name="uq_lambda_layers_name"),
    )
    op.create_table(
        "lambda_layer_versions",
        sa.Column("layer_id", sa.String(32), sa.ForeignKey("lambda_layers.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("config", sa.Text, nullable=False),
        sa.Column("code_sha256", sa.String(64), nullable=False, index=True),
        sa.Column("unzipped_size", sa.BigInteger, nullable=False),
        sa.Column("policy", sa.Text, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("lambda_layer_versions")
    op.drop_table("lambda_layers")
