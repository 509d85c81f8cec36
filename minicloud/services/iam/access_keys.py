"""Access keys of IAM users (and of the account's root user, when it calls without UserName):
Create/List/Update/DeleteAccessKey, GetAccessKeyLastUsed. At most two keys per user.

Keys live in the core ``access_keys`` table; the CredentialStore cache is cleared by every write
(``IamBase.write``), so a deactivated or deleted key is refused from the next request on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from minicloud.aws.context import RequestContext
from minicloud.aws.errors import ValidationError
from minicloud.iam import ids, store
from minicloud.iam.credentials import flush_usage
from minicloud.iam.identity import PrincipalKind
from minicloud.services.iam.base import Params, Result, non_user_caller, page_list, paged
from minicloud.services.iam.errors import NoSuchEntity, quota
from minicloud.services.iam.inline import InlinePoliciesMixin
from minicloud.storage.metadata.schema import access_keys

ACCESS_KEYS_PER_USER = 2
_K = access_keys.c


@dataclass(frozen=True, slots=True)
class KeyOwner:
    account_id: str
    user_id: str | None  # None: the account's root user
    user_name: str | None

    def where(self) -> tuple[sa.ColumnElement[bool], sa.ColumnElement[bool]]:
        owner = _K.user_id.is_(None) if self.user_id is None else _K.user_id == self.user_id
        return _K.account_id == self.account_id, owner

    def named(self, shape: Result) -> Result:
        return {"UserName": self.user_name, **shape} if self.user_name else shape


def _key_not_found(key_id: str) -> NoSuchEntity:
    return NoSuchEntity(f"The Access Key with id {key_id} cannot be found.")


class AccessKeysMixin(InlinePoliciesMixin):
    async def key_owner(self, ctx: RequestContext, action: str, name: str | None) -> KeyOwner:
        """UserName's user; without it the caller itself (an IAM user, or the root user)."""
        if name is None and ctx.principal.kind is PrincipalKind.ROOT:
            await ctx.authorize(action, ctx.principal.arn)
            return KeyOwner(ctx.account_id, None, None)
        if name is None and ctx.principal.kind is not PrincipalKind.USER:
            raise non_user_caller()
        user = await self.authorize_self_or_user(ctx, action, name)
        return KeyOwner(ctx.account_id, user.user_id, user.name)

    async def create_access_key(self, ctx: RequestContext, params: Params) -> Result:
        owner = await self.key_owner(ctx, "iam:CreateAccessKey", params.get("UserName"))
        key_id, secret = ids.access_key_id(), ids.secret_access_key()

        def create(conn: sa.Connection) -> None:
            existing = conn.execute(sa.select(sa.func.count()).select_from(access_keys)
                                    .where(*owner.where())).scalar_one()
            if existing >= ACCESS_KEYS_PER_USER:
                raise quota("AccessKeysPerUser", ACCESS_KEYS_PER_USER)
            conn.execute(access_keys.insert().values(
                access_key_id=key_id, secret_access_key=secret, account_id=ctx.account_id,
                user_id=owner.user_id, status="Active", created_at=ctx.now))

        await self.write(create)
        return {"AccessKey": owner.named({"AccessKeyId": key_id, "Status": "Active",
                                          "SecretAccessKey": secret, "CreateDate": ctx.now})}

    async def list_access_keys(self, ctx: RequestContext, params: Params) -> Result:
        owner = await self.key_owner(ctx, "iam:ListAccessKeys", params.get("UserName"))
        rows = await self.read(lambda conn: list(conn.execute(
            sa.select(_K.access_key_id, _K.status, _K.created_at).where(*owner.where()))))
        chosen, marker = page_list(rows, lambda r: f"{r.created_at.isoformat()} {r.access_key_id}", params)
        keys = [owner.named({"AccessKeyId": r.access_key_id, "Status": r.status, "CreateDate": r.created_at})
                for r in chosen]
        return paged("AccessKeyMetadata", keys, marker)

    async def update_access_key(self, ctx: RequestContext, params: Params) -> Result:
        owner = await self.key_owner(ctx, "iam:UpdateAccessKey", params.get("UserName"))
        key_id, status = params["AccessKeyId"], params["Status"]
        if status not in ("Active", "Inactive"):
            raise ValidationError(f"Value '{status}' at 'status' failed to satisfy constraint: Member must "
                                  "satisfy enum value set: [Active, Inactive]")

        def update(conn: sa.Connection) -> None:
            updated = conn.execute(access_keys.update().where(*owner.where(), _K.access_key_id == key_id)
                                   .values(status=status))
            if not updated.rowcount:
                raise _key_not_found(key_id)

        await self.write(update)
        return {}

    async def delete_access_key(self, ctx: RequestContext, params: Params) -> Result:
        owner = await self.key_owner(ctx, "iam:DeleteAccessKey", params.get("UserName"))
        key_id = params["AccessKeyId"]

        def delete(conn: sa.Connection) -> None:
            deleted = conn.execute(access_keys.delete().where(*owner.where(), _K.access_key_id == key_id))
            if not deleted.rowcount:
                raise _key_not_found(key_id)

        await self.write(delete)
        return {}

    async def flush_key_usage(self) -> None:
        """Write the last-used times the CredentialStore has noted since the previous flush."""
        usage = self.runtime.credentials.take_usage()
        if usage:
            await self.runtime.db.write(lambda conn: flush_usage(conn, usage))

    async def get_access_key_last_used(self, ctx: RequestContext, params: Params) -> Result:
        key_id = params["AccessKeyId"]
        await self.flush_key_usage()

        def load(conn: sa.Connection) -> tuple[Any, store.UserRecord | None]:
            row = conn.execute(sa.select(access_keys).where(
                _K.access_key_id == key_id, _K.account_id == ctx.account_id)).first()
            user = store.get_user_by_id(conn, row.user_id) if row is not None and row.user_id else None
            return row, user

        row, user = await self.read(load)
        if row is None or (row.user_id is not None and user is None):
            await ctx.authorize("iam:GetAccessKeyLastUsed", f"arn:aws:iam::{ctx.account_id}:user/")
            raise _key_not_found(key_id)
        await ctx.authorize("iam:GetAccessKeyLastUsed",
                            user.arn if user else f"arn:aws:iam::{ctx.account_id}:root")
        last_used: Result = {"ServiceName": "N/A", "Region": "N/A"}
        if row.last_used_at is not None:
            last_used = {"LastUsedDate": row.last_used_at, "ServiceName": row.last_used_service,
                         "Region": row.last_used_region}
        result: Result = {"AccessKeyLastUsed": last_used}
        if user is not None:
            result["UserName"] = user.name
        return result
