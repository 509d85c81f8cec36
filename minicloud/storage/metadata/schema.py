"""The metadata schema: one SQLAlchemy MetaData that every domain's tables register on.

Domains declare their tables in their own modules (``minicloud/iam/tables.py``, ...) against
``metadata`` here; migrations under ``migrations/versions`` create them. Core tables live here.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime stored in the metadata store")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("account_id", sa.String(12), primary_key=True),
    sa.Column("name", sa.String(50), nullable=False),
    sa.Column("email", sa.String(64), nullable=False, unique=True),
    sa.Column("status", sa.String(16), nullable=False, default="ACTIVE"),
    sa.Column("management", sa.Boolean, nullable=False, default=False),
    sa.Column("joined_method", sa.String(16), nullable=False, default="CREATED"),
    sa.Column("created_at", UtcDateTime, nullable=False),
)

# Access keys of every kind of long-term principal: an account's root user or an IAM user.
access_keys = sa.Table(
    "access_keys",
    metadata,
    sa.Column("access_key_id", sa.String(32), primary_key=True),
    sa.Column("secret_access_key", sa.String(64), nullable=False),
    sa.Column("account_id", sa.String(12), sa.ForeignKey("accounts.account_id"), nullable=False,
              index=True),
    sa.Column("user_id", sa.String(32), nullable=True, index=True),  # NULL: the account's root user
    sa.Column("status", sa.String(16), nullable=False, default="Active"),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("last_used_at", UtcDateTime, nullable=True),
    sa.Column("last_used_service", sa.String(64), nullable=True),
    sa.Column("last_used_region", sa.String(32), nullable=True),
)

# Leader leases for controllers: one row per lease name, held by one process at a time.
leases = sa.Table(
    "leases",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("holder", sa.String(64), nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=False),
)
