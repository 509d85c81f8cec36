"""Server access log records and log object keys, in S3's documented formats (pure functions).

A record is one line of space-separated fields, ``-`` for what does not apply (S3 user guide,
"Amazon S3 server access log format"):

    bucket-owner bucket [time] remote-ip requester request-id operation key "request-uri"
    http-status error-code bytes-sent object-size total-time turn-around-time "referer"
    "user-agent" version-id host-id signature-version cipher-suite authentication-type
    host-header tls-version access-point-arn acl-required

A log object's key is ``TargetPrefix`` and then, with the default SimplePrefix format,
``YYYY-mm-DD-HH-MM-SS-UniqueString``, or with PartitionedPrefix
``SourceAccountId/SourceRegion/SourceBucket/YYYY/mm/DD/YYYY-mm-DD-HH-MM-SS-UniqueString``, dated
by the delivery (DeliveryTime) or by the day of the requests, at 00:00:00 (EventTime, the default).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# The resource type of S3's operation names (``REST.<method>.<resource>``), by API operation.
_RESOURCES = {
    "GetObject": "OBJECT", "HeadObject": "OBJECT", "PutObject": "OBJECT", "DeleteObject": "OBJECT",
    "CopyObject": "OBJECT", "PostObject": "OBJECT",
    "ListObjects": "BUCKET", "ListObjectsV2": "BUCKET", "HeadBucket": "BUCKET", "CreateBucket": "BUCKET",
    "DeleteBucket": "BUCKET", "ListObjectVersions": "BUCKETVERSIONS",
    "ListMultipartUploads": "UPLOADS", "CreateMultipartUpload": "UPLOADS", "UploadPart": "PART",
    "UploadPartCopy": "PART", "CompleteMultipartUpload": "UPLOAD", "AbortMultipartUpload": "UPLOAD",
    "ListParts": "UPLOAD", "DeleteObjects": "MULTI_OBJECT_DELETE",
    "GetBucketVersioning": "VERSIONING", "PutBucketVersioning": "VERSIONING",
    "GetBucketLogging": "LOGGING_STATUS", "PutBucketLogging": "LOGGING_STATUS",
    "GetBucketPolicy": "BUCKETPOLICY", "PutBucketPolicy": "BUCKETPOLICY", "DeleteBucketPolicy": "BUCKETPOLICY",
    "GetBucketAcl": "ACL", "PutBucketAcl": "ACL", "GetObjectAcl": "ACL", "PutObjectAcl": "ACL",
    "GetBucketCors": "CORS", "PutBucketCors": "CORS", "DeleteBucketCors": "CORS",
    "GetBucketLocation": "LOCATION",
    "GetBucketTagging": "TAGGING", "PutBucketTagging": "TAGGING", "DeleteBucketTagging": "TAGGING",
    "GetObjectTagging": "OBJECT_TAGGING", "PutObjectTagging": "OBJECT_TAGGING",
    "DeleteObjectTagging": "OBJECT_TAGGING",
    "GetBucketLifecycleConfiguration": "LIFECYCLE", "PutBucketLifecycleConfiguration": "LIFECYCLE",
    "DeleteBucketLifecycle": "LIFECYCLE",
    "GetBucketEncryption": "ENCRYPTION", "PutBucketEncryption": "ENCRYPTION", "DeleteBucketEncryption": "ENCRYPTION",
    "GetBucketAccelerateConfiguration": "ACCELERATE", "PutBucketAccelerateConfiguration": "ACCELERATE",
    "GetBucketRequestPayment": "REQUEST_PAYMENT", "PutBucketRequestPayment": "REQUEST_PAYMENT",
    "GetBucketWebsite": "WEBSITE", "PutBucketWebsite": "WEBSITE", "DeleteBucketWebsite": "WEBSITE",
    "GetBucketReplication": "REPLICATION", "PutBucketReplication": "REPLICATION",
    "DeleteBucketReplication": "REPLICATION",
    "GetBucketNotificationConfiguration": "NOTIFICATION", "PutBucketNotificationConfiguration": "NOTIFICATION",
    "GetObjectLockConfiguration": "OBJECT_LOCK_CONFIGURATION",
    "PutObjectLockConfiguration": "OBJECT_LOCK_CONFIGURATION",
    "GetObjectRetention": "RETENTION", "PutObjectRetention": "RETENTION",
    "GetObjectLegalHold": "LEGAL_HOLD", "PutObjectLegalHold": "LEGAL_HOLD",
    "GetBucketOwnershipControls": "OWNERSHIP_CONTROLS", "PutBucketOwnershipControls": "OWNERSHIP_CONTROLS",
    "DeleteBucketOwnershipControls": "OWNERSHIP_CONTROLS",
    "GetPublicAccessBlock": "PUBLIC_ACCESS_BLOCK", "PutPublicAccessBlock": "PUBLIC_ACCESS_BLOCK",
    "DeletePublicAccessBlock": "PUBLIC_ACCESS_BLOCK",
    "OptionsBucket": "PREFLIGHT", "OptionsObject": "PREFLIGHT",
}
_COPIES = frozenset({"CopyObject", "UploadPartCopy"})
_VERB = re.compile(r"^(Get|Put|Delete|Head|List|Create|Post)(Bucket)?")
_WORDS = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def operation_name(operation: str, method: str) -> str:
    """S3's name for an operation in a log record, e.g. ``REST.PUT.OBJECT``, ``REST.COPY.PART``."""
    resource = _RESOURCES.get(operation)
    if resource is None:  # e.g. GetBucketPolicyStatus: POLICY_STATUS
        resource = _WORDS.sub("_", _VERB.sub("", operation)).upper() or "BUCKET"
    verb = "COPY" if operation in _COPIES else method.upper()
    return f"REST.{verb}.{resource}"


def log_time(when: datetime) -> str:
    """``[06/Feb/2019:00:00:38 +0000]`` (UTC), whatever the locale."""
    return f"[{when.day:02d}/{_MONTHS[when.month - 1]}/{when.year:04d}:{when:%H:%M:%S} +0000]"


def quoted(text: str | None) -> str:
    """A quoted field (request URI, referer, user agent): ``"-"`` when absent; quotes and line
    breaks inside escaped so that a record stays one line of known fields."""
    if not text:
        return '"-"'
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\r", "\\r").replace("\n", "\\n") + '"'


def bare(value: Any) -> str:
    """An unquoted field: ``-`` when absent or empty, never a space inside."""
    if value is None or value == "":
        return "-"
    return str(value).replace(" ", "%20").replace("\n", "%0A").replace("\r", "%0D")


def encoded_key(key: str | None) -> str:
    return quote(key, safe="/") if key else "-"


@dataclass(frozen=True, slots=True)
class Access:
    """What one record says, each field as S3 defines it (None: ``-``)."""

    bucket_owner: str
    bucket: str
    time: datetime
    remote_ip: str
    requester: str | None
    request_id: str
    operation: str
    key: str | None
    request_uri: str
    status: int
    error_code: str | None
    bytes_sent: int | None
    object_size: int | None
    total_ms: int | None
    turnaround_ms: int | None
    referer: str | None
    user_agent: str | None
    version_id: str | None
    host_id: str | None
    signature_version: str | None
    auth_type: str | None
    host: str | None
    acl_required: bool = False
    cipher_suite: str | None = None  # (minicloud serves plain HTTP: no TLS)
    tls_version: str | None = None
    access_point_arn: str | None = None

    def line(self) -> str:
        return " ".join((
            bare(self.bucket_owner), bare(self.bucket), log_time(self.time), bare(self.remote_ip),
            bare(self.requester), bare(self.request_id), bare(self.operation), encoded_key(self.key),
            quoted(self.request_uri), str(self.status), bare(self.error_code), bare(self.bytes_sent or None),
            bare(self.object_size), bare(self.total_ms), bare(self.turnaround_ms), quoted(self.referer),
            quoted(self.user_agent), bare(self.version_id), bare(self.host_id), bare(self.signature_version),
            bare(self.cipher_suite), bare(self.auth_type), bare(self.host), bare(self.tls_version),
            bare(self.access_point_arn), "Yes" if self.acl_required else "-",
        )) + "\n"


def unique_string() -> str:
    """The random tail of a log object's key (16 upper-case hexadecimal digits, as S3's)."""
    return secrets.token_hex(8).upper()


def partition_source(key_format: dict[str, Any] | None) -> str | None:
    """``EventTime`` or ``DeliveryTime`` for the PartitionedPrefix format, None for SimplePrefix."""
    if not key_format or "PartitionedPrefix" not in key_format:
        return None
    return str((key_format.get("PartitionedPrefix") or {}).get("PartitionDateSource") or "EventTime")


def log_key(prefix: str, key_format: dict[str, Any] | None, account_id: str, region: str, bucket: str,
            when: datetime, unique: str) -> str:
    """The key of a log object: ``when`` is the delivery time, or the requests' day (EventTime)."""
    if partition_source(key_format) == "EventTime":
        when = when.replace(hour=0, minute=0, second=0, microsecond=0)
    stamp = f"{when:%Y-%m-%d-%H-%M-%S}-{unique}"
    if partition_source(key_format) is None:
        return f"{prefix}{stamp}"
    return f"{prefix}{account_id}/{region}/{bucket}/{when:%Y/%m/%d}/{stamp}"
