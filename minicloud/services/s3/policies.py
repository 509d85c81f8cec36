"""Bucket policies (validated as resource policies, enforced with IAM on every request) and CORS
configuration."""

from __future__ import annotations

import json
from typing import Any

from minicloud.aws.context import RequestContext
from minicloud.aws.protocol.rest_serializers import RESULT_STATUS
from minicloud.iam.policy import (
    AuthzRequest,
    MalformedPolicyDocument,
    PolicyKind,
    PrincipalInfo,
    Verdict,
    evaluate,
    parse_policy,
)
from minicloud.services.s3 import store
from minicloud.services.s3.acl import is_public_policy, public_access_block
from minicloud.services.s3.base import S3Base
from minicloud.services.s3.cors import check_rules
from minicloud.services.s3.errors import AccessDenied, MalformedPolicy, NoSuchBucketPolicy, NoSuchCORSConfiguration
from minicloud.services.s3.names import object_arn
from minicloud.services.s3.store import Bucket

MAX_POLICY_BYTES = 20 * 1024


def service_may_put(target: Bucket, key: str, service: PrincipalInfo, context: dict[str, str]) -> bool | None:
    """What the target's bucket policy says of an AWS service principal (S3's log delivery, its
    inventory) writing ``key``: True allowed, False explicitly denied, None when it says nothing
    (no policy, an unreadable one, no statement for it)."""
    if not target.policy:
        return None
    try:
        policy = parse_policy(target.policy, PolicyKind.RESOURCE)
    except MalformedPolicyDocument:
        return None
    decision = evaluate(AuthzRequest("s3:PutObject", object_arn(target.name, key), service,
                                     resource_account=target.account_id, context=context), (), resource_policy=policy)
    if decision.verdict is Verdict.EXPLICIT_DENY:
        return False
    return True if decision.allowed else None


def check_policy(text: str, bucket: str) -> None:
    if len(text.encode()) > MAX_POLICY_BYTES:
        raise MalformedPolicy("Policies must be less than 20 KB")
    if not text.lstrip().startswith("{"):
        raise MalformedPolicy("Policies must be valid JSON and the first byte must be '{'")
    try:
        policy = parse_policy(text, PolicyKind.RESOURCE)
    except MalformedPolicyDocument as exc:
        raise MalformedPolicy(exc.message) from None
    document = json.loads(text)
    statements = document.get("Statement")
    for statement in statements if isinstance(statements, list) else [statements]:
        if not isinstance(statement, dict):
            continue
        resources = statement.get("Resource", statement.get("NotResource", []))
        for resource in [resources] if isinstance(resources, str) else resources or []:
            if not _names_bucket(str(resource), bucket):
                raise MalformedPolicy("Policy has invalid resource")
    del policy


def _names_bucket(resource: str, bucket: str) -> bool:
    if resource == "*":
        return True
    if not resource.startswith("arn:aws:s3:::"):
        return False
    name = resource[len("arn:aws:s3:::"):].split("/", 1)[0]
    return name == bucket or ("*" in name or "?" in name)


class PolicyOperations(S3Base):
    async def put_bucket_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = await self.bucket_for(ctx, params, "PutBucketPolicy")
        text: str = params.get("Policy") or ""
        check_policy(text, bucket.name)
        if public_access_block(bucket)["BlockPublicPolicy"] and is_public_policy(text):
            raise AccessDenied("Access Denied")
        await self.db.write(lambda conn: store.update_bucket(conn, bucket.name, policy=text))
        self.forget_bucket(bucket.name)
        return {RESULT_STATUS: 204}  # S3 answers PutBucketPolicy with 204 No Content

    async def get_bucket_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = await self.bucket_for(ctx, params, "GetBucketPolicy")
        if not bucket.policy:
            raise NoSuchBucketPolicy("The bucket policy does not exist", BucketName=bucket.name)
        return {"Policy": bucket.policy}

    async def delete_bucket_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = await self.bucket_for(ctx, params, "DeleteBucketPolicy")
        await self.db.write(lambda conn: store.update_bucket(conn, bucket.name, policy=None))
        self.forget_bucket(bucket.name)
        return {}

    # -- CORS ----------------------------------------------------------------------------------------
    async def put_bucket_cors(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = await self.bucket_for(ctx, params, "PutBucketCORS")
        rules = (params.get("CORSConfiguration") or {}).get("CORSRules") or []
        check_rules(rules)
        text = json.dumps(rules, default=str)
        await self.db.write(lambda conn: store.update_bucket(conn, bucket.name, cors=text))
        self.forget_bucket(bucket.name)
        return {}

    async def get_bucket_cors(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = await self.bucket_for(ctx, params, "GetBucketCORS")
        if not bucket.cors:
            raise NoSuchCORSConfiguration("The CORS configuration does not exist", BucketName=bucket.name)
        return {"CORSRules": json.loads(bucket.cors)}

    async def delete_bucket_cors(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = await self.bucket_for(ctx, params, "PutBucketCORS")
        await self.db.write(lambda conn: store.update_bucket(conn, bucket.name, cors=None))
        self.forget_bucket(bucket.name)
        return {}
