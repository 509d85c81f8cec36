"""Server access logs, delivered for real: records of the requests to buckets with logging on,
written as log objects into their target buckets.

- Collecting: the dispatcher shows S3 each answer (``answered``). For a bucket without logging
  that costs one dictionary look-up (the bucket cache the request itself filled); for a bucket
  with logging, the record is formatted (``access_log_format``) and kept in this process's memory.
  Nothing is written on the request's path.
- Delivering: every ``s3_access_log_seconds`` (``MINICLOUD_S3_ACCESS_LOG_SECONDS``) the
  ``s3-access-logs`` controller takes the buffer and writes one log object per source bucket (per
  day of the requests, with PartitionedPrefix's EventTime) through the path PutObject takes:
  sealed with SSE-S3, replicated, listed like any object. It runs where the controllers run; S3
  worker processes (which run none) flush their own buffers on the same schedule, so each process
  delivers its own log objects, as S3 itself delivers many small ones. A clean stop flushes what
  is left; records buffered when a process is killed are lost (S3's logging is best-effort too).
- As on S3, a log object is delivered only where the logging service may write it: the target
  bucket's policy must allow ``logging.s3.amazonaws.com`` s3:PutObject (its aws:SourceArn and
  aws:SourceAccount conditions are the source bucket's), or its ACL must grant the LogDelivery
  group WRITE (ACLs on); and the target must have no Object Lock, no SSE-KMS default encryption
  and not be Requester Pays. Otherwise the records are dropped (a warning says why).

Not logged: requests refused before they are parsed (bad signatures, unknown keys), and S3's own
work (lifecycle expirations, the log deliveries themselves).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from minicloud.aws.context import RequestContext
from minicloud.aws.errors import ServiceError
from minicloud.aws.protocol.serializer_base import host_id
from minicloud.aws.request import AwsResponse
from minicloud.iam.identity import PrincipalKind
from minicloud.iam.policy import (
    PrincipalInfo,
)
from minicloud.iam.policy import PrincipalKind as PolicyPrincipalKind
from minicloud.runtime import Runtime
from minicloud.services.s3.access_log_format import Access, log_key, operation_name, partition_source, unique_string
from minicloud.services.s3.acl import LOG_DELIVERY, ownership, stored_grants
from minicloud.services.s3.base import ACL_REQUIRED, WebsiteAnswer
from minicloud.services.s3.names import MAX_KEY_BYTES, canonical_id, owner
from minicloud.services.s3.objects import ObjectOperations
from minicloud.services.s3.payer import requester_pays
from minicloud.services.s3.policies import service_may_put
from minicloud.services.s3.store import Bucket

log = logging.getLogger("minicloud.s3.access_logs")

LOGGING_SERVICE = PrincipalInfo(arn="logging.s3.amazonaws.com", account_id="", kind=PolicyPrincipalKind.SERVICE)
MAX_RECORDS = 100_000  # per process between two deliveries; more are dropped (and counted)
STOP_FLUSH_SECONDS = 10.0
_PUTS = frozenset({"PutObject", "UploadPart", "PostObject"})
_READS = frozenset({"GetObject", "HeadObject"})
_COPIES = frozenset({"CopyObject", "UploadPartCopy"})


@dataclass(frozen=True, slots=True)
class Source:
    """A logged bucket, and its logging configuration (the column's text) when it was logged."""

    bucket: str
    account_id: str
    region: str
    config: str


@dataclass(frozen=True, slots=True)
class Record:
    time: datetime
    line: str


class AccessLogBuffer:
    """This process's records not delivered yet, by source bucket."""

    def __init__(self, limit: int = MAX_RECORDS) -> None:
        self.limit = limit
        self.dropped = 0
        self._records: dict[Source, list[Record]] = {}
        self._count = 0

    def add(self, source: Source, record: Record) -> None:
        if self._count >= self.limit:
            self.dropped += 1
            return
        self._records.setdefault(source, []).append(record)
        self._count += 1

    def take(self) -> dict[Source, list[Record]]:
        taken, self._records, self._count = self._records, {}, 0
        return taken

    def __len__(self) -> int:
        return self._count


class AccessLogController:
    """Delivers this process's buffered records (see the module's docstring)."""

    name = "s3-access-logs"

    def __init__(self, provider: AccessLogOperations, interval: float) -> None:
        self.provider = provider
        self.interval = max(0.1, interval)

    async def reconcile(self) -> None:
        buffer = self.provider.access_log_buffer
        if buffer.dropped:
            log.warning("%d server access log records were dropped (more than %d waiting)", buffer.dropped,
                        buffer.limit)
            buffer.dropped = 0
        for source, records in buffer.take().items():
            try:
                await self.provider.deliver_access_logs(source, records)
            except Exception:  # best-effort, as S3's: the next batch is tried all the same
                log.exception("%d server access log records of bucket %s could not be delivered", len(records),
                              source.bucket)


def logging_service_may_write(target: Bucket, key: str, source: Source) -> bool:
    """Whether the target's policy (or, ACLs on, its ACL) lets the logging service write ``key``."""
    context = {"aws:SourceArn": f"arn:aws:s3:::{source.bucket}", "aws:SourceAccount": source.account_id}
    allowed = service_may_put(target, key, LOGGING_SERVICE, context)
    if allowed is not None:
        return allowed
    if ownership(target) == "BucketOwnerEnforced":
        return False
    return any((grant.get("Grantee") or {}).get("URI") == LOG_DELIVERY
               and grant.get("Permission") in ("WRITE", "FULL_CONTROL")
               for grant in stored_grants(target.acl, target.account_id))


def undeliverable(target: Bucket | None, source: Source) -> str | None:
    """Why no log can go into ``target`` at all (None: it may, key by key permission aside)."""
    if target is None:
        return "the target bucket does not exist"
    if target.account_id != source.account_id or target.region != source.region:
        return "the target bucket is another account's or in another region"
    if target.object_lock:
        return "the target bucket has Object Lock enabled"
    if requester_pays(target):
        return "the target bucket is a Requester Pays bucket"
    rules = target.config("encryption") or []
    default = (rules[0].get("ApplyServerSideEncryptionByDefault") or {}) if rules else {}
    if str(default.get("SSEAlgorithm", "")).startswith("aws:kms"):
        return "the target bucket's default encryption is SSE-KMS"
    return None


def _header(response: AwsResponse, name: str) -> str | None:
    for key, value in response.headers:
        if key.lower() == name:
            return value
    return None


def _int(text: str | None) -> int | None:
    return int(text) if text is not None and text.isdigit() else None


def object_size(operation: str, ctx: RequestContext, response: AwsResponse) -> int | None:
    if operation in _READS and response.status in (200, 206):
        whole = _header(response, "content-range")
        if whole is not None and "/" in whole:
            return _int(whole.rsplit("/", 1)[1])
        return _int(_header(response, "content-length"))
    if operation in _PUTS:
        headers = ctx.request.headers
        return _int(headers.get("x-amz-decoded-content-length") or headers.get("content-length"))
    return None


def bytes_sent(method: str, response: AwsResponse) -> int | None:
    if method == "HEAD" or response.status in (204, 304):
        return None
    if response.stream is not None:
        return _int(_header(response, "content-length"))
    return len(response.body)


def requester(ctx: RequestContext) -> str | None:
    principal = ctx.principal
    if principal.kind is PrincipalKind.ANONYMOUS:
        return None
    return canonical_id(principal.account_id) if principal.kind is PrincipalKind.ROOT else principal.arn


def access_of(ctx: RequestContext, params: dict[str, Any], response: AwsResponse, error: ServiceError | None,
              bucket: Bucket, copied: tuple[str, str, str | None] | None = None) -> Access:
    """The record of one answered request for ``bucket``'s log (for the source bucket of a copy,
    ``copied``: its GET half, REST.COPY.OBJECT_GET of the source key)."""
    request = ctx.request
    auth = ctx.extra.get("auth")
    elapsed = max(0, int((datetime.now(UTC) - ctx.now).total_seconds() * 1000))
    uri = f"{request.method} {request.signed_path or request.path}{'?' if request.query else ''}{request.query}"
    return Access(
        bucket_owner=canonical_id(bucket.account_id), bucket=bucket.name, time=ctx.now, remote_ip=request.client_ip,
        requester=requester(ctx), request_id=ctx.request_id,
        operation="REST.COPY.OBJECT_GET" if copied else operation_name(ctx.operation, request.method),
        key=copied[1] if copied else params.get("Key"), request_uri=f"{uri} HTTP/1.1",
        status=response.status, error_code=error.code if error is not None else None,
        bytes_sent=bytes_sent(request.method, response),
        object_size=None if copied else object_size(ctx.operation, ctx, response),
        total_ms=elapsed, turnaround_ms=elapsed, referer=request.headers.get("referer"),
        user_agent=request.headers.get("user-agent"),
        version_id=copied[2] if copied else params.get("VersionId"), host_id=host_id(ctx.request_id),
        signature_version=None if auth is None else ("SigV2" if auth.version == 2 else "SigV4"),
        auth_type=None if auth is None else ("QueryString" if auth.presigned else "AuthHeader"),
        host=request.headers.get("host"), acl_required=bool(ctx.extra.get(ACL_REQUIRED)))


def website_access(answer: WebsiteAnswer, bucket: Bucket) -> Access:
    """The record of a request to ``bucket``'s website endpoint: anonymous, unsigned,
    ``WEBSITE.GET.OBJECT`` (or HEAD) of the object it read."""
    request, response = answer.request, answer.response
    elapsed = max(0, int((datetime.now(UTC) - answer.started).total_seconds() * 1000))
    uri = f"{request.method} {request.path}{'?' if request.query else ''}{request.query}"
    return Access(
        bucket_owner=canonical_id(bucket.account_id), bucket=bucket.name, time=answer.started,
        remote_ip=request.client_ip, requester=None, request_id=answer.request_id,
        operation=f"WEBSITE.{request.method}.OBJECT", key=answer.key, request_uri=f"{uri} HTTP/1.1",
        status=response.status, error_code=answer.error_code,
        bytes_sent=bytes_sent(request.method, response),
        object_size=_int(_header(response, "content-length")) if response.status == 200 else None,
        total_ms=elapsed, turnaround_ms=elapsed, referer=request.headers.get("referer"),
        user_agent=request.headers.get("user-agent"), version_id=None, host_id=host_id(answer.request_id),
        signature_version=None, auth_type=None, host=request.headers.get("host"))


def copy_source(params: dict[str, Any]) -> tuple[str, str, str | None] | None:
    """(bucket, key, version id) of a copy's x-amz-copy-source."""
    text = params.get("CopySource")
    if not isinstance(text, str):
        return None
    path, _, query = text.partition("?")
    bucket, _, key = unquote(path).lstrip("/").partition("/")
    version = query.removeprefix("versionId=") if query.startswith("versionId=") else None
    return (bucket, key, version) if bucket and key else None


class AccessLogOperations(ObjectOperations):
    observes_answers = True

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime)
        self.access_log_buffer = AccessLogBuffer()
        self.access_log_controller = AccessLogController(self, runtime.config.s3_access_log_seconds)
        self._own_flusher: asyncio.Task[None] | None = None
        self._warned: set[tuple[str, str]] = set()

    # -- collecting ----------------------------------------------------------------------------------
    def answered(self, ctx: RequestContext, params: dict[str, Any], response: AwsResponse,
                 error: ServiceError | None) -> None:
        name = params.get("Bucket")
        hit = self._buckets.get(name) if isinstance(name, str) else None  # (the request's own look-up)
        bucket = hit[1] if hit is not None else None
        if bucket is not None and bucket.logging:
            self._keep(bucket, access_of(ctx, params, response, error, bucket))
        if ctx.operation in _COPIES:  # the copy's GET half goes to the source bucket's log
            source = copy_source(params)
            hit = self._buckets.get(source[0]) if source is not None else None
            if source is not None and hit is not None and hit[1] is not None and hit[1].logging:
                self._keep(hit[1], access_of(ctx, params, response, error, hit[1], copied=source))

    def website_answered(self, answer: WebsiteAnswer) -> None:
        hit = self._buckets.get(answer.bucket)  # (looked up by the website's own read of its configuration)
        bucket = hit[1] if hit is not None else None
        if bucket is not None and bucket.logging:
            self._keep(bucket, website_access(answer, bucket))

    def _keep(self, bucket: Bucket, access: Access) -> None:
        assert bucket.logging is not None
        source = Source(bucket.name, bucket.account_id, bucket.region, bucket.logging)
        self.access_log_buffer.add(source, Record(access.time, access.line()))
        if self._own_flusher is None and not self.runtime.config.controllers:
            self._own_flusher = asyncio.get_running_loop().create_task(self._flush_forever(),
                                                                       name="s3-access-logs")

    async def _flush_forever(self) -> None:
        """Where no controller runs (an S3 worker): this process delivers its own records."""
        while True:
            await asyncio.sleep(self.access_log_controller.interval)
            await self.access_log_controller.reconcile()

    async def stop(self) -> None:
        if self._own_flusher is not None:
            self._own_flusher.cancel()
            await asyncio.gather(self._own_flusher, return_exceptions=True)
        if len(self.access_log_buffer):
            try:
                await asyncio.wait_for(self.access_log_controller.reconcile(), STOP_FLUSH_SECONDS)
            except Exception:  # (TimeoutError included)
                log.warning("server access logs not delivered at stop", exc_info=True)
        await super().stop()

    # -- delivering ----------------------------------------------------------------------------------
    async def deliver_access_logs(self, source: Source, records: list[Record]) -> None:
        config: dict[str, Any] = json.loads(source.config)
        target = await self.find_bucket(str(config["TargetBucket"]))
        reason = undeliverable(target, source)
        if reason is not None or target is None:
            self._warn(source, reason or "")
            return
        now = datetime.now(UTC)
        key_format = config.get("TargetObjectKeyFormat")
        for when, batch in _batches(records, now, partition_source(key_format) == "EventTime"):
            key = log_key(str(config.get("TargetPrefix") or ""), key_format, source.account_id, source.region,
                          source.bucket, when, unique_string())
            if len(key.encode()) > MAX_KEY_BYTES:
                self._warn(source, "the log object's key would be too long")
                return
            if not logging_service_may_write(target, key, source):
                self._warn(source, "the target bucket does not allow logging.s3.amazonaws.com to write")
                return
            await self._write(target, key, "".join(record.line for record in batch).encode(),
                              config.get("TargetGrants") or [], now)

    async def _write(self, target: Bucket, key: str, body: bytes, grants: list[dict[str, Any]],
                     now: datetime) -> None:
        """A log object (with the configuration's target grants, where ACLs apply)."""
        acl = None
        if grants and ownership(target) != "BucketOwnerEnforced":
            acl = json.dumps([{"Grantee": {"Type": "CanonicalUser", **owner(target.account_id)},
                               "Permission": "FULL_CONTROL"}, *grants])
        await self.write_service_object(target, key, body, content_type="text/plain", now=now, acl=acl)

    def _warn(self, source: Source, reason: str) -> None:
        if (source.bucket, reason) not in self._warned:  # once per bucket and reason in a process's life
            self._warned.add((source.bucket, reason))
            log.warning("server access logs of bucket %s not delivered: %s", source.bucket, reason)


def _batches(records: Iterable[Record], now: datetime, by_day: bool) -> list[tuple[datetime, list[Record]]]:
    """One log object's records and its date: all of them at ``now``, or (EventTime) per day."""
    if not by_day:
        return [(now, list(records))]
    days: dict[tuple[int, int, int], list[Record]] = {}
    for record in records:
        days.setdefault((record.time.year, record.time.month, record.time.day), []).append(record)
    return [(batch[0].time, batch) for _, batch in sorted(days.items())]
