"""IAM roles: Create/Get/List/Update/DeleteRole, trust policies, role permissions boundaries, tags."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from minicloud.aws.context import RequestContext
from minicloud.iam import ids, store
from minicloud.iam.policy import ROLE_TRUST_POLICY_MAX, PolicyKind
from minicloud.iam.tables import (
    ROLE,
    iam_attachments,
    iam_inline_policies,
    iam_instance_profile_roles,
    iam_roles,
)
from minicloud.services.iam.base import (
    Params,
    PathListing,
    Result,
    check_attachable,
    check_policy_arn,
    check_size,
    count,
    delete_tags,
    not_found,
    paged,
    request_tag_context,
    resource_tag_context,
    role_shape,
)
from minicloud.services.iam.errors import DeleteConflict, EntityAlreadyExists, quota
from minicloud.services.iam.groups import GroupsMixin
from minicloud.services.iam.tags import (
    add_tags,
    check_new_tags,
    remove_tags,
    replace_tags,
    tags_page,
    untag_context,
)

ROLES_QUOTA = 1000
DEFAULT_MAX_SESSION = 3600


_ROLES = PathListing(iam_roles)


class RolesMixin(GroupsMixin):
    async def authorize_role(self, ctx: RequestContext, action: str, name: str, *,
                             context: Mapping[str, str | list[str]] | None = None) -> store.RoleRecord:
        def load(conn: sa.Connection) -> tuple[store.RoleRecord | None, list[tuple[str, str]]]:
            role = store.get_role(conn, ctx.account_id, name)
            return role, (store.get_tags(conn, ROLE, role.role_id) if role else [])

        role, tags = await self.read(load)
        arn = role.arn if role else store.role_arn(ctx.account_id, "/", name)
        await ctx.authorize(action, arn, context={**resource_tag_context(tags), **(context or {})})
        if role is None:
            raise not_found("role", name)
        return role

    def check_trust_policy(self, text: str) -> None:
        self.check_document(text, PolicyKind.TRUST)
        check_size(text, ROLE_TRUST_POLICY_MAX, lambda: quota("ACLSizePerRole", ROLE_TRUST_POLICY_MAX))

    async def create_role(self, ctx: RequestContext, params: Params) -> Result:
        name, path = params["RoleName"], params.get("Path") or "/"
        trust = params["AssumeRolePolicyDocument"]
        tags: Sequence[Mapping[str, str]] = params.get("Tags") or []
        boundary = params.get("PermissionsBoundary")
        if boundary:
            check_policy_arn(boundary)
        context = request_tag_context(tags)
        if boundary:
            context["iam:PermissionsBoundary"] = boundary
        await ctx.authorize("iam:CreateRole", store.role_arn(ctx.account_id, path, name), context=context)
        self.check_trust_policy(trust)
        check_new_tags([], tags)
        role = store.RoleRecord(
            ids.unique_id(ids.ROLE), ctx.account_id, name, path, ctx.now, trust,
            params.get("MaxSessionDuration") or DEFAULT_MAX_SESSION, params.get("Description"), boundary)

        def create(conn: sa.Connection) -> None:
            if store.get_role(conn, ctx.account_id, name) is not None:
                raise EntityAlreadyExists(f"Role with name {name} already exists.")
            if count(conn, iam_roles, iam_roles.c.account_id == ctx.account_id) >= ROLES_QUOTA:
                raise quota("RolesPerAccount", ROLES_QUOTA)
            if boundary:
                check_attachable(conn, ctx.account_id, boundary)
            conn.execute(iam_roles.insert().values(
                role_id=role.role_id, account_id=ctx.account_id, name=name, name_key=name.lower(),
                path=path, assume_role_policy=trust, description=role.description,
                max_session_duration=role.max_session_duration, permissions_boundary=boundary,
                created_at=ctx.now))
            replace_tags(conn, ROLE, role.role_id, tags)

        await self.write(create)
        return {"Role": role_shape(role, tags=[(t["Key"], t["Value"]) for t in tags])}

    async def get_role(self, ctx: RequestContext, params: Params) -> Result:
        role = await self.authorize_role(ctx, "iam:GetRole", params["RoleName"])
        tags = await self.read(lambda conn: store.get_tags(conn, ROLE, role.role_id))
        return {"Role": role_shape(role, tags=tags, full=True)}

    async def list_roles(self, ctx: RequestContext, params: Params) -> Result:
        prefix = params.get("PathPrefix") or "/"
        await ctx.authorize("iam:ListRoles", f"arn:aws:iam::{ctx.account_id}:role{prefix}")

        rows, marker = await self.path_page(_ROLES, ctx.account_id, prefix, params)
        return paged("Roles", [role_shape(store.role_from_row(r)) for r in rows], marker)

    async def update_role(self, ctx: RequestContext, params: Params) -> Result:
        role = await self.authorize_role(ctx, "iam:UpdateRole", params["RoleName"])
        values: dict[str, Any] = {}
        if "Description" in params:
            values["description"] = params["Description"]
        if params.get("MaxSessionDuration") is not None:
            values["max_session_duration"] = params["MaxSessionDuration"]
        if values:
            await self.write(lambda conn: conn.execute(
                iam_roles.update().where(iam_roles.c.role_id == role.role_id).values(**values)))
        return {}

    async def update_role_description(self, ctx: RequestContext, params: Params) -> Result:
        role = await self.authorize_role(ctx, "iam:UpdateRoleDescription", params["RoleName"])
        description = params["Description"]
        await self.write(lambda conn: conn.execute(
            iam_roles.update().where(iam_roles.c.role_id == role.role_id).values(description=description)))
        tags = await self.read(lambda conn: store.get_tags(conn, ROLE, role.role_id))
        updated = dataclasses.replace(role, description=description)
        return {"Role": role_shape(updated, tags=tags, full=True)}

    async def update_assume_role_policy(self, ctx: RequestContext, params: Params) -> Result:
        role = await self.authorize_role(ctx, "iam:UpdateAssumeRolePolicy", params["RoleName"])
        trust = params["PolicyDocument"]
        self.check_trust_policy(trust)
        await self.write(lambda conn: conn.execute(
            iam_roles.update().where(iam_roles.c.role_id == role.role_id).values(assume_role_policy=trust)))
        return {}

    async def delete_role(self, ctx: RequestContext, params: Params) -> Result:
        role = await self.authorize_role(ctx, "iam:DeleteRole", params["RoleName"])

        def delete(conn: sa.Connection) -> None:
            rid = role.role_id
            checks = (
                (iam_instance_profile_roles, iam_instance_profile_roles.c.role_id == rid,
                 "remove roles from instance profile"),
                (iam_inline_policies, sa.and_(iam_inline_policies.c.entity_type == ROLE,
                                              iam_inline_policies.c.entity_id == rid), "delete policies"),
                (iam_attachments, sa.and_(iam_attachments.c.entity_type == ROLE,
                                          iam_attachments.c.entity_id == rid), "detach all policies"),
            )
            for table, where, what in checks:
                if count(conn, table, where):
                    raise DeleteConflict(f"Cannot delete entity, must {what} first.")
            delete_tags(conn, ROLE, rid)
            conn.execute(iam_roles.delete().where(iam_roles.c.role_id == rid))

        await self.write(delete)
        return {}

    async def put_role_permissions_boundary(self, ctx: RequestContext, params: Params) -> Result:
        boundary = params["PermissionsBoundary"]
        check_policy_arn(boundary)
        role = await self.authorize_role(ctx, "iam:PutRolePermissionsBoundary", params["RoleName"],
                                         context={"iam:PermissionsBoundary": boundary})

        def put(conn: sa.Connection) -> None:
            check_attachable(conn, ctx.account_id, boundary)
            conn.execute(iam_roles.update().where(iam_roles.c.role_id == role.role_id)
                         .values(permissions_boundary=boundary))

        await self.write(put)
        return {}

    async def delete_role_permissions_boundary(self, ctx: RequestContext, params: Params) -> Result:
        role = await self.authorize_role(ctx, "iam:DeleteRolePermissionsBoundary", params["RoleName"])
        await self.write(lambda conn: conn.execute(
            iam_roles.update().where(iam_roles.c.role_id == role.role_id).values(permissions_boundary=None)))
        return {}

    # -- tags -------------------------------------------------------------------------------------
    async def tag_role(self, ctx: RequestContext, params: Params) -> Result:
        tags = params["Tags"]
        role = await self.authorize_role(ctx, "iam:TagRole", params["RoleName"],
                                         context=request_tag_context(tags))
        await self.write(lambda conn: add_tags(conn, ROLE, role.role_id, tags))
        return {}

    async def untag_role(self, ctx: RequestContext, params: Params) -> Result:
        keys = params["TagKeys"]
        role = await self.authorize_role(ctx, "iam:UntagRole", params["RoleName"],
                                         context=untag_context(keys))
        await self.write(lambda conn: remove_tags(conn, ROLE, role.role_id, keys))
        return {}

    async def list_role_tags(self, ctx: RequestContext, params: Params) -> Result:
        role = await self.authorize_role(ctx, "iam:ListRoleTags", params["RoleName"])
        return await self.read(lambda conn: tags_page(conn, ROLE, role.role_id, params))

