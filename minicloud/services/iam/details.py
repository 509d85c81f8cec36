"""GetAccountAuthorizationDetails: every user, group, role and managed policy of the account with
their relationships, in one paginated answer (what IAM auditing tools read)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from minicloud.aws.context import RequestContext
from minicloud.iam import aws_managed, store
from minicloud.iam.tables import (
    GROUP,
    INSTANCE_PROFILE,
    ROLE,
    USER,
    iam_attachments,
    iam_group_members,
    iam_groups,
    iam_inline_policies,
    iam_instance_profile_roles,
    iam_instance_profiles,
    iam_policies,
    iam_policy_versions,
    iam_roles,
    iam_tags,
    iam_users,
)
from minicloud.services.iam.attachments import policy_names
from minicloud.services.iam.base import (
    Params,
    Result,
    boundary_shape,
    encode_document,
    group_shape,
    page_list,
    paged,
    role_shape,
    tag_list,
    user_shape,
    version_shape,
)
from minicloud.services.iam.policies import PolicyView, policy_shape, usage_counts, version_number
from minicloud.services.iam.simulate import SimulationMixin

_ORDER = {"User": 0, "Group": 1, "Role": 2, "LocalManagedPolicy": 3, "AWSManagedPolicy": 4}
_LISTS = {"User": "UserDetailList", "Group": "GroupDetailList", "Role": "RoleDetailList",
          "LocalManagedPolicy": "Policies", "AWSManagedPolicy": "Policies"}

Item = tuple[str, str, Result]  # (filter kind, sort name, detail)


class _Relations:
    """Inline policies, attachments, tags and memberships of one account, loaded once."""

    def __init__(self, conn: sa.Connection, account_id: str) -> None:
        self.inline: dict[tuple[str, str], list[Result]] = defaultdict(list)
        inline = iam_inline_policies.c
        for row in conn.execute(sa.select(iam_inline_policies).where(inline.account_id == account_id)
                                .order_by(inline.name)):
            self.inline[(row.entity_type, row.entity_id)].append(
                {"PolicyName": row.name, "PolicyDocument": encode_document(row.document)})
        rows = list(conn.execute(sa.select(iam_attachments).where(iam_attachments.c.account_id == account_id)))
        names = policy_names(conn, account_id, {r.policy_arn for r in rows})
        self.attached: dict[tuple[str, str], list[Result]] = defaultdict(list)
        for row in sorted(rows, key=lambda r: r.policy_arn):
            if row.policy_arn in names:
                self.attached[(row.entity_type, row.entity_id)].append(
                    {"PolicyName": names[row.policy_arn][0], "PolicyArn": row.policy_arn})
        self.tags: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
        mine = sa.union(sa.select(iam_users.c.user_id).where(iam_users.c.account_id == account_id),
                        sa.select(iam_roles.c.role_id).where(iam_roles.c.account_id == account_id))
        for row in conn.execute(sa.select(iam_tags).where(iam_tags.c.resource_type.in_([USER, ROLE]),
                                                          iam_tags.c.resource_id.in_(mine))
                                .order_by(iam_tags.c.position)):
            self.tags[(row.resource_type, row.resource_id)].append((row.key, row.value))
        self.groups_of: dict[str, list[str]] = defaultdict(list)
        for row in conn.execute(sa.select(iam_group_members.c.user_id, iam_groups.c.name)
                                .join(iam_groups, iam_groups.c.group_id == iam_group_members.c.group_id)
                                .where(iam_groups.c.account_id == account_id).order_by(iam_groups.c.name_key)):
            self.groups_of[row.user_id].append(row.name)


def _users(conn: sa.Connection, account_id: str, rel: _Relations) -> Iterable[Item]:
    for row in conn.execute(sa.select(iam_users).where(iam_users.c.account_id == account_id)):
        user = store.user_from_row(row)
        detail = user_shape(user, tags=rel.tags[(USER, user.user_id)])
        detail.pop("PasswordLastUsed", None)
        detail.update(UserPolicyList=rel.inline[(USER, user.user_id)], GroupList=rel.groups_of[user.user_id],
                      AttachedManagedPolicies=rel.attached[(USER, user.user_id)])
        if user.permissions_boundary:
            detail["PermissionsBoundary"] = boundary_shape(user.permissions_boundary)
        yield "User", user.name.lower(), detail


def _groups(conn: sa.Connection, account_id: str, rel: _Relations) -> Iterable[Item]:
    for row in conn.execute(sa.select(iam_groups).where(iam_groups.c.account_id == account_id)):
        group = store.group_from_row(row)
        detail = group_shape(group)
        detail.update(GroupPolicyList=rel.inline[(GROUP, group.group_id)],
                      AttachedManagedPolicies=rel.attached[(GROUP, group.group_id)])
        yield "Group", group.name.lower(), detail


def _roles(conn: sa.Connection, account_id: str, rel: _Relations) -> Iterable[Item]:
    roles = [store.role_from_row(r) for r in conn.execute(sa.select(iam_roles).where(
        iam_roles.c.account_id == account_id))]
    by_id = {r.role_id: r for r in roles}
    profiles: dict[str, list[Result]] = defaultdict(list)
    rows = conn.execute(sa.select(iam_instance_profiles, iam_instance_profile_roles.c.role_id).join(
        iam_instance_profile_roles,
        iam_instance_profile_roles.c.instance_profile_id == iam_instance_profiles.c.instance_profile_id,
    ).where(iam_instance_profiles.c.account_id == account_id))
    for row in rows:
        profiles[row.role_id].append({
            "Path": row.path, "InstanceProfileName": row.name, "InstanceProfileId": row.instance_profile_id,
            "Arn": store.iam_arn(account_id, INSTANCE_PROFILE, row.path, row.name),
            "CreateDate": row.created_at, "Roles": [role_shape(by_id[row.role_id])]})
    for role in roles:
        detail = role_shape(role, full=True)
        detail.pop("Description", None)
        detail.pop("MaxSessionDuration", None)
        detail.update(InstanceProfileList=profiles[role.role_id],
                      RolePolicyList=rel.inline[(ROLE, role.role_id)],
                      AttachedManagedPolicies=rel.attached[(ROLE, role.role_id)])
        if tags := rel.tags[(ROLE, role.role_id)]:
            detail["Tags"] = tag_list(tags)
        yield "Role", role.name.lower(), detail


def _policies(conn: sa.Connection, account_id: str, kinds: set[str]) -> Iterable[Item]:
    attachments, boundaries = usage_counts(conn, account_id)

    def detail(view: PolicyView, versions: list[Result]) -> Result:
        shape = policy_shape(view, attachments.get(view.arn, 0), boundaries.get(view.arn, 0), full=True)
        shape["PolicyVersionList"] = versions
        return shape

    if "LocalManagedPolicy" in kinds:
        versions: dict[str, list[Any]] = defaultdict(list)
        for row in conn.execute(sa.select(iam_policy_versions).join(
                iam_policies, iam_policies.c.policy_id == iam_policy_versions.c.policy_id)
                .where(iam_policies.c.account_id == account_id)):
            versions[row.policy_id].append(row)
        for row in conn.execute(sa.select(iam_policies).where(iam_policies.c.account_id == account_id)):
            view = PolicyView.of_record(store.policy_from_row(row))
            ordered = sorted(versions[view.policy_id], key=lambda v: -version_number(v.version_id))
            yield "LocalManagedPolicy", view.name.lower(), detail(view, [
                version_shape(v.version_id, v.document, v.version_id == view.default_version, v.created_at)
                for v in ordered])
    if "AWSManagedPolicy" in kinds:
        for policy in aws_managed.POLICIES:  # only those in use in the account, as AWS answers
            if attachments.get(policy.arn) or boundaries.get(policy.arn):
                yield "AWSManagedPolicy", policy.name.lower(), detail(PolicyView.of_aws(policy), [
                    version_shape(policy.version_id, policy.document, True, policy.updated_at)])


class DetailsMixin(SimulationMixin):
    async def get_account_authorization_details(self, ctx: RequestContext, params: Params) -> Result:
        await ctx.authorize("iam:GetAccountAuthorizationDetails", "*")
        kinds = set(params.get("Filter") or _ORDER)

        def load(conn: sa.Connection) -> list[Item]:
            rel = _Relations(conn, ctx.account_id)
            items: list[Item] = []
            if "User" in kinds:
                items += _users(conn, ctx.account_id, rel)
            if "Group" in kinds:
                items += _groups(conn, ctx.account_id, rel)
            if "Role" in kinds:
                items += _roles(conn, ctx.account_id, rel)
            items += _policies(conn, ctx.account_id, kinds)
            return items

        chosen, marker = page_list(await self.read(load), lambda i: f"{_ORDER[i[0]]} {i[1]}", params)
        result = paged("UserDetailList", [], marker)
        result.update(GroupDetailList=[], RoleDetailList=[], Policies=[])
        for kind, _, detail in chosen:
            result[_LISTS[kind]].append(detail)
        return result
