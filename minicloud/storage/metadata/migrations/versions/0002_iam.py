"""IAM: users, groups, roles, managed/inline policies, attachments, login profiles, instance
profiles, tags, account aliases.

Revision ID: 0002_iam
Revises: 0001_core
"""

import sqlalchemy as sa
from alembic import op

from minicloud.storage.metadata.schema import UtcDateTime

revision = "0002_iam"
down_revision = "0001_core"


def _account() -> sa.Column[str]:
    return sa.Column("account_id", sa.String(12), sa.ForeignKey("accounts.account_id"), nullable=False)


def upgrade() -> None:
    op.create_table(
        "iam_users",
        sa.Column("user_id", sa.String(32), primary_key=True),
        _account(),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("name_key", sa.String(64), nullable=False),
        sa.Column("path", sa.String(512), nullable=False),
        sa.Column("permissions_boundary", sa.String(2048), nullable=True),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("password_last_used", UtcDateTime, nullable=True),
        sa.UniqueConstraint("account_id", "name_key", name="uq_iam_users_account_id_name_key"),
    )
    op.create_table(
        "iam_groups",
        sa.Column("group_id", sa.String(32), primary_key=True),
        _account(),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("name_key", sa.String(128), nullable=False),
        sa.Column("path", sa.String(512), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.UniqueConstraint("account_id", "name_key", name="uq_iam_groups_account_id_name_key"),
    )
    op.create_table(
        "iam_group_members",
        sa.Column("group_id", sa.String(32), sa.ForeignKey("iam_groups.group_id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("user_id", sa.String(32), sa.ForeignKey("iam_users.user_id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("added_at", UtcDateTime, nullable=False),
    )
    op.create_index("ix_iam_group_members_user_id", "iam_group_members", ["user_id"])
    op.create_table(
        "iam_roles",
        sa.Column("role_id", sa.String(32), primary_key=True),
        _account(),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("name_key", sa.String(64), nullable=False),
        sa.Column("path", sa.String(512), nullable=False),
        sa.Column("assume_role_policy", sa.Text, nullable=False),
        sa.Column("description", sa.String(1000), nullable=True),
        sa.Column("max_session_duration", sa.Integer, nullable=False),
        sa.Column("permissions_boundary", sa.String(2048), nullable=True),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("last_used_at", UtcDateTime, nullable=True),
        sa.Column("last_used_region", sa.String(32), nullable=True),
        sa.UniqueConstraint("account_id", "name_key", name="uq_iam_roles_account_id_name_key"),
    )
    op.create_table(
        "iam_policies",
        sa.Column("policy_id", sa.String(32), primary_key=True),
        _account(),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("name_key", sa.String(128), nullable=False),
        sa.Column("path", sa.String(512), nullable=False),
        sa.Column("arn", sa.String(2048), nullable=False),
        sa.Column("description", sa.String(1000), nullable=True),
        sa.Column("default_version", sa.String(16), nullable=False),
        sa.Column("next_version", sa.Integer, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.UniqueConstraint("account_id", "name_key", name="uq_iam_policies_account_id_name_key"),
        sa.UniqueConstraint("arn", name="uq_iam_policies_arn"),
    )
    op.create_table(
        "iam_policy_versions",
        sa.Column("policy_id", sa.String(32), sa.ForeignKey("iam_policies.policy_id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("version_id", sa.String(16), primary_key=True),
        sa.Column("document", sa.Text, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
    )
    op.create_table(
        "iam_inline_policies",
        sa.Column("entity_type", sa.String(16), primary_key=True),
        sa.Column("entity_id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(128), primary_key=True),
        _account(),
        sa.Column("document", sa.Text, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
    )
    op.create_table(
        "iam_attachments",
        sa.Column("entity_type", sa.String(16), primary_key=True),
        sa.Column("entity_id", sa.String(32), primary_key=True),
        sa.Column("policy_arn", sa.String(2048), primary_key=True),
        _account(),
        sa.Column("attached_at", UtcDateTime, nullable=False),
    )
    op.create_index("ix_iam_attachments_account_id_policy_arn", "iam_attachments",
                    ["account_id", "policy_arn"])
    op.create_table(
        "iam_login_profiles",
        sa.Column("user_id", sa.String(32), sa.ForeignKey("iam_users.user_id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("password_hash", sa.String(256), nullable=False),
        sa.Column("password_reset_required", sa.Boolean, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
    )
    op.create_table(
        "iam_instance_profiles",
        sa.Column("instance_profile_id", sa.String(32), primary_key=True),
        _account(),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("name_key", sa.String(128), nullable=False),
        sa.Column("path", sa.String(512), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.UniqueConstraint("account_id", "name_key", name="uq_iam_instance_profiles_account_id_name_key"),
    )
    op.create_table(
        "iam_instance_profile_roles",
        sa.Column("instance_profile_id", sa.String(32),
                  sa.ForeignKey("iam_instance_profiles.instance_profile_id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("role_id", sa.String(32), sa.ForeignKey("iam_roles.role_id"), primary_key=True),
    )
    op.create_index("ix_iam_instance_profile_roles_role_id", "iam_instance_profile_roles", ["role_id"])
    op.create_table(
        "iam_tags",
        sa.Column("resource_type", sa.String(16), primary_key=True),
        sa.Column("resource_id", sa.String(32), primary_key=True),
        sa.Column("key_lower", sa.String(128), primary_key=True),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("value", sa.String(256), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
    )
    op.create_table(
        "iam_account_aliases",
        sa.Column("account_id", sa.String(12), sa.ForeignKey("accounts.account_id"), primary_key=True),
        sa.Column("alias", sa.String(63), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.UniqueConstraint("alias", name="uq_iam_account_aliases_alias"),
    )


def downgrade() -> None:
    for table in ("iam_account_aliases", "iam_tags", "iam_instance_profile_roles", "iam_instance_profiles",
                  "iam_login_profiles", "iam_attachments", "iam_inline_policies", "iam_policy_versions",
                  "iam_policies", "iam_roles", "iam_group_members", "iam_groups", "iam_users"):
        op.drop_table(table)
