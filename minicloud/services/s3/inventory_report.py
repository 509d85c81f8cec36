"""S3 Inventory reports, delivered for real by the ``s3-inventory`` controller.

For each enabled configuration (``inventory``), once per schedule period (Daily: one day, Weekly:
seven, in ``lifecycle_day_seconds``; the first report at the first pass after the configuration was
put), the source bucket's objects (Current) or versions and delete markers (All) under the filter's
prefix are listed page by page in read transactions of their own (``bulk``: never holding the
writer), written as gzip-compressed CSV rows (every value quoted, keys URL-encoded, as S3 writes
them) into a temporary file, a data file per ``rows_per_file`` rows, then delivered into the
destination bucket through the path PutObject takes (sealed with SSE-S3, replicated, listed):

    <prefix>/<source>/<id>/data/<uuid>.csv.gz
    <prefix>/<source>/<id>/<YYYY-MM-DDTHH-MMZ>/manifest.json     (S3's manifest, version 2016-11-30)
    <prefix>/<source>/<id>/<YYYY-MM-DDTHH-MMZ>/manifest.checksum (the manifest's MD5, hex)
    <prefix>/<source>/<id>/hive/dt=<YYYY-MM-DD-HH-MM>/symlink.txt (the data files' s3:// URLs)

As on S3, it is written as the S3 service principal ``s3.amazonaws.com``, only where the
destination's bucket policy allows it s3:PutObject (its aws:SourceArn and aws:SourceAccount
conditions are the source bucket's, s3:x-amz-acl is bucket-owner-full-control); the destination
must exist, be in the source's region and, when the configuration names an AccountId, belong to
it. Otherwise nothing is written (a warning says why) and the next period tries again. A run is
recorded after its manifest is written (or after it was refused); a crash before that makes the
next pass deliver the report again (data files of the unfinished run stay, unreferenced by any
manifest, as S3 may leave them too).

Fields minicloud knows for real: Size, LastModifiedDate, ETag, StorageClass, IsMultipartUploaded,
ReplicationStatus, EncryptionStatus, ObjectLockRetainUntilDate, ObjectLockMode,
ObjectLockLegalHoldStatus, BucketKeyStatus, ChecksumAlgorithm, ObjectAccessControlList,
ObjectOwner, IntelligentTieringAccessTier (FREQUENT: minicloud never moves such objects to another
tier). A value a version does not have is an empty string, as in S3's CSV; minicloud has no Object
Lock event holds and no Intelligent-Tiering reference dates, so those fields are always empty.
"""

from __future__ import annotations

import asyncio
import base64
import csv
import functools
import gzip
import hashlib
import io
import json
import logging
import tempfile
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import IO, Any
from urllib.parse import quote

import sqlalchemy as sa

from minicloud.aws.payload import RequestPayload
from minicloud.iam.policy import (
    PrincipalInfo,
)
from minicloud.iam.policy import PrincipalKind as PolicyPrincipalKind
from minicloud.runtime import Runtime
from minicloud.services.s3 import store
from minicloud.services.s3.acl import ownership, stored_grants
from minicloud.services.s3.encryption import stored_encryption
from minicloud.services.s3.inventory import OPTIONAL_FIELDS, change, destination_bucket, stored
from minicloud.services.s3.locks import stored_lock
from minicloud.services.s3.names import MAX_KEY_BYTES, canonical_id
from minicloud.services.s3.objects import ObjectOperations
from minicloud.services.s3.policies import service_may_put
from minicloud.services.s3.store import Bucket, ObjectRow
from minicloud.services.s3.tables import s3_buckets

log = logging.getLogger("minicloud.s3.inventory")

S3_SERVICE = PrincipalInfo(arn="s3.amazonaws.com", account_id="", kind=PolicyPrincipalKind.SERVICE)
BATCH = 1000  # rows per read of the source bucket
CHUNK = 1 << 20
MANIFEST_VERSION = "2016-11-30"
_ENCRYPTION = {"AES256": "SSE-S3", "SSE-C": "SSE-C", "aws:kms": "SSE-KMS"}
_PERIODS = {"Daily": 1, "Weekly": 7}


def report_base(config: dict[str, Any], source: str) -> str:
    """``<prefix>/<source>/<id>`` (no prefix: ``<source>/<id>``)."""
    prefix = str(config["Destination"]["S3BucketDestination"].get("Prefix") or "").rstrip("/")
    return f"{prefix + '/' if prefix else ''}{source}/{config['Id']}"


def columns(config: dict[str, Any]) -> list[str]:
    """The report's columns, in S3's order."""
    chosen = set(config.get("OptionalFields") or ())
    versions = ["VersionId", "IsLatest", "IsDeleteMarker"] if config["IncludedObjectVersions"] == "All" else []
    return ["Bucket", "Key", *versions, *(field for field in OPTIONAL_FIELDS if field in chosen)]


def _date(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def _acl(row: ObjectRow, bucket: Bucket) -> str:
    """ObjectAccessControlList: the version's grants as S3 reports them (base64 of a JSON document)."""
    grants = []
    owned = ownership(bucket) == "BucketOwnerEnforced"
    for grant in stored_grants(None if owned else row.acl, bucket.account_id if owned else row.owner):
        grantee = grant.get("Grantee") or {}
        if grantee.get("Type") == "Group":
            grants.append({"permission": grant["Permission"], "type": "GROUP", "uri": grantee.get("URI")})
        else:
            grants.append({"permission": grant["Permission"], "type": "CANONICAL_USER",
                           "canonicalId": grantee.get("ID")})
    document = {"version": "2022-11-10", "status": "AVAILABLE", "grants": grants}
    return base64.b64encode(json.dumps(document, separators=(",", ":")).encode()).decode()


def field_value(field: str, row: ObjectRow, bucket: Bucket) -> str:
    """One optional field of one version ("" where it has none, as in S3's CSV)."""
    if row.delete_marker:
        return ""
    if field == "Size":
        return str(row.size)
    if field == "LastModifiedDate":
        return _date(row.last_modified)
    if field == "ETag":
        return row.etag.strip('"')
    if field == "StorageClass":
        return row.storage_class
    if field == "IsMultipartUploaded":
        return "true" if row.parts else "false"
    if field == "ReplicationStatus":
        return row.replication_status or ""
    if field in ("EncryptionStatus", "BucketKeyStatus"):
        sse = stored_encryption(row) or {}
        if field == "BucketKeyStatus":
            return "ENABLED" if sse.get("bucket_key") else "DISABLED"
        return _ENCRYPTION.get(str(sse.get("sse")), "NOT-SSE")
    if field.startswith("ObjectLock") and not field.startswith("ObjectLockEvent"):
        lock = stored_lock(row)
        if field == "ObjectLockLegalHoldStatus":
            return str(lock.get("legal_hold") or ("OFF" if bucket.object_lock else ""))
        if not lock.get("mode"):
            return ""
        return str(lock["mode"]) if field == "ObjectLockMode" else _date(datetime.fromisoformat(lock["until"]))
    if field == "ChecksumAlgorithm":
        return ",".join(name for name in row.checksum_values() if name != "type")
    if field == "ObjectAccessControlList":
        return _acl(row, bucket)
    if field == "ObjectOwner":
        return canonical_id(row.owner)
    if field == "IntelligentTieringAccessTier":
        return "FREQUENT" if row.storage_class == "INTELLIGENT_TIERING" else ""
    return ""


def row_cells(row: ObjectRow, bucket: Bucket, names: list[str]) -> list[str]:
    cells = [bucket.name, quote(row.key, safe="/")]
    for name in names[2:]:
        if name == "VersionId":
            cells.append("" if row.version_id == store.NULL_VERSION else row.version_id)
        elif name == "IsLatest":
            cells.append("true" if row.latest else "false")
        elif name == "IsDeleteMarker":
            cells.append("true" if row.delete_marker else "false")
        else:
            cells.append(field_value(name, row, bucket))
    return cells


class DataFile:
    """One data file being written: CSV rows through gzip into a temporary file (bounded memory)."""

    def __init__(self) -> None:
        self.file: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 (closed by its deliverer)
        self._gzip = gzip.GzipFile(fileobj=self.file, mode="wb")
        self._text = io.TextIOWrapper(self._gzip, encoding="utf-8", newline="")
        self._csv = csv.writer(self._text, quoting=csv.QUOTE_ALL, lineterminator="\n")
        self.rows = 0

    def add(self, rows: list[list[str]]) -> None:
        self._csv.writerows(rows)
        self.rows += len(rows)

    def finish(self) -> int:
        """Close the gzip stream; the file's size (the file is rewound for reading)."""
        self._text.flush()
        self._text.detach()
        self._gzip.close()
        size = self.file.tell()
        self.file.seek(0)
        return size


async def _chunks(file: IO[bytes]) -> AsyncIterator[bytes]:
    while True:
        block = await asyncio.to_thread(file.read, CHUNK)
        if not block:
            return
        yield block


def inventory_service_may_write(target: Bucket, key: str, source: Bucket) -> bool:
    """Whether the destination's bucket policy lets ``s3.amazonaws.com`` write ``key`` for ``source``."""
    context = {"aws:SourceArn": f"arn:aws:s3:::{source.name}", "aws:SourceAccount": source.account_id,
               "s3:x-amz-acl": "bucket-owner-full-control"}
    return service_may_put(target, key, S3_SERVICE, context) is True


def undeliverable(target: Bucket | None, source: Bucket, destination: dict[str, Any]) -> str | None:
    if target is None:
        return "the destination bucket does not exist"
    if target.region != source.region:
        return "the destination bucket is in another region"
    account = destination.get("AccountId")
    if account and account != target.account_id:
        return "the destination bucket belongs to another account than the configuration's AccountId"
    return None


class InventoryController:
    """Delivers the reports that are due (see the module's docstring)."""

    name = "s3-inventory"

    def __init__(self, provider: InventoryDelivery, day_seconds: float, rows_per_file: int) -> None:
        self.provider = provider
        self.day = day_seconds
        self.rows_per_file = max(1, rows_per_file)
        self.interval = max(0.5, min(60.0, day_seconds / 4))

    def due(self, config: dict[str, Any], last: str | None, now: datetime) -> bool:
        if not config.get("IsEnabled"):
            return False
        if last is None:
            return True
        period = timedelta(seconds=self.day * _PERIODS[config["Schedule"]["Frequency"]])
        return now >= datetime.fromisoformat(last) + period

    async def reconcile(self) -> None:
        buckets = await self.provider.db.read(_buckets_with_inventory)
        for bucket in buckets:
            await self._reconcile(bucket)

    async def _reconcile(self, bucket: Bucket) -> None:
        """Each due configuration's report, then its run recorded (delivered or refused)."""
        document = stored(bucket)
        for config_id, config in sorted(document["configurations"].items()):
            now = datetime.now(UTC)
            if not self.due(config, document["runs"].get(config_id), now):
                continue
            try:
                await self.provider.deliver_inventory(bucket, config, now, self.rows_per_file)
            except Exception:
                log.exception("inventory %r of bucket %s could not be delivered", config_id, bucket.name)
            await self.provider.db.write(functools.partial(_record_run, name=bucket.name, config=config, now=now))


def _record_run(conn: sa.Connection, *, name: str, config: dict[str, Any], now: datetime) -> None:
    def record(document: dict[str, Any]) -> None:
        if document["configurations"].get(config["Id"]) == config:  # (unless it was changed meanwhile)
            document["runs"][config["Id"]] = now.isoformat()
    change(conn, name, record)


def _buckets_with_inventory(conn: sa.Connection) -> list[Bucket]:
    rows = conn.execute(sa.select(s3_buckets).where(s3_buckets.c.inventory.is_not(None))).all()
    return [Bucket(*row) for row in rows]


def _page(conn: sa.Connection, bucket: str, config: dict[str, Any], after: Any) -> list[ObjectRow]:
    prefix = str((config.get("Filter") or {}).get("Prefix") or "")
    if config["IncludedObjectVersions"] == "All":
        return store.list_versions(conn, bucket, after, prefix, BATCH)
    return store.list_latest(conn, bucket, after, prefix, BATCH)


class InventoryDelivery(ObjectOperations):
    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime)
        self._inventory_warned: set[tuple[str, str, str]] = set()

    async def deliver_inventory(self, source: Bucket, config: dict[str, Any], now: datetime,
                                rows_per_file: int) -> None:
        destination = config["Destination"]["S3BucketDestination"]
        target = await self.find_bucket(destination_bucket(str(destination["Bucket"])))
        reason = undeliverable(target, source, destination)
        base = report_base(config, source.name)
        stamp = now.strftime("%Y-%m-%dT%H-%MZ")
        manifest_key = f"{base}/{stamp}/manifest.json"
        if reason is None and target is not None and len(manifest_key.encode()) > MAX_KEY_BYTES:
            reason = "the report's keys would be too long"
        if reason is None and target is not None and not inventory_service_may_write(target, manifest_key, source):
            reason = "the destination bucket's policy does not allow s3.amazonaws.com to write"
        if reason is not None or target is None:
            self._inventory_warn(source, config["Id"], reason or "")
            return
        names = columns(config)
        files = await self._data_files(source, target, config, names, rows_per_file, now)
        manifest = json.dumps({
            "sourceBucket": source.name, "destinationBucket": destination["Bucket"], "version": MANIFEST_VERSION,
            "creationTimestamp": str(int(now.timestamp() * 1000)), "fileFormat": "CSV",
            "fileSchema": ", ".join(names), "files": files}, indent=2).encode()
        symlinks = "".join(f"s3://{target.name}/{f['key']}\n" for f in files).encode()
        await self._write_report_object(target, f"{base}/hive/dt={now.strftime('%Y-%m-%d-%H-%M')}/symlink.txt",
                                        symlinks, "text/plain", now)
        await self._write_report_object(target, manifest_key, manifest, "application/json", now)
        await self._write_report_object(target, f"{base}/{stamp}/manifest.checksum",
                                        hashlib.md5(manifest).hexdigest().encode(), "text/plain", now)

    async def _data_files(self, source: Bucket, target: Bucket, config: dict[str, Any], names: list[str],
                          rows_per_file: int, now: datetime) -> list[dict[str, Any]]:
        """Every row, into data files of at most ``rows_per_file`` rows; their manifest entries."""
        files: list[dict[str, Any]] = []
        current: DataFile | None = None
        after: Any = None
        while True:
            rows = await self.db.read(lambda conn, a=after: _page(conn, source.name, config, a),  # type: ignore[misc]
                                      bulk=True)
            cells = [row_cells(row, source, names) for row in rows]
            while cells:
                if current is None:
                    current = DataFile()
                room = rows_per_file - current.rows
                await asyncio.to_thread(current.add, cells[:room])
                cells = cells[room:]
                if current.rows >= rows_per_file:
                    files.append(await self._deliver_data_file(target, config, source, current, now))
                    current = None
            if len(rows) < BATCH:
                break
            last = rows[-1]
            after = (last.key, last.id) if config["IncludedObjectVersions"] == "All" else last.key
        if current is not None:
            files.append(await self._deliver_data_file(target, config, source, current, now))
        return files

    async def _deliver_data_file(self, target: Bucket, config: dict[str, Any], source: Bucket, data: DataFile,
                                 now: datetime) -> dict[str, Any]:
        key = f"{report_base(config, source.name)}/data/{uuid.uuid4()}.csv.gz"
        try:
            size = await asyncio.to_thread(data.finish)
            if not inventory_service_may_write(target, key, source):
                raise PermissionError(f"s3.amazonaws.com may not write {key} into {target.name}")
            md5 = await self._write_report_object(target, key, RequestPayload(_chunks(data.file), length=size),
                                                  "application/octet-stream", now)
        finally:
            data.file.close()
        return {"key": key, "size": size, "MD5checksum": md5}

    async def _write_report_object(self, target: Bucket, key: str, body: bytes | RequestPayload,
                                   content_type: str, now: datetime) -> str:
        """An object of a report; its MD5 (hex)."""
        staged = await self.write_service_object(target, key, body, content_type=content_type, now=now)
        return str(staged.md5)

    def _inventory_warn(self, source: Bucket, config_id: str, reason: str) -> None:
        if (source.name, config_id, reason) not in self._inventory_warned:  # once per configuration and reason
            self._inventory_warned.add((source.name, config_id, reason))
            log.warning("inventory %r of bucket %s not delivered: %s", config_id, source.name, reason)
