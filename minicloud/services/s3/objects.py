"""Objects: PutObject, GetObject, HeadObject, CopyObject and object tagging."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, unquote

import sqlalchemy as sa

from minicloud.aws.context import RequestContext
from minicloud.aws.errors import ServiceError
from minicloud.aws.payload import RequestPayload
from minicloud.aws.protocol.rest_serializers import RESULT_STATUS
from minicloud.services.s3 import store
from minicloud.services.s3.acl import GRANT_HEADERS, acl_for_write, ownership
from minicloud.services.s3.archive import check_readable, restore_header
from minicloud.services.s3.base import effective_policy
from minicloud.services.s3.buckets import check_tags, tag_set
from minicloud.services.s3.checksums import MEMBER
from minicloud.services.s3.data import Staged
from minicloud.services.s3.encryption import EncryptionOperations, ObjectKey, response_members, stored_encryption
from minicloud.services.s3.errors import (
    InvalidArgument,
    InvalidPartNumber,
    InvalidRequest,
    InvalidStorageClass,
    MethodNotAllowed,
    NoSuchKey,
    NoSuchVersion,
    NotModified,
    PreconditionFailed,
    ServiceUnavailable,
)
from minicloud.services.s3.events import Notice, notice_for
from minicloud.services.s3.http import (
    OVERRIDES,
    check_copy_conditions,
    check_read_conditions,
    content_headers,
    copied_headers,
    etag_matches,
    parse_range,
    stored_headers,
)
from minicloud.services.s3.lifecycle import expiration_header
from minicloud.services.s3.locks import lock_for_write, lock_members
from minicloud.services.s3.metadata_sync import mark_change
from minicloud.services.s3.names import check_key
from minicloud.services.s3.replication import mark_pending
from minicloud.services.s3.small import commit_small, read_small_sealed
from minicloud.services.s3.store import Bucket, ObjectRow
from minicloud.services.s3.uploads import MAX_PUT_BYTES, checksum_members, receive_body
from minicloud.storage.blobs import Digest, NoReplicaAvailable
from minicloud.storage.metadata.portable import PortableWrite

log = logging.getLogger("minicloud.s3")

STORAGE_CLASSES = frozenset({"STANDARD", "REDUCED_REDUNDANCY", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING",
                             "GLACIER", "DEEP_ARCHIVE", "GLACIER_IR", "OUTPOSTS", "SNOW", "EXPRESS_ONEZONE"})


def new_version_id(bucket: Bucket) -> str:
    return secrets.token_urlsafe(24) if bucket.versioning == "Enabled" else store.NULL_VERSION


def storage_class_of(params: dict[str, Any]) -> str:
    value = params.get("StorageClass") or "STANDARD"
    if value not in STORAGE_CLASSES:
        raise InvalidStorageClass("The storage class you specified is not valid", StorageClassRequested=value)
    return str(value)


def parse_tagging(text: str | None) -> str | None:
    """The x-amz-tagging header (a query string) as stored tags."""
    if not text:
        return None
    pairs = sorted(parse_qsl(text, keep_blank_values=True))
    return check_tags([{"Key": k, "Value": v} for k, v in pairs], limit=10)


def object_owner(params: dict[str, Any], bucket: Bucket, writer: str) -> str:
    """Who owns a new object: its writer, or the bucket owner under the ownership controls."""
    setting = ownership(bucket)
    if setting == "BucketOwnerEnforced" or (setting == "BucketOwnerPreferred"
                                            and params.get("ACL") == "bucket-owner-full-control"):
        return bucket.account_id
    return writer or bucket.account_id


def part_checksum(stored: dict[str, Any], number: int) -> dict[str, Any]:
    """The checksum members of one part of a multipart object (kept from its upload)."""
    parts = stored.get("parts") or []
    if not 1 <= number <= len(parts):
        return {}
    out: dict[str, Any] = {}
    for name, member in MEMBER.items():
        if stored.get(name):
            out[member] = parts[number - 1]
            out["ChecksumType"] = stored.get("type", "COMPOSITE")
    return out


DESCRIBED_ROWS = 4096  # object rows whose GET/HEAD members are remembered (see ``describe``)
_described: dict[int, tuple[ObjectRow, tuple[str | None, str | None], dict[str, Any]]] = {}
_ACL_MEMBERS = ("ACL", *GRANT_HEADERS)
_SSE_S3_TEXT = json.dumps({"sse": "AES256"})


def write_acl(params: dict[str, Any], bucket: Bucket, owner: str) -> str | None:
    """``acl_for_write``, without its work for the common write that names no ACL (then None)."""
    if all(params.get(member) is None for member in _ACL_MEMBERS):
        return None
    return acl_for_write(params, bucket, owner)


def stored_text(stored: dict[str, Any]) -> str:
    """An object's stored encryption as its column holds it (SSE-S3's, the usual one, made once)."""
    return _SSE_S3_TEXT if stored == {"sse": "AES256"} else json.dumps(stored)


class PutCondition:
    """If-None-Match: * and If-Match on writes, checked again inside the committing transaction."""

    def __init__(self, params: dict[str, Any]) -> None:
        self.if_none_match = params.get("IfNoneMatch")
        self.if_match = params.get("IfMatch")

    def __bool__(self) -> bool:
        """Whether the request has a condition at all (most writes have none: no read to make)."""
        return self.if_none_match is not None or self.if_match is not None

    def check(self, current: ObjectRow | None, key: str) -> None:
        live = current if current is not None and not current.delete_marker else None
        if (self.if_none_match is not None and live is not None
                and (self.if_none_match.strip() == "*" or etag_matches(self.if_none_match, live.etag))):
            raise PreconditionFailed("At least one of the pre-conditions you specified did not hold",
                                     Condition="If-None-Match")
        if self.if_match is not None:
            if live is None:
                raise NoSuchKey("The specified key does not exist.", Key=key)
            if self.if_match.strip() != "*" and self.if_match.strip('"') != live.etag.strip('"'):
                raise PreconditionFailed("At least one of the pre-conditions you specified did not hold",
                                         Condition="If-Match")


_SETTERS: dict[str, Callable[[sa.Connection, int, str | None], None]] = {
    "tags": store.set_object_tags, "acl": store.set_object_acl, "lock": store.set_object_lock}


class ObjectOperations(EncryptionOperations):
    # -- writing -------------------------------------------------------------------------------------
    async def put_object(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return await self.store_object(ctx, params, "s3:ObjectCreated:Put")

    async def store_object(self, ctx: RequestContext, params: dict[str, Any], event: str) -> dict[str, Any]:
        """PutObject, and a browser's POST upload (``event`` names which, for notifications)."""
        key: str = params["Key"]
        check_key(key)
        bucket = await self.bucket_for_write(ctx, params, key)
        storage_class = storage_class_of(params)
        tags = parse_tagging(params.get("Tagging"))
        condition = PutCondition(params)
        if condition:
            condition.check(await self.db.read(lambda conn: store.get_object(conn, bucket.name, key)), key)
        object_key = await self.write_key(params, bucket, ctx)
        lock = lock_for_write(params, bucket, ctx.now)  # refused before the body is read
        owner = object_owner(params, bucket, ctx.account_id)
        acl = write_acl(params, bucket, owner)
        staged = await receive_body(self.data, params, storage_class,
                                    ctx.request.headers.get("x-amz-trailer") or "", object_key.sealer())
        checksums = {**staged.checksums, "type": "FULL_OBJECT"} if staged.checksums else {}
        values: dict[str, Any] = {
            "bucket": bucket.name, "key": key, "version_id": new_version_id(bucket), "delete_marker": False,
            "size": staged.size, "etag": f'"{staged.md5}"', "last_modified": ctx.now.replace(microsecond=0),
            "storage_class": storage_class, "owner": owner, "acl": acl,
            "digest": staged.digest, "parts": None, "meta": json.dumps(content_headers(params)),
            "checksums": json.dumps(checksums) if checksums else None, "tags": tags,
            "encryption": stored_text(object_key.stored), "lock": lock,
        }
        await self.commit_version(bucket, staged, values, condition,
                                  notice_for(ctx, bucket, event))
        result: dict[str, Any] = {"ETag": values["etag"], **checksum_members(checksums), **object_key.members()}
        if bucket.versioning == "Enabled":  # a suspended bucket's "null" version is not named
            result["VersionId"] = values["version_id"]
        if bucket.lifecycle:  # (no rule, no expiration: no row to build)
            expiration = expiration_header(bucket, ObjectRow(id=0, latest=True, **values))
            if expiration:
                result["Expiration"] = expiration
        return result

    async def write_service_object(self, target: Bucket, key: str, body: bytes | RequestPayload, *,
                                   content_type: str, now: datetime, acl: str | None = None) -> Staged:
        """An object S3 itself writes into a bucket (a server access log, an inventory report),
        written as PutObject writes one: SSE-S3, replicated, then its row; owned by the bucket's
        owner, STANDARD. The staged body (its MD5, its size) is returned."""
        stored = {"sse": "AES256"}
        sealer = ObjectKey(self._master().key, stored).sealer()
        staged = await receive_body(self.data, {"Body": body}, "STANDARD", "", sealer)
        values: dict[str, Any] = {
            "bucket": target.name, "key": key, "version_id": new_version_id(target), "delete_marker": False,
            "size": staged.size, "etag": f'"{staged.md5}"', "last_modified": now.replace(microsecond=0),
            "storage_class": "STANDARD", "owner": target.account_id, "acl": acl, "digest": staged.digest,
            "parts": None, "meta": json.dumps({"ContentType": content_type}),
            "checksums": json.dumps({**staged.checksums, "type": "FULL_OBJECT"}) if staged.checksums else None,
            "tags": None, "encryption": stored_text(stored), "lock": None,
        }
        await self.commit_version(target, staged, values)
        return staged

    async def commit_version(self, bucket: Bucket, staged: Staged | None, values: dict[str, Any],
                             condition: PutCondition | None = None, notice: Notice | None = None) -> None:
        """Make the data durable, then its metadata; a crash in between leaves an unreferenced
        blob (removed by the next sweep), never a visible half-written object."""
        pending = bool(bucket.replication) and mark_pending(bucket, values)
        # (portable: the small-blob writer may commit it with the data, see services.s3.small)
        write = PortableWrite(write_version, (values, bucket.versioning, condition or None, notice))

        if staged is None:
            released = await self.db.write(write)
        else:
            async with self.data.lock(staged.digest):
                if staged.ingest is None and staged.body is not None:  # small: data, then metadata, from one thread
                    released = await self._commit_small(staged, write)
                else:
                    await staged.commit()
                    try:
                        released = await self.db.write(write)
                    except BaseException:
                        released = [staged.digest]
                        await self.release_unlocked(released)
                        raise
        await self.release(released)
        if pending:
            self.replication_pending()

    async def change_metadata(self, bucket: Bucket, row: ObjectRow, field: str, value: str | None) -> None:
        """Set a version's tags, ACL or Object Lock (``field``), the change recorded for replication
        in the same transaction when it is to be replicated (see ``metadata_sync``)."""
        def change(conn: sa.Connection) -> bool:
            _SETTERS[field](conn, row.id, value)
            return mark_change(conn, bucket, row.key, row.version_id, field)

        if await self.db.write(change):
            self.replication_pending()

    async def _commit_small(self, staged: Staged, write: Callable[[sa.Connection], list[str]]) -> list[str]:
        try:
            assert staged.body is not None
            return await commit_small(self.db, staged.replicas, staged.body,
                                      Digest("sha256", staged.sealed_sha256 or staged.sha256), write)
        except NoReplicaAvailable as exc:
            log.error("object data could not be made durable: %s", exc)
            raise ServiceUnavailable("Please reduce your request rate.") from None
        except asyncio.CancelledError:
            raise  # the write may still commit: its blob must stay
        except BaseException:
            await self.release_unlocked([staged.digest])
            raise

    async def release_unlocked(self, digests: list[str]) -> None:
        """``release`` for a caller that already holds the digests' locks."""
        for digest in digests:
            if not await self.db.read(lambda conn, d=digest: store.is_referenced(conn, d)):  # type: ignore[misc]
                await self.data.delete(digest)

    # -- reading -------------------------------------------------------------------------------------
    async def find_object(self, ctx: RequestContext, bucket: Bucket, key: str,
                          version_id: str | None, action: str) -> ObjectRow:
        """The object version an ``action`` (authorized already) reads or changes, or S3's error;
        the object's own context is checked on this very row (``check_object``)."""
        row = await self.object_row(bucket.name, key, version_id)
        if row is None:
            if version_id is not None:
                if version_id != store.NULL_VERSION and len(version_id) != 32:
                    raise InvalidArgument("Invalid version id specified", ArgumentName="versionId",
                                          ArgumentValue=version_id)
                raise NoSuchVersion("The specified version does not exist.", Key=key, VersionId=version_id)
            if not await self.may(ctx, "ListBucket", bucket, {"s3:prefix": key}):
                raise self.access_denied("Access Denied")
            raise NoSuchKey("The specified key does not exist.", Key=key)
        if row.delete_marker:
            error: ServiceError = NoSuchKey("The specified key does not exist.", Key=key)
            if version_id is not None:
                error = MethodNotAllowed("The specified method is not allowed against this resource.",
                                         Method=ctx.request.method, ResourceType="DeleteMarker")
            error.headers += [("x-amz-delete-marker", "true"), ("x-amz-version-id", row.version_id)]
            raise error
        await self.check_object(ctx, action, bucket, row)
        return row

    async def may(self, ctx: RequestContext, action: str, bucket: Bucket, keys: dict[str, str] | None = None) -> bool:
        result = await ctx.authorizer.check(
            ctx.principal, f"s3:{action}", f"arn:aws:s3:::{bucket.name}",
            context={**ctx.condition_keys(), **(keys or {})}, resource_policy=effective_policy(ctx, bucket),
            resource_account=bucket.account_id)
        return result.allowed or ("explicit deny" not in result.message  # or the bucket's ACL grants it
                                  and await self._acl_allows(ctx, action, bucket, None))

    async def get_object(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return await self._read(ctx, params, body=True)

    async def head_object(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return await self._read(ctx, params, body=False)

    async def _read(self, ctx: RequestContext, params: dict[str, Any], *, body: bool) -> dict[str, Any]:
        key: str = params["Key"]
        version_id = params.get("VersionId")
        action = "GetObjectVersion" if version_id else "GetObject"
        bucket = await self.bucket_for(ctx, params, action, key)
        if ctx.request.headers.get("x-amz-server-side-encryption") is not None:
            raise InvalidArgument("x-amz-server-side-encryption header is not supported for this operation.",
                                  ArgumentName="x-amz-server-side-encryption")
        row = await self.find_object(ctx, bucket, key, version_id, action)
        if body:
            check_readable(row, ctx.now)  # (an archived version's bytes only once restored; HEAD works)
        kek = await self.read_key(params, row, ctx, decrypt=body)
        try:
            check_read_conditions(params, row.etag, row.last_modified)
        except NotModified:  # 304 still says which version is current
            return {RESULT_STATUS: 304, "ETag": row.etag, "LastModified": row.last_modified}
        segments = row.segments()
        result = self.describe(row, bucket)
        if row.restore:  # (not among ``describe``'s members: a restored copy's expiry passes)
            restore = restore_header(row, ctx.now)
            if restore:
                result["Restore"] = restore
        span: tuple[int, int] | None
        part_number = params.get("PartNumber")
        if part_number is not None:
            span = self._part_span(row, segments, int(part_number))
        else:
            span = parse_range(params.get("Range"), row.size)
        start, end = span if span is not None else (0, row.size)
        if span is not None:
            result[RESULT_STATUS] = 206
            result["ContentRange"] = f"bytes {start}-{end - 1}/{row.size}"
            if part_number is not None:
                result.update(part_checksum(row.checksum_values(), int(part_number)))
        elif params.get("ChecksumMode") == "ENABLED":
            result.update(checksum_members(row.checksum_values()))
        result["ContentLength"] = end - start
        for override, member in OVERRIDES.items():
            if params.get(override) is not None:
                result[member] = params[override]
        if body and end > start:
            small = None if kek is None else await read_small_sealed(self.data.store, self.data.replicas, segments,
                                                                      start, end, kek)
            result["Body"] = small if small is not None else self.read_data(segments, start, end, kek)
        return result

    def read_data(self, segments: list[tuple[str, int]], start: int, end: int, kek: bytes | None) -> Any:
        """Plaintext bytes [start, end) of an object's segments (sealed ones opened with ``kek``)."""
        if kek is None:
            return self.data.read(segments, start, end)
        return self.data.read_sealed(segments, start, end, kek)

    def _part_span(self, row: ObjectRow, segments: list[tuple[str, int]], number: int) -> tuple[int, int] | None:
        if not row.parts:
            if number != 1:
                raise InvalidPartNumber("The requested partnumber is not satisfiable", PartNumberRequested=str(number),
                                        ActualPartCount="1")
            return None
        if not 1 <= number <= len(segments):
            raise InvalidPartNumber("The requested partnumber is not satisfiable", PartNumberRequested=str(number),
                                    ActualPartCount=str(len(segments)))
        start = sum(size for _, size in segments[:number - 1])
        return start, start + segments[number - 1][1]

    def describe(self, row: ObjectRow, bucket: Bucket) -> dict[str, Any]:
        """The members a GET or HEAD of ``row`` answers with (a new dict, the caller's to extend). An
        object row read again is the same object (``object_row``'s cache): its members are worked
        out once for as long as the row and the bucket's versioning and lifecycle stay the same."""
        config = (bucket.versioning, bucket.lifecycle)
        known = _described.get(id(row))
        if known is not None and known[0] is row and known[1] == config:
            return dict(known[2])
        result = _describe(row, bucket)
        if len(_described) >= DESCRIBED_ROWS:
            _described.clear()
        _described[id(row)] = (row, config, result)  # (the row kept alive: its id stays its own)
        return dict(result)

    # -- copying -------------------------------------------------------------------------------------
    async def copy_object(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        key: str = params["Key"]
        check_key(key)
        source_bucket_name, source_key, source_version = parse_copy_source(params["CopySource"])
        source_bucket = await self.bucket(source_bucket_name)
        action = "GetObjectVersion" if source_version else "GetObject"
        await self.authorize(ctx, action, source_bucket, source_key, version_id=source_version)
        bucket = await self.bucket_for_write(ctx, params, key)
        source = await self.find_object(ctx, source_bucket, source_key, source_version, action)
        check_readable(source, ctx.now, source=True)
        source_kek = await self.read_key(params, source, ctx, copy_source=True)
        object_key = await self.write_key(params, bucket, ctx)
        check_copy_conditions(params, source.etag, source.last_modified)
        if source.size > MAX_PUT_BYTES:
            raise InvalidRequest("The specified copy source is larger than the maximum allowable size for a copy "
                                 f"source: {MAX_PUT_BYTES}")
        replace = params.get("MetadataDirective") == "REPLACE"
        storage_class = storage_class_of(params)  # (S3: without x-amz-storage-class, a copy is STANDARD)
        same = (source_bucket.name == bucket.name and source.key == key and source_version is None)
        if (same and not replace and not params.get("StorageClass") and not params.get("WebsiteRedirectLocation")
                and not params.get("ServerSideEncryption") and not params.get("SSECustomerAlgorithm")):
            raise InvalidRequest("This copy request is illegal because it is trying to copy an object to itself "
                                 "without changing the object's metadata, storage class, website redirect "
                                 "location or encryption attributes.")
        meta = json.dumps(content_headers(params)) if replace else copied_headers(source.meta, params)
        writer = object_owner(params, bucket, ctx.account_id)
        tags = parse_tagging(params.get("Tagging")) if params.get("TaggingDirective") == "REPLACE" else source.tags
        values = {
            "bucket": bucket.name, "key": key, "version_id": new_version_id(bucket), "delete_marker": False,
            "size": source.size, "etag": source.etag, "last_modified": ctx.now.replace(microsecond=0),
            "storage_class": storage_class, "acl": acl_for_write(params, bucket, writer),
            "owner": writer, "digest": source.digest, "parts": source.parts,
            "meta": meta, "checksums": source.checksums, "tags": tags, "encryption": json.dumps(object_key.stored),
            "lock": lock_for_write(params, bucket, ctx.now),
        }
        staged = await self._copy_data(source, source_kek, object_key, storage_class)
        if staged is not None:
            values.update(digest=staged.digest, parts=None)
        elif storage_class not in ("ONEZONE_IA", "REDUCED_REDUNDANCY"):
            for digest, _ in source.segments():  # data kept in one zone now needs every zone
                await self.data.store.repair(Digest.parse(digest))
        await self.commit_version(bucket, staged, values, notice=notice_for(ctx, bucket, "s3:ObjectCreated:Copy"))
        result: dict[str, Any] = {"CopyObjectResult": {"ETag": source.etag, "LastModified": values["last_modified"]},
                                  **object_key.members()}
        if bucket.versioning == "Enabled":
            result["VersionId"] = values["version_id"]
        if source_bucket.versioning or source.version_id != store.NULL_VERSION:
            result["CopySourceVersionId"] = source.version_id
        return result

    async def _copy_data(self, source: ObjectRow, source_kek: bytes | None, object_key: ObjectKey,
                         storage_class: str) -> Staged | None:
        """None when the copy can share the source's blobs (both sealed with the master key);
        else the source's plaintext sealed anew for the destination's key."""
        if source_kek is not None and stored_encryption(source) == object_key.stored == {"sse": "AES256"}:
            return None
        body = self.read_data(source.segments(), 0, source.size, source_kek)
        return await self.data.stage(body, storage_class, checksums=set(), limit=MAX_PUT_BYTES,
                                     sealer=object_key.sealer())

    # -- tagging -------------------------------------------------------------------------------------
    async def put_object_tagging(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        key, version_id = params["Key"], params.get("VersionId")
        action = "PutObjectVersionTagging" if version_id else "PutObjectTagging"
        bucket = await self.bucket_for(ctx, params, action, key)
        row = await self.find_object(ctx, bucket, key, version_id, action)
        tags = check_tags((params.get("Tagging") or {}).get("TagSet") or [], limit=10)
        await self.change_metadata(bucket, row, "tags", tags)
        return {"VersionId": row.version_id} if bucket.versioning else {}

    async def get_object_tagging(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        key, version_id = params["Key"], params.get("VersionId")
        action = "GetObjectVersionTagging" if version_id else "GetObjectTagging"
        bucket = await self.bucket_for(ctx, params, action, key)
        row = await self.find_object(ctx, bucket, key, version_id, action)
        result: dict[str, Any] = {"TagSet": tag_set(row.tags)}
        if bucket.versioning:
            result["VersionId"] = row.version_id
        return result

    async def delete_object_tagging(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        key, version_id = params["Key"], params.get("VersionId")
        action = "DeleteObjectVersionTagging" if version_id else "DeleteObjectTagging"
        bucket = await self.bucket_for(ctx, params, action, key)
        row = await self.find_object(ctx, bucket, key, version_id, action)
        await self.change_metadata(bucket, row, "tags", None)
        return {"VersionId": row.version_id} if bucket.versioning else {}


def _describe(row: ObjectRow, bucket: Bucket) -> dict[str, Any]:
    result: dict[str, Any] = {
        "ETag": row.etag, "LastModified": row.last_modified, "AcceptRanges": "bytes",
        **stored_headers(row.metadata()),
    }
    if row.storage_class != "STANDARD":
        result["StorageClass"] = row.storage_class
    if bucket.versioning or row.version_id != store.NULL_VERSION:
        result["VersionId"] = row.version_id
    if row.parts:
        result["PartsCount"] = len(json.loads(row.parts))
    tags = row.tag_pairs()
    if tags:
        result["TagCount"] = len(tags)
    result.update(response_members(stored_encryption(row)))
    result.update(lock_members(row))
    if row.replication_status:
        result["ReplicationStatus"] = row.replication_status
    expiration = expiration_header(bucket, row)
    if expiration:
        result["Expiration"] = expiration
    return result


def write_version(conn: sa.Connection, values: dict[str, Any], versioning: str | None,
                  condition: PutCondition | None, notice: Notice | None) -> list[str]:
    """The row of a new version (``values``), checked against ``condition`` in the same
    transaction; the digests it released."""
    if condition:
        condition.check(store.get_object(conn, values["bucket"], values["key"]), values["key"])
    released = store.put_version(conn, values, versioning)
    if notice is not None:
        notice.write(conn, values["key"], size=values["size"], etag=values["etag"], version_id=values["version_id"])
    return released


def parse_copy_source(text: str) -> tuple[str, str, str | None]:
    """``bucket/key[?versionId=...]`` (URL-encoded, maybe with a leading slash)."""
    path, _, query = text.partition("?")
    path = unquote(path).lstrip("/")
    bucket, _, key = path.partition("/")
    if not bucket or not key:
        raise InvalidArgument("Invalid copy source object key", ArgumentName="x-amz-copy-source",
                              ArgumentValue=text)
    version = None
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name == "versionId":
            version = value
    return bucket, key, version
