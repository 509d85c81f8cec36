"""ACL, ownership-control and public-access-block operations (the rules are in ``acl.py``)."""

from __future__ import annotations

import json
from typing import Any

from minicloud.aws.context import RequestContext
from minicloud.services.s3 import store
from minicloud.services.s3.acl import (
    CANNED,
    body_grants,
    canned_grants,
    check_acl_allowed,
    header_grants,
    is_public,
    is_public_policy,
    known_accounts,
    ownership,
    stored_grants,
    with_display_names,
)
from minicloud.services.s3.errors import (
    InvalidArgument,
    InvalidBucketAclWithObjectOwnership,
    InvalidRequest,
    MalformedXML,
    NoSuchPublicAccessBlockConfiguration,
    OwnershipControlsNotFoundError,
)
from minicloud.services.s3.names import owner
from minicloud.services.s3.objects import ObjectOperations
from minicloud.services.s3.store import Bucket

_OWNERSHIPS = ("BucketOwnerPreferred", "ObjectWriter", "BucketOwnerEnforced")
_BLOCKS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")


def _grants_from_request(params: dict[str, Any], bucket: Bucket, owner_account: str,
                         accounts: dict[str, str]) -> list[dict[str, Any]]:
    """PutBucketAcl/PutObjectAcl: a canned ACL, grant headers or an AccessControlPolicy body."""
    canned = params.get("ACL")
    headers = header_grants(params, accounts, strict=True)
    body = params.get("AccessControlPolicy")
    given = [x for x in (canned, headers, body) if x]
    if len(given) != 1:
        raise InvalidRequest("Specifying both Canned ACLs and Header Grants is not allowed" if len(given) > 1
                             else "Missing required header for this request: x-amz-acl")
    if canned is not None and canned not in CANNED:
        raise InvalidArgument("", ArgumentName="x-amz-acl", ArgumentValue=str(canned))
    grants = canned_grants(str(canned), owner_account, bucket.account_id) if canned else \
        headers if headers is not None else body_grants(body or {}, accounts, strict=True)
    check_acl_allowed(bucket, None if canned else grants, canned, on_object=True)
    return grants


class AclOperations(ObjectOperations):
    # -- ACLs ----------------------------------------------------------------------------------------
    async def put_bucket_acl(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = await self.bucket_for(ctx, params, "PutBucketAcl")
        grants = _grants_from_request(params, bucket, bucket.account_id, await self.db.read(known_accounts))
        text = json.dumps(grants)
        await self.db.write(lambda conn: store.update_bucket(conn, bucket.name, acl=text))
        self.forget_bucket(bucket.name)
        return {}

    async def get_bucket_acl(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = await self.bucket_for(ctx, params, "GetBucketAcl")
        acl = None if ownership(bucket) == "BucketOwnerEnforced" else bucket.acl
        grants = with_display_names(stored_grants(acl, bucket.account_id), await self.db.read(known_accounts))
        return {"Owner": owner(bucket.account_id), "Grants": grants}

    async def put_object_acl(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        key, version_id = params["Key"], params.get("VersionId")
        action = "PutObjectVersionAcl" if version_id else "PutObjectAcl"
        bucket = await self.bucket_for(ctx, params, action, key)
        row = await self.find_object(ctx, bucket, key, version_id, action)
        grants = _grants_from_request(params, bucket, row.owner, await self.db.read(known_accounts))
        await self.change_metadata(bucket, row, "acl", json.dumps(grants))
        return {}

    async def get_object_acl(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        key, version_id = params["Key"], params.get("VersionId")
        action = "GetObjectVersionAcl" if version_id else "GetObjectAcl"
        bucket = await self.bucket_for(ctx, params, action, key)
        row = await self.find_object(ctx, bucket, key, version_id, action)
        enforced = ownership(bucket) == "BucketOwnerEnforced"
        object_owner = bucket.account_id if enforced else row.owner
        grants = stored_grants(None if enforced else row.acl, object_owner)
        return {"Owner": owner(object_owner), "Grants": with_display_names(grants, await self.db.read(known_accounts))}

    # -- ownership controls --------------------------------------------------------------------------
    async def put_bucket_ownership_controls(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = await self.bucket_for(ctx, params, "PutBucketOwnershipControls")
        rules = (params.get("OwnershipControls") or {}).get("Rules") or []
        if len(rules) != 1 or rules[0].get("ObjectOwnership") not in _OWNERSHIPS:
            raise MalformedXML()
        owner_only = [{"Grantee": {"Type": "CanonicalUser", **owner(bucket.account_id)}, "Permission": "FULL_CONTROL"}]
        if rules[0]["ObjectOwnership"] == "BucketOwnerEnforced" and bucket.acl and json.loads(bucket.acl) != owner_only:
            # ACLs can be turned off only once the bucket's own ACL grants nothing beyond its owner
            raise InvalidBucketAclWithObjectOwnership("Bucket cannot have ACLs set with ObjectOwnership's "
                                                      "BucketOwnerEnforced setting")
        text = json.dumps({"Rules": [{"ObjectOwnership": rules[0]["ObjectOwnership"]}]})
        await self.db.write(lambda conn: store.update_bucket(conn, bucket.name, ownership=text))
        self.forget_bucket(bucket.name)
        return {}

    async def get_bucket_ownership_controls(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = await self.bucket_for(ctx, params, "GetBucketOwnershipControls")
        config = bucket.config("ownership")
        if not config:
            raise OwnershipControlsNotFoundError("The bucket ownership controls were not found",
                                                 BucketName=bucket.name)
        return {"OwnershipControls": config}

    async def delete_bucket_ownership_controls(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = await self.bucket_for(ctx, params, "PutBucketOwnershipControls")
        await self.db.write(lambda conn: store.update_bucket(conn, bucket.name, ownership=None))
        self.forget_bucket(bucket.name)
        return {}

    # -- public access block -------------------------------------------------------------------------
    async def put_public_access_block(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = await self.bucket_for(ctx, params, "PutBucketPublicAccessBlock")
        config = params.get("PublicAccessBlockConfiguration") or {}
        if not any(name in config for name in _BLOCKS):
            raise InvalidRequest("Must specify at least one configuration.")
        text = json.dumps({name: bool(config.get(name, False)) for name in _BLOCKS})
        await self.db.write(lambda conn: store.update_bucket(conn, bucket.name, public_access_block=text))
        self.forget_bucket(bucket.name)
        return {}

    async def get_public_access_block(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = await self.bucket_for(ctx, params, "GetBucketPublicAccessBlock")
        config = bucket.config("public_access_block")
        if not config:
            raise NoSuchPublicAccessBlockConfiguration("The public access block configuration was not found",
                                                       BucketName=bucket.name)
        return {"PublicAccessBlockConfiguration": config}

    async def delete_public_access_block(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = await self.bucket_for(ctx, params, "PutBucketPublicAccessBlock")
        await self.db.write(lambda conn: store.update_bucket(conn, bucket.name, public_access_block=None))
        self.forget_bucket(bucket.name)
        return {}

    async def get_bucket_policy_status(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = await self.bucket_for(ctx, params, "GetBucketPolicyStatus")
        public_acl = ownership(bucket) != "BucketOwnerEnforced" and is_public(stored_grants(bucket.acl,
                                                                                              bucket.account_id))
        return {"PolicyStatus": {"IsPublic": is_public_policy(bucket.policy) or public_acl}}
