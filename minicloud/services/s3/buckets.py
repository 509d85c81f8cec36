"""Buckets: create, head, delete, list; location, versioning and tagging."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from minicloud.aws.context import RequestContext
from minicloud.aws.pagination import decode_token, encode_token
from minicloud.services.s3 import store
from minicloud.services.s3.acl import acl_for_write
from minicloud.services.s3.base import S3Base
from minicloud.services.s3.errors import (
    AccessControlListNotSupported,
    BucketAlreadyExists,
    BucketAlreadyOwnedByYou,
    BucketNotEmpty,
    IllegalLocationConstraintException,
    IllegalVersioningConfiguration,
    InvalidArgument,
    InvalidBucketAclWithObjectOwnership,
    InvalidBucketState,
    InvalidLocationConstraint,
    InvalidTag,
    MalformedXML,
    NoSuchTagSet,
)
from minicloud.services.s3.names import bucket_arn, check_bucket_name, owner
from minicloud.services.s3.store import Bucket

MAX_TAGS = 50


def check_tags(tag_set: list[dict[str, str]], *, limit: int = MAX_TAGS) -> str:
    """A tag set as stored (JSON pairs), or InvalidTag as S3 words it."""
    if len(tag_set) > limit:
        raise InvalidTag(f"Object tags cannot be greater than {limit}" if limit == 10 else
                         "The TagSet does not meet the requirement: too many tags")
    seen: set[str] = set()
    pairs = []
    for tag in tag_set:
        key, value = tag.get("Key", ""), tag.get("Value", "")
        if not key or len(key) > 128:
            raise InvalidTag("The TagKey you have provided is invalid")
        if len(value) > 256:
            raise InvalidTag("The TagValue you have provided is invalid")
        if key in seen:
            raise InvalidTag("Cannot provide multiple Tags with the same key")
        if key.lower().startswith("aws:"):
            raise InvalidTag("Your TagKey cannot be prefixed with aws:")
        seen.add(key)
        pairs.append([key, value])
    return json.dumps(pairs)


def tag_set(stored: str | None) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in json.loads(stored)] if stored else []


class BucketOperations(S3Base):
    async def create_bucket(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name: str = params["Bucket"]
        check_bucket_name(name)
        await ctx.authorize("s3:CreateBucket", bucket_arn(name))
        region = self._bucket_region(ctx, params.get("CreateBucketConfiguration") or {})
        locked = bool(params.get("ObjectLockEnabledForBucket"))
        setting = params.get("ObjectOwnership")
        if setting is not None and setting not in ("BucketOwnerPreferred", "ObjectWriter", "BucketOwnerEnforced"):
            raise InvalidArgument("Invalid x-amz-object-ownership header", ArgumentName="x-amz-object-ownership",
                                  ArgumentValue=str(setting))
        ownership = json.dumps({"Rules": [{"ObjectOwnership": setting}]}) if setting else None
        bucket = Bucket(name, ctx.account_id, region, ctx.now, "Enabled" if locked else None, None, None, None,
                        object_lock=json.dumps({"enabled": True}) if locked else None, ownership=ownership)
        try:
            acl = acl_for_write(params, bucket, ctx.account_id, on_object=False)
        except AccessControlListNotSupported:
            raise InvalidBucketAclWithObjectOwnership("Bucket cannot have ACLs set with ObjectOwnership's "
                                                      "BucketOwnerEnforced setting") from None
        bucket = dataclasses.replace(bucket, acl=acl)
        created = await self.db.write(lambda conn: store.insert_bucket(conn, bucket))
        self.forget_bucket(name)
        if not created:
            existing = await self.bucket(name)
            if existing.account_id == ctx.account_id and existing.region == "us-east-1" == region:
                # S3's legacy answer in North Virginia: 200, and the bucket's ACL is reset
                await self.db.write(lambda conn: store.update_bucket(conn, name, acl=acl))
                self.forget_bucket(name)
                return {"Location": f"/{name}"}
            if existing.account_id == ctx.account_id:
                raise BucketAlreadyOwnedByYou("Your previous request to create the named bucket succeeded "
                                              "and you already own it.", BucketName=name)
            raise BucketAlreadyExists("The requested bucket name is not available. The bucket namespace is "
                                      "shared by all users of the system. Please select a different name "
                                      "and try again.", BucketName=name)
        return {"Location": f"/{name}"}

    def _bucket_region(self, ctx: RequestContext, config: dict[str, Any]) -> str:
        constraint = config.get("LocationConstraint")
        if not constraint:
            if ctx.region != "us-east-1":
                raise IllegalLocationConstraintException(
                    "The unspecified location constraint is incompatible for the region specific "
                    "endpoint this request was sent to.")
            return ctx.region
        if constraint == "us-east-1" or not self.runtime.topology.has_region(constraint):
            raise InvalidLocationConstraint("The specified location-constraint is not valid",
                                            LocationConstraint=constraint)
        if constraint != ctx.region:
            raise IllegalLocationConstraintException(
                f"The {constraint} location constraint is incompatible for the region specific endpoint "
                "this request was sent to.")
        return str(constraint)

    async def head_bucket(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = await self.bucket_for(ctx, params, "ListBucket")
        return {"BucketRegion": bucket.region, "AccessPointAlias": False}

    async def delete_bucket(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = await self.bucket_for(ctx, params, "DeleteBucket")

        def delete(conn: Any) -> list[str] | None:
            if not store.bucket_is_empty(conn, bucket.name):
                return None
            return store.delete_bucket(conn, bucket.name)
        released = await self.db.write(delete)
        self.forget_bucket(bucket.name)
        if released is None:
            raise BucketNotEmpty("The bucket you tried to delete is not empty", BucketName=bucket.name)
        await self.release(released)
        return {}

    async def list_buckets(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        await ctx.authorize("s3:ListAllMyBuckets", "*")
        limit = params.get("MaxBuckets") or 10_000
        if not 1 <= limit <= 10_000:
            raise InvalidArgument("Argument max-buckets must be an integer between 1 and 10000",
                                  ArgumentName="max-buckets", ArgumentValue=str(limit))
        after = ""
        if params.get("ContinuationToken"):
            position = decode_token(params["ContinuationToken"])
            if position is None or not isinstance(position.get("after"), str):
                raise InvalidArgument("The continuation token provided is incorrect",
                                      ArgumentName="continuation-token")
            after = str(position["after"])
        prefix = params.get("Prefix") or ""
        rows = await self.db.read(lambda conn: store.list_buckets(conn, ctx.account_id, after, prefix, limit + 1))
        wanted_region = params.get("BucketRegion")
        result: dict[str, Any] = {
            "Buckets": [{"Name": b.name, "CreationDate": b.created_at, "BucketRegion": b.region}
                        for b in rows[:limit] if not wanted_region or b.region == wanted_region],
            "Owner": owner(ctx.account_id),
        }
        if prefix:
            result["Prefix"] = prefix
        if len(rows) > limit:
            result["ContinuationToken"] = encode_token({"after": rows[limit - 1].name})
        return result

    async def get_bucket_location(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = await self.bucket_for(ctx, params, "GetBucketLocation")
        return {"LocationConstraint": None if bucket.region == "us-east-1" else bucket.region}

    # -- versioning ----------------------------------------------------------------------------------
    async def put_bucket_versioning(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = await self.bucket_for(ctx, params, "PutBucketVersioning")
        config = params.get("VersioningConfiguration") or {}
        status = config.get("Status")
        if status not in ("Enabled", "Suspended"):
            raise MalformedXML()
        if status == "Suspended" and bucket.object_lock:
            raise InvalidBucketState("An Object Lock configuration is present on this bucket, so the versioning "
                                     "state cannot be changed.", BucketName=bucket.name)
        if status == "Suspended" and bucket.replication:
            raise InvalidBucketState("A replication configuration is present on this bucket, so you cannot change "
                                     "the versioning state. To change the versioning state, first delete the "
                                     "replication configuration.", BucketName=bucket.name)
        if config.get("MFADelete") == "Enabled":
            raise IllegalVersioningConfiguration("MFA delete is not supported by minicloud.")
        await self.db.write(lambda conn: store.update_bucket(conn, bucket.name, versioning=status))
        self.forget_bucket(bucket.name)
        return {}

    async def get_bucket_versioning(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = await self.bucket_for(ctx, params, "GetBucketVersioning")
        return {"Status": bucket.versioning} if bucket.versioning else {}

    # -- tagging -------------------------------------------------------------------------------------
    async def put_bucket_tagging(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = await self.bucket_for(ctx, params, "PutBucketTagging")
        tags = check_tags((params.get("Tagging") or {}).get("TagSet") or [])
        await self.db.write(lambda conn: store.update_bucket(conn, bucket.name, tags=tags))
        self.forget_bucket(bucket.name)
        return {}

    async def get_bucket_tagging(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = await self.bucket_for(ctx, params, "GetBucketTagging")
        if not bucket.tags or bucket.tags == "[]":
            raise NoSuchTagSet("The TagSet does not exist", BucketName=bucket.name)
        return {"TagSet": tag_set(bucket.tags)}

    async def delete_bucket_tagging(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = await self.bucket_for(ctx, params, "PutBucketTagging")
        await self.db.write(lambda conn: store.update_bucket(conn, bucket.name, tags=None))
        self.forget_bucket(bucket.name)
        return {}
