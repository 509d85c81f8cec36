"""Listings: ListObjects (v1), ListObjectsV2, ListObjectVersions, ListMultipartUploads.

Keys come from the ``(bucket, latest, key)`` index in key order, one query per page; with a
delimiter, each common prefix found makes the next query jump past every key under it (a skip
scan), so a prefix holding a million keys costs one row, not a million.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa

from minicloud.aws.context import RequestContext
from minicloud.aws.pagination import decode_token, encode_token
from minicloud.services.s3 import archive, store
from minicloud.services.s3.base import S3Base
from minicloud.services.s3.errors import InvalidArgument
from minicloud.services.s3.names import owner
from minicloud.services.s3.store import ObjectRow, prefix_end

DEFAULT_MAX_KEYS = 1000

Entry = tuple[str, Any]  # (key or common prefix, row or None)


def _common_prefix(key: str, prefix: str, delimiter: str) -> str | None:
    if not delimiter:
        return None
    found = key.find(delimiter, len(prefix))
    return key[:found + len(delimiter)] if found >= 0 else None


def scan(fetch: Callable[[str | None, bool, int], list[Any]], key_of: Callable[[Any], str], prefix: str,
         delimiter: str, after: str | None, max_keys: int) -> tuple[list[Entry], bool]:
    """Up to ``max_keys`` entries (rows and common prefixes) after ``after``; whether more follow."""
    entries: list[Entry] = []
    cursor, inclusive = after, False
    if after is not None and _common_prefix(after, prefix, delimiter) == after:
        cursor, inclusive = prefix_end(after), True  # a marker that is a common prefix: past all of it
    while len(entries) <= max_keys:
        batch = fetch(cursor, inclusive, max_keys + 1 - len(entries))
        jumped = False
        for row in batch:
            key = key_of(row)
            common = _common_prefix(key, prefix, delimiter)
            if common is not None:
                entries.append((common, None))
                cursor, inclusive, jumped = prefix_end(common), True, True
                break
            entries.append((key, row))
        if not jumped:  # the batch was all rows: either enough of them, or the last there are
            break
    truncated = len(entries) > max_keys
    return entries[:max_keys], truncated


def _max_keys(params: dict[str, Any], name: str = "MaxKeys") -> int:
    value = params.get(name)
    if value is None:
        return DEFAULT_MAX_KEYS
    if value < 0:
        raise InvalidArgument("Argument maxKeys must be an integer between 0 and 2147483647",
                              ArgumentName="maxKeys", ArgumentValue=str(value))
    return min(int(value), DEFAULT_MAX_KEYS)


class Encoder:
    def __init__(self, params: dict[str, Any]) -> None:
        encoding = params.get("EncodingType")
        if encoding is not None and encoding != "url":
            raise InvalidArgument("Invalid Encoding Method specified in Request", ArgumentName="encoding-type",
                                  ArgumentValue=str(encoding))
        self.url = encoding == "url"

    def __call__(self, text: str) -> str:
        return quote(text, safe="/") if self.url else text


def _content(row: ObjectRow, encode: Encoder, with_owner: bool,
             restore_status: datetime | None = None) -> dict[str, Any]:
    """A listing's entry; ``restore_status``: the time to give its RestoreStatus at (when asked for)."""
    item: dict[str, Any] = {"Key": encode(row.key), "LastModified": row.last_modified, "ETag": row.etag,
                            "Size": row.size, "StorageClass": row.storage_class}
    if restore_status is not None and row.restore:
        status = archive.restore_status(row, restore_status)
        if status is not None:
            item["RestoreStatus"] = status
    checksums = row.checksum_values()
    algorithms = [name for name in checksums if name != "type"]
    if algorithms:
        item["ChecksumAlgorithm"] = algorithms
        item["ChecksumType"] = checksums.get("type", "FULL_OBJECT")
    if with_owner:
        item["Owner"] = owner(row.owner)
    return item


class ListingOperations(S3Base):
    async def _list_current(self, bucket: str, prefix: str, delimiter: str, after: str | None,
                            max_keys: int) -> tuple[list[Entry], bool]:
        def run(conn: sa.Connection) -> tuple[list[Entry], bool]:
            def fetch(cursor: str | None, inclusive: bool, limit: int) -> list[Any]:
                return store.list_latest(conn, bucket, cursor, prefix, limit, inclusive=inclusive)
            return scan(fetch, lambda row: row.key, prefix, delimiter, after, max_keys)
        if max_keys == 0:
            return [], False
        return await self.db.read(run)

    async def list_objects_v2(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        prefix, delimiter = params.get("Prefix") or "", params.get("Delimiter") or ""
        bucket = await self.bucket_for(ctx, params, "ListBucket", context={"s3:prefix": prefix})
        encode, max_keys = Encoder(params), _max_keys(params)
        after = params.get("StartAfter") or None
        token = params.get("ContinuationToken")
        if token:
            position = decode_token(token)
            if position is None or not isinstance(position.get("k"), str):
                raise InvalidArgument("The continuation token provided is incorrect",
                                      ArgumentName="continuation-token")
            after = str(position["k"])
        entries, truncated = await self._list_current(bucket.name, prefix, delimiter, after, max_keys)
        restores = ctx.now if "RestoreStatus" in (params.get("OptionalObjectAttributes") or []) else None
        contents = [_content(row, encode, bool(params.get("FetchOwner")), restores)
                    for _, row in entries if row is not None]
        prefixes = [{"Prefix": encode(key)} for key, row in entries if row is None]
        result: dict[str, Any] = {
            "Name": bucket.name, "Prefix": encode(prefix), "MaxKeys": max_keys, "IsTruncated": truncated,
            "KeyCount": len(entries), "Contents": contents or None, "CommonPrefixes": prefixes or None,
        }
        if delimiter:
            result["Delimiter"] = encode(delimiter)
        if encode.url:
            result["EncodingType"] = "url"
        if token is not None:
            result["ContinuationToken"] = token
        if params.get("StartAfter"):
            result["StartAfter"] = encode(params["StartAfter"])
        if truncated:
            result["NextContinuationToken"] = encode_token({"k": entries[-1][0]})
        return result

    async def list_objects(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        prefix, delimiter = params.get("Prefix") or "", params.get("Delimiter") or ""
        bucket = await self.bucket_for(ctx, params, "ListBucket", context={"s3:prefix": prefix})
        encode, max_keys = Encoder(params), _max_keys(params)
        marker = params.get("Marker") or ""
        entries, truncated = await self._list_current(bucket.name, prefix, delimiter, marker or None, max_keys)
        restores = ctx.now if "RestoreStatus" in (params.get("OptionalObjectAttributes") or []) else None
        result: dict[str, Any] = {
            # ListObjects (v1) echoes Prefix as given even with encoding-type=url (botocore decodes it not)
            "Name": bucket.name, "Prefix": prefix, "Marker": encode(marker), "MaxKeys": max_keys,
            "IsTruncated": truncated,
            "Contents": [_content(row, encode, True, restores) for _, row in entries if row is not None] or None,
            "CommonPrefixes": [{"Prefix": encode(key)} for key, row in entries if row is None] or None,
        }
        if delimiter:
            result["Delimiter"] = encode(delimiter)
            if truncated:
                result["NextMarker"] = encode(entries[-1][0])
        if encode.url:
            result["EncodingType"] = "url"
        return result

    async def list_object_versions(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        prefix, delimiter = params.get("Prefix") or "", params.get("Delimiter") or ""
        bucket = await self.bucket_for(ctx, params, "ListBucketVersions", context={"s3:prefix": prefix})
        encode, max_keys = Encoder(params), _max_keys(params)
        key_marker = params.get("KeyMarker") or ""
        version_marker = params.get("VersionIdMarker") or ""

        def run(conn: sa.Connection) -> tuple[list[Entry], bool]:
            start: tuple[str, int] | None = None
            if key_marker and _common_prefix(key_marker, prefix, delimiter) == key_marker:
                start = (prefix_end(key_marker), -1)
            elif key_marker:
                start = (key_marker, 0)
                if version_marker:
                    row = store.get_object(conn, bucket.name, key_marker, version_marker)
                    start = (key_marker, row.id) if row is not None else (key_marker, 0)
            return _scan_versions(conn, bucket.name, prefix, delimiter, start, max_keys)
        entries, truncated = await self.db.read(run) if max_keys else ([], False)
        restores = "RestoreStatus" in (params.get("OptionalObjectAttributes") or [])
        versions, markers = [], []
        for key, row in entries:
            if row is None:
                continue
            item: dict[str, Any] = {"Key": encode(key), "VersionId": row.version_id, "IsLatest": row.latest,
                                    "LastModified": row.last_modified, "Owner": owner(row.owner)}
            if row.delete_marker:
                markers.append(item)
            else:
                item.update(ETag=row.etag, Size=row.size, StorageClass=row.storage_class)
                status = archive.restore_status(row, ctx.now) if restores and row.restore else None
                if status is not None:
                    item["RestoreStatus"] = status
                versions.append(item)
        result: dict[str, Any] = {
            "Name": bucket.name, "Prefix": encode(prefix), "KeyMarker": encode(key_marker),
            "VersionIdMarker": version_marker, "MaxKeys": max_keys, "IsTruncated": truncated,
            "Versions": versions or None, "DeleteMarkers": markers or None,
            "CommonPrefixes": [{"Prefix": encode(key)} for key, row in entries if row is None] or None,
        }
        if delimiter:
            result["Delimiter"] = encode(delimiter)
        if encode.url:
            result["EncodingType"] = "url"
        if truncated:
            last_key, last_row = entries[-1]
            result["NextKeyMarker"] = encode(last_key)
            if last_row is not None:
                result["NextVersionIdMarker"] = last_row.version_id
        return result

    async def list_multipart_uploads(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        prefix, delimiter = params.get("Prefix") or "", params.get("Delimiter") or ""
        bucket = await self.bucket_for(ctx, params, "ListBucketMultipartUploads")
        encode, limit = Encoder(params), _max_keys(params, "MaxUploads")
        key_marker, upload_marker = params.get("KeyMarker") or "", params.get("UploadIdMarker") or ""
        after = (key_marker, upload_marker) if key_marker else None
        rows = await self.db.read(lambda conn: store.list_uploads(conn, bucket.name, after, prefix, limit + 1))
        uploads, prefixes = [], []
        for row in rows[:limit]:
            common = _common_prefix(row.key, prefix, delimiter)
            if common is not None:
                if common not in prefixes:
                    prefixes.append(common)
                continue
            uploads.append({"UploadId": row.upload_id, "Key": encode(row.key), "Initiated": row.created_at,
                            "StorageClass": row.storage_class, "Owner": owner(row.owner),
                            "Initiator": {"ID": owner(row.owner)["ID"], "DisplayName": row.owner}})
        truncated = len(rows) > limit
        result: dict[str, Any] = {
            "Bucket": bucket.name, "KeyMarker": encode(key_marker), "UploadIdMarker": upload_marker,
            "Prefix": encode(prefix), "MaxUploads": limit, "IsTruncated": truncated,
            "Uploads": uploads or None, "CommonPrefixes": [{"Prefix": encode(p)} for p in prefixes] or None,
        }
        if delimiter:
            result["Delimiter"] = encode(delimiter)
        if truncated and rows[:limit]:
            result["NextKeyMarker"] = encode(rows[limit - 1].key)
            result["NextUploadIdMarker"] = rows[limit - 1].upload_id
        if encode.url:
            result["EncodingType"] = "url"
        return result


def _scan_versions(conn: sa.Connection, bucket: str, prefix: str, delimiter: str,
                   start: tuple[str, int] | None, max_keys: int) -> tuple[list[Entry], bool]:
    entries: list[Entry] = []
    cursor = start
    while len(entries) <= max_keys:
        batch = store.list_versions(conn, bucket, cursor, prefix, max_keys + 1 - len(entries))
        if not batch:
            break
        jumped = False
        for row in batch:
            common = _common_prefix(row.key, prefix, delimiter)
            if common is not None:
                entries.append((common, None))
                cursor, jumped = (prefix_end(common), -1), True
                break
            entries.append((row.key, row))
            cursor = (row.key, row.id)
            if len(entries) > max_keys:
                break
        if not jumped:
            break
    truncated = len(entries) > max_keys
    return entries[:max_keys], truncated
