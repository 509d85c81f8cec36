"""KMS's metadata tables (created by migration ``0060_kms``).

    kms_keys     one row per KMS key: its metadata, key policy, tags, and its key material
                 wrapped (AES-256-GCM) by the KMS master key (never stored in the clear)
    kms_aliases  alias names (``alias/...``) of an account and region, each pointing at a key
"""

from __future__ import annotations

import sqlalchemy as sa

from minicloud.storage.metadata.schema import UtcDateTime, metadata

kms_keys = sa.Table(
    "kms_keys", metadata,
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
    sa.Index("ix_kms_keys_account", "account_id", "region", "key_id"),
)

kms_aliases = sa.Table(
    "kms_aliases", metadata,
    sa.Column("account_id", sa.String(12), primary_key=True),
    sa.Column("region", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(256), primary_key=True),
    sa.Column("key_id", sa.String(36), sa.ForeignKey("kms_keys.key_id", ondelete="CASCADE"), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)
