"""The management console's sign-in sessions.

Revision ID: 0050_console
Revises: 0020_s3
"""

import sqlalchemy as sa
from alembic import op

from minicloud.storage.metadata.schema import UtcDateTime

revision = "0050_console"
down_revision = "0020_s3"
branch_labels = ("console",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "console_sessions",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("principal_kind", sa.String(16), nullable=False),
        sa.Column("account_id", sa.String(12), nullable=False),
        sa.Column("user_id", sa.String(32), nullable=True),
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("last_seen_at", UtcDateTime, nullable=False),
        sa.Column("expires_at", UtcDateTime, nullable=False),
        sa.Column("flash", sa.Text, nullable=True),
    )
    op.create_index("ix_console_sessions_expires_at", "console_sessions", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_console_sessions_expires_at", "console_sessions")
    op.drop_table("console_sessions")
