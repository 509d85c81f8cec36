"""S3 restores of archived objects (GLACIER, DEEP_ARCHIVE): each object version's restore as a
JSON document (in progress, or done with its copy's expiry), and when the restore controller must
next look at it (the restore's end, then its copy's expiry), indexed so that it finds those due
without reading every object (a partial index: the versions without a restore, nearly all of
them, are not in it and cost a PUT nothing).

Revision ID: 0022_s3_restore
Revises: 0021_s3_features
"""

import sqlalchemy as sa
from alembic import op

from minicloud.storage.metadata.schema import UtcDateTime

revision = "0022_s3_restore"
down_revision = "0021_s3_features"

_RESTORING = sa.text("restore_due IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("s3_objects") as batch:
        batch.add_column(sa.Column("restore", sa.Text, nullable=True))
        batch.add_column(sa.Column("restore_due", UtcDateTime, nullable=True))
    op.create_index("ix_s3_objects_restore_due", "s3_objects", ["restore_due"],
                    sqlite_where=_RESTORING, postgresql_where=_RESTORING)


def downgrade() -> None:
    op.drop_index("ix_s3_objects_restore_due", table_name="s3_objects")
    with op.batch_alter_table("s3_objects") as batch:
        batch.drop_column("restore_due")
        batch.drop_column("restore")
