"""IAM groups: Create/Get/List/Update/DeleteGroup, membership."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from minicloud.aws.context import RequestContext
from minicloud.iam import ids, store
from minicloud.iam.tables import (
    GROUP,
    iam_attachments,
    iam_group_members,
    iam_groups,
    iam_inline_policies,
    iam_users,
)
from minicloud.services.iam.base import (
    Params,
    PathListing,
    Result,
    count,
    group_shape,
    not_found,
    page_query,
    paged,
    user_shape,
)
from minicloud.services.iam.errors import DeleteConflict, EntityAlreadyExists, NoSuchEntity, quota
from minicloud.services.iam.users import UsersMixin

GROUPS_QUOTA = 300
GROUPS_PER_USER = 10


_GROUPS = PathListing(iam_groups)


class GroupsMixin(UsersMixin):
    async def authorize_group(self, ctx: RequestContext, action: str, name: str) -> store.GroupRecord:
        group = await self.read(lambda conn: store.get_group(conn, ctx.account_id, name))
        await ctx.authorize(action, group.arn if group else store.group_arn(ctx.account_id, "/", name))
        if group is None:
            raise not_found("group", name)
        return group

    async def create_group(self, ctx: RequestContext, params: Params) -> Result:
        name, path = params["GroupName"], params.get("Path") or "/"
        await ctx.authorize("iam:CreateGroup", store.group_arn(ctx.account_id, path, name))
        group = store.GroupRecord(ids.unique_id(ids.GROUP), ctx.account_id, name, path, ctx.now)

        def create(conn: sa.Connection) -> None:
            if store.get_group(conn, ctx.account_id, name) is not None:
                raise EntityAlreadyExists(f"Group with name {name} already exists.")
            if count(conn, iam_groups, iam_groups.c.account_id == ctx.account_id) >= GROUPS_QUOTA:
                raise quota("GroupsPerAccount", GROUPS_QUOTA)
            conn.execute(iam_groups.insert().values(
                group_id=group.group_id, account_id=ctx.account_id, name=name, name_key=name.lower(),
                path=path, created_at=ctx.now))

        await self.write(create)
        return {"Group": group_shape(group)}

    async def get_group(self, ctx: RequestContext, params: Params) -> Result:
        group = await self.authorize_group(ctx, "iam:GetGroup", params["GroupName"])

        def load(conn: sa.Connection) -> tuple[list[Any], str | None]:
            query = (sa.select(iam_users)
                     .join(iam_group_members, iam_group_members.c.user_id == iam_users.c.user_id)
                     .where(iam_group_members.c.group_id == group.group_id))
            return page_query(conn, query, iam_users.c.name_key, params)

        rows, marker = await self.read(load)
        result = paged("Users", [user_shape(store.user_from_row(r)) for r in rows], marker)
        result["Group"] = group_shape(group)
        return result

    async def list_groups(self, ctx: RequestContext, params: Params) -> Result:
        prefix = params.get("PathPrefix") or "/"
        await ctx.authorize("iam:ListGroups", f"arn:aws:iam::{ctx.account_id}:group{prefix}")

        rows, marker = await self.path_page(_GROUPS, ctx.account_id, prefix, params)
        return paged("Groups", [group_shape(store.group_from_row(r)) for r in rows], marker)

    async def list_groups_for_user(self, ctx: RequestContext, params: Params) -> Result:
        user = await self.authorize_user(ctx, "iam:ListGroupsForUser", params["UserName"])

        def load(conn: sa.Connection) -> tuple[list[Any], str | None]:
            query = (sa.select(iam_groups)
                     .join(iam_group_members, iam_group_members.c.group_id == iam_groups.c.group_id)
                     .where(iam_group_members.c.user_id == user.user_id))
            return page_query(conn, query, iam_groups.c.name_key, params)

        rows, marker = await self.read(load)
        return paged("Groups", [group_shape(store.group_from_row(r)) for r in rows], marker)

    async def update_group(self, ctx: RequestContext, params: Params) -> Result:
        name = params["GroupName"]
        new_name, new_path = params.get("NewGroupName"), params.get("NewPath")
        group = await self.authorize_group(ctx, "iam:UpdateGroup", name)
        target = store.group_arn(ctx.account_id, new_path or group.path, new_name or group.name)
        if target != group.arn:
            await ctx.authorize("iam:UpdateGroup", target)

        def update(conn: sa.Connection) -> None:
            values: dict[str, Any] = {}
            if new_name is not None:
                other = store.get_group(conn, ctx.account_id, new_name)
                if other is not None and other.group_id != group.group_id:
                    raise EntityAlreadyExists(f"Group with name {new_name} already exists.")
                values.update(name=new_name, name_key=new_name.lower())
            if new_path is not None:
                values["path"] = new_path
            if values:
                conn.execute(iam_groups.update().where(iam_groups.c.group_id == group.group_id)
                             .values(**values))

        await self.write(update)
        return {}

    async def delete_group(self, ctx: RequestContext, params: Params) -> Result:
        group = await self.authorize_group(ctx, "iam:DeleteGroup", params["GroupName"])

        def delete(conn: sa.Connection) -> None:
            gid = group.group_id
            checks = (
                (iam_group_members, iam_group_members.c.group_id == gid, "remove users from group"),
                (iam_inline_policies, sa.and_(iam_inline_policies.c.entity_type == GROUP,
                                              iam_inline_policies.c.entity_id == gid), "delete policies"),
                (iam_attachments, sa.and_(iam_attachments.c.entity_type == GROUP,
                                          iam_attachments.c.entity_id == gid), "detach all policies"),
            )
            for table, where, what in checks:
                if count(conn, table, where):
                    raise DeleteConflict(f"Cannot delete entity, must {what} first.")
            conn.execute(iam_groups.delete().where(iam_groups.c.group_id == gid))

        await self.write(delete)
        return {}

    async def add_user_to_group(self, ctx: RequestContext, params: Params) -> Result:
        group = await self.authorize_group(ctx, "iam:AddUserToGroup", params["GroupName"])
        user_name = params["UserName"]

        def add(conn: sa.Connection) -> None:
            user = store.get_user(conn, ctx.account_id, user_name)
            if user is None:
                raise not_found("user", user_name)
            members = iam_group_members.c
            if count(conn, iam_group_members, members.group_id == group.group_id,
                     members.user_id == user.user_id):
                return
            if count(conn, iam_group_members, members.user_id == user.user_id) >= GROUPS_PER_USER:
                raise quota("GroupsPerUser", GROUPS_PER_USER)
            conn.execute(iam_group_members.insert().values(group_id=group.group_id, user_id=user.user_id,
                                                           added_at=ctx.now))

        await self.write(add)
        return {}

    async def remove_user_from_group(self, ctx: RequestContext, params: Params) -> Result:
        group = await self.authorize_group(ctx, "iam:RemoveUserFromGroup", params["GroupName"])
        user_name = params["UserName"]

        def remove(conn: sa.Connection) -> None:
            user = store.get_user(conn, ctx.account_id, user_name)
            if user is None:
                raise not_found("user", user_name)
            removed = conn.execute(iam_group_members.delete().where(
                iam_group_members.c.group_id == group.group_id, iam_group_members.c.user_id == user.user_id))
            if not removed.rowcount:
                raise NoSuchEntity(f"User {user.name} is not in group {group.name}.")

        await self.write(remove)
        return {}
