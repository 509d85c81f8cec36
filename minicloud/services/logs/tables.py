"""CloudWatch Logs' metadata tables (created by migration ``0045_logs``).

    logs_groups   one row per log group: retention (days, None = never expire), tags
    logs_streams  streams of a group, with their first/last event and last ingestion times
    logs_events   the events, indexed by stream and by group, each by timestamp
"""

from __future__ import annotations

import sqlalchemy as sa

from minicloud.storage.metadata.schema import UtcDateTime, metadata

ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

logs_groups = sa.Table(
    "logs_groups", metadata,
    sa.Column("id", ROW_ID, primary_key=True, autoincrement=True),
    sa.Column("account_id", sa.String(12), nullable=False),
    sa.Column("region", sa.String(32), nullable=False),
    sa.Column("name", sa.String(512), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("retention_days", sa.Integer, nullable=True),
    sa.Column("tags", sa.Text, nullable=False),
    sa.UniqueConstraint("account_id", "region", "name", name="uq_logs_groups_name"),
)

logs_streams = sa.Table(
    "logs_streams", metadata,
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

logs_events = sa.Table(
    "logs_events", metadata,
    sa.Column("id", ROW_ID, primary_key=True, autoincrement=True),
    sa.Column("group_id", ROW_ID, sa.ForeignKey("logs_groups.id", ondelete="CASCADE"), nullable=False),
    sa.Column("stream_id", ROW_ID, sa.ForeignKey("logs_streams.id", ondelete="CASCADE"), nullable=False),
    sa.Column("timestamp", sa.BigInteger, nullable=False),
    sa.Column("ingestion_time", sa.BigInteger, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Index("ix_logs_events_stream_time", "stream_id", "timestamp", "id"),
    sa.Index("ix_logs_events_group_time", "group_id", "timestamp", "id"),
)
