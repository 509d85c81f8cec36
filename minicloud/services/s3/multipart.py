"""Multipart uploads: each part is a blob; completing one records the object as the ordered list
of its parts' blobs (no bytes are copied), with the ETag md5(md5(part 1) + ... )-N."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import secrets
from typing import Any

import sqlalchemy as sa

from minicloud.aws.context import RequestContext
from minicloud.services.s3 import store
from minicloud.services.s3.acl import acl_for_write
from minicloud.services.s3.archive import check_readable
from minicloud.services.s3.checksums import ALGORITHMS, CRC_PARAMETERS, MEMBER, composite, full_object
from minicloud.services.s3.data import Staged
from minicloud.services.s3.encryption import response_members, stored_encryption
from minicloud.services.s3.errors import (
    BadDigest,
    EntityTooSmall,
    InvalidArgument,
    InvalidPart,
    InvalidPartOrder,
    InvalidRange,
    InvalidRequest,
    MalformedXML,
    NoSuchUpload,
)
from minicloud.services.s3.events import notice_for
from minicloud.services.s3.http import check_copy_conditions, content_headers
from minicloud.services.s3.locks import lock_for_write
from minicloud.services.s3.names import check_key, owner
from minicloud.services.s3.objects import (
    ObjectOperations,
    PutCondition,
    new_version_id,
    object_owner,
    parse_copy_source,
    parse_tagging,
    storage_class_of,
)
from minicloud.services.s3.replication import mark_pending
from minicloud.services.s3.store import Bucket
from minicloud.services.s3.tables import s3_uploads
from minicloud.services.s3.uploads import MAX_PUT_BYTES, checksum_members, receive_body

MIN_PART_BYTES = 5 * 1024 * 1024
MAX_PARTS = 10_000
_COPY_RANGE = re.compile(r"bytes=(\d+)-(\d+)")


def _part_number(params: dict[str, Any]) -> int:
    number = int(params["PartNumber"])
    if not 1 <= number <= MAX_PARTS:
        raise InvalidArgument("Part number must be an integer between 1 and 10000, inclusive",
                              ArgumentName="partNumber", ArgumentValue=str(number))
    return number


def _copy_range(text: str | None, size: int) -> tuple[int, int]:
    """x-amz-copy-source-range ``bytes=first-last`` (inclusive) as [start, end); the whole object if absent."""
    if text is None:
        return 0, size
    match = _COPY_RANGE.fullmatch(text.strip())
    if match is None:
        raise InvalidArgument("The x-amz-copy-source-range value must be of the form bytes=first-last where first "
                              "and last are the zero-based offsets of the first and last bytes to copy",
                              ArgumentName="x-amz-copy-source-range", ArgumentValue=text)
    first, last = int(match.group(1)), int(match.group(2))
    if first > last or last >= size:
        raise InvalidRange("The requested range is not satisfiable", RangeRequested=text,
                           ActualObjectSize=str(size))
    return first, last + 1


def _checksum_type(algorithm: str | None, requested: str | None) -> str | None:
    """An upload's checksum type: as requested, else COMPOSITE (CRC64NVME is always FULL_OBJECT)."""
    if not algorithm:
        if requested:
            raise InvalidRequest("The x-amz-checksum-type header can only be used with the x-amz-checksum-algorithm "
                                 "header.")
        return None
    name = algorithm.upper()
    chosen = requested or ("FULL_OBJECT" if name == "CRC64NVME" else "COMPOSITE")
    if chosen not in ("COMPOSITE", "FULL_OBJECT"):
        raise InvalidRequest(f"Value for x-amz-checksum-type header is invalid: {chosen}")
    if chosen == "FULL_OBJECT" and name not in CRC_PARAMETERS:
        raise InvalidRequest(f"The FULL_OBJECT checksum type cannot be used with the {name.lower()} checksum "
                             "algorithm.")
    if chosen == "COMPOSITE" and name == "CRC64NVME":
        raise InvalidRequest("The COMPOSITE checksum type cannot be used with the crc64nvme checksum algorithm.")
    return chosen


def _check_declared(params: dict[str, Any], checksums: dict[str, Any]) -> None:
    """A checksum sent with CompleteMultipartUpload must be the object's (a composite one with or
    without its "-N")."""
    for name, member in MEMBER.items():
        declared, computed = params.get(member), checksums.get(name)
        if declared and computed and declared not in (computed, computed.rsplit("-", 1)[0]):
            raise BadDigest(f"The {name} you specified did not match the calculated checksum.")


def upload_extra(upload: Any) -> dict[str, Any]:
    """What an upload keeps for its object beside the columns: encryption, lock, ACL."""
    return json.loads(upload.extra) if upload.extra else {}


class MultipartOperations(ObjectOperations):
    async def _upload(self, bucket: Bucket, key: str, upload_id: str) -> Any:
        upload = await self.db.read(lambda conn: store.get_upload(conn, upload_id))
        if upload is None or upload.bucket != bucket.name or upload.key != key:
            raise NoSuchUpload("The specified upload does not exist. The upload ID may be invalid, or the upload "
                               "may have been aborted or completed.", UploadId=upload_id)
        return upload

    async def create_multipart_upload(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        key: str = params["Key"]
        check_key(key)
        bucket = await self.bucket_for_write(ctx, params, key)
        upload_id = secrets.token_urlsafe(48)
        algorithm = params.get("ChecksumAlgorithm")
        checksum_type = _checksum_type(algorithm, params.get("ChecksumType"))
        object_key = await self.write_key(params, bucket, ctx)
        values = {
            "upload_id": upload_id, "bucket": bucket.name, "key": key, "created_at": ctx.now,
            "storage_class": storage_class_of(params), "owner": object_owner(params, bucket, ctx.account_id),
            "meta": json.dumps(content_headers(params)), "checksum_algorithm": algorithm,
            "tags": parse_tagging(params.get("Tagging")),
            "extra": json.dumps({"encryption": object_key.stored, "lock": lock_for_write(params, bucket, ctx.now),
                                 "acl": acl_for_write(params, bucket, object_owner(params, bucket, ctx.account_id)),
                                 "checksum_type": checksum_type}),
        }
        await self.db.write(lambda conn: conn.execute(s3_uploads.insert().values(**values)))
        result: dict[str, Any] = {"Bucket": bucket.name, "Key": key, "UploadId": upload_id, **object_key.members()}
        if algorithm:
            result["ChecksumAlgorithm"] = algorithm
            result["ChecksumType"] = checksum_type
        return result

    async def upload_part(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        key: str = params["Key"]
        bucket = await self.bucket_for(ctx, params, "PutObject", key)
        number = _part_number(params)
        upload = await self._upload(bucket, key, params["UploadId"])
        if upload.checksum_algorithm and not params.get("ChecksumAlgorithm"):
            params["ChecksumAlgorithm"] = upload.checksum_algorithm
        part_key = await self.upload_key(params, upload_extra(upload).get("encryption"), ctx, upload)
        staged = await receive_body(self.data, params, upload.storage_class,
                                    ctx.request.headers.get("x-amz-trailer") or "",
                                    part_key.sealer() if part_key else None)
        values = await self._store_part(ctx, upload, number, staged)
        return {"ETag": values["etag"], **{MEMBER[n]: v for n, v in staged.checksums.items()},
                **(part_key.members() if part_key else {})}

    async def upload_part_copy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        """A part made of (a range of) another object's bytes, read and verified from the blob store."""
        key: str = params["Key"]
        source_bucket_name, source_key, source_version = parse_copy_source(params["CopySource"])
        source_bucket = await self.bucket(source_bucket_name)
        source_action = "GetObjectVersion" if source_version else "GetObject"
        await self.authorize(ctx, source_action, source_bucket, source_key, version_id=source_version)
        bucket = await self.bucket_for(ctx, params, "PutObject", key)
        number = _part_number(params)
        upload = await self._upload(bucket, key, params["UploadId"])
        source = await self.find_object(ctx, source_bucket, source_key, source_version, source_action)
        check_readable(source, ctx.now, source=True)
        source_kek = await self.read_key(params, source, ctx, copy_source=True)
        part_key = await self.upload_key(params, upload_extra(upload).get("encryption"), ctx, upload)
        check_copy_conditions(params, source.etag, source.last_modified)
        start, end = _copy_range(params.get("CopySourceRange"), source.size)
        if end - start > MAX_PUT_BYTES:
            raise InvalidRequest("The specified copy source is larger than the maximum allowable size for a copy "
                                 f"source: {MAX_PUT_BYTES}")
        body = self.read_data(source.segments(), start, end, source_kek)
        staged = await self.data.stage(body, upload.storage_class, checksums=set(), limit=MAX_PUT_BYTES,
                                       sealer=part_key.sealer() if part_key else None, plain_sha256=False)
        values = await self._store_part(ctx, upload, number, staged)
        result: dict[str, Any] = {"CopyPartResult": {"ETag": values["etag"], "LastModified": values["last_modified"]},
                                  **(part_key.members() if part_key else {})}
        if source_bucket.versioning or source.version_id != store.NULL_VERSION:
            result["CopySourceVersionId"] = source.version_id
        return result

    async def _store_part(self, ctx: RequestContext, upload: Any, number: int, staged: Staged) -> dict[str, Any]:
        values = {"upload_id": upload.upload_id, "part_number": number, "digest": staged.digest,
                  "size": staged.size, "etag": f'"{staged.md5}"', "last_modified": ctx.now.replace(microsecond=0),
                  "checksums": json.dumps(staged.checksums) if staged.checksums else None}

        def write(conn: sa.Connection) -> list[str]:
            if store.get_upload(conn, upload.upload_id) is None:
                raise NoSuchUpload("The specified upload does not exist.", UploadId=upload.upload_id)
            return store.put_part(conn, values)

        async with self.data.lock(staged.digest):
            await staged.commit()
            try:
                released = await self.db.write(write)
            except BaseException:
                await self.release_unlocked([staged.digest])
                raise
        await self.release(released)
        return values

    async def complete_multipart_upload(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        key: str = params["Key"]
        bucket = await self.bucket_for(ctx, params, "PutObject", key)
        requested = (params.get("MultipartUpload") or {}).get("Parts") or []
        try:
            upload = await self._upload(bucket, key, params["UploadId"])
        except NoSuchUpload:
            done = await self._already_completed(bucket, key, requested)
            if done is None:
                raise
            return done
        if not requested:
            raise MalformedXML()
        numbers = [int(p.get("PartNumber") or 0) for p in requested]
        if any(b <= a for a, b in itertools.pairwise(numbers)):
            raise InvalidPartOrder("The list of parts was not in ascending order. Parts must be ordered by part "
                                   "number.", UploadId=upload.upload_id)
        stored = {row.part_number: row for row in await self.db.read(
            lambda conn: store.list_parts(conn, upload.upload_id))}
        chosen = []
        for i, part in enumerate(requested):
            row = stored.get(numbers[i])
            if row is None or str(part.get("ETag") or "").strip('"') != row.etag.strip('"'):
                raise InvalidPart("One or more of the specified parts could not be found. The part may not have "
                                  "been uploaded, or the specified entity tag may not match the part's entity tag.",
                                  UploadId=upload.upload_id, PartNumber=str(numbers[i]),
                                  ETag=str(part.get("ETag") or ""))
            if i < len(requested) - 1 and row.size < MIN_PART_BYTES:
                raise EntityTooSmall("Your proposed upload is smaller than the minimum allowed object size.",
                                     ProposedSize=str(row.size), MinSizeAllowed=str(MIN_PART_BYTES),
                                     PartNumber=str(numbers[i]), ETag=row.etag)
            chosen.append(row)
        md5s = b"".join(bytes.fromhex(row.etag.strip('"')) for row in chosen)
        etag = f'"{hashlib.md5(md5s).hexdigest()}-{len(chosen)}"'
        checksums = self._combined(upload.checksum_algorithm, upload_extra(upload).get("checksum_type"), chosen)
        _check_declared(params, checksums)
        encryption = upload_extra(upload).get("encryption")
        values = {
            "bucket": bucket.name, "key": key, "version_id": new_version_id(bucket), "delete_marker": False,
            "size": sum(row.size for row in chosen), "etag": etag, "last_modified": ctx.now.replace(microsecond=0),
            "storage_class": upload.storage_class, "owner": upload.owner, "digest": None,
            "parts": json.dumps([[row.digest, row.size] for row in chosen]), "meta": upload.meta,
            "checksums": json.dumps(checksums) if checksums else None, "tags": upload.tags,
            "encryption": json.dumps(encryption) if encryption else None,
            "lock": upload_extra(upload).get("lock"), "acl": upload_extra(upload).get("acl"),
        }
        condition = PutCondition(params)
        notice = notice_for(ctx, bucket, "s3:ObjectCreated:CompleteMultipartUpload")
        pending = bool(bucket.replication) and mark_pending(bucket, values)

        def write(conn: sa.Connection) -> list[str]:
            if store.get_upload(conn, upload.upload_id) is None:
                raise NoSuchUpload("The specified upload does not exist.", UploadId=upload.upload_id)
            if condition:
                condition.check(store.get_object(conn, bucket.name, key), key)
            released = store.put_version(conn, values, bucket.versioning)
            if notice is not None:
                notice.write(conn, key, size=values["size"], etag=etag, version_id=values["version_id"])
            return released + store.drop_upload(conn, upload.upload_id)

        await self.release(await self.db.write(write))
        if pending:
            self.replication_pending()
        result: dict[str, Any] = {"Location": f"/{bucket.name}/{key}", "Bucket": bucket.name, "Key": key,
                                  "ETag": etag, **checksum_members(checksums), **response_members(encryption)}
        if bucket.versioning == "Enabled":
            result["VersionId"] = values["version_id"]
        return result

    async def _already_completed(self, bucket: Bucket, key: str,
                                 requested: list[dict[str, Any]]) -> dict[str, Any] | None:
        """A repeated CompleteMultipartUpload of the object now at ``key`` succeeds again, as on S3."""
        try:
            md5s = b"".join(bytes.fromhex(str(p.get("ETag") or "").strip('"')) for p in requested)
        except ValueError:
            return None
        etag = f'"{hashlib.md5(md5s).hexdigest()}-{len(requested)}"'
        row = await self.db.read(lambda conn: store.get_object(conn, bucket.name, key))
        if row is None or row.delete_marker or row.etag != etag:
            return None
        result: dict[str, Any] = {"Location": f"/{bucket.name}/{key}", "Bucket": bucket.name, "Key": key,
                                  "ETag": etag, **checksum_members(row.checksum_values()),
                                  **response_members(stored_encryption(row))}
        if bucket.versioning == "Enabled":
            result["VersionId"] = row.version_id
        return result

    def _combined(self, algorithm: str | None, checksum_type: str | None, parts: list[Any]) -> dict[str, Any]:
        """The object's checksum from its parts': COMPOSITE (a checksum of the parts' checksums,
        "-N") or FULL_OBJECT (the parts' CRCs combined into the whole object's)."""
        if not algorithm or algorithm.upper() not in ALGORITHMS:
            return {}
        name = algorithm.upper()
        values = [json.loads(p.checksums or "{}").get(name) for p in parts]
        if not all(values):
            return {}
        if checksum_type == "FULL_OBJECT":
            return {name: full_object(name, [(v, p.size) for v, p in zip(values, parts, strict=True)]),
                    "type": "FULL_OBJECT", "parts": values}
        return {name: composite(name, values), "type": "COMPOSITE", "parts": values}

    async def abort_multipart_upload(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        key: str = params["Key"]
        bucket = await self.bucket_for(ctx, params, "AbortMultipartUpload", key)
        upload = await self._upload(bucket, key, params["UploadId"])
        await self.release(await self.db.write(lambda conn: store.drop_upload(conn, upload.upload_id)))
        return {}

    async def list_parts(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        key: str = params["Key"]
        bucket = await self.bucket_for(ctx, params, "ListMultipartUploadParts", key)
        upload = await self._upload(bucket, key, params["UploadId"])
        limit = min(int(params.get("MaxParts") or 1000), 1000)
        after = int(params.get("PartNumberMarker") or 0)
        rows = await self.db.read(lambda conn: store.list_parts(conn, upload.upload_id, after, limit + 1))
        parts = []
        for row in rows[:limit]:
            part = {"PartNumber": row.part_number, "LastModified": row.last_modified, "ETag": row.etag,
                    "Size": row.size}
            for name, value in json.loads(row.checksums or "{}").items():
                part[MEMBER[name]] = value
            parts.append(part)
        result: dict[str, Any] = {
            "Bucket": bucket.name, "Key": key, "UploadId": upload.upload_id, "Parts": parts,
            "PartNumberMarker": after, "MaxParts": limit, "IsTruncated": len(rows) > limit,
            "StorageClass": upload.storage_class, "Owner": owner(upload.owner),
            "Initiator": {"ID": owner(upload.owner)["ID"], "DisplayName": upload.owner},
        }
        if parts:
            result["NextPartNumberMarker"] = parts[-1]["PartNumber"]
        if upload.checksum_algorithm:
            result["ChecksumAlgorithm"] = upload.checksum_algorithm
        return result
