"""Lambda: functions, versions, aliases, function URLs, the asynchronous invocation queue.

Revision ID: 0040_lambda
Revises: 0020_s3
"""

import sqlalchemy as sa
from alembic import op

from minicloud.storage.metadata.schema import UtcDateTime

revision = "0040_lambda"
down_revision = "0020_s3"
branch_labels = ("lambda",)
depends_on = None

ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _function_id() -> sa.Column[str]:
    return sa.Column("function_id", sa.String(32), sa.ForeignKey("lambda_functions.id", ondelete="CASCADE"),
                     primary_key=True)


def upgrade() -> None:
    op.create_table(
        "lambda_functions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("account_id", sa.String(12), nullable=False),
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("arn", sa.String(256), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("tags", sa.Text, nullable=False),
        sa.Column("policy", sa.Text, nullable=True),
        sa.Column("reserved_concurrency", sa.Integer, nullable=True),
        sa.Column("next_version", sa.Integer, nullable=False),
        sa.UniqueConstraint("account_id", "region", "name", name="uq_lambda_functions_name"),
    )
    op.create_table(
        "lambda_versions", _function_id(),
        sa.Column("version", sa.String(16), primary_key=True),
        sa.Column("config", sa.Text, nullable=False),
        sa.Column("code_sha256", sa.String(64), nullable=True),
    )
    op.create_table(
        "lambda_aliases", _function_id(),
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("version", sa.String(16), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("routing", sa.Text, nullable=True),
        sa.Column("revision_id", sa.String(36), nullable=False),
    )
    op.create_table(
        "lambda_urls",
        sa.Column("url_id", sa.String(32), primary_key=True),
        sa.Column("function_id", sa.String(32), sa.ForeignKey("lambda_functions.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("qualifier", sa.String(128), nullable=False),
        sa.Column("auth_type", sa.String(16), nullable=False),
        sa.Column("cors", sa.Text, nullable=True),
        sa.Column("invoke_mode", sa.String(32), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("modified_at", UtcDateTime, nullable=False),
        sa.UniqueConstraint("function_id", "qualifier", name="uq_lambda_urls_qualifier"),
    )
    op.create_table(
        "lambda_event_queue",
        sa.Column("id", ROW_ID, primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.String(12), nullable=False),
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("function_name", sa.String(64), nullable=False),
        sa.Column("qualifier", sa.String(128), nullable=False),
        sa.Column("request_id", sa.String(36), nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("not_before", UtcDateTime, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
    )
    op.create_index("ix_lambda_event_queue_not_before", "lambda_event_queue", ["not_before"])


def downgrade() -> None:
    op.drop_index("ix_lambda_event_queue_not_before", "lambda_event_queue")
    for table in ("lambda_event_queue", "lambda_urls", "lambda_aliases", "lambda_versions", "lambda_functions"):
        op.drop_table(table)
