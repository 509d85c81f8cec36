"""Queries on IAM's tables that the authorizer and other services use.

* records and lookups of users, groups, roles, managed policies (scoped to an account; names are
  matched case-insensitively, as IAM does);
* ``resolve_user_key``: an IAM user's access key -> its credential and principal (registered on
  the ``CredentialStore``); a deleted user's keys resolve to nothing;
* ``user_policies`` / ``role_policies``: the policy documents in force for a principal (inline,
  attached managed, its groups'; the permissions boundary);
* console passwords: ``hash_password`` (scrypt), ``verify_console_password``.

Every function takes a SQLAlchemy connection and is meant to run inside ``db.read``/``db.write``.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from minicloud.iam import aws_managed, ids
from minicloud.iam.identity import Credential, Principal, PrincipalKind
from minicloud.iam.tables import (
    GROUP,
    ROLE,
    USER,
    iam_account_aliases,
    iam_attachments,
    iam_group_members,
    iam_groups,
    iam_inline_policies,
    iam_login_profiles,
    iam_policies,
    iam_policy_versions,
    iam_roles,
    iam_tags,
    iam_users,
)
from minicloud.storage.metadata.db import Database
from minicloud.storage.metadata.prepared import HasMapping
from minicloud.storage.metadata.schema import access_keys, accounts

# --- ARNs ---------------------------------------------------------------------------------------


def iam_arn(account_id: str, kind: str, path: str, name: str) -> str:
    return f"arn:aws:iam::{account_id}:{kind}{path}{name}"


def user_arn(account_id: str, path: str, name: str) -> str:
    return iam_arn(account_id, "user", path, name)


def group_arn(account_id: str, path: str, name: str) -> str:
    return iam_arn(account_id, "group", path, name)


def role_arn(account_id: str, path: str, name: str) -> str:
    return iam_arn(account_id, "role", path, name)


def policy_arn(account_id: str, path: str, name: str) -> str:
    return iam_arn(account_id, "policy", path, name)


def instance_profile_arn(account_id: str, path: str, name: str) -> str:
    return iam_arn(account_id, "instance-profile", path, name)


def split_arn(arn: str, kind: str) -> tuple[str, str, str] | None:
    """``(account, path, name)`` of an IAM ARN of ``kind`` (``role``, ``policy``...), else None."""
    prefix, sep, rest = arn.partition(f":{kind}/")
    head = prefix.split(":")
    if not sep or len(head) != 5 or head[0] != "arn" or head[2] != "iam" or head[3] != "":
        return None
    path, _, name = ("/" + rest).rpartition("/")
    return head[4], path + "/", name


# --- records ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UserRecord:
    user_id: str
    account_id: str
    name: str
    path: str
    created_at: datetime
    permissions_boundary: str | None = None
    password_last_used: datetime | None = None

    @property
    def arn(self) -> str:
        return user_arn(self.account_id, self.path, self.name)


@dataclass(frozen=True, slots=True)
class GroupRecord:
    group_id: str
    account_id: str
    name: str
    path: str
    created_at: datetime

    @property
    def arn(self) -> str:
        return group_arn(self.account_id, self.path, self.name)


@dataclass(frozen=True, slots=True)
class RoleRecord:
    role_id: str
    account_id: str
    name: str
    path: str
    created_at: datetime
    assume_role_policy: str
    max_session_duration: int
    description: str | None = None
    permissions_boundary: str | None = None
    last_used_at: datetime | None = None
    last_used_region: str | None = None

    @property
    def arn(self) -> str:
        return role_arn(self.account_id, self.path, self.name)


@dataclass(frozen=True, slots=True)
class ManagedPolicyRecord:
    policy_id: str
    account_id: str
    name: str
    path: str
    arn: str
    default_version: str
    next_version: int
    created_at: datetime
    updated_at: datetime
    description: str | None = None


def _fields(row: HasMapping, record: type[Any]) -> dict[str, Any]:
    m = row._mapping
    return {f.name: m[f.name] for f in dataclasses.fields(record)}


def user_from_row(row: HasMapping) -> UserRecord:
    return UserRecord(**_fields(row, UserRecord))


def group_from_row(row: HasMapping) -> GroupRecord:
    return GroupRecord(**_fields(row, GroupRecord))


def role_from_row(row: HasMapping) -> RoleRecord:
    return RoleRecord(**_fields(row, RoleRecord))


def policy_from_row(row: sa.Row[Any]) -> ManagedPolicyRecord:
    return ManagedPolicyRecord(**_fields(row, ManagedPolicyRecord))


# --- lookups ------------------------------------------------------------------------------------


def get_user(conn: sa.Connection, account_id: str, name: str) -> UserRecord | None:
    row = conn.execute(sa.select(iam_users).where(
        iam_users.c.account_id == account_id, iam_users.c.name_key == name.lower())).first()
    return user_from_row(row) if row else None


def get_user_by_id(conn: sa.Connection, user_id: str) -> UserRecord | None:
    row = conn.execute(sa.select(iam_users).where(iam_users.c.user_id == user_id)).first()
    return user_from_row(row) if row else None


def get_group(conn: sa.Connection, account_id: str, name: str) -> GroupRecord | None:
    row = conn.execute(sa.select(iam_groups).where(
        iam_groups.c.account_id == account_id, iam_groups.c.name_key == name.lower())).first()
    return group_from_row(row) if row else None


def get_role(conn: sa.Connection, account_id: str, name: str) -> RoleRecord | None:
    row = conn.execute(sa.select(iam_roles).where(
        iam_roles.c.account_id == account_id, iam_roles.c.name_key == name.lower())).first()
    return role_from_row(row) if row else None


def get_role_by_id(conn: sa.Connection, role_id: str) -> RoleRecord | None:
    row = conn.execute(sa.select(iam_roles).where(iam_roles.c.role_id == role_id)).first()
    return role_from_row(row) if row else None


def get_role_by_arn(conn: sa.Connection, arn: str) -> RoleRecord | None:
    """The role an ARN names (its path must match too), e.g. for sts:AssumeRole."""
    parts = split_arn(arn, "role")
    if parts is None:
        return None
    account_id, path, name = parts
    role = get_role(conn, account_id, name)
    return role if role is not None and role.path == path and role.name == name else None


def get_managed_policy(conn: sa.Connection, account_id: str, arn: str) -> ManagedPolicyRecord | None:
    """A customer-managed policy of ``account_id`` by ARN (AWS-managed ones: ``aws_managed.get``)."""
    row = conn.execute(sa.select(iam_policies).where(
        iam_policies.c.account_id == account_id, iam_policies.c.arn == arn)).first()
    return policy_from_row(row) if row else None


def get_tags(conn: sa.Connection, resource_type: str, resource_id: str) -> list[tuple[str, str]]:
    rows = conn.execute(sa.select(iam_tags.c.key, iam_tags.c.value).where(
        iam_tags.c.resource_type == resource_type, iam_tags.c.resource_id == resource_id,
    ).order_by(iam_tags.c.position))
    return [(r.key, r.value) for r in rows]


def managed_policy_documents(conn: sa.Connection, arns: Iterable[str]) -> list[str]:
    """The default-version documents of managed policies (AWS or customer), in the given order;
    ARNs that name nothing are skipped."""
    arns = list(dict.fromkeys(arns))
    customer = [a for a in arns if not aws_managed.is_aws_managed(a)]
    found: dict[str, str] = {}
    if customer:
        rows = conn.execute(
            sa.select(iam_policies.c.arn, iam_policy_versions.c.document)
            .join(iam_policy_versions, sa.and_(
                iam_policy_versions.c.policy_id == iam_policies.c.policy_id,
                iam_policy_versions.c.version_id == iam_policies.c.default_version))
            .where(iam_policies.c.arn.in_(customer)))
        found = {r.arn: r.document for r in rows}
    documents = []
    for arn in arns:
        aws = aws_managed.get(arn)
        document = aws.document if aws is not None else found.get(arn)
        if document is not None:
            documents.append(document)
    return documents


def account_id_for(conn: sa.Connection, account_or_alias: str) -> str | None:
    """An account id given the id itself or the account's alias."""
    if account_or_alias.isdigit() and len(account_or_alias) == 12:
        row = conn.execute(sa.select(accounts.c.account_id).where(
            accounts.c.account_id == account_or_alias)).first()
    else:
        row = conn.execute(sa.select(iam_account_aliases.c.account_id).where(
            iam_account_aliases.c.alias == account_or_alias.lower())).first()
    return row[0] if row else None


# --- credentials and principals -------------------------------------------------------------------


def user_principal(conn: sa.Connection, user: UserRecord) -> Principal:
    """The principal an IAM user's requests run as (its tags feed aws:PrincipalTag/...)."""
    return Principal(PrincipalKind.USER, user.account_id, user.arn, user.user_id, user.name,
                     tags=tuple(get_tags(conn, USER, user.user_id)))


def resolve_user_key(conn: sa.Connection, access_key_id: str) -> Credential | None:
    """An IAM user's access key, for ``CredentialStore.add_resolver``. Keys whose user no longer
    exists resolve to nothing."""
    if not access_key_id.startswith(ids.ACCESS_KEY):  # IAM users' keys are always AKIA...
        return None
    row = conn.execute(
        sa.select(access_keys.c.secret_access_key, access_keys.c.status, iam_users)
        .join(iam_users, iam_users.c.user_id == access_keys.c.user_id)
        .where(access_keys.c.access_key_id == access_key_id,
               access_keys.c.account_id == iam_users.c.account_id)
    ).first()
    if row is None:
        return None
    user = user_from_row(row)
    return Credential(access_key_id, row.secret_access_key, user_principal(conn, user),
                      active=row.status == "Active")


@dataclass(frozen=True, slots=True)
class PolicySources:
    """The policy documents that define what a user or role may do."""

    identity: tuple[str, ...] = ()
    boundary: str | None = None
    groups: tuple[str, ...] = field(default=())  # group ids (users only), for diagnostics


def _inline(conn: sa.Connection, entity_type: str, entity_ids: list[str]) -> list[str]:
    if not entity_ids:
        return []
    rows = conn.execute(sa.select(iam_inline_policies.c.document).where(
        iam_inline_policies.c.entity_type == entity_type,
        iam_inline_policies.c.entity_id.in_(entity_ids),
    ).order_by(iam_inline_policies.c.entity_id, iam_inline_policies.c.name))
    return [r.document for r in rows]


def _attached(conn: sa.Connection, entity_type: str, entity_ids: list[str]) -> list[str]:
    if not entity_ids:
        return []
    rows = conn.execute(sa.select(iam_attachments.c.policy_arn).where(
        iam_attachments.c.entity_type == entity_type,
        iam_attachments.c.entity_id.in_(entity_ids),
    ).order_by(iam_attachments.c.entity_id, iam_attachments.c.policy_arn))
    return [r.policy_arn for r in rows]


def _boundary(conn: sa.Connection, arn: str | None) -> str | None:
    if arn is None:
        return None
    documents = managed_policy_documents(conn, [arn])
    # A boundary whose policy vanished allows nothing: an empty-statement document.
    return documents[0] if documents else '{"Version": "2012-10-17", "Statement": []}'


def user_policies(conn: sa.Connection, user_id: str) -> PolicySources | None:
    user = get_user_by_id(conn, user_id)
    if user is None:
        return None
    group_ids = [r.group_id for r in conn.execute(
        sa.select(iam_group_members.c.group_id).where(iam_group_members.c.user_id == user_id)
        .order_by(iam_group_members.c.group_id))]
    documents = _inline(conn, USER, [user_id]) + _inline(conn, GROUP, group_ids)
    arns = _attached(conn, USER, [user_id]) + _attached(conn, GROUP, group_ids)
    documents += managed_policy_documents(conn, arns)
    return PolicySources(tuple(documents), _boundary(conn, user.permissions_boundary), tuple(group_ids))


def group_policies(conn: sa.Connection, group_id: str) -> PolicySources:
    """A group's own inline and attached policies (for the policy simulator)."""
    documents = _inline(conn, GROUP, [group_id])
    documents += managed_policy_documents(conn, _attached(conn, GROUP, [group_id]))
    return PolicySources(tuple(documents))


def role_policies(conn: sa.Connection, role_id: str) -> PolicySources | None:
    role = get_role_by_id(conn, role_id)
    if role is None:
        return None
    documents = _inline(conn, ROLE, [role_id])
    documents += managed_policy_documents(conn, _attached(conn, ROLE, [role_id]))
    return PolicySources(tuple(documents), _boundary(conn, role.permissions_boundary))


# --- console passwords --------------------------------------------------------------------------

_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1


def hash_password(password: str) -> str:
    """scrypt (N=2^14, r=8, p=1, 16-byte salt); slow on purpose: call it off the event loop."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32)
    encode = base64.b64encode
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${encode(salt).decode()}${encode(digest).decode()}"


def check_password(stored: str, password: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r),
                                p=int(p), dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


@dataclass(frozen=True, slots=True)
class LoginProfileRecord:
    user: UserRecord
    password_hash: str
    password_reset_required: bool
    created_at: datetime


def get_login_profile(conn: sa.Connection, user: UserRecord) -> LoginProfileRecord | None:
    row = conn.execute(sa.select(iam_login_profiles).where(
        iam_login_profiles.c.user_id == user.user_id)).first()
    if row is None:
        return None
    return LoginProfileRecord(user, row.password_hash, row.password_reset_required, row.created_at)


@dataclass(frozen=True, slots=True)
class ConsoleLogin:
    principal: Principal
    password_reset_required: bool


async def verify_console_password(db: Database, account_or_alias: str, user_name: str,
                                  password: str) -> ConsoleLogin | None:
    """Check an IAM user's console password (the account given by id or alias). On success the
    user's PasswordLastUsed is recorded and its principal returned; otherwise None."""

    def load(conn: sa.Connection) -> tuple[LoginProfileRecord, Principal] | None:
        account_id = account_id_for(conn, account_or_alias)
        user = get_user(conn, account_id, user_name) if account_id else None
        profile = get_login_profile(conn, user) if user else None
        if user is None or profile is None:
            return None
        return profile, user_principal(conn, user)

    found = await db.read(load)
    if found is None:
        # Spend the same time as a real check, so that timing does not reveal which users exist.
        await asyncio.to_thread(check_password, _DUMMY_HASH, password)
        return None
    profile, principal = found
    if not await asyncio.to_thread(check_password, profile.password_hash, password):
        return None
    now = datetime.now(UTC)
    await db.write(lambda conn: conn.execute(iam_users.update().where(
        iam_users.c.user_id == profile.user.user_id).values(password_last_used=now)))
    return ConsoleLogin(principal, profile.password_reset_required)


_DUMMY_HASH = ("scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$"
               "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")


# --- role usage -----------------------------------------------------------------------------------


def note_role_used(conn: sa.Connection, role_id: str, when: datetime, region: str) -> None:
    """Record RoleLastUsed (called by STS when a role session is used or created)."""
    conn.execute(iam_roles.update().where(iam_roles.c.role_id == role_id).values(
        last_used_at=when, last_used_region=region))

