"""Inline policies of users, groups and roles: Put/Get/List/Delete{User,Group,Role}Policy.

IAM limits the *aggregate* size of an entity's inline policies (white space excluded): 2,048
characters for a user, 5,120 for a group, 10,240 for a role.
"""

from __future__ import annotations

import sqlalchemy as sa

from minicloud.aws.context import RequestContext
from minicloud.iam.policy import (
    INLINE_GROUP_POLICIES_MAX,
    INLINE_ROLE_POLICIES_MAX,
    INLINE_USER_POLICIES_MAX,
    policy_size,
)
from minicloud.iam.tables import GROUP, ROLE, USER, iam_inline_policies
from minicloud.services.iam.attachments import AttachmentsMixin, Entity
from minicloud.services.iam.base import Params, Result, encode_document, page_list, paged
from minicloud.services.iam.errors import LimitExceeded, NoSuchEntity

_LIMITS = {USER: INLINE_USER_POLICIES_MAX, GROUP: INLINE_GROUP_POLICIES_MAX, ROLE: INLINE_ROLE_POLICIES_MAX}
_NAME_PARAM = {USER: "UserName", GROUP: "GroupName", ROLE: "RoleName"}
_OP_NOUN = {USER: "User", GROUP: "Group", ROLE: "Role"}
_I = iam_inline_policies.c


def _mine(entity: Entity) -> tuple[sa.ColumnElement[bool], sa.ColumnElement[bool]]:
    return _I.entity_type == entity.entity_type, _I.entity_id == entity.entity_id


class InlinePoliciesMixin(AttachmentsMixin):
    async def _entity(self, ctx: RequestContext, entity_type: str, verb: str, params: Params) -> Entity:
        action = f"iam:{verb}{_OP_NOUN[entity_type]}Policy"
        return await self.authorize_entity(ctx, entity_type, action, params[_NAME_PARAM[entity_type]])

    async def _put(self, ctx: RequestContext, entity_type: str, params: Params) -> Result:
        entity = await self._entity(ctx, entity_type, "Put", params)
        name, document = params["PolicyName"], params["PolicyDocument"]
        self.check_document(document)
        limit = _LIMITS[entity_type]

        def put(conn: sa.Connection) -> None:
            others = conn.execute(sa.select(_I.document).where(*_mine(entity), _I.name != name)).scalars()
            if sum(map(policy_size, others)) + policy_size(document) > limit:
                raise LimitExceeded(f"Maximum policy size of {limit} bytes exceeded for "
                                    f"{entity_type} {entity.name}")
            updated = conn.execute(iam_inline_policies.update().where(*_mine(entity), _I.name == name)
                                   .values(document=document))
            if not updated.rowcount:
                conn.execute(iam_inline_policies.insert().values(
                    entity_type=entity_type, entity_id=entity.entity_id, name=name,
                    account_id=ctx.account_id, document=document, created_at=ctx.now))

        await self.write(put)
        return {}

    async def _get(self, ctx: RequestContext, entity_type: str, params: Params) -> Result:
        entity = await self._entity(ctx, entity_type, "Get", params)
        name = params["PolicyName"]
        document = await self.read(lambda conn: conn.execute(
            sa.select(_I.document).where(*_mine(entity), _I.name == name)).scalar())
        if document is None:
            raise NoSuchEntity(f"The {entity_type} policy with name {name} cannot be found.")
        return {_NAME_PARAM[entity_type]: entity.name, "PolicyName": name,
                "PolicyDocument": encode_document(document)}

    async def _list(self, ctx: RequestContext, entity_type: str, params: Params) -> Result:
        entity = await self._entity(ctx, entity_type, "List", params)
        names = await self.read(lambda conn: list(conn.execute(
            sa.select(_I.name).where(*_mine(entity))).scalars()))
        chosen, marker = page_list(names, lambda n: n, params)
        return paged("PolicyNames", chosen, marker)

    async def _delete(self, ctx: RequestContext, entity_type: str, params: Params) -> Result:
        entity = await self._entity(ctx, entity_type, "Delete", params)
        name = params["PolicyName"]

        def delete(conn: sa.Connection) -> None:
            deleted = conn.execute(iam_inline_policies.delete().where(*_mine(entity), _I.name == name))
            if not deleted.rowcount:
                raise NoSuchEntity(f"The {entity_type} policy with name {name} cannot be found.")

        await self.write(delete)
        return {}

    async def put_user_policy(self, ctx: RequestContext, params: Params) -> Result:
        return await self._put(ctx, USER, params)

    async def put_group_policy(self, ctx: RequestContext, params: Params) -> Result:
        return await self._put(ctx, GROUP, params)

    async def put_role_policy(self, ctx: RequestContext, params: Params) -> Result:
        return await self._put(ctx, ROLE, params)

    async def get_user_policy(self, ctx: RequestContext, params: Params) -> Result:
        return await self._get(ctx, USER, params)

    async def get_group_policy(self, ctx: RequestContext, params: Params) -> Result:
        return await self._get(ctx, GROUP, params)

    async def get_role_policy(self, ctx: RequestContext, params: Params) -> Result:
        return await self._get(ctx, ROLE, params)

    async def list_user_policies(self, ctx: RequestContext, params: Params) -> Result:
        return await self._list(ctx, USER, params)

    async def list_group_policies(self, ctx: RequestContext, params: Params) -> Result:
        return await self._list(ctx, GROUP, params)

    async def list_role_policies(self, ctx: RequestContext, params: Params) -> Result:
        return await self._list(ctx, ROLE, params)

    async def delete_user_policy(self, ctx: RequestContext, params: Params) -> Result:
        return await self._delete(ctx, USER, params)

    async def delete_group_policy(self, ctx: RequestContext, params: Params) -> Result:
        return await self._delete(ctx, GROUP, params)

    async def delete_role_policy(self, ctx: RequestContext, params: Params) -> Result:
        return await self._delete(ctx, ROLE, params)
