"""CloudWatch Logs: log groups (with their retention), streams and events.

Revision ID: 0045_logs
Revises: 0020_s3
"""

import sqlalchemy as sa
from alembic import op

from minicloud.storage.metadata.schema import UtcDateTime

revision = "0045_logs"
down_revision = "0020_s3"
branch_labels = ("logs",)
depends_on = None

ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "logs_groups",
        sa.Column("id", ROW_ID, primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.String(12), nullable=False),
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("name", sa.String(512), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("retention_days", sa.Integer, nullable=True),
        sa.Column("tags", sa.Text, nullable=False),
        sa.UniqueConstraint("account_id", "region", "name", name="uq_logs_groups_name"),
    )
    op.create_table(
        "logs_streams",
        sa.Column("id", ROW_ID, primary_key=True, autoincrement=True),
        sa.Column("group_id", ROW_ID, sa.ForeignKey("logs_groups.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(512), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("first_event", sa.BigInteger, nullable=True),
        sa.Column("last_event", sa.BigInteger, nullable=True),
        sa.Column("last_ingestion", sa.BigInteger, nullable=True),
        sa.Column("stored_bytes", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("group_id", "name", name="uq_logs_streams_name"),
    )
    op.create_table(
        "logs_events",
        sa.Column("id", ROW_ID, primary_key=True, autoincrement=True),
        sa.Column("group_id", ROW_ID, sa.ForeignKey("logs_groups.id", ondelete="CASCADE"), nullable=False),
        sa.Column("stream_id", ROW_ID, sa.ForeignKey("logs_streams.id", ondelete="CASCADE"), nullable=False),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
        sa.Column("ingestion_time", sa.BigInteger, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
    )
    op.create_index("ix_logs_events_stream_time", "logs_events", ["stream_id", "timestamp", "id"])
    op.create_index("ix_logs_events_group_time", "logs_events", ["group_id", "timestamp", "id"])


def downgrade() -> None:
    op.drop_index("ix_logs_events_group_time", "logs_events")
    op.drop_index("ix_logs_events_stream_time", "logs_events")
    for table in ("logs_events", "logs_streams", "logs_groups"):
        op.drop_table(table)
