"""CreateTags, DeleteTags, DescribeTags over every taggable resource."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from minicloud.aws.context import RequestContext
from minicloud.aws.errors import ClientError
from minicloud.services.ec2 import errors as e
from minicloud.services.ec2 import store
from minicloud.services.ec2.base import RESOURCE_TYPES, Ec2Base, check_tag
from minicloud.services.ec2.store import Resource

MAX_TAGS = 50

_NOT_FOUND: dict[str, tuple[type[ClientError], str]] = {
    "vpc": (e.InvalidVpcIDNotFound, "The vpc ID '{}' does not exist"),
    "subnet": (e.InvalidSubnetIDNotFound, "The subnet ID '{}' does not exist"),
    "rtb": (e.InvalidRouteTableIDNotFound, "The routeTable ID '{}' does not exist"),
    "igw": (e.InvalidInternetGatewayIDNotFound, "The internetGateway ID '{}' does not exist"),
    "sg": (e.InvalidGroupNotFound, "The security group '{}' does not exist"),
    "acl": (e.InvalidNetworkAclIDNotFound, "The network ACL '{}' does not exist"),
    "key": (e.InvalidKeyPairNotFound, "The key pair '{}' does not exist"),
    "ami": (e.InvalidAMIIDNotFound, "The image id '[{}]' does not exist"),
    "i": (e.InvalidInstanceIDNotFound, "The instance ID '{}' does not exist"),
    "eipalloc": (e.InvalidAllocationIDNotFound, "The allocation ID '{}' does not exist"),
}

_TYPE_ALIASES = {"elastic-ip": "elastic-ip", "image": "image", "key-pair": "key-pair"}


def _missing(resource_id: str) -> ClientError:
    prefix = resource_id.rsplit("-", 1)[0] if "-" in resource_id else ""
    known = _NOT_FOUND.get(prefix)
    if known is None:
        return e.InvalidIDError(f"The ID '{resource_id}' is not valid")
    error, message = known
    return error(message.format(resource_id))


def _resource_type(resource: Resource) -> str:
    return RESOURCE_TYPES.get(resource.kind, resource.kind)


class TagsMixin(Ec2Base):
    async def create_tags(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        new = params.get("Tags") or []
        for tag in new:
            check_tag(tag)
        named = await self.runtime.db.read(lambda conn: self._taggable(conn, ctx, params.get("Resources") or []))
        await self.begin_each(ctx, params, "CreateTags", named)

        def create(conn: sa.Connection) -> None:
            for resource in self._taggable(conn, ctx, params.get("Resources") or []):
                tags = resource.tags
                tags.update({t["Key"]: t.get("Value") or "" for t in new})
                if len(tags) > MAX_TAGS:
                    raise e.InvalidParameterValue(f"The resource {resource.id} would have more than {MAX_TAGS} tags")
                resource.doc["Tags"] = [{"Key": k, "Value": v} for k, v in tags.items()]
                store.save(conn, resource)
        await self.runtime.db.write(create)
        return {}

    async def delete_tags(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        named = await self.runtime.db.read(lambda conn: self._taggable(conn, ctx, params.get("Resources") or []))
        await self.begin_each(ctx, params, "DeleteTags", named)
        doomed = params.get("Tags")

        def delete(conn: sa.Connection) -> None:
            for resource in self._taggable(conn, ctx, params.get("Resources") or []):
                kept = []
                for tag in resource.doc.get("Tags") or []:
                    if doomed is None:
                        continue  # no Tags: every tag goes
                    if any(d["Key"] == tag["Key"] and ("Value" not in d or d.get("Value") == tag["Value"])
                           for d in doomed):
                        continue
                    kept.append(tag)
                resource.doc["Tags"] = kept
                store.save(conn, resource)
        await self.runtime.db.write(delete)
        return {}

    def _taggable(self, conn: sa.Connection, ctx: RequestContext, ids: list[str]) -> list[Resource]:
        if not ids:
            raise e.MissingParameter("The request must contain the parameter resourceIdSet")
        found = []
        for resource_id in ids:
            resource = store.get(conn, resource_id, account_id=ctx.account_id, region=ctx.region)
            if resource is None or resource.kind not in RESOURCE_TYPES:
                raise _missing(resource_id)
            found.append(resource)
        return found

    async def describe_tags(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        await self.begin(ctx, params, "DescribeTags")
        filters = params.get("Filters") or []
        allowed = ("key", "value", "resource-id", "resource-type", "tag-key", "tag-value")
        for f in filters:
            if f.get("Name") not in allowed and not str(f.get("Name")).startswith("tag:"):
                raise e.InvalidParameterValue(f"The filter '{f.get('Name')}' is invalid")
        resources = await self.runtime.db.read(lambda conn: [
            r for kind in RESOURCE_TYPES for r in store.select(conn, ctx.account_id, ctx.region, kind)])
        rows = [{"Key": t["Key"], "Value": t.get("Value", ""), "ResourceId": r.id, "ResourceType": _resource_type(r)}
                for r in resources for t in r.doc.get("Tags") or []]
        rows = [row for row in rows if all(self._tag_row_matches(row, f) for f in filters)]
        rows.sort(key=lambda row: (row["ResourceId"], row["Key"]))
        items, token = self.page(rows, params)
        out: dict[str, Any] = {"Tags": items}
        if token:
            out["NextToken"] = token
        return out

    @staticmethod
    def _tag_row_matches(row: dict[str, str], f: dict[str, Any]) -> bool:
        from minicloud.services.ec2.filters import pattern

        name = str(f["Name"])
        field = {"key": "Key", "tag-key": "Key", "value": "Value", "tag-value": "Value",
                 "resource-id": "ResourceId", "resource-type": "ResourceType"}.get(name)
        values = [str(v) for v in f.get("Values") or []]
        if field is None:  # tag:KEY
            return row["Key"] == name[4:] and any(pattern(v).fullmatch(row["Value"]) for v in values)
        return any(pattern(v).fullmatch(row[field]) for v in values)
