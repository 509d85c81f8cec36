"""What every EC2 operation needs: authorization (and DryRun), the account's default VPC, resource
lookups with EC2's not-found errors, tags from TagSpecifications, filters and pagination."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from minicloud.aws.context import RequestContext
from minicloud.aws.errors import ClientError
from minicloud.aws.pagination import decode_token, encode_token
from minicloud.services.ec2 import filters as flt
from minicloud.services.ec2 import store
from minicloud.services.ec2.errors import InvalidParameterValue
from minicloud.services.ec2.settings import Ec2Settings
from minicloud.services.ec2.store import Resource

if TYPE_CHECKING:
    from minicloud.runtime import Runtime
    from minicloud.services.ec2.defaults import DefaultVpcs


class DryRunOperation(ClientError):
    code = "DryRunOperation"
    status = 412


# The ResourceType of TagSpecifications and DescribeTags for each kind of resource.
RESOURCE_TYPES = {
    "vpc": "vpc", "subnet": "subnet", "route-table": "route-table", "internet-gateway": "internet-gateway",
    "security-group": "security-group", "network-acl": "network-acl", "key-pair": "key-pair",
    "image": "image", "instance": "instance", "address": "elastic-ip",
}

TAGGABLE = {*RESOURCE_TYPES.values(), "volume", "network-interface", "security-group-rule"}


class Ec2Base:
    runtime: Runtime
    settings: Ec2Settings
    defaults: DefaultVpcs
    wake_controller: Callable[[], None]

    # -- requests ------------------------------------------------------------------------------------
    async def begin(self, ctx: RequestContext, params: dict[str, Any], action: str, resource: str = "*",
                    context: dict[str, str | list[str]] | None = None) -> None:
        """Authorize ``ec2:<action>`` on ``resource`` (``type/id`` or ``*``), honour DryRun, and make
        sure the caller's default VPC exists."""
        arn = resource if resource == "*" or resource.startswith("arn:") else self.arn(ctx, resource)
        await ctx.authorize(f"ec2:{action}", arn, context=context)
        if params.get("DryRun"):
            raise DryRunOperation("Request would have succeeded, but DryRun flag is set.")
        await self.defaults.ensure(ctx.account_id, ctx.region)

    async def begin_each(self, ctx: RequestContext, params: dict[str, Any], action: str,
                         resources: list[Resource],
                         created: Sequence[tuple[str, dict[str, str | list[str]]]] = ()) -> None:
        """``begin`` for an action on existing resources: each one's ARN is authorized, with its tags
        as ``aws:ResourceTag/*`` and ``ec2:ResourceTag/*`` condition keys; then each resource the
        action creates (``(type/*, condition keys)`` or a whole ARN), as EC2 authorizes them all."""
        if not resources and not created:
            await self.begin(ctx, params, action)
            return
        for resource in resources:
            # A key pair's ARN names it by its name (key-pair/NAME), every other resource by its id.
            name = resource.doc.get("KeyName") if resource.kind == "key-pair" else resource.id
            path = f"{RESOURCE_TYPES.get(resource.kind, resource.kind)}/{name}"
            await ctx.authorize(f"ec2:{action}", self.arn(ctx, path), context=resource_tag_keys(resource))
        for path, context in created:
            arn = path if path.startswith("arn:") else self.arn(ctx, path)
            await ctx.authorize(f"ec2:{action}", arn, context=context)
        if params.get("DryRun"):
            raise DryRunOperation("Request would have succeeded, but DryRun flag is set.")
        await self.defaults.ensure(ctx.account_id, ctx.region)

    @staticmethod
    def arn(ctx: RequestContext, path: str) -> str:
        """``path`` is e.g. ``vpc/vpc-0123``; an image's ARN has no account (``arn:aws:ec2:REGION::image/ami-...``)."""
        account = "" if path.startswith("image/") else ctx.account_id
        return f"arn:aws:ec2:{ctx.region}:{account}:{path}"

    # -- lookups -------------------------------------------------------------------------------------
    async def find(self, ctx: RequestContext, kind: str, resource_id: str,
                   not_found: Callable[[str], ClientError]) -> Resource:
        db = self.runtime.db
        found = await db.read(lambda conn: store.get(conn, resource_id, kind=kind, account_id=ctx.account_id,
                                                     region=ctx.region))
        if found is None:
            raise not_found(resource_id)
        return found

    async def select(self, ctx: RequestContext, kind: str, ids: Sequence[str] | None,
                     filters: Sequence[dict[str, Any]] | None, spec: flt.FilterSpec,
                     not_found: Callable[[str], ClientError], *, account_id: str | None = "") -> list[Resource]:
        """Resources of ``kind`` named by ``ids`` (every one must exist) that pass ``filters``."""
        owner = ctx.account_id if account_id == "" else account_id
        flt.check(filters, spec)
        wanted = list(dict.fromkeys(ids)) if ids else None
        found = await self.runtime.db.read(lambda conn: store.select(conn, owner, ctx.region, kind, ids=wanted))
        if wanted:
            have = {r.id for r in found}
            for resource_id in wanted:
                if resource_id not in have:
                    raise not_found(resource_id)
        return [r for r in found if flt.matches(r, filters, spec)]

    # -- tags ------------------------------------------------------------------------------------------
    @staticmethod
    def tags_for(params: dict[str, Any], resource_type: str) -> list[dict[str, str]]:
        tags: list[dict[str, str]] = []
        for spec in params.get("TagSpecifications") or []:
            kind = spec.get("ResourceType")
            if kind not in TAGGABLE:
                raise InvalidParameterValue(f"'{kind}' is not a valid taggable resource type.")
            if kind == resource_type:
                for tag in spec.get("Tags") or []:
                    check_tag(tag)
                    tags.append({"Key": tag["Key"], "Value": tag.get("Value") or ""})
        return tags

    # -- pagination ----------------------------------------------------------------------------------
    @staticmethod
    def page(items: list[Any], params: dict[str, Any], *, minimum: int = 5,
             maximum: int = 1000) -> tuple[list[Any], str | None]:
        start = 0
        token = params.get("NextToken")
        if token:
            position = decode_token(token)
            offset = position.get("o") if position else None
            if not isinstance(offset, int) or offset < 0:
                raise InvalidParameterValue(f"Invalid value '{token}' for parameter NextToken")
            start = offset
        limit = params.get("MaxResults")
        if limit is None:
            return items[start:], None
        if not minimum <= int(limit) <= maximum:
            raise InvalidParameterValue(
                f"Value ( {limit} ) for parameter maxResults is invalid. Expecting a value between "
                f"{minimum} and {maximum}.")
        end = start + int(limit)
        return items[start:end], encode_token({"o": end}) if end < len(items) else None


def resource_tag_keys(resource: Resource) -> dict[str, str | list[str]]:
    keys: dict[str, str | list[str]] = {}
    for key, value in resource.tags.items():
        keys[f"aws:ResourceTag/{key}"] = value
        keys[f"ec2:ResourceTag/{key}"] = value
    return keys


def request_tag_keys(tags: list[dict[str, str]]) -> dict[str, str | list[str]]:
    keys: dict[str, str | list[str]] = {f"aws:RequestTag/{t['Key']}": t.get("Value", "") for t in tags}
    if tags:
        keys["aws:TagKeys"] = [t["Key"] for t in tags]
    return keys


def check_tag(tag: dict[str, Any]) -> None:
    key = tag.get("Key")
    if not key or len(key) > 128:
        raise InvalidParameterValue("Tag key must be between 1 and 128 characters long")
    if key.lower().startswith("aws:"):
        raise InvalidParameterValue("Tag keys starting with 'aws:' are reserved for internal use")
    if len(tag.get("Value") or "") > 256:
        raise InvalidParameterValue("Tag value must be at most 256 characters long")
