"""Instance profiles (how EC2 instances get a role): Create/Get/List/DeleteInstanceProfile,
Add/RemoveRoleFromInstanceProfile, ListInstanceProfilesForRole, instance profile tags."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from minicloud.aws.context import RequestContext
from minicloud.iam import ids, store
from minicloud.iam.tables import (
    INSTANCE_PROFILE,
    iam_instance_profile_roles,
    iam_instance_profiles,
    iam_roles,
)
from minicloud.services.iam.base import (
    Params,
    Result,
    count,
    delete_tags,
    page_list,
    paged,
    path_filter,
    request_tag_context,
    role_shape,
    tag_list,
)
from minicloud.services.iam.errors import DeleteConflict, EntityAlreadyExists, NoSuchEntity, quota
from minicloud.services.iam.login_profiles import LoginProfilesMixin
from minicloud.services.iam.tags import (
    add_tags,
    check_new_tags,
    remove_tags,
    replace_tags,
    tags_page,
    untag_context,
)

INSTANCE_PROFILES_QUOTA = 1000
ROLES_PER_INSTANCE_PROFILE = 1
_IP = iam_instance_profiles.c
_IPR = iam_instance_profile_roles.c


@dataclass(frozen=True, slots=True)
class InstanceProfile:
    instance_profile_id: str
    account_id: str
    name: str
    path: str
    created_at: datetime

    @property
    def arn(self) -> str:
        return store.instance_profile_arn(self.account_id, self.path, self.name)


def _get(conn: sa.Connection, account_id: str, name: str) -> InstanceProfile | None:
    row = conn.execute(sa.select(iam_instance_profiles).where(
        _IP.account_id == account_id, _IP.name_key == name.lower())).first()
    return _from_row(row) if row else None


def _from_row(row: Any) -> InstanceProfile:
    return InstanceProfile(row.instance_profile_id, row.account_id, row.name, row.path, row.created_at)


def _roles(conn: sa.Connection, profile_ids: Sequence[str]) -> dict[str, list[store.RoleRecord]]:
    roles: dict[str, list[store.RoleRecord]] = {pid: [] for pid in profile_ids}
    rows = conn.execute(sa.select(iam_roles, _IPR.instance_profile_id)
                        .join(iam_instance_profile_roles, _IPR.role_id == iam_roles.c.role_id)
                        .where(_IPR.instance_profile_id.in_(list(profile_ids))))
    for row in rows:
        roles[row.instance_profile_id].append(store.role_from_row(row))
    return roles


def _shape(profile: InstanceProfile, roles: Sequence[store.RoleRecord],
           tags: Sequence[tuple[str, str]] | None = None) -> Result:
    shape: Result = {
        "Path": profile.path, "InstanceProfileName": profile.name,
        "InstanceProfileId": profile.instance_profile_id, "Arn": profile.arn,
        "CreateDate": profile.created_at, "Roles": [role_shape(r) for r in roles],
    }
    if tags:
        shape["Tags"] = tag_list(tags)
    return shape


def _profiles_page(shapes: list[Result], params: Params) -> Result:
    chosen, marker = page_list(shapes, lambda s: str(s["InstanceProfileName"]).lower(), params)
    return paged("InstanceProfiles", chosen, marker)


def _not_found(name: str) -> NoSuchEntity:
    return NoSuchEntity(f"Instance Profile {name} cannot be found.")


class InstanceProfilesMixin(LoginProfilesMixin):
    async def authorize_instance_profile(self, ctx: RequestContext, action: str, name: str, *,
                                         context: Mapping[str, str | list[str]] | None = None
                                         ) -> InstanceProfile:
        profile = await self.read(lambda conn: _get(conn, ctx.account_id, name))
        arn = profile.arn if profile else store.instance_profile_arn(ctx.account_id, "/", name)
        await ctx.authorize(action, arn, context=context)
        if profile is None:
            raise _not_found(name)
        return profile

    async def create_instance_profile(self, ctx: RequestContext, params: Params) -> Result:
        name, path = params["InstanceProfileName"], params.get("Path") or "/"
        tags: Sequence[Mapping[str, str]] = params.get("Tags") or []
        profile = InstanceProfile(ids.unique_id(ids.INSTANCE_PROFILE), ctx.account_id, name, path, ctx.now)
        await ctx.authorize("iam:CreateInstanceProfile", profile.arn, context=request_tag_context(tags))
        check_new_tags([], tags)

        def create(conn: sa.Connection) -> None:
            if _get(conn, ctx.account_id, name) is not None:
                raise EntityAlreadyExists(f"Instance Profile {name} already exists.")
            existing = count(conn, iam_instance_profiles, _IP.account_id == ctx.account_id)
            if existing >= INSTANCE_PROFILES_QUOTA:
                raise quota("InstanceProfilesPerAccount", INSTANCE_PROFILES_QUOTA)
            conn.execute(iam_instance_profiles.insert().values(
                instance_profile_id=profile.instance_profile_id, account_id=ctx.account_id, name=name,
                name_key=name.lower(), path=path, created_at=ctx.now))
            replace_tags(conn, INSTANCE_PROFILE, profile.instance_profile_id, tags)

        await self.write(create)
        return {"InstanceProfile": _shape(profile, [], [(t["Key"], t["Value"]) for t in tags])}

    async def get_instance_profile(self, ctx: RequestContext, params: Params) -> Result:
        profile = await self.authorize_instance_profile(ctx, "iam:GetInstanceProfile",
                                                        params["InstanceProfileName"])

        def load(conn: sa.Connection) -> Result:
            roles = _roles(conn, [profile.instance_profile_id])[profile.instance_profile_id]
            return _shape(profile, roles, store.get_tags(conn, INSTANCE_PROFILE, profile.instance_profile_id))

        return {"InstanceProfile": await self.read(load)}

    async def list_instance_profiles(self, ctx: RequestContext, params: Params) -> Result:
        prefix = params.get("PathPrefix") or "/"
        await ctx.authorize("iam:ListInstanceProfiles",
                            store.instance_profile_arn(ctx.account_id, prefix, ""))

        def load(conn: sa.Connection) -> list[Result]:
            rows = conn.execute(sa.select(iam_instance_profiles).where(
                _IP.account_id == ctx.account_id, path_filter(_IP.path, prefix)))
            profiles = [_from_row(r) for r in rows]
            roles = _roles(conn, [p.instance_profile_id for p in profiles])
            return [_shape(p, roles[p.instance_profile_id]) for p in profiles]

        return _profiles_page(await self.read(load), params)

    async def list_instance_profiles_for_role(self, ctx: RequestContext, params: Params) -> Result:
        role = await self.authorize_role(ctx, "iam:ListInstanceProfilesForRole", params["RoleName"])

        def load(conn: sa.Connection) -> list[Result]:
            rows = conn.execute(sa.select(iam_instance_profiles)
                                .join(iam_instance_profile_roles,
                                      _IPR.instance_profile_id == _IP.instance_profile_id)
                                .where(_IPR.role_id == role.role_id))
            profiles = [_from_row(r) for r in rows]
            roles = _roles(conn, [p.instance_profile_id for p in profiles])
            return [_shape(p, roles[p.instance_profile_id]) for p in profiles]

        return _profiles_page(await self.read(load), params)

    async def delete_instance_profile(self, ctx: RequestContext, params: Params) -> Result:
        profile = await self.authorize_instance_profile(ctx, "iam:DeleteInstanceProfile",
                                                        params["InstanceProfileName"])

        def delete(conn: sa.Connection) -> None:
            mine = _IPR.instance_profile_id == profile.instance_profile_id
            if count(conn, iam_instance_profile_roles, mine):
                raise DeleteConflict("Cannot delete entity, must remove roles from instance profile first.")
            delete_tags(conn, INSTANCE_PROFILE, profile.instance_profile_id)
            conn.execute(iam_instance_profiles.delete().where(
                _IP.instance_profile_id == profile.instance_profile_id))

        await self.write(delete)
        return {}

    async def add_role_to_instance_profile(self, ctx: RequestContext, params: Params) -> Result:
        profile = await self.authorize_instance_profile(ctx, "iam:AddRoleToInstanceProfile",
                                                        params["InstanceProfileName"])
        role_name = params["RoleName"]

        def add(conn: sa.Connection) -> None:
            role = store.get_role(conn, ctx.account_id, role_name)
            if role is None:
                raise NoSuchEntity(f"The role with name {role_name} cannot be found.")
            mine = _IPR.instance_profile_id == profile.instance_profile_id
            if count(conn, iam_instance_profile_roles, mine, _IPR.role_id == role.role_id):
                raise EntityAlreadyExists(f"Role {role.name} is already associated with instance profile "
                                          f"{profile.name}.")
            if count(conn, iam_instance_profile_roles, mine) >= ROLES_PER_INSTANCE_PROFILE:
                raise quota("InstanceSessionsPerInstanceProfile", ROLES_PER_INSTANCE_PROFILE)
            conn.execute(iam_instance_profile_roles.insert().values(
                instance_profile_id=profile.instance_profile_id, role_id=role.role_id))

        await self.write(add)
        return {}

    async def remove_role_from_instance_profile(self, ctx: RequestContext, params: Params) -> Result:
        profile = await self.authorize_instance_profile(ctx, "iam:RemoveRoleFromInstanceProfile",
                                                        params["InstanceProfileName"])
        role_name = params["RoleName"]

        def remove(conn: sa.Connection) -> None:
            role = store.get_role(conn, ctx.account_id, role_name)
            if role is None:
                raise NoSuchEntity(f"The role with name {role_name} cannot be found.")
            removed = conn.execute(iam_instance_profile_roles.delete().where(
                _IPR.instance_profile_id == profile.instance_profile_id, _IPR.role_id == role.role_id))
            if not removed.rowcount:
                raise NoSuchEntity(f"The role with name {role.name} cannot be found in instance profile "
                                   f"{profile.name}.")

        await self.write(remove)
        return {}

    # -- tags -------------------------------------------------------------------------------------
    async def tag_instance_profile(self, ctx: RequestContext, params: Params) -> Result:
        tags = params["Tags"]
        profile = await self.authorize_instance_profile(ctx, "iam:TagInstanceProfile",
                                                        params["InstanceProfileName"],
                                                        context=request_tag_context(tags))
        await self.write(lambda conn: add_tags(conn, INSTANCE_PROFILE, profile.instance_profile_id, tags))
        return {}

    async def untag_instance_profile(self, ctx: RequestContext, params: Params) -> Result:
        keys = params["TagKeys"]
        profile = await self.authorize_instance_profile(ctx, "iam:UntagInstanceProfile",
                                                        params["InstanceProfileName"],
                                                        context=untag_context(keys))
        await self.write(lambda conn: remove_tags(conn, INSTANCE_PROFILE, profile.instance_profile_id, keys))
        return {}

    async def list_instance_profile_tags(self, ctx: RequestContext, params: Params) -> Result:
        profile = await self.authorize_instance_profile(ctx, "iam:ListInstanceProfileTags",
                                                        params["InstanceProfileName"])
        return await self.read(lambda conn: tags_page(conn, INSTANCE_PROFILE, profile.instance_profile_id,
                                                      params))
