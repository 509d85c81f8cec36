"""Instance profiles (IAM's) as EC2 uses them: resolved at launch, and turned into the role's
temporary credentials that the instance metadata service hands out (as AssumeRole would mint them,
session name = the instance id)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from minicloud.aws.context import RequestContext
from minicloud.iam import sessions
from minicloud.iam import store as iam_store
from minicloud.iam.identity import Principal, PrincipalKind
from minicloud.iam.tables import iam_instance_profile_roles, iam_instance_profiles, iam_roles
from minicloud.iam.trust import service_may_assume
from minicloud.storage.metadata.db import Database

EC2_SERVICE = "ec2.amazonaws.com"


@dataclass(frozen=True, slots=True)
class ProfileRef:
    arn: str
    profile_id: str
    role_arn: str | None
    role_name: str | None


def resolve_profile(conn: sa.Connection, account_id: str, name: str | None, arn: str | None) -> ProfileRef | None:
    """The account's instance profile named by ``name`` or ``arn`` (with its role, if it has one)."""
    query = sa.select(iam_instance_profiles).where(iam_instance_profiles.c.account_id == account_id)
    if name:
        query = query.where(iam_instance_profiles.c.name_key == name.lower())
    elif arn:
        query = query.where(iam_instance_profiles.c.name_key == arn.rsplit("/", 1)[-1].lower())
    else:
        return None
    row = conn.execute(query).first()
    if row is None:
        return None
    profile_arn = iam_store.instance_profile_arn(row.account_id, row.path, row.name)
    if arn and arn != profile_arn:
        return None
    role = conn.execute(sa.select(iam_roles).join(
        iam_instance_profile_roles, iam_instance_profile_roles.c.role_id == iam_roles.c.role_id).where(
        iam_instance_profile_roles.c.instance_profile_id == row.instance_profile_id)).first()
    if role is None:
        return ProfileRef(profile_arn, row.instance_profile_id, None, None)
    record = iam_store.role_from_row(role)
    return ProfileRef(profile_arn, row.instance_profile_id, record.arn, record.name)


def issue_role_credentials(conn: sa.Connection, role_arn: str, instance_id: str,
                           expires_at: datetime) -> sessions.IssuedCredentials | None:
    """Temporary credentials of the role, for the instance (None when the role is gone or its trust
    policy does not let EC2 assume it)."""
    role = iam_store.get_role_by_arn(conn, role_arn)
    if role is None or not trusts_ec2(role.assume_role_policy, role.arn, role.account_id):
        return None
    principal = Principal(
        kind=PrincipalKind.ASSUMED_ROLE, account_id=role.account_id,
        arn=f"arn:aws:sts::{role.account_id}:assumed-role/{role.name}/{instance_id}",
        user_id=f"{role.role_id}:{instance_id}", name=instance_id, role_arn=role.arn, role_id=role.role_id)
    return sessions.issue(conn, principal, "ec2.amazonaws.com", expires_at)


def trusts_ec2(document: str | None, role_arn: str, account_id: str) -> bool:
    """Whether the role's trust policy lets ec2.amazonaws.com assume it."""
    return service_may_assume(document, role_arn, account_id, EC2_SERVICE)


async def authorize_pass_role(ctx: RequestContext, db: Database, name: str | None, arn: str | None) -> None:
    """RunInstances with an instance profile hands its role to the instance (whatever runs there gets
    the role's credentials): the caller needs iam:PassRole on that role, for ec2.amazonaws.com."""
    if not (name or arn):
        return
    profile = await db.read(lambda conn: resolve_profile(conn, ctx.account_id, name, arn))
    if profile is not None and profile.role_arn:
        await ctx.authorize("iam:PassRole", profile.role_arn, context={"iam:PassedToService": EC2_SERVICE})
