"""Deleting objects: DeleteObject and DeleteObjects, with versions and delete markers.

Unversioned bucket: the object (its "null" version) goes. Versioning enabled: a delete marker
becomes the latest version. Suspended: the "null" version is replaced by a "null" delete marker.
With a version id: that version goes for good (a delete marker too).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from minicloud.aws.context import RequestContext
from minicloud.aws.errors import ServiceError, error_code
from minicloud.services.s3 import store
from minicloud.services.s3.base import S3Base
from minicloud.services.s3.errors import AccessDenied, BadDigest, InvalidRequest, MalformedXML, PreconditionFailed
from minicloud.services.s3.events import Notice, notice_for
from minicloud.services.s3.locks import check_deletable
from minicloud.services.s3.replication import mark_delete_marker
from minicloud.services.s3.store import Bucket

MAX_DELETE_KEYS = 1000


@dataclass(slots=True)
class Deleted:
    key: str
    version_id: str | None = None
    delete_marker: bool = False
    marker_version_id: str | None = None

    def member(self, requested_version: str | None) -> dict[str, Any]:
        out: dict[str, Any] = {"Key": self.key}
        if requested_version is not None:
            out["VersionId"] = requested_version
        if self.delete_marker:
            out["DeleteMarker"] = True
            if self.marker_version_id is not None:
                out["DeleteMarkerVersionId"] = self.marker_version_id
        return out


@dataclass(slots=True)
class DeleteNotices:
    """The ObjectRemoved notices of a delete (which one applies is known inside the transaction)."""

    deleted: Notice | None
    marker: Notice | None

    @classmethod
    def of(cls, ctx: RequestContext, bucket: Bucket) -> DeleteNotices | None:
        found = cls(notice_for(ctx, bucket, "s3:ObjectRemoved:Delete"),
                    notice_for(ctx, bucket, "s3:ObjectRemoved:DeleteMarkerCreated"))
        return found if found.deleted or found.marker else None

    def write(self, conn: sa.Connection, done: Deleted, requested_version: str | None) -> None:
        marker_created = done.delete_marker and requested_version is None
        notice = self.marker if marker_created else self.deleted
        if notice is not None:
            notice.write(conn, done.key, version_id=done.version_id)


@dataclass(frozen=True, slots=True)
class DeleteConditions:
    """A conditional delete: If-Match, x-amz-if-match-last-modified-time, x-amz-if-match-size (or
    an ObjectIdentifier's ETag, LastModifiedTime and Size in DeleteObjects). They are checked
    against the version the delete addresses (the current one without a version id): a mismatch is
    412 PreconditionFailed; with no such version there is nothing to delete (204, no delete marker).
    ``*`` matches any version (a delete marker too); a delete marker has no ETag, so no other ETag
    matches it."""

    etag: str | None = None
    last_modified: datetime | None = None
    size: int | None = None

    @classmethod
    def of(cls, etag: Any, last_modified: Any, size: Any) -> DeleteConditions | None:
        if etag is None and last_modified is None and size is None:
            return None
        return cls(None if etag is None else str(etag), last_modified, None if size is None else int(size))

    def check(self, row: store.ObjectRow) -> None:
        etag = None if self.etag is None else self.etag.strip()
        if etag is not None and etag != "*" and (row.delete_marker or etag.strip('"') != row.etag.strip('"')):
            raise PreconditionFailed("At least one of the pre-conditions you specified did not hold",
                                     Condition="If-Match")
        if self.last_modified is not None:
            wanted = self.last_modified if self.last_modified.tzinfo else self.last_modified.replace(tzinfo=UTC)
            have = row.last_modified if row.last_modified.tzinfo else row.last_modified.replace(tzinfo=UTC)
            if int(wanted.timestamp()) != int(have.timestamp()):
                raise PreconditionFailed("At least one of the pre-conditions you specified did not hold",
                                         Condition="x-amz-if-match-last-modified-time")
        if self.size is not None and (row.delete_marker or self.size != row.size):
            raise PreconditionFailed("At least one of the pre-conditions you specified did not hold",
                                     Condition="x-amz-if-match-size")


def delete_one(conn: sa.Connection, bucket: Bucket, key: str, version_id: str | None, owner: str,
               now: Any, released: list[str], bypass_governance: bool = False,
               notices: DeleteNotices | None = None, conditions: DeleteConditions | None = None) -> Deleted:
    if conditions is not None:
        row = store.get_object(conn, bucket.name, key, version_id)
        if row is None:  # nothing to delete: 204, and no delete marker is added
            return Deleted(key, version_id)
        conditions.check(row)
    done = _delete_one(conn, bucket, key, version_id, owner, now, released, bypass_governance)
    if notices is not None:
        notices.write(conn, done, version_id)
    return done


def _delete_one(conn: sa.Connection, bucket: Bucket, key: str, version_id: str | None, owner: str,
                now: Any, released: list[str], bypass_governance: bool) -> Deleted:
    if version_id is not None:
        row = store.get_object(conn, bucket.name, key, version_id)
        if row is None:
            return Deleted(key, version_id)
        check_deletable(row, now, bypass_governance)
        released += store.delete_version(conn, row)
        return Deleted(key, version_id, row.delete_marker, version_id if row.delete_marker else None)
    if bucket.versioning is None:
        row = store.get_object(conn, bucket.name, key, store.NULL_VERSION)
        if row is not None:
            released += store.delete_version(conn, row)
        return Deleted(key)
    marker_id = secrets.token_urlsafe(24) if bucket.versioning == "Enabled" else store.NULL_VERSION
    released += store.put_version(conn, {
        "bucket": bucket.name, "key": key, "version_id": marker_id, "delete_marker": True, "size": 0,
        "etag": "", "last_modified": now.replace(microsecond=0), "storage_class": "STANDARD", "owner": owner,
        "digest": None,
        "parts": None, "meta": None, "checksums": None, "tags": None}, bucket.versioning)
    return Deleted(key, marker_id, True, marker_id)


class DeleteOperations(S3Base):
    async def delete_object(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        key, version_id = params["Key"], params.get("VersionId")
        bucket = await self.bucket_for(ctx, params, "DeleteObjectVersion" if version_id else "DeleteObject", key)
        released: list[str] = []
        owner = ctx.account_id or bucket.account_id
        bypass = await self.bypass_governance(ctx, params, bucket, key)
        notices = DeleteNotices.of(ctx, bucket)
        conditions = DeleteConditions.of(params.get("IfMatch"), params.get("IfMatchLastModifiedTime"),
                                         params.get("IfMatchSize"))

        def delete(conn: sa.Connection) -> tuple[Deleted, bool]:
            done = delete_one(conn, bucket, key, version_id, owner, ctx.now, released, bypass, notices, conditions)
            return done, version_id is None and mark_delete_marker(conn, bucket, key, done.marker_version_id)
        done, pending = await self.db.write(delete)
        await self.release(released)
        if pending:
            self.replication_pending()
        result: dict[str, Any] = {}
        if done.delete_marker:
            result["DeleteMarker"] = True
        if done.version_id is not None and (bucket.versioning or version_id is not None):
            result["VersionId"] = done.version_id
        return result

    async def delete_objects(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = await self.bucket(params["Bucket"])
        request = params.get("Delete") or {}
        objects = request.get("Objects") or []
        if not objects or len(objects) > MAX_DELETE_KEYS:
            raise MalformedXML()
        self._check_body_digest(ctx, params)
        allowed: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for item in objects:
            action = "DeleteObjectVersion" if item.get("VersionId") else "DeleteObject"
            try:
                await self.authorize(ctx, action, bucket, item["Key"], version_id=item.get("VersionId"))
                allowed.append(item)
            except ServiceError as error:
                errors.append({"Key": item["Key"], "Code": error_code(error), "Message": error.message,
                               **({"VersionId": item["VersionId"]} if item.get("VersionId") else {})})
        ctx.authorized = True  # each key was authorised (or refused) on its own
        released: list[str] = []
        owner = ctx.account_id or bucket.account_id
        bypass = {item["Key"]: await self.bypass_governance(ctx, params, bucket, item["Key"]) for item in allowed}
        notices = DeleteNotices.of(ctx, bucket)
        pending: list[bool] = []  # (a delete marker left PENDING replication)

        def delete_all(conn: sa.Connection) -> list[tuple[Deleted, dict[str, Any]]]:
            done = []
            for item in allowed:
                try:
                    conditions = DeleteConditions.of(item.get("ETag"), item.get("LastModifiedTime"), item.get("Size"))
                    done.append((delete_one(conn, bucket, item["Key"], item.get("VersionId"), owner, ctx.now,
                                            released, bypass[item["Key"]], notices, conditions), item))
                    if item.get("VersionId") is None and mark_delete_marker(conn, bucket, item["Key"],
                                                                             done[-1][0].marker_version_id):
                        pending.append(True)
                except (AccessDenied, PreconditionFailed) as error:
                    errors.append({"Key": item["Key"], "Code": error_code(error), "Message": error.message,
                                   **({"VersionId": item["VersionId"]} if item.get("VersionId") else {})})
            return done
        done = await self.db.write(delete_all, bulk=True)  # (up to 1,000 keys)
        await self.release(released)
        if pending:
            self.replication_pending()
        result: dict[str, Any] = {}
        if not request.get("Quiet"):
            result["Deleted"] = [d.member(item.get("VersionId")) for d, item in done]
        if errors:
            result["Errors"] = errors
        return result

    def _check_body_digest(self, ctx: RequestContext, params: dict[str, Any]) -> None:
        headers = ctx.request.headers
        if params.get("ContentMD5") is None and not any(name.startswith("x-amz-checksum-") for name in headers):
            raise InvalidRequest("Missing required header for this request: Content-MD5")
        if params.get("ContentMD5") is not None:
            computed = base64.b64encode(hashlib.md5(ctx.request.body).digest()).decode()
            if computed != params["ContentMD5"]:
                raise BadDigest("The Content-MD5 you specified did not match what we received.")
