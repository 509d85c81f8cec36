"""IAM users: Create/Get/List/Update/DeleteUser, user permissions boundaries."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from minicloud.aws.context import RequestContext
from minicloud.iam import ids, store
from minicloud.iam.accounts import get_account
from minicloud.iam.identity import PrincipalKind
from minicloud.iam.tables import (
    USER,
    iam_attachments,
    iam_group_members,
    iam_inline_policies,
    iam_login_profiles,
    iam_users,
)
from minicloud.services.iam.base import (
    IamBase,
    Params,
    PathListing,
    Result,
    check_attachable,
    check_policy_arn,
    count,
    delete_tags,
    non_user_caller,
    not_found,
    paged,
    request_tag_context,
    resource_tag_context,
    user_shape,
)
from minicloud.services.iam.errors import DeleteConflict, EntityAlreadyExists, quota
from minicloud.services.iam.tags import (
    add_tags,
    check_new_tags,
    remove_tags,
    replace_tags,
    tags_page,
    untag_context,
)
from minicloud.storage.metadata.schema import access_keys

USERS_QUOTA = 5000


_USERS = PathListing(iam_users)


class UsersMixin(IamBase):
    # -- shared lookups ---------------------------------------------------------------------------
    async def authorize_user(self, ctx: RequestContext, action: str, name: str, *,
                             context: Mapping[str, str | list[str]] | None = None) -> store.UserRecord:
        """Look the user up, authorize ``action`` on it, then raise NoSuchEntity if it is missing
        (authorization first, so that a caller without permission learns nothing)."""

        def load(conn: sa.Connection) -> tuple[store.UserRecord | None, list[tuple[str, str]]]:
            user = store.get_user(conn, ctx.account_id, name)
            return user, (store.get_tags(conn, USER, user.user_id) if user else [])

        user, tags = await self.read(load)
        arn = user.arn if user else store.user_arn(ctx.account_id, "/", name)
        await ctx.authorize(action, arn, context={**resource_tag_context(tags), **(context or {})})
        if user is None:
            raise not_found("user", name)
        return user

    async def authorize_self_or_user(self, ctx: RequestContext, action: str,
                                     name: str | None) -> store.UserRecord:
        """The user ``name``, or the calling IAM user when no name is given."""
        if name is not None:
            return await self.authorize_user(ctx, action, name)
        user_id = ctx.principal.user_id if ctx.principal.kind is PrincipalKind.USER else None
        if user_id is None:
            raise non_user_caller()
        user = await self.read(lambda conn: store.get_user_by_id(conn, user_id))
        if user is None:
            raise not_found("user", ctx.principal.name)
        await ctx.authorize(action, user.arn)
        return user

    # -- operations -------------------------------------------------------------------------------
    async def create_user(self, ctx: RequestContext, params: Params) -> Result:
        name, path = params["UserName"], params.get("Path") or "/"
        tags: Sequence[Mapping[str, str]] = params.get("Tags") or []
        boundary = params.get("PermissionsBoundary")
        if boundary:
            check_policy_arn(boundary)
        context = request_tag_context(tags)
        if boundary:
            context["iam:PermissionsBoundary"] = boundary
        await ctx.authorize("iam:CreateUser", store.user_arn(ctx.account_id, path, name), context=context)
        check_new_tags([], tags)
        user_id = ids.unique_id(ids.USER)

        def create(conn: sa.Connection) -> store.UserRecord:
            if store.get_user(conn, ctx.account_id, name) is not None:
                raise EntityAlreadyExists(f"User with name {name} already exists.")
            if count(conn, iam_users, iam_users.c.account_id == ctx.account_id) >= USERS_QUOTA:
                raise quota("UsersPerAccount", USERS_QUOTA)
            if boundary:
                check_attachable(conn, ctx.account_id, boundary)
            conn.execute(iam_users.insert().values(
                user_id=user_id, account_id=ctx.account_id, name=name, name_key=name.lower(), path=path,
                permissions_boundary=boundary, created_at=ctx.now))
            replace_tags(conn, USER, user_id, tags)
            return store.UserRecord(user_id, ctx.account_id, name, path, ctx.now, boundary)

        user = await self.write(create)
        return {"User": user_shape(user, tags=[(t["Key"], t["Value"]) for t in tags], full=True)}

    async def get_user(self, ctx: RequestContext, params: Params) -> Result:
        name = params.get("UserName")
        if name is None and ctx.principal.kind is PrincipalKind.ROOT:
            await ctx.authorize("iam:GetUser", ctx.principal.arn)
            return {"User": await self._root_user(ctx)}
        user = await self.authorize_self_or_user(ctx, "iam:GetUser", name)
        tags = await self.read(lambda conn: store.get_tags(conn, USER, user.user_id))
        return {"User": user_shape(user, tags=tags, full=True)}

    async def _root_user(self, ctx: RequestContext) -> Result:
        account = await self.read(lambda conn: get_account(conn, ctx.account_id))
        shape: Result = {"UserId": ctx.account_id, "Arn": ctx.principal.arn}
        if account is not None:
            shape["CreateDate"] = account.created_at
        return shape

    async def list_users(self, ctx: RequestContext, params: Params) -> Result:
        prefix = params.get("PathPrefix") or "/"
        await ctx.authorize("iam:ListUsers", f"arn:aws:iam::{ctx.account_id}:user{prefix}")

        rows, marker = await self.path_page(_USERS, ctx.account_id, prefix, params)
        return paged("Users", [user_shape(store.user_from_row(r)) for r in rows], marker)

    async def update_user(self, ctx: RequestContext, params: Params) -> Result:
        name = params["UserName"]
        new_name, new_path = params.get("NewUserName"), params.get("NewPath")
        user = await self.authorize_user(ctx, "iam:UpdateUser", name)
        if new_name is not None or new_path is not None:
            target = store.user_arn(ctx.account_id, new_path or user.path, new_name or user.name)
            if target != user.arn:
                await ctx.authorize("iam:UpdateUser", target)

        def update(conn: sa.Connection) -> None:
            values: dict[str, Any] = {}
            if new_name is not None:
                other = store.get_user(conn, ctx.account_id, new_name)
                if other is not None and other.user_id != user.user_id:
                    raise EntityAlreadyExists(f"User with name {new_name} already exists.")
                values.update(name=new_name, name_key=new_name.lower())
            if new_path is not None:
                values["path"] = new_path
            if values:
                conn.execute(iam_users.update().where(iam_users.c.user_id == user.user_id).values(**values))

        await self.write(update)
        return {}

    async def delete_user(self, ctx: RequestContext, params: Params) -> Result:
        user = await self.authorize_user(ctx, "iam:DeleteUser", params["UserName"])

        def delete(conn: sa.Connection) -> None:
            uid = user.user_id
            checks = (
                (iam_login_profiles, iam_login_profiles.c.user_id == uid, "delete login profile"),
                (access_keys, access_keys.c.user_id == uid, "delete access keys"),
                (iam_inline_policies, sa.and_(iam_inline_policies.c.entity_type == USER,
                                              iam_inline_policies.c.entity_id == uid), "delete policies"),
                (iam_attachments, sa.and_(iam_attachments.c.entity_type == USER,
                                          iam_attachments.c.entity_id == uid), "detach all policies"),
                (iam_group_members, iam_group_members.c.user_id == uid, "remove users from group"),
            )
            for table, where, what in checks:
                if count(conn, table, where):
                    raise DeleteConflict(f"Cannot delete entity, must {what} first.")
            delete_tags(conn, USER, uid)
            conn.execute(iam_users.delete().where(iam_users.c.user_id == uid))

        await self.write(delete)
        return {}

    async def put_user_permissions_boundary(self, ctx: RequestContext, params: Params) -> Result:
        boundary = params["PermissionsBoundary"]
        check_policy_arn(boundary)
        user = await self.authorize_user(ctx, "iam:PutUserPermissionsBoundary", params["UserName"],
                                         context={"iam:PermissionsBoundary": boundary})

        def put(conn: sa.Connection) -> None:
            check_attachable(conn, ctx.account_id, boundary)
            conn.execute(iam_users.update().where(iam_users.c.user_id == user.user_id)
                         .values(permissions_boundary=boundary))

        await self.write(put)
        return {}

    async def delete_user_permissions_boundary(self, ctx: RequestContext, params: Params) -> Result:
        user = await self.authorize_user(ctx, "iam:DeleteUserPermissionsBoundary", params["UserName"])
        await self.write(lambda conn: conn.execute(iam_users.update().where(
            iam_users.c.user_id == user.user_id).values(permissions_boundary=None)))
        return {}

    # -- tags -------------------------------------------------------------------------------------
    async def tag_user(self, ctx: RequestContext, params: Params) -> Result:
        tags = params["Tags"]
        user = await self.authorize_user(ctx, "iam:TagUser", params["UserName"],
                                         context=request_tag_context(tags))
        await self.write(lambda conn: add_tags(conn, USER, user.user_id, tags))
        return {}

    async def untag_user(self, ctx: RequestContext, params: Params) -> Result:
        keys = params["TagKeys"]
        user = await self.authorize_user(ctx, "iam:UntagUser", params["UserName"],
                                         context=untag_context(keys))
        await self.write(lambda conn: remove_tags(conn, USER, user.user_id, keys))
        return {}

    async def list_user_tags(self, ctx: RequestContext, params: Params) -> Result:
        user = await self.authorize_user(ctx, "iam:ListUserTags", params["UserName"])
        return await self.read(lambda conn: tags_page(conn, USER, user.user_id, params))
