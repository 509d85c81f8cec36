"""Account-wide IAM operations: GetAccountSummary, account aliases."""

from __future__ import annotations

import sqlalchemy as sa

from minicloud.aws.context import RequestContext
from minicloud.iam.policy import (
    INLINE_GROUP_POLICIES_MAX,
    INLINE_ROLE_POLICIES_MAX,
    INLINE_USER_POLICIES_MAX,
    MANAGED_POLICY_MAX,
    ROLE_TRUST_POLICY_MAX,
)
from minicloud.iam.tables import (
    iam_account_aliases,
    iam_groups,
    iam_instance_profiles,
    iam_policies,
    iam_policy_versions,
    iam_roles,
    iam_users,
)
from minicloud.services.iam.access_keys import ACCESS_KEYS_PER_USER
from minicloud.services.iam.attachments import ATTACHED_POLICIES_PER_ENTITY
from minicloud.services.iam.base import Params, Result, count, page_list, paged
from minicloud.services.iam.errors import EntityAlreadyExists, NoSuchEntity
from minicloud.services.iam.groups import GROUPS_PER_USER, GROUPS_QUOTA
from minicloud.services.iam.instance_profiles import INSTANCE_PROFILES_QUOTA, InstanceProfilesMixin
from minicloud.services.iam.policies import POLICIES_QUOTA, VERSIONS_PER_POLICY
from minicloud.services.iam.roles import ROLES_QUOTA
from minicloud.services.iam.users import USERS_QUOTA
from minicloud.storage.metadata.schema import access_keys

QUOTAS = {
    "UsersQuota": USERS_QUOTA, "GroupsQuota": GROUPS_QUOTA, "RolesQuota": ROLES_QUOTA,
    "PoliciesQuota": POLICIES_QUOTA, "InstanceProfilesQuota": INSTANCE_PROFILES_QUOTA,
    "ServerCertificatesQuota": 20, "PolicyVersionsInUseQuota": 10000,
    "VersionsPerPolicyQuota": VERSIONS_PER_POLICY, "AccessKeysPerUserQuota": ACCESS_KEYS_PER_USER,
    "SigningCertificatesPerUserQuota": 2, "GroupsPerUserQuota": GROUPS_PER_USER,
    "AttachedPoliciesPerUserQuota": ATTACHED_POLICIES_PER_ENTITY,
    "AttachedPoliciesPerGroupQuota": ATTACHED_POLICIES_PER_ENTITY,
    "AttachedPoliciesPerRoleQuota": ATTACHED_POLICIES_PER_ENTITY,
    "PolicySizeQuota": MANAGED_POLICY_MAX, "UserPolicySizeQuota": INLINE_USER_POLICIES_MAX,
    "GroupPolicySizeQuota": INLINE_GROUP_POLICIES_MAX, "RolePolicySizeQuota": INLINE_ROLE_POLICIES_MAX,
    "AssumeRolePolicySizeQuota": ROLE_TRUST_POLICY_MAX,
}


class AccountMixin(InstanceProfilesMixin):
    async def get_account_summary(self, ctx: RequestContext, params: Params) -> Result:
        await ctx.authorize("iam:GetAccountSummary", "*")
        account = ctx.account_id

        def load(conn: sa.Connection) -> dict[str, int]:
            counts = {
                "Users": count(conn, iam_users, iam_users.c.account_id == account),
                "Groups": count(conn, iam_groups, iam_groups.c.account_id == account),
                "Roles": count(conn, iam_roles, iam_roles.c.account_id == account),
                "Policies": count(conn, iam_policies, iam_policies.c.account_id == account),
                "InstanceProfiles": count(conn, iam_instance_profiles,
                                          iam_instance_profiles.c.account_id == account),
                "PolicyVersionsInUse": int(conn.execute(
                    sa.select(sa.func.count()).select_from(iam_policy_versions)
                    .join(iam_policies, iam_policies.c.policy_id == iam_policy_versions.c.policy_id)
                    .where(iam_policies.c.account_id == account)).scalar_one()),
                "AccountAccessKeysPresent": min(1, count(
                    conn, access_keys, access_keys.c.account_id == account, access_keys.c.user_id.is_(None),
                    access_keys.c.status == "Active")),
            }
            return counts

        summary = {"MFADevices": 0, "MFADevicesInUse": 0, "AccountMFAEnabled": 0, "Providers": 0,
                   "ServerCertificates": 0, "AccountSigningCertificatesPresent": 0,
                   "GlobalEndpointTokenVersion": 1, **QUOTAS, **await self.read(load)}
        return {"SummaryMap": summary}

    async def create_account_alias(self, ctx: RequestContext, params: Params) -> Result:
        alias = params["AccountAlias"]
        await ctx.authorize("iam:CreateAccountAlias", "*")

        def create(conn: sa.Connection) -> None:
            owner = conn.execute(sa.select(iam_account_aliases.c.account_id).where(
                iam_account_aliases.c.alias == alias)).scalar()
            if owner == ctx.account_id:
                return
            if owner is not None:
                raise EntityAlreadyExists(f"The account alias {alias} already exists.")
            # An account has one alias: creating another replaces it.
            conn.execute(iam_account_aliases.delete().where(
                iam_account_aliases.c.account_id == ctx.account_id))
            conn.execute(iam_account_aliases.insert().values(account_id=ctx.account_id, alias=alias,
                                                             created_at=ctx.now))

        await self.write(create)
        return {}

    async def delete_account_alias(self, ctx: RequestContext, params: Params) -> Result:
        alias = params["AccountAlias"]
        await ctx.authorize("iam:DeleteAccountAlias", "*")

        def delete(conn: sa.Connection) -> None:
            deleted = conn.execute(iam_account_aliases.delete().where(
                iam_account_aliases.c.account_id == ctx.account_id, iam_account_aliases.c.alias == alias))
            if not deleted.rowcount:
                raise NoSuchEntity(f"The account alias {alias} cannot be found.")

        await self.write(delete)
        return {}

    async def list_account_aliases(self, ctx: RequestContext, params: Params) -> Result:
        await ctx.authorize("iam:ListAccountAliases", "*")
        aliases = await self.read(lambda conn: list(conn.execute(sa.select(iam_account_aliases.c.alias).where(
            iam_account_aliases.c.account_id == ctx.account_id)).scalars()))
        chosen, marker = page_list(aliases, lambda a: a, params)
        return paged("AccountAliases", chosen, marker)
