"""Keys: CreateKey, DescribeKey, ListKeys, Enable/DisableKey, Schedule/CancelKeyDeletion,
key policies and tags."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from minicloud.aws.context import RequestContext
from minicloud.aws.errors import NotImplementedOperation, ValidationException
from minicloud.iam.policy import MalformedPolicyDocument, PolicyKind, parse_policy
from minicloud.services.kms import key_policy, store
from minicloud.services.kms.base import KmsBase, page_after, page_limit, page_result
from minicloud.services.kms.errors import (
    KMSInvalidStateException,
    MalformedPolicyDocumentException,
    NotFoundException,
    TagException,
)
from minicloud.services.kms.store import Key

MAX_POLICY_BYTES = 32_768
MAX_TAGS = 50


def check_policy(text: str) -> str:
    if len(text.encode()) > MAX_POLICY_BYTES:
        raise MalformedPolicyDocumentException("The key policy exceeds the maximum size of 32 KB.")
    try:
        parse_policy(text, PolicyKind.RESOURCE)
    except MalformedPolicyDocument as exc:
        raise MalformedPolicyDocumentException(exc.message) from None
    return text


def check_lockout(ctx: RequestContext, params: dict[str, Any], policy: str, key_arn: str) -> None:
    """AWS's lockout safety check: the new policy must let the caller change it again."""
    if params.get("BypassPolicyLockoutSafetyCheck"):
        return
    if not key_policy.admits(policy, ctx.principal, "kms:PutKeyPolicy", key_arn, ctx.account_id,
                             ctx.condition_keys()):
        raise MalformedPolicyDocumentException("The new key policy will not allow you to update the key policy in "
                                               "the future.")


def tag_dict(tags: list[dict[str, Any]] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for tag in tags or []:
        key = str(tag.get("TagKey") or "")
        if key.lower().startswith("aws:"):
            raise TagException("Tags beginning with aws: are reserved.")
        out[key] = str(tag.get("TagValue") or "")
    return out


class KeyLifecycle(KmsBase):
    async def create_key(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        await ctx.authorize("kms:CreateKey", "*")
        spec = params.get("KeySpec") or params.get("CustomerMasterKeySpec") or "SYMMETRIC_DEFAULT"
        usage = params.get("KeyUsage") or "ENCRYPT_DECRYPT"
        if spec != "SYMMETRIC_DEFAULT" or usage != "ENCRYPT_DECRYPT":
            raise NotImplementedOperation(f"minicloud's KMS makes symmetric ENCRYPT_DECRYPT keys only (asked: {spec}, "
                                          f"{usage}).")
        if (params.get("Origin") or "AWS_KMS") != "AWS_KMS" or params.get("CustomKeyStoreId") or \
                params.get("MultiRegion"):
            raise NotImplementedOperation("minicloud's KMS makes single-region keys with KMS-generated material only.")
        policy = check_policy(params["Policy"]) if params.get("Policy") else store.default_policy(ctx.account_id)
        tags = tag_dict(params.get("Tags"))
        if len(tags) > MAX_TAGS:
            raise TagException(f"A key can have at most {MAX_TAGS} tags.")
        values = self.keys.new_key_values(ctx.account_id, ctx.region, ctx.now, description=params.get("Description")
                                          or "", policy=policy, tags=tags)
        check_lockout(ctx, params, policy, store.key_arn(ctx.account_id, ctx.region, values["key_id"]))
        key = await self.db.write(lambda conn: store.insert_key(conn, values))
        return {"KeyMetadata": key.metadata()}

    async def describe_key(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        key = await self.key_for(ctx, params, "DescribeKey")
        return {"KeyMetadata": key.metadata()}

    async def list_keys(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        await ctx.authorize("kms:ListKeys", "*")
        limit, after = page_limit(params), page_after(params)
        keys = await self.db.read(lambda conn: store.list_keys(conn, ctx.account_id, ctx.region, after, limit + 1))
        items = [{"KeyId": k.key_id, "KeyArn": k.arn} for k in keys]
        return page_result("Keys", items, limit, keys[min(limit, len(keys)) - 1].key_id if keys else "")

    async def _set_state(self, key: Key, state: str, **extra: Any) -> None:
        await self.db.write(lambda conn: store.update_key(conn, key.key_id, state=state, **extra))

    async def enable_key(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        key = await self.customer_key_for(ctx, params, "EnableKey")
        if key.state == store.PENDING_DELETION:
            raise KMSInvalidStateException(f"{key.arn} is pending deletion.")
        await self._set_state(key, store.ENABLED)
        return {}

    async def disable_key(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        key = await self.customer_key_for(ctx, params, "DisableKey")
        if key.state == store.PENDING_DELETION:
            raise KMSInvalidStateException(f"{key.arn} is pending deletion.")
        await self._set_state(key, store.DISABLED)
        return {}

    async def schedule_key_deletion(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        key = await self.customer_key_for(ctx, params, "ScheduleKeyDeletion")
        days = int(params.get("PendingWindowInDays") or 30)
        if not 7 <= days <= 30:
            bound = "greater than or equal to 7" if days < 7 else "less than or equal to 30"
            raise ValidationException(f"1 validation error detected: Value '{days}' at 'pendingWindowInDays' failed "
                                      f"to satisfy constraint: Member must have value {bound}")
        if key.state == store.PENDING_DELETION:
            raise KMSInvalidStateException(f"{key.arn} is pending deletion.")
        when = ctx.now + timedelta(days=days)
        await self._set_state(key, store.PENDING_DELETION, deletion_date=when, pending_days=days)
        return {"KeyId": key.arn, "DeletionDate": when, "KeyState": store.PENDING_DELETION,
                "PendingWindowInDays": days}

    async def cancel_key_deletion(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        key = await self.customer_key_for(ctx, params, "CancelKeyDeletion")
        if key.state != store.PENDING_DELETION:
            raise KMSInvalidStateException(f"{key.arn} is not pending deletion.")
        await self._set_state(key, store.DISABLED, deletion_date=None, pending_days=None)  # as AWS: Disabled
        return {"KeyId": key.arn}

    # -- key policies ----------------------------------------------------------------------------------
    async def get_key_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        key = await self.key_for(ctx, params, "GetKeyPolicy")
        name = params.get("PolicyName") or "default"
        if name != "default":
            raise NotFoundException("No such policy exists")
        return {"Policy": key.policy, "PolicyName": "default"}

    async def list_key_policies(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        await self.key_for(ctx, params, "ListKeyPolicies")
        return {"PolicyNames": ["default"], "Truncated": False}

    async def put_key_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        key = await self.customer_key_for(ctx, params, "PutKeyPolicy")
        if (params.get("PolicyName") or "default") != "default":
            raise NotFoundException("No such policy exists")
        if key.state == store.PENDING_DELETION:
            raise KMSInvalidStateException(f"{key.arn} is pending deletion.")
        policy = check_policy(params["Policy"])
        check_lockout(ctx, params, policy, key.arn)
        await self.db.write(lambda conn: store.update_key(conn, key.key_id, policy=policy))
        return {}

    # -- tags ------------------------------------------------------------------------------------------
    async def tag_resource(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        key = await self.customer_key_for(ctx, params, "TagResource")
        if key.state == store.PENDING_DELETION:
            raise KMSInvalidStateException(f"{key.arn} is pending deletion.")
        tags = {**key.tags, **tag_dict(params.get("Tags"))}
        if len(tags) > MAX_TAGS:
            raise TagException(f"A key can have at most {MAX_TAGS} tags.")
        await self.db.write(lambda conn: store.update_key(conn, key.key_id, tags=json.dumps(tags, sort_keys=True)))
        return {}

    async def untag_resource(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        key = await self.customer_key_for(ctx, params, "UntagResource")
        if key.state == store.PENDING_DELETION:
            raise KMSInvalidStateException(f"{key.arn} is pending deletion.")
        tags = {k: v for k, v in key.tags.items() if k not in set(params.get("TagKeys") or [])}
        await self.db.write(lambda conn: store.update_key(conn, key.key_id, tags=json.dumps(tags, sort_keys=True)))
        return {}

    async def list_resource_tags(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        key = await self.key_for(ctx, params, "ListResourceTags")
        limit, after = page_limit(params, 50), page_after(params)
        names = sorted(k for k in key.tags if k > after)[:limit + 1]
        items = [{"TagKey": k, "TagValue": key.tags[k]} for k in names]
        return page_result("Tags", items, limit, names[min(limit, len(names)) - 1] if names else "")
