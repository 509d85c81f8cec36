"""The registry's records: repositories hold links to global blobs, manifests, tags, uploads.

Blob bytes live in the blob store (content-addressed, shared by every repository); a repository
only links the digests it may serve. Manifests are small (at most a few MiB) and are kept here
with their bytes, so that a manifest GET is one metadata read and a push is one transaction.
"""

from __future__ import annotations

import sqlalchemy as sa

from minicloud.storage.metadata.schema import UtcDateTime, metadata

repositories = sa.Table(
    "registry_repositories",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(256), nullable=False, unique=True),
    sa.Column("account_id", sa.String(12), nullable=False, index=True),
    sa.Column("region", sa.String(32), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("tag_mutability", sa.String(16), nullable=False, default="MUTABLE"),
    sa.Column("scan_on_push", sa.Boolean, nullable=False, default=False),
    sa.Column("encryption_type", sa.String(16), nullable=False, default="AES256"),
    sa.Column("kms_key", sa.String(2048), nullable=True),
    sa.Column("policy", sa.Text, nullable=True),
    sa.Column("lifecycle_policy", sa.Text, nullable=True),
    sa.Column("tags", sa.Text, nullable=False, default="[]"),  # resource tags, JSON [{Key, Value}]
)

blob_links = sa.Table(
    "registry_blob_links",
    metadata,
    sa.Column("repository_id", sa.Integer, sa.ForeignKey("registry_repositories.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("digest", sa.String(160), primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Index("ix_registry_blob_links_digest", "digest"),
)

manifests = sa.Table(
    "registry_manifests",
    metadata,
    sa.Column("repository_id", sa.Integer, sa.ForeignKey("registry_repositories.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("digest", sa.String(160), primary_key=True),
    sa.Column("media_type", sa.String(255), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("content", sa.LargeBinary, nullable=False),
    sa.Column("artifact_type", sa.String(255), nullable=True),
    sa.Column("subject", sa.String(160), nullable=True),
    sa.Column("annotations", sa.Text, nullable=True),  # JSON, for the referrers API
    sa.Column("image_size", sa.BigInteger, nullable=False, default=0),
    sa.Column("pushed_at", UtcDateTime, nullable=False),
    sa.Index("ix_registry_manifests_subject", "repository_id", "subject"),
)

tags = sa.Table(
    "registry_tags",
    metadata,
    sa.Column("repository_id", sa.Integer, sa.ForeignKey("registry_repositories.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("tag", sa.String(128), primary_key=True),
    sa.Column("digest", sa.String(160), nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Index("ix_registry_tags_digest", "repository_id", "digest"),
)

uploads = sa.Table(
    "registry_uploads",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("repository_id", sa.Integer, sa.ForeignKey("registry_repositories.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("started_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)
