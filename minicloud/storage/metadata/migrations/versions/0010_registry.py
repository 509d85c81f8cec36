"""The container registry (OCI Distribution and ECR): repositories, blob links, manifests, tags, uploads.

Revision ID: 0010_registry
Revises: 0003_sts_organizations
"""

import sqlalchemy as sa
from alembic import op

from minicloud.storage.metadata.schema import UtcDateTime

revision = "0010_registry"
down_revision = "0003_sts_organizations"



def upgrade() -> None:
    op.create_table(
        "registry_repositories",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("account_id", sa.String(12), nullable=False),
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("tag_mutability", sa.String(16), nullable=False),
        sa.Column("scan_on_push", sa.Boolean, nullable=False),
        sa.Column("encryption_type", sa.String(16), nullable=False),
        sa.Column("kms_key", sa.String(2048), nullable=True),
        sa.Column("policy", sa.Text, nullable=True),
        sa.Column("lifecycle_policy", sa.Text, nullable=True),
        sa.Column("tags", sa.Text, nullable=False),
        sa.UniqueConstraint("name", name="uq_registry_repositories_name"),
    )
    op.create_index("ix_registry_repositories_account_id", "registry_repositories", ["account_id"])
    op.create_table(
        "registry_blob_links",
        sa.Column("repository_id", sa.Integer,
                  sa.ForeignKey("registry_repositories.id", ondelete="CASCADE",
                                name="fk_registry_blob_links_repository_id_registry_repositories"),
                  primary_key=True),
        sa.Column("digest", sa.String(160), primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
    )
    op.create_index("ix_registry_blob_links_digest", "registry_blob_links", ["digest"])
    op.create_table(
        "registry_manifests",
        sa.Column("repository_id", sa.Integer,
                  sa.ForeignKey("registry_repositories.id", ondelete="CASCADE",
                                name="fk_registry_manifests_repository_id_registry_repositories"),
                  primary_key=True),
        sa.Column("digest", sa.String(160), primary_key=True),
        sa.Column("media_type", sa.String(255), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("content", sa.LargeBinary, nullable=False),
        sa.Column("artifact_type", sa.String(255), nullable=True),
        sa.Column("subject", sa.String(160), nullable=True),
        sa.Column("annotations", sa.Text, nullable=True),
        sa.Column("image_size", sa.BigInteger, nullable=False),
        sa.Column("pushed_at", UtcDateTime, nullable=False),
    )
    op.create_index("ix_registry_manifests_subject", "registry_manifests", ["repository_id", "subject"])
    op.create_table(
        "registry_tags",
        sa.Column("repository_id", sa.Integer,
                  sa.ForeignKey("registry_repositories.id", ondelete="CASCADE",
                                name="fk_registry_tags_repository_id_registry_repositories"),
                  primary_key=True),
        sa.Column("tag", sa.String(128), primary_key=True),
        sa.Column("digest", sa.String(160), nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
    )
    op.create_index("ix_registry_tags_digest", "registry_tags", ["repository_id", "digest"])
    op.create_table(
        "registry_uploads",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("repository_id", sa.Integer,
                  sa.ForeignKey("registry_repositories.id", ondelete="CASCADE",
                                name="fk_registry_uploads_repository_id_registry_repositories"),
                  nullable=False),
        sa.Column("started_at", UtcDateTime, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
    )
    op.create_index("ix_registry_uploads_repository_id", "registry_uploads", ["repository_id"])


def downgrade() -> None:
    for table in ("registry_uploads", "registry_tags", "registry_manifests", "registry_blob_links",
                  "registry_repositories"):
        op.drop_table(table)
