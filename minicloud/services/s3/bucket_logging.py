"""Server access logging's configuration: Put/GetBucketLogging, validated as S3 validates it.

The target bucket must exist (else InvalidTargetBucketForLogging), belong to the source bucket's
account (InvalidTargetBucketForLogging) and be in its region (403 CrossLocationLoggingProhibitted);
target grants need ACLs on the target (AccessControlListNotSupported under BucketOwnerEnforced).
An empty BucketLoggingStatus turns logging off. What is delivered, and when, is ``access_logs``.
"""

from __future__ import annotations

import json
from typing import Any

from minicloud.aws.context import RequestContext
from minicloud.services.s3 import store
from minicloud.services.s3.acl import ALL_USERS, AUTHENTICATED_USERS, LOG_DELIVERY, known_accounts, ownership
from minicloud.services.s3.base import S3Base
from minicloud.services.s3.errors import (
    AccessControlListNotSupported,
    CrossLocationLoggingProhibitted,
    InvalidArgument,
    InvalidTargetBucketForLogging,
    MalformedXML,
    UnresolvableGrantByEmailAddress,
)
from minicloud.services.s3.names import owner
from minicloud.services.s3.store import Bucket

LOG_PERMISSIONS = ("FULL_CONTROL", "READ", "WRITE")
DATE_SOURCES = ("EventTime", "DeliveryTime")
_GROUPS = (ALL_USERS, AUTHENTICATED_USERS, LOG_DELIVERY)


def malformed() -> MalformedXML:
    return MalformedXML()


def check_key_format(value: Any) -> dict[str, Any] | None:
    """TargetObjectKeyFormat: one of SimplePrefix or PartitionedPrefix (with a valid date source)."""
    if value is None:
        return None
    if not isinstance(value, dict) or len(value) != 1 or not set(value) <= {"SimplePrefix", "PartitionedPrefix"}:
        raise malformed()
    if "SimplePrefix" in value:
        return {"SimplePrefix": {}}
    partitioned = value["PartitionedPrefix"] or {}
    source = partitioned.get("PartitionDateSource")
    if source is not None and source not in DATE_SOURCES:
        raise malformed()
    return {"PartitionedPrefix": {"PartitionDateSource": source} if source else {}}


def check_grant(grant: Any, accounts: dict[str, str]) -> dict[str, Any]:
    """One TargetGrant as stored (an e-mail grantee becomes the account's canonical user, as S3 keeps it)."""
    if not isinstance(grant, dict) or grant.get("Permission") not in LOG_PERMISSIONS:
        raise malformed()
    grantee = grant.get("Grantee") or {}
    kind = grantee.get("Type")
    if kind == "CanonicalUser" and grantee.get("ID"):
        stored = {"Type": "CanonicalUser", "ID": str(grantee["ID"])}
    elif kind == "Group" and grantee.get("URI"):
        if grantee["URI"] not in _GROUPS:
            raise InvalidArgument("Invalid group uri", ArgumentName="uri", ArgumentValue=str(grantee["URI"]))
        stored = {"Type": "Group", "URI": str(grantee["URI"])}
    elif kind == "AmazonCustomerByEmail" and grantee.get("EmailAddress"):
        account = accounts.get(f"email:{str(grantee['EmailAddress']).lower()}")
        if account is None:
            raise UnresolvableGrantByEmailAddress("The e-mail address you provided does not match any account on "
                                                  "record.", EmailAddress=str(grantee["EmailAddress"]))
        stored = {"Type": "CanonicalUser", **owner(account)}
    else:
        raise malformed()
    return {"Grantee": stored, "Permission": grant["Permission"]}


def check_target(source: Bucket, target: Bucket | None, name: str, grants: list[dict[str, Any]]) -> Bucket:
    if target is None:
        raise InvalidTargetBucketForLogging("The target bucket for logging does not exist", TargetBucket=name)
    if target.account_id != source.account_id:
        raise InvalidTargetBucketForLogging("The owner for the bucket to be logged and the target bucket must be "
                                            "the same.", TargetBucket=name)
    if target.region != source.region:
        raise CrossLocationLoggingProhibitted("Cross S3 location logging not allowed. ",
                                              TargetBucketLocation=target.region, SourceBucketLocation=source.region)
    if grants and ownership(target) == "BucketOwnerEnforced":
        raise AccessControlListNotSupported("Target grants not allowed for bucket owner enforced buckets")
    return target


class LoggingOperations(S3Base):
    async def put_bucket_logging(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = await self.bucket_for(ctx, params, "PutBucketLogging")
        status = params.get("BucketLoggingStatus")
        if not isinstance(status, dict):
            raise malformed()
        enabled = status.get("LoggingEnabled")
        text = None if enabled is None else json.dumps(await self._logging_config(bucket, enabled))
        await self.db.write(lambda conn: store.update_bucket(conn, bucket.name, logging=text))
        self.forget_bucket(bucket.name)
        return {}

    async def get_bucket_logging(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        """An empty BucketLoggingStatus when logging is off."""
        bucket = await self.bucket_for(ctx, params, "GetBucketLogging")
        config = bucket.config("logging")
        return {"LoggingEnabled": config} if config else {}

    async def _logging_config(self, bucket: Bucket, enabled: Any) -> dict[str, Any]:
        if not isinstance(enabled, dict):
            raise malformed()
        name, prefix = enabled.get("TargetBucket"), enabled.get("TargetPrefix")
        if not isinstance(name, str) or not name or not isinstance(prefix, str):
            raise malformed()
        key_format = check_key_format(enabled.get("TargetObjectKeyFormat"))
        raw_grants = enabled.get("TargetGrants") or []
        if not isinstance(raw_grants, list):
            raise malformed()
        accounts: dict[str, str] = {}
        if any(isinstance(g, dict) and (g.get("Grantee") or {}).get("EmailAddress") for g in raw_grants):
            accounts = await self.db.read(known_accounts)
        grants = [check_grant(grant, accounts) for grant in raw_grants]
        check_target(bucket, await self.find_bucket(name), name, grants)
        config: dict[str, Any] = {"TargetBucket": name, "TargetPrefix": prefix}
        if grants:
            config["TargetGrants"] = grants
        if key_format is not None:
            config["TargetObjectKeyFormat"] = key_format
        return config
