"""Organizations' own records (accounts themselves are the core ``accounts`` table)."""

from __future__ import annotations

import sqlalchemy as sa

from minicloud.storage.metadata.schema import UtcDateTime, metadata

create_account_requests = sa.Table(
    "create_account_requests",
    metadata,
    sa.Column("request_id", sa.String(64), primary_key=True),
    sa.Column("management_account_id", sa.String(12), nullable=False, index=True),
    sa.Column("account_name", sa.String(50), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("account_id", sa.String(12), nullable=True),
    sa.Column("failure_reason", sa.String(64), nullable=True),
    sa.Column("requested_at", UtcDateTime, nullable=False),
    sa.Column("completed_at", UtcDateTime, nullable=True),
)
