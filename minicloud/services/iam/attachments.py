"""Managed policies attached to users, groups and roles: Attach/Detach/ListAttached*Policies,
ListEntitiesForPolicy."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from minicloud.aws.context import RequestContext
from minicloud.iam import aws_managed
from minicloud.iam.tables import (
    GROUP,
    ROLE,
    USER,
    iam_attachments,
    iam_groups,
    iam_policies,
    iam_roles,
    iam_users,
)
from minicloud.services.iam.base import (
    Params,
    Result,
    check_attachable,
    check_policy_arn,
    count,
    page_list,
    paged,
)
from minicloud.services.iam.errors import NoSuchEntity, quota
from minicloud.services.iam.policies import PoliciesMixin

ATTACHED_POLICIES_PER_ENTITY = 10
_QUOTA_NAMES = {USER: "PoliciesPerUser", GROUP: "PoliciesPerGroup", ROLE: "PoliciesPerRole"}
_A = iam_attachments.c


@dataclass(frozen=True, slots=True)
class Entity:
    entity_type: str  # USER, GROUP or ROLE
    entity_id: str
    name: str
    arn: str


class AttachmentsMixin(PoliciesMixin):
    async def authorize_entity(self, ctx: RequestContext, entity_type: str, action: str, name: str, *,
                               context: Mapping[str, str | list[str]] | None = None) -> Entity:
        if entity_type == USER:
            user = await self.authorize_user(ctx, action, name, context=context)
            return Entity(USER, user.user_id, user.name, user.arn)
        if entity_type == GROUP:
            group = await self.authorize_group(ctx, action, name)
            return Entity(GROUP, group.group_id, group.name, group.arn)
        role = await self.authorize_role(ctx, action, name, context=context)
        return Entity(ROLE, role.role_id, role.name, role.arn)

    # -- attach / detach ----------------------------------------------------------------------------
    async def _attach(self, ctx: RequestContext, entity_type: str, name: str, arn: str,
                      action: str) -> Result:
        check_policy_arn(arn)
        entity = await self.authorize_entity(ctx, entity_type, action, name,
                                             context={"iam:PolicyARN": arn})

        def attach(conn: sa.Connection) -> None:
            check_attachable(conn, ctx.account_id, arn)
            mine = (_A.entity_type == entity_type, _A.entity_id == entity.entity_id)
            if count(conn, iam_attachments, *mine, _A.policy_arn == arn):
                return
            if count(conn, iam_attachments, *mine) >= ATTACHED_POLICIES_PER_ENTITY:
                raise quota(_QUOTA_NAMES[entity_type], ATTACHED_POLICIES_PER_ENTITY)
            conn.execute(iam_attachments.insert().values(
                entity_type=entity_type, entity_id=entity.entity_id, policy_arn=arn,
                account_id=ctx.account_id, attached_at=ctx.now))

        await self.write(attach)
        return {}

    async def _detach(self, ctx: RequestContext, entity_type: str, name: str, arn: str,
                      action: str) -> Result:
        entity = await self.authorize_entity(ctx, entity_type, action, name,
                                             context={"iam:PolicyARN": arn})

        def detach(conn: sa.Connection) -> None:
            deleted = conn.execute(iam_attachments.delete().where(
                _A.entity_type == entity_type, _A.entity_id == entity.entity_id, _A.policy_arn == arn))
            if not deleted.rowcount:
                raise NoSuchEntity(f"Policy {arn} was not found.")

        await self.write(detach)
        return {}

    async def attach_user_policy(self, ctx: RequestContext, params: Params) -> Result:
        return await self._attach(ctx, USER, params["UserName"], params["PolicyArn"],
                                  "iam:AttachUserPolicy")

    async def attach_group_policy(self, ctx: RequestContext, params: Params) -> Result:
        return await self._attach(ctx, GROUP, params["GroupName"], params["PolicyArn"],
                                  "iam:AttachGroupPolicy")

    async def attach_role_policy(self, ctx: RequestContext, params: Params) -> Result:
        return await self._attach(ctx, ROLE, params["RoleName"], params["PolicyArn"],
                                  "iam:AttachRolePolicy")

    async def detach_user_policy(self, ctx: RequestContext, params: Params) -> Result:
        return await self._detach(ctx, USER, params["UserName"], params["PolicyArn"],
                                  "iam:DetachUserPolicy")

    async def detach_group_policy(self, ctx: RequestContext, params: Params) -> Result:
        return await self._detach(ctx, GROUP, params["GroupName"], params["PolicyArn"],
                                  "iam:DetachGroupPolicy")

    async def detach_role_policy(self, ctx: RequestContext, params: Params) -> Result:
        return await self._detach(ctx, ROLE, params["RoleName"], params["PolicyArn"],
                                  "iam:DetachRolePolicy")

    # -- listing ------------------------------------------------------------------------------------
    async def _list_attached(self, ctx: RequestContext, entity_type: str, name: str, action: str,
                             params: Params) -> Result:
        entity = await self.authorize_entity(ctx, entity_type, action, name)
        prefix = params.get("PathPrefix") or "/"

        def load(conn: sa.Connection) -> list[tuple[str, str, str]]:
            arns = conn.execute(sa.select(_A.policy_arn).where(
                _A.entity_type == entity_type, _A.entity_id == entity.entity_id)).scalars().all()
            names = policy_names(conn, ctx.account_id, arns)
            return [(arn, *names[arn]) for arn in arns if arn in names]

        attached = [a for a in await self.read(load) if a[2].startswith(prefix)]
        chosen, marker = page_list(attached, lambda a: f"{a[1].lower()} {a[0]}", params)
        return paged("AttachedPolicies", [{"PolicyName": n, "PolicyArn": a} for a, n, _ in chosen], marker)

    async def list_attached_user_policies(self, ctx: RequestContext, params: Params) -> Result:
        return await self._list_attached(ctx, USER, params["UserName"], "iam:ListAttachedUserPolicies",
                                         params)

    async def list_attached_group_policies(self, ctx: RequestContext, params: Params) -> Result:
        return await self._list_attached(ctx, GROUP, params["GroupName"], "iam:ListAttachedGroupPolicies",
                                         params)

    async def list_attached_role_policies(self, ctx: RequestContext, params: Params) -> Result:
        return await self._list_attached(ctx, ROLE, params["RoleName"], "iam:ListAttachedRolePolicies",
                                         params)

    async def list_entities_for_policy(self, ctx: RequestContext, params: Params) -> Result:
        view = await self.authorize_policy(ctx, "iam:ListEntitiesForPolicy", params["PolicyArn"])
        kinds = {"User": USER, "Group": GROUP, "Role": ROLE}
        wanted = kinds.get(params.get("EntityFilter") or "")
        usage = params.get("PolicyUsageFilter")
        prefix = params.get("PathPrefix") or "/"

        def load(conn: sa.Connection) -> list[tuple[str, str, str]]:
            found: list[tuple[str, str, str]] = []  # (entity type, name, id)
            if usage != "PermissionsBoundary":
                found += _attached_entities(conn, ctx.account_id, view.arn, prefix)
            if usage != "PermissionsPolicy":
                found += _boundary_entities(conn, ctx.account_id, view.arn, prefix)
            return list(dict.fromkeys(found))

        entities = [e for e in await self.read(load) if wanted is None or e[0] == wanted]
        order = {GROUP: 0, USER: 1, ROLE: 2}
        chosen, marker = page_list(entities, lambda e: f"{order[e[0]]} {e[1].lower()}", params)
        result: Result = paged("PolicyGroups", [{"GroupName": n, "GroupId": i} for t, n, i in chosen
                                                if t == GROUP], marker)
        result["PolicyUsers"] = [{"UserName": n, "UserId": i} for t, n, i in chosen if t == USER]
        result["PolicyRoles"] = [{"RoleName": n, "RoleId": i} for t, n, i in chosen if t == ROLE]
        return result


def policy_names(conn: sa.Connection, account_id: str, arns: Any) -> dict[str, tuple[str, str]]:
    """ARN -> (name, path) of managed policies that exist."""
    names: dict[str, tuple[str, str]] = {}
    customer = []
    for arn in arns:
        aws = aws_managed.get(arn)
        if aws is not None:
            names[arn] = (aws.name, aws.path)
        else:
            customer.append(arn)
    if customer:
        rows = conn.execute(sa.select(iam_policies.c.arn, iam_policies.c.name, iam_policies.c.path).where(
            iam_policies.c.account_id == account_id, iam_policies.c.arn.in_(customer)))
        names.update({r.arn: (r.name, r.path) for r in rows})
    return names


def _attached_entities(conn: sa.Connection, account_id: str, arn: str,
                       prefix: str) -> list[tuple[str, str, str]]:
    found: list[tuple[str, str, str]] = []
    for entity_type, table, id_column in ((USER, iam_users, iam_users.c.user_id),
                                          (GROUP, iam_groups, iam_groups.c.group_id),
                                          (ROLE, iam_roles, iam_roles.c.role_id)):
        rows = conn.execute(
            sa.select(table.c.name, id_column).join(iam_attachments, sa.and_(
                _A.entity_id == id_column, _A.entity_type == entity_type))
            .where(_A.account_id == account_id, _A.policy_arn == arn,
                   table.c.path.startswith(prefix, autoescape=True)))
        found += [(entity_type, r[0], r[1]) for r in rows]
    return found


def _boundary_entities(conn: sa.Connection, account_id: str, arn: str,
                       prefix: str) -> list[tuple[str, str, str]]:
    found: list[tuple[str, str, str]] = []
    for entity_type, table, id_column in ((USER, iam_users, iam_users.c.user_id),
                                          (ROLE, iam_roles, iam_roles.c.role_id)):
        rows = conn.execute(sa.select(table.c.name, id_column).where(
            table.c.account_id == account_id, table.c.permissions_boundary == arn,
            table.c.path.startswith(prefix, autoescape=True)))
        found += [(entity_type, r[0], r[1]) for r in rows]
    return found

