"""STS temporary credentials; Organizations' create-account requests.

Revision ID: 0003_sts_organizations
Revises: 0002_iam
"""

import sqlalchemy as sa
from alembic import op

from minicloud.storage.metadata.schema import UtcDateTime

revision = "0003_sts_organizations"
down_revision = "0002_iam"


def upgrade() -> None:
    op.create_table(
        "sts_sessions",
        sa.Column("access_key_id", sa.String(32), primary_key=True),
        sa.Column("secret_access_key", sa.String(64), nullable=False),
        sa.Column("session_token", sa.Text, nullable=False),
        sa.Column("account_id", sa.String(12), nullable=False),
        sa.Column("issued_by", sa.String(32), nullable=False),
        sa.Column("principal", sa.Text, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("expires_at", UtcDateTime, nullable=False),
    )
    op.create_index("ix_sts_sessions_account_id", "sts_sessions", ["account_id"])
    op.create_index("ix_sts_sessions_expires_at", "sts_sessions", ["expires_at"])
    op.create_table(
        "create_account_requests",
        sa.Column("request_id", sa.String(64), primary_key=True),
        sa.Column("management_account_id", sa.String(12), nullable=False),
        sa.Column("account_name", sa.String(50), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("account_id", sa.String(12), nullable=True),
        sa.Column("failure_reason", sa.String(64), nullable=True),
        sa.Column("requested_at", UtcDateTime, nullable=False),
        sa.Column("completed_at", UtcDateTime, nullable=True),
    )
    op.create_index("ix_create_account_requests_management_account_id", "create_account_requests",
                    ["management_account_id"])


def downgrade() -> None:
    op.drop_table("create_account_requests")
    op.drop_table("sts_sessions")
