"""What every S3 operation shares: the metadata store, the object data, bucket look-ups (cached)
and authorization with the bucket policy."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, unquote

from minicloud.aws.context import ConditionValues, RequestContext
from minicloud.aws.provider import Provider
from minicloud.aws.request import AwsRequest, AwsResponse
from minicloud.iam.identity import PrincipalKind
from minicloud.runtime import Runtime
from minicloud.services.s3 import store
from minicloud.services.s3.acl import (
    ACTION_PERMISSIONS,
    denials_only,
    grants_allow,
    is_public_policy,
    ownership,
    public_access_block,
    stored_grants,
)
from minicloud.services.s3.data import ObjectData
from minicloud.services.s3.errors import AccessDenied, NoSuchBucket
from minicloud.services.s3.http import check_redirect_location
from minicloud.services.s3.locks import lock_actions, write_lock_keys
from minicloud.services.s3.names import bucket_arn, canonical_id, object_arn
from minicloud.services.s3.payer import check_requester_pays
from minicloud.services.s3.releases import Releases
from minicloud.services.s3.store import Bucket, ObjectRow
from minicloud.services.s3.transport import check_customer_key_transport
from minicloud.storage.blobs import BlobNotFound, Digest

log = logging.getLogger("minicloud.s3")

_GRANTS = "s3.grants"  # ctx.extra[_GRANTS][(bucket, key, action)]: how authorize allowed it, when not by policy
_BY_ACL, _BY_OWNERSHIP, _MISSING_ONLY = "acl", "owner", "missing"
ACL_REQUIRED = "s3.acl_required"  # ctx.extra: an ACL's grant allowed some action of the request
# Actions on a key that S3 authorizes in the bucket's context alone: writing and deleting objects,
# multipart uploads. Every other action on an existing object is also in the object's context.
_BUCKET_CONTEXT_ACTIONS = frozenset({"PutObject", "DeleteObject", "DeleteObjectVersion", "AbortMultipartUpload",
                                     "ListMultipartUploadParts"})
# What the account owning an object in another account's bucket may do to it on its own say (its
# IAM policies; the bucket's owner only by an explicit deny): read it and what describes it, and
# manage its ACL. Changing its tags (which the bucket owner's lifecycle rules and policies may
# test), its retention or its legal hold (which would keep it, and its cost, in the bucket past
# the bucket owner's will) also needs the bucket owner's allow here.
_OWNER_ACTIONS = frozenset({
    "GetObject", "GetObjectVersion", "GetObjectAcl", "GetObjectVersionAcl", "PutObjectAcl", "PutObjectVersionAcl",
    "GetObjectTagging", "GetObjectVersionTagging", "GetObjectAttributes", "GetObjectVersionAttributes",
    "GetObjectRetention", "GetObjectLegalHold"})

RELEASE_GRACE_SECONDS = 10.0  # a released blob outlives GETs that found it just before
# How long a bucket change by another API server may go unseen (one that does not share this data
# directory's change epoch: processes that share it see every change at once).
BUCKET_CACHE_SECONDS = 2.0


# (A write's x-amz-object-lock-* headers are not among them: S3 gives policies what they ask for as
# its s3:object-lock-* keys instead, ``locks.lock_condition_keys``.)
_HEADER_KEYS = ("x-amz-acl", "x-amz-server-side-encryption", "x-amz-server-side-encryption-customer-algorithm",
                "x-amz-server-side-encryption-aws-kms-key-id", "x-amz-metadata-directive", "x-amz-storage-class",
                "x-amz-grant-read", "x-amz-grant-write", "x-amz-grant-read-acp", "x-amz-grant-write-acp",
                "x-amz-grant-full-control", "x-amz-content-sha256", "x-amz-website-redirect-location")


def effective_policy(ctx: RequestContext, bucket: Bucket) -> str | None:
    """The bucket policy as it applies to this caller (``policy_for``)."""
    return policy_for(bucket, ctx.principal.account_id)


def policy_for(bucket: Bucket, account_id: str) -> str | None:
    """The bucket policy as it applies to a principal of ``account_id``: with RestrictPublicBuckets
    on and a public policy, what the policy grants reaches no one outside the bucket owner's account
    (its denials still apply to everyone)."""
    policy = bucket.policy
    if (policy and bucket.public_access_block and account_id != bucket.account_id
            and public_access_block(bucket)["RestrictPublicBuckets"] and is_public_policy(policy)):
        return denials_only(policy)
    return policy


def request_condition_keys(request: AwsRequest, version_id: str | None = None) -> dict[str, str | list[str]]:
    """The S3 condition keys a request's own headers carry (s3:x-amz-acl, ...), and s3:versionid of
    the version it addresses (as the operation's parameters read it)."""
    keys: dict[str, str | list[str]] = {}
    for header in _HEADER_KEYS:
        value = request.headers.get(header)
        if value is not None:
            keys[f"s3:{header}"] = value
    source = request.headers.get("x-amz-copy-source")
    if source is not None:
        keys["s3:x-amz-copy-source"] = unquote(source.split("?", 1)[0]).lstrip("/")
    tagging = request.headers.get("x-amz-tagging")
    if tagging:
        pairs = parse_qsl(tagging, keep_blank_values=True)
        keys["s3:RequestObjectTagKeys"] = [k for k, _ in pairs]
        keys.update({f"s3:RequestObjectTag/{k}": v for k, v in pairs})
    if version_id is not None:
        keys["s3:versionid"] = version_id
    return keys


@dataclass(frozen=True, slots=True)
class WebsiteAnswer:
    """One answered request to a bucket's website endpoint: what a server access log says of it."""

    bucket: str
    request: AwsRequest
    response: AwsResponse
    request_id: str
    started: datetime
    key: str | None  # the object read (the index document for a folder), None when none was
    error_code: str | None  # the error the answer reports (its error document's status too)


class S3Base(Provider):
    service_name = "s3"
    access_denied = AccessDenied
    anonymous_access = True

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.db = runtime.db
        self.region = runtime.topology.default_region
        zones = [z.name for z in runtime.topology.zones(self.region)] or [self.region]
        self.data = ObjectData(runtime.config.data_dir / "s3", zones)
        self._buckets: dict[str, tuple[float, Bucket | None]] = {}
        self._buckets_epoch = self.db.epoch.value()
        self._releases = Releases(self._delete_released, self.data.reading, RELEASE_GRACE_SECONDS)

    async def start(self) -> None:
        dropped = await self.data.cleanup_ingests()
        if dropped:
            log.info("removed %d unfinished S3 uploads left by an earlier run", dropped)

    async def stop(self) -> None:
        self._releases.stop()  # unreferenced blobs left now are orphans, not data loss
        self.data.close()

    def website_answered(self, answer: WebsiteAnswer) -> None:
        """A request to a bucket's website endpoint was answered (server access logs record it)."""
        return None

    # -- buckets -------------------------------------------------------------------------------------
    async def find_bucket(self, name: str) -> Bucket | None:
        epoch = self.db.epoch.value()
        if epoch != self._buckets_epoch:  # a bucket changed, through this process or another
            self._buckets.clear()
            self._buckets_epoch = epoch
        hit = self._buckets.get(name)
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            return hit[1]
        found = await self.db.read(lambda conn: store.get_bucket(conn, name))
        if len(self._buckets) > 10_000:
            self._buckets.clear()
        if self.db.epoch.value() == epoch:  # (else it may be older than the change)
            self._buckets[name] = (now + BUCKET_CACHE_SECONDS, found)
        return found

    async def object_row(self, bucket: str, key: str, version_id: str | None = None) -> ObjectRow | None:
        """``store.get_object``, remembered until the next commit to the metadata store (exact, not a
        time to live: see ``Database.read_cached``)."""
        return await self.db.read_cached(("s3.object", bucket, key, version_id),
                                         lambda conn: store.get_object(conn, bucket, key, version_id))

    def forget_bucket(self, name: str) -> None:
        """After a committed change to the bucket: every process's cached copy is dropped."""
        self._buckets.pop(name, None)
        self.db.epoch.bump()

    def replication_pending(self) -> None:
        """A commit left an object version PENDING replication (``replication.ReplicationOperations``
        wakes its controller; the controller also finds such versions by itself)."""

    async def bucket(self, name: str) -> Bucket:
        found = await self.find_bucket(name)
        if found is None:
            raise NoSuchBucket("The specified bucket does not exist", BucketName=name)
        return found

    async def authorize(self, ctx: RequestContext, action: str, bucket: Bucket, key: str | None = None,
                        context: ConditionValues | None = None, version_id: str | None = None) -> None:
        """IAM and the bucket policy together, as S3 evaluates them (the bucket's owner is the
        resource account: another account needs the policy to allow it), or else an ACL's grant.
        ``version_id`` is the version the operation addresses, as its parameters read it. What an
        object's own context adds is checked on the row the operation reads (``check_object``).
        A Requester Pays bucket first asks other accounts to accept the charges (``payer``)."""
        if bucket.request_payment and ctx.principal.account_id != bucket.account_id:
            check_requester_pays(ctx, bucket)
        resource = object_arn(bucket.name, key) if key is not None else bucket_arn(bucket.name)
        policy = effective_policy(ctx, bucket)
        if policy or ctx.principal.kind is not PrincipalKind.ROOT:  # a root without a policy checks no condition
            keys = {**request_condition_keys(ctx.request, version_id), **(context or {})}
            if key is not None and action not in _BUCKET_CONTEXT_ACTIONS:  # (an IAM policy may test them too)
                keys.update(await self._existing_tag_keys(bucket, key, version_id))
            context = keys
        try:
            await ctx.authorize(f"s3:{action}", resource, context=context, resource_policy=policy,
                                resource_account=bucket.account_id)
        except AccessDenied as denied:
            if "explicit deny" in denied.message:
                raise
            if await self._owner_allows(ctx, action, bucket, key, version_id, context):
                grant = _BY_OWNERSHIP
            elif await self._acl_allows(ctx, action, bucket, key, version_id):
                grant = _BY_ACL
                ctx.extra[ACL_REQUIRED] = True  # (server access logs say so)
            elif await self._may_learn_missing(ctx, action, bucket, key, version_id):
                grant = _MISSING_ONLY
            else:
                raise
            ctx.authorized = True
            if key is not None:
                ctx.extra.setdefault(_GRANTS, {})[(bucket.name, key, action)] = grant

    async def check_object(self, ctx: RequestContext, action: str, bucket: Bucket, row: ObjectRow) -> None:
        """The object's own context, on the very row the operation reads (``authorize`` allowed the
        action first). An object another account wrote (ACLs on, the writer kept ownership) answers
        to its owner's ACL: what the bucket's account allowed (its IAM policies, its bucket policy)
        reaches neither the object nor its ACL, nor its tags, attributes or retention; only a grant
        of the object's ACL does, or being of the owner's account (whose IAM policies were checked).
        Access granted by an ACL is checked again on this row's ACL; a caller allowed only to learn
        that the key was missing gets nothing now that it exists."""
        if action in _BUCKET_CONTEXT_ACTIONS:
            return
        grant = ctx.extra.get(_GRANTS, {}).get((bucket.name, row.key, action))
        if grant == _MISSING_ONLY:
            raise AccessDenied("Access Denied")
        if grant == _BY_OWNERSHIP:  # allowed as the object's owner: this row must be its own
            if row.owner != ctx.principal.account_id or ownership(bucket) == "BucketOwnerEnforced":
                raise AccessDenied("Access Denied")
            return
        if grant != _BY_ACL:
            if row.owner in (bucket.account_id, ctx.principal.account_id):
                return
            if ownership(bucket) == "BucketOwnerEnforced":
                return  # (the bucket owner owns every object)
        if not await self._row_acl_allows(ctx, action, bucket, row):
            raise AccessDenied("Access Denied")

    async def _owner_allows(self, ctx: RequestContext, action: str, bucket: Bucket, key: str | None,
                            version_id: str | None, context: ConditionValues | None) -> bool:
        """An action in an object's own context by the account that owns that object, in another
        account's bucket (ACLs on, the writer kept ownership): S3 asks the owner's account alone
        (its root, or its IAM policies for its users and roles); the bucket's owner has a say only
        through an explicit deny in its bucket policy, which ``authorize`` has already honoured."""
        if key is None or action not in _OWNER_ACTIONS or ctx.principal.kind is PrincipalKind.ANONYMOUS:
            return False
        if ctx.principal.account_id == bucket.account_id or ownership(bucket) == "BucketOwnerEnforced":
            return False
        row = await self.object_row(bucket.name, key, version_id)
        if row is None or row.delete_marker or row.owner != ctx.principal.account_id:
            return False
        return (ctx.principal.kind is PrincipalKind.ROOT
                or await self._identity_allows(ctx, action, object_arn(bucket.name, key), context))

    async def _may_learn_missing(self, ctx: RequestContext, action: str, bucket: Bucket, key: str | None,
                                 version_id: str | None) -> bool:
        """A GET/HEAD of a key that does not exist, by someone allowed s3:ListBucket on it (the policy's
        s3:prefix condition included): S3 answers 404 NoSuchKey rather than 403."""
        if action != "GetObject" or key is None or version_id is not None:
            return False
        if await self.object_row(bucket.name, key) is not None:
            return False
        result = await ctx.authorizer.check(
            ctx.principal, "s3:ListBucket", bucket_arn(bucket.name), context={**ctx.condition_keys(), "s3:prefix": key},
            resource_policy=effective_policy(ctx, bucket), resource_account=bucket.account_id)
        return result.allowed

    async def _existing_tag_keys(self, bucket: Bucket, key: str, version_id: str | None) -> dict[str, str]:
        row = await self.object_row(bucket.name, key, version_id)
        return {f"s3:ExistingObjectTag/{k}": v for k, v in row.tag_pairs()} if row else {}

    async def _identity_allows(self, ctx: RequestContext, action: str, resource: str,
                               context: ConditionValues | None = None) -> bool:
        """Whether an IAM user's or role's own policies allow the action (what a grant to its account
        needs, as S3 evaluates a cross-account ACL grant, and what an object's owner account asks);
        roots and anonymous callers have none."""
        if ctx.principal.kind in (PrincipalKind.ROOT, PrincipalKind.ANONYMOUS):
            return False
        return (await ctx.authorizer.check(ctx.principal, f"s3:{action}", resource,
                                           context={**ctx.condition_keys(), **(context or {})},
                                           resource_account=ctx.principal.account_id)).allowed

    async def _row_acl_allows(self, ctx: RequestContext, action: str, bucket: Bucket, row: ObjectRow) -> bool:
        """Whether this object version's ACL grants what ``action`` needs (no ACL grants an action
        outside ``ACTION_PERMISSIONS``)."""
        needed = ACTION_PERMISSIONS.get(action)
        if needed is None or not needed[1] or ownership(bucket) == "BucketOwnerEnforced" or row.delete_marker:
            return False
        identity = await self._identity_allows(ctx, action, object_arn(bucket.name, row.key))
        return grants_allow(stored_grants(row.acl, row.owner), ctx.principal, needed[0],
                            public_access_block(bucket)["IgnorePublicAcls"], identity)

    async def _acl_allows(self, ctx: RequestContext, action: str, bucket: Bucket, key: str | None,
                          version_id: str | None = None) -> bool:
        """Whether the bucket's or the object's ACL grants what ``action`` needs."""
        needed = ACTION_PERMISSIONS.get(action)
        if needed is None or ownership(bucket) == "BucketOwnerEnforced":
            return False
        permission, on_object = needed
        if not on_object:
            return await self._bucket_acl_allows(ctx, action, bucket, bucket_arn(bucket.name), permission)
        if key is None:
            return False
        row = await self.object_row(bucket.name, key, version_id)
        if row is not None:
            return await self._row_acl_allows(ctx, action, bucket, row)
        if version_id is not None or action not in ("GetObject", "GetObjectAcl"):
            return False
        # No object: whoever may list the bucket learns that with a 404 (NoSuchKey), as on S3.
        return await self._bucket_acl_allows(ctx, action, bucket, object_arn(bucket.name, key), "READ")

    async def _bucket_acl_allows(self, ctx: RequestContext, action: str, bucket: Bucket, resource: str,
                                 permission: str) -> bool:
        identity = await self._identity_allows(ctx, action, resource)
        return grants_allow(stored_grants(bucket.acl, bucket.account_id), ctx.principal, permission,
                            public_access_block(bucket)["IgnorePublicAcls"], identity)

    async def bucket_for(self, ctx: RequestContext, params: dict[str, Any], action: str,
                         key: str | None = None, context: ConditionValues | None = None) -> Bucket:
        check_customer_key_transport(ctx.request, params)
        bucket = await self.bucket(params["Bucket"])
        await self.authorize(ctx, action, bucket, key, context, params.get("VersionId") if key is not None else None)
        expected = params.get("ExpectedBucketOwner")  # x-amz-expected-bucket-owner: 403 when another owns it
        if expected is not None and expected not in (bucket.account_id, canonical_id(bucket.account_id)):
            raise AccessDenied("Access Denied")
        return bucket

    async def bucket_for_write(self, ctx: RequestContext, params: dict[str, Any], key: str) -> Bucket:
        """``bucket_for`` a write that may set an Object Lock (PutObject, CopyObject,
        CreateMultipartUpload): s3:PutObject, then what its lock headers need beside it
        (``locks.lock_actions``), all with the write's Object Lock condition keys
        (``locks.write_lock_keys``; a write without lock headers has none and asks nothing more)."""
        lock_keys = write_lock_keys(params, ctx.now)
        bucket = await self.bucket_for(ctx, params, "PutObject", key, lock_keys)
        check_redirect_location(params)  # (before the body is read)
        if lock_keys:
            for action in lock_actions(params):
                await self.authorize(ctx, action, bucket, key, lock_keys)
        return bucket

    async def bypass_governance(self, ctx: RequestContext, params: dict[str, Any], bucket: Bucket, key: str) -> bool:
        """x-amz-bypass-governance-retention, honoured only with s3:BypassGovernanceRetention."""
        if not params.get("BypassGovernanceRetention"):
            return False
        result = await ctx.authorizer.check(
            ctx.principal, "s3:BypassGovernanceRetention", object_arn(bucket.name, key),
            context=ctx.condition_keys(), resource_policy=effective_policy(ctx, bucket),
            resource_account=bucket.account_id)
        return bool(result.allowed)

    # -- blobs ---------------------------------------------------------------------------------------
    async def release(self, digests: list[str]) -> None:
        """Delete, after a grace period, the files of blobs whose last reference went away: a GET
        that looked the object up just before it was replaced still streams it (``releases``)."""
        self._releases.add(digests)

    async def widen(self, digests: list[str]) -> set[str]:
        """Copy blobs to every zone that lacks them (their version leaves a one-zone class), those
        still referenced (checked under their locks: a released blob is not brought back); the
        digests that could not be copied (their versions stay in their class until a later pass)."""
        failed: set[str] = set()
        for digest in dict.fromkeys(digests):
            async with self.data.lock(digest):
                if not await self.db.read(lambda conn, d=digest: store.is_referenced(conn, d)):  # type: ignore[misc]
                    continue
                try:
                    await self.data.store.repair(Digest.parse(digest))
                except (OSError, BlobNotFound) as exc:
                    log.warning("copying %s to every zone failed: %s", digest, exc)
                    failed.add(digest)
        return failed

    async def _delete_released(self, digests: list[str]) -> None:
        """Delete released blobs, but those a reference came back to meanwhile (checked under
        their locks)."""
        async with self.data.lock_all(digests):
            referenced = await self.db.read(lambda conn: store.referenced(conn, digests))
            await self.data.delete_many([digest for digest in digests if digest not in referenced])
