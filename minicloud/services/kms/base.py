"""What every KMS operation shares: the key ring, finding the key a request names, authorising
its caller, and the checks of KMS's inputs."""

from __future__ import annotations

from typing import Any

from minicloud.aws.context import RequestContext
from minicloud.aws.pagination import decode_token, encode_token
from minicloud.aws.provider import Provider
from minicloud.runtime import Runtime
from minicloud.services.kms.errors import AccessDeniedException, InvalidMarkerException
from minicloud.services.kms.keyring import KeyRing
from minicloud.services.kms.store import Key


class KmsBase(Provider):
    service_name = "kms"
    access_denied = AccessDeniedException

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.db = runtime.db
        self.keys = KeyRing(runtime.db, runtime.config.data_dir)

    async def key_for(self, ctx: RequestContext, params: dict[str, Any], action: str,
                      member: str = "KeyId") -> Key:
        """The key a request names, after the caller is authorised for ``kms:<action>`` on it."""
        key = await self.keys.find(ctx.account_id, ctx.region, str(params[member]))
        await self.keys.authorize(ctx, key, action)
        return key

    async def customer_key_for(self, ctx: RequestContext, params: dict[str, Any], action: str) -> Key:
        """As ``key_for``, for operations an AWS managed key's policy never allows to anyone."""
        key = await self.key_for(ctx, params, action)
        if key.manager == "AWS":
            raise AccessDeniedException(f"User: {ctx.principal.arn} is not authorized to perform: kms:{action} on "
                                        f"resource: {key.arn} because no resource-based policy allows the "
                                        f"kms:{action} action")
        return key


def page_limit(params: dict[str, Any], default: int = 100) -> int:
    return int(params.get("Limit") or default)


def page_after(params: dict[str, Any]) -> str:
    marker = params.get("Marker")
    if not marker:
        return ""
    position = decode_token(str(marker))
    if position is None or not isinstance(position.get("after"), str):
        raise InvalidMarkerException("Invalid marker")
    return str(position["after"])


def page_result(items_member: str, items: list[Any], limit: int, last: str) -> dict[str, Any]:
    """The page of ``items`` (fetched one past ``limit``) with NextMarker/Truncated."""
    truncated = len(items) > limit
    result: dict[str, Any] = {items_member: items[:limit], "Truncated": truncated}
    if truncated:
        result["NextMarker"] = encode_token({"after": last})
    return result
