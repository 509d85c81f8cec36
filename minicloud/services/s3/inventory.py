"""S3 Inventory's configurations: Put/Get/Delete/ListBucketInventoryConfiguration(s), validated as
S3 validates them. What is delivered, and when, is ``inventory_report``.

Stored (bucket ``inventory`` column) as {"configurations": {id: configuration as S3 answers it},
"runs": {id: when its last report started, ISO-8601}}; None when the bucket has none. Every change
reads and writes the column in one write transaction (a Put and the controller's record of a run
never lose each other's change).

Errors, as S3 answers them: a document that misses a required element or has a value outside its
enumeration (Format, Frequency, IncludedObjectVersions, OptionalFields' Field) is MalformedXML; a
body Id other than the query's ``id`` IdMismatch; a destination Bucket that is not an ARN
InvalidS3DestinationBucket; a 1,001st configuration TooManyConfigurations; an unknown id 404
NoSuchConfiguration. minicloud answers NotImplemented for what it cannot deliver for real: the ORC
and Parquet formats, SSE-KMS encryption of the report, and the LifecycleExpirationDate field.
Permissions as on S3: s3:PutInventoryConfiguration (Put, Delete), s3:GetInventoryConfiguration
(Get, List).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

import sqlalchemy as sa

from minicloud.aws.context import RequestContext
from minicloud.services.s3 import store
from minicloud.services.s3.base import S3Base
from minicloud.services.s3.errors import (
    IdMismatch,
    InvalidArgument,
    InvalidS3DestinationBucket,
    MalformedXML,
    NoSuchConfiguration,
    NotImplementedFeature,
    TooManyConfigurations,
)
from minicloud.services.s3.store import Bucket

MAX_CONFIGURATIONS = 1000
PAGE = 100  # configurations per ListBucketInventoryConfigurations answer
FORMATS = ("CSV", "ORC", "Parquet")
FREQUENCIES = ("Daily", "Weekly")
VERSIONS = ("All", "Current")
# The optional fields in the order S3 writes them into a report (after Bucket, Key and, with All
# versions, VersionId, IsLatest, IsDeleteMarker); the newer ones last, in the model's order.
OPTIONAL_FIELDS = ("Size", "LastModifiedDate", "ETag", "StorageClass", "IsMultipartUploaded", "ReplicationStatus",
                   "EncryptionStatus", "ObjectLockRetainUntilDate", "ObjectLockMode", "ObjectLockLegalHoldStatus",
                   "IntelligentTieringAccessTier", "BucketKeyStatus", "ChecksumAlgorithm", "ObjectAccessControlList",
                   "ObjectOwner", "LifecycleExpirationDate", "ObjectLockEventHoldStatus",
                   "ObjectLockEventHoldDuration", "IntelligentTieringReferenceDate")
UNSUPPORTED_FIELDS = frozenset({"LifecycleExpirationDate"})
ARN_PREFIX = "arn:aws:s3:::"


def malformed() -> MalformedXML:
    return MalformedXML()


def _mapping(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise malformed()
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise malformed()
    return value


def _choice(value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise malformed()
    return str(value)


def destination_bucket(arn: str) -> str:
    """The bucket name of a destination's ``arn:aws:s3:::name``."""
    name = arn[len(ARN_PREFIX):] if arn.startswith(ARN_PREFIX) else ""
    if not name or "/" in name or ":" in name:
        raise InvalidS3DestinationBucket("Invalid bucket ARN.")
    return name


def check_encryption(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    value = _mapping(value)
    if set(value) - {"SSES3", "SSEKMS"} or len(value) != 1:
        raise malformed()
    if "SSEKMS" in value:
        _text(_mapping(value["SSEKMS"]).get("KeyId"))
        raise NotImplementedFeature("minicloud does not encrypt inventory reports with SSE-KMS: use SSE-S3 "
                                    "(reports are always encrypted with SSE-S3).")
    return {"SSES3": {}}


def check_destination(value: Any) -> dict[str, Any]:
    destination = _mapping(_mapping(value).get("S3BucketDestination"))
    arn = _text(destination.get("Bucket"))
    fmt = _choice(destination.get("Format"), FORMATS)
    out: dict[str, Any] = {"Bucket": arn, "Format": fmt}
    account = destination.get("AccountId")
    if account is not None:
        out["AccountId"] = _text(account)
    prefix = destination.get("Prefix")
    if prefix is not None:
        out["Prefix"] = _text(prefix)
    encryption = check_encryption(destination.get("Encryption"))
    if encryption is not None:
        out["Encryption"] = encryption
    return {"S3BucketDestination": out}


def check_fields(value: Any) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or any(field not in OPTIONAL_FIELDS for field in value):
        raise malformed()
    return [str(field) for field in value]


def check_configuration(config_id: str, value: Any) -> dict[str, Any]:
    """The configuration as stored and answered back, or S3's error (see the module docstring)."""
    config = _mapping(value)
    body_id = _text(config.get("Id"))
    enabled = config.get("IsEnabled")
    if not isinstance(enabled, bool):
        raise malformed()
    versions = _choice(config.get("IncludedObjectVersions"), VERSIONS)
    frequency = _choice(_mapping(config.get("Schedule")).get("Frequency"), FREQUENCIES)
    destination = check_destination(config.get("Destination"))
    fields = check_fields(config.get("OptionalFields"))
    flt = config.get("Filter")
    prefix = None if flt is None else _text(_mapping(flt).get("Prefix"))
    if body_id != config_id:
        raise IdMismatch("Document ID does not match the specified configuration ID.")
    destination_bucket(destination["S3BucketDestination"]["Bucket"])
    fmt = destination["S3BucketDestination"]["Format"]
    if fmt != "CSV":
        raise NotImplementedFeature(f"minicloud delivers inventory reports in CSV only, not {fmt}.")
    unsupported = sorted(UNSUPPORTED_FIELDS.intersection(fields or ()))
    if unsupported:
        raise NotImplementedFeature(f"minicloud cannot report the optional field {unsupported[0]}.")
    out: dict[str, Any] = {"Destination": destination, "IsEnabled": enabled}
    if prefix is not None:
        out["Filter"] = {"Prefix": prefix}
    out.update({"Id": config_id, "IncludedObjectVersions": versions})
    if fields:
        out["OptionalFields"] = fields
    out["Schedule"] = {"Frequency": frequency}
    return out


def stored(bucket: Bucket) -> dict[str, Any]:
    """The bucket's inventory document ({"configurations": {}, "runs": {}} when it has none)."""
    document = bucket.config("inventory") or {}
    return {"configurations": document.get("configurations") or {}, "runs": document.get("runs") or {}}


def change(conn: sa.Connection, name: str, edit: Any) -> Any:
    """``edit(document)`` on the bucket's inventory document as it is now, written back (None when
    no configuration is left); what ``edit`` returns."""
    bucket = store.get_bucket(conn, name)
    if bucket is None:
        return None
    document = stored(bucket)
    result = edit(document)
    text = json.dumps(document, sort_keys=True) if document["configurations"] else None
    if text != bucket.inventory:
        store.update_bucket(conn, name, inventory=text)
    return result


def _token(config_id: str) -> str:
    return base64.urlsafe_b64encode(config_id.encode()).decode()


def _after(token: Any) -> str:
    try:
        return base64.urlsafe_b64decode(str(token).encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidArgument("The continuation token provided is incorrect", ArgumentName="continuation-token",
                              ArgumentValue=str(token)) from None


class InventoryOperations(S3Base):
    async def put_bucket_inventory_configuration(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = await self.bucket_for(ctx, params, "PutInventoryConfiguration")
        config_id = str(params["Id"])
        config = check_configuration(config_id, params.get("InventoryConfiguration"))

        def put(document: dict[str, Any]) -> None:
            configurations = document["configurations"]
            if config_id not in configurations and len(configurations) >= MAX_CONFIGURATIONS:
                raise TooManyConfigurations("You are attempting to create a new configuration but have already "
                                            "reached the 1,000-configuration limit.")
            configurations[config_id] = config
            document["runs"].pop(config_id, None)  # (a changed configuration reports anew)

        await self.db.write(lambda conn: change(conn, bucket.name, put))
        self.forget_bucket(bucket.name)
        return {}

    async def get_bucket_inventory_configuration(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = await self.bucket_for(ctx, params, "GetInventoryConfiguration")
        config = stored(bucket)["configurations"].get(str(params["Id"]))
        if config is None:
            raise NoSuchConfiguration("The specified configuration does not exist.")
        return {"InventoryConfiguration": config}

    async def delete_bucket_inventory_configuration(self, ctx: RequestContext,
                                                    params: dict[str, Any]) -> dict[str, Any]:
        bucket = await self.bucket_for(ctx, params, "PutInventoryConfiguration")
        config_id = str(params["Id"])

        def delete(document: dict[str, Any]) -> bool:
            document["runs"].pop(config_id, None)
            return document["configurations"].pop(config_id, None) is not None

        if not await self.db.write(lambda conn: change(conn, bucket.name, delete)):
            raise NoSuchConfiguration("The specified configuration does not exist.")
        self.forget_bucket(bucket.name)
        return {}

    async def list_bucket_inventory_configurations(self, ctx: RequestContext,
                                                   params: dict[str, Any]) -> dict[str, Any]:
        """In Id order, ``PAGE`` at a time; the continuation token names the last Id answered."""
        bucket = await self.bucket_for(ctx, params, "GetInventoryConfiguration")
        token = params.get("ContinuationToken")
        after = _after(token) if token else None
        configurations = stored(bucket)["configurations"]
        ids = sorted(i for i in configurations if after is None or i > after)
        page = ids[:PAGE]
        out: dict[str, Any] = {"IsTruncated": len(ids) > PAGE}
        if token:
            out["ContinuationToken"] = token
        if page:
            out["InventoryConfigurationList"] = [configurations[i] for i in page]
        if len(ids) > PAGE:
            out["NextContinuationToken"] = _token(page[-1])
        return out
