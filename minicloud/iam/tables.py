"""IAM's tables: users, groups, roles, managed and inline policies, attachments, login profiles,
instance profiles, tags and account aliases. Access keys live in the core ``access_keys`` table
(``user_id`` set for an IAM user's keys).

Every entity belongs to one account. Names are unique per account *case-insensitively*: each
named table keeps ``name_key`` (the lower-cased name) under a unique constraint with the account.
Policies attached to entities are referenced by ARN so that AWS-managed policies (which live in
code, not in a table: ``minicloud.iam.aws_managed``) can be attached like customer ones.
"""

from __future__ import annotations

import sqlalchemy as sa

from minicloud.storage.metadata.schema import UtcDateTime, metadata

# Kinds of principal entity that hold policies and tags.
USER = "user"
GROUP = "group"
ROLE = "role"
POLICY = "policy"
INSTANCE_PROFILE = "instance-profile"

iam_users = sa.Table(
    "iam_users",
    metadata,
    sa.Column("user_id", sa.String(32), primary_key=True),
    sa.Column("account_id", sa.String(12), sa.ForeignKey("accounts.account_id"), nullable=False),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("name_key", sa.String(64), nullable=False),
    sa.Column("path", sa.String(512), nullable=False),
    sa.Column("permissions_boundary", sa.String(2048), nullable=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("password_last_used", UtcDateTime, nullable=True),
    sa.UniqueConstraint("account_id", "name_key"),
)

iam_groups = sa.Table(
    "iam_groups",
    metadata,
    sa.Column("group_id", sa.String(32), primary_key=True),
    sa.Column("account_id", sa.String(12), sa.ForeignKey("accounts.account_id"), nullable=False),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("name_key", sa.String(128), nullable=False),
    sa.Column("path", sa.String(512), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.UniqueConstraint("account_id", "name_key"),
)

iam_group_members = sa.Table(
    "iam_group_members",
    metadata,
    sa.Column("group_id", sa.String(32), sa.ForeignKey("iam_groups.group_id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("user_id", sa.String(32), sa.ForeignKey("iam_users.user_id", ondelete="CASCADE"),
              primary_key=True, index=True),
    sa.Column("added_at", UtcDateTime, nullable=False),
)

iam_roles = sa.Table(
    "iam_roles",
    metadata,
    sa.Column("role_id", sa.String(32), primary_key=True),
    sa.Column("account_id", sa.String(12), sa.ForeignKey("accounts.account_id"), nullable=False),
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
    sa.UniqueConstraint("account_id", "name_key"),
)

# Customer-managed policies; ``default_version`` names a row of iam_policy_versions.
iam_policies = sa.Table(
    "iam_policies",
    metadata,
    sa.Column("policy_id", sa.String(32), primary_key=True),
    sa.Column("account_id", sa.String(12), sa.ForeignKey("accounts.account_id"), nullable=False),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("name_key", sa.String(128), nullable=False),
    sa.Column("path", sa.String(512), nullable=False),
    sa.Column("arn", sa.String(2048), nullable=False, unique=True),
    sa.Column("description", sa.String(1000), nullable=True),
    sa.Column("default_version", sa.String(16), nullable=False),
    sa.Column("next_version", sa.Integer, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.UniqueConstraint("account_id", "name_key"),
)

iam_policy_versions = sa.Table(
    "iam_policy_versions",
    metadata,
    sa.Column("policy_id", sa.String(32), sa.ForeignKey("iam_policies.policy_id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("version_id", sa.String(16), primary_key=True),
    sa.Column("document", sa.Text, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
)

# Inline policies of users, groups and roles (entity_type USER/GROUP/ROLE, entity_id its unique id).
iam_inline_policies = sa.Table(
    "iam_inline_policies",
    metadata,
    sa.Column("entity_type", sa.String(16), primary_key=True),
    sa.Column("entity_id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("account_id", sa.String(12), sa.ForeignKey("accounts.account_id"), nullable=False),
    sa.Column("document", sa.Text, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
)

# Managed policies (customer or AWS) attached to users, groups and roles.
iam_attachments = sa.Table(
    "iam_attachments",
    metadata,
    sa.Column("entity_type", sa.String(16), primary_key=True),
    sa.Column("entity_id", sa.String(32), primary_key=True),
    sa.Column("policy_arn", sa.String(2048), primary_key=True),
    sa.Column("account_id", sa.String(12), sa.ForeignKey("accounts.account_id"), nullable=False),
    sa.Column("attached_at", UtcDateTime, nullable=False),
    sa.Index(None, "account_id", "policy_arn"),
)

iam_login_profiles = sa.Table(
    "iam_login_profiles",
    metadata,
    sa.Column("user_id", sa.String(32), sa.ForeignKey("iam_users.user_id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("password_hash", sa.String(256), nullable=False),
    sa.Column("password_reset_required", sa.Boolean, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
)

iam_instance_profiles = sa.Table(
    "iam_instance_profiles",
    metadata,
    sa.Column("instance_profile_id", sa.String(32), primary_key=True),
    sa.Column("account_id", sa.String(12), sa.ForeignKey("accounts.account_id"), nullable=False),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("name_key", sa.String(128), nullable=False),
    sa.Column("path", sa.String(512), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.UniqueConstraint("account_id", "name_key"),
)

iam_instance_profile_roles = sa.Table(
    "iam_instance_profile_roles",
    metadata,
    sa.Column("instance_profile_id", sa.String(32),
              sa.ForeignKey("iam_instance_profiles.instance_profile_id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("role_id", sa.String(32), sa.ForeignKey("iam_roles.role_id"), primary_key=True,
              index=True),
)

# Tags of users, roles, customer-managed policies and instance profiles. Keys are unique per
# resource case-insensitively (``key_lower``), as IAM's are.
iam_tags = sa.Table(
    "iam_tags",
    metadata,
    sa.Column("resource_type", sa.String(16), primary_key=True),
    sa.Column("resource_id", sa.String(32), primary_key=True),
    sa.Column("key_lower", sa.String(128), primary_key=True),
    sa.Column("key", sa.String(128), nullable=False),
    sa.Column("value", sa.String(256), nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
)

# An account's alias (AWS allows one); aliases are unique across all accounts.
iam_account_aliases = sa.Table(
    "iam_account_aliases",
    metadata,
    sa.Column("account_id", sa.String(12), sa.ForeignKey("accounts.account_id"), primary_key=True),
    sa.Column("alias", sa.String(63), nullable=False, unique=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
)
