"""Aliases: CreateAlias, UpdateAlias, DeleteAlias, ListAliases.

An alias name starts with ``alias/`` and holds letters, digits, ``/_-``; ``alias/aws/`` is
reserved for AWS managed keys (created by the services that use them, e.g. S3's ``alias/aws/s3``).
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa

from minicloud.aws.context import RequestContext
from minicloud.services.kms import store
from minicloud.services.kms.base import KmsBase, page_after, page_limit, page_result
from minicloud.services.kms.errors import (
    AlreadyExistsException,
    InvalidAliasNameException,
    KMSInvalidStateException,
    NotFoundException,
)
from minicloud.services.kms.store import Key

_NAME = re.compile(r"^alias/[a-zA-Z0-9/_-]+$")


def check_alias_name(name: str) -> str:
    if not name.startswith("alias/"):
        raise InvalidAliasNameException('Alias must start with the prefix "alias/". Please see '
                                        "https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html")
    if name.startswith("alias/aws/"):
        raise InvalidAliasNameException("Cannot create alias with prefix 'alias/aws/'. Please see "
                                        "https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html")
    if not _NAME.match(name) or len(name) > 256:
        raise InvalidAliasNameException(f"Alias {name} contains invalid characters; an alias name holds letters, "
                                        "digits and /_- only.")
    return name


class AliasOperations(KmsBase):
    def _alias_arn(self, ctx: RequestContext, name: str) -> str:
        return store.alias_arn(ctx.account_id, ctx.region, name)

    async def _target(self, ctx: RequestContext, params: dict[str, Any], action: str) -> Key:
        key = await self.customer_key_for(ctx, {"KeyId": params["TargetKeyId"]}, action)
        if key.state == store.PENDING_DELETION:
            raise KMSInvalidStateException(f"{key.arn} is pending deletion.")
        return key

    async def create_alias(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = check_alias_name(params["AliasName"])
        await ctx.authorize("kms:CreateAlias", self._alias_arn(ctx, name))
        if str(params["TargetKeyId"]).startswith(("alias/", "arn:aws:kms:")) and ":key/" not in params["TargetKeyId"]:
            raise NotFoundException("An alias cannot be the target of an alias: name a key id or key ARN.")
        key = await self._target(ctx, params, "CreateAlias")

        def create(conn: sa.Connection) -> bool:
            if store.alias_target(conn, ctx.account_id, ctx.region, name) is not None:
                return False
            store.put_alias(conn, ctx.account_id, ctx.region, name, key.key_id, ctx.now)
            return True

        if not await self.db.write(create):
            raise AlreadyExistsException(f"An alias with the name {self._alias_arn(ctx, name)} already exists")
        return {}

    async def update_alias(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = check_alias_name(params["AliasName"])
        await ctx.authorize("kms:UpdateAlias", self._alias_arn(ctx, name))
        current = await self.db.read(lambda conn: store.alias_target(conn, ctx.account_id, ctx.region, name))
        if current is None:
            raise NotFoundException(f"Alias {self._alias_arn(ctx, name)} is not found.")
        key = await self._target(ctx, params, "UpdateAlias")
        await self.db.write(lambda conn: store.retarget_alias(conn, ctx.account_id, ctx.region, name, key.key_id,
                                                               ctx.now))
        return {}

    async def delete_alias(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = str(params["AliasName"])
        if not name.startswith("alias/"):
            check_alias_name(name)
        await ctx.authorize("kms:DeleteAlias", self._alias_arn(ctx, name))
        if name.startswith("alias/aws/"):
            raise InvalidAliasNameException("Cannot delete an alias of an AWS managed key (alias/aws/...).")
        current = await self.db.read(lambda conn: store.alias_target(conn, ctx.account_id, ctx.region, name))
        if current is None:
            raise NotFoundException(f"Alias {self._alias_arn(ctx, name)} is not found.")
        await self.db.write(lambda conn: store.delete_alias(conn, ctx.account_id, ctx.region, name))
        return {}

    async def list_aliases(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        key_id = None
        if params.get("KeyId"):
            key_id = (await self.key_for(ctx, params, "ListAliases")).key_id
        else:
            await ctx.authorize("kms:ListAliases", "*")
        limit, after = page_limit(params, 50), page_after(params)
        rows = await self.db.read(lambda conn: store.list_aliases(conn, ctx.account_id, ctx.region, key_id, after,
                                                                  limit + 1))
        items = [{"AliasName": r.name, "AliasArn": self._alias_arn(ctx, r.name), "TargetKeyId": r.key_id,
                  "CreationDate": r.created_at, "LastUpdatedDate": r.updated_at} for r in rows]
        return page_result("Aliases", items, limit, rows[min(limit, len(rows)) - 1].name if rows else "")
