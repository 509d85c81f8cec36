"""Event notifications: the bucket's notification configuration (stored, validated as S3 does),
and the S3 event messages for Lambda destinations.

Delivery contract with the Lambda service: every successful object event that matches a
``LambdaFunctionConfiguration`` inserts, in the same transaction as the object's metadata, one row
into ``s3_event_outbox`` (account_id, region, function_arn, bucket, event_json: the whole AWS S3
event message ``{"Records": [...]}``, created_at). Lambda drains and deletes the rows.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote_plus

import sqlalchemy as sa

from minicloud.aws.context import RequestContext
from minicloud.services.s3 import store
from minicloud.services.s3.base import S3Base
from minicloud.services.s3.errors import InvalidArgument
from minicloud.services.s3.names import bucket_arn, canonical_id
from minicloud.services.s3.store import Bucket
from minicloud.services.s3.tables import s3_event_outbox

EVENTS = frozenset({
    "s3:ReducedRedundancyLostObject", "s3:ObjectCreated:*", "s3:ObjectCreated:Put", "s3:ObjectCreated:Post",
    "s3:ObjectCreated:Copy", "s3:ObjectCreated:CompleteMultipartUpload", "s3:ObjectRemoved:*",
    "s3:ObjectRemoved:Delete", "s3:ObjectRemoved:DeleteMarkerCreated", "s3:ObjectRestore:*",
    "s3:ObjectRestore:Post", "s3:ObjectRestore:Completed", "s3:ObjectRestore:Delete", "s3:Replication:*",
    "s3:Replication:OperationFailedReplication", "s3:Replication:OperationNotTracked",
    "s3:Replication:OperationMissedThreshold", "s3:Replication:OperationReplicatedAfterThreshold",
    "s3:LifecycleTransition", "s3:IntelligentTiering", "s3:ObjectAcl:Put", "s3:LifecycleExpiration:*",
    "s3:LifecycleExpiration:Delete", "s3:LifecycleExpiration:DeleteMarkerCreated", "s3:ObjectTagging:*",
    "s3:ObjectTagging:Put", "s3:ObjectTagging:Delete",
})
KINDS = {"TopicConfigurations": ("TopicArn", "sns"), "QueueConfigurations": ("QueueArn", "sqs"),
         "LambdaFunctionConfigurations": ("LambdaFunctionArn", "lambda")}
_ARN = re.compile(r"arn:aws:(sns|sqs|lambda):([a-z0-9-]+):(\d{12}):(.+)")
SERVICE_PRINCIPAL = "s3.amazonaws.com"


def _invalid(message: str, name: str = "", value: str = "") -> InvalidArgument:
    return InvalidArgument(message, ArgumentName=name, ArgumentValue=value)


def _filter_of(config: dict[str, Any]) -> tuple[str, str]:
    rules = ((config.get("Filter") or {}).get("Key") or {}).get("FilterRules") or []
    found: dict[str, str] = {}
    for rule in rules:
        name = str(rule.get("Name") or "").lower()
        if name not in ("prefix", "suffix"):
            raise _invalid("filter rule name must be either prefix or suffix", "FilterRule", str(rule.get("Name")))
        if name in found:
            raise _invalid(f"Cannot specify more than one {name} rule in a filter.", "FilterRule", name)
        found[name] = str(rule.get("Value") or "")
    return found.get("prefix", ""), found.get("suffix", "")


def _events_overlap(a: list[str], b: list[str]) -> bool:
    for x in a:
        for y in b:
            if x == y or (x.endswith("*") and y.startswith(x[:-1])) or (y.endswith("*") and x.startswith(y[:-1])):
                return True
    return False


def _filters_overlap(a: tuple[str, str], b: tuple[str, str]) -> bool:
    prefixes = a[0].startswith(b[0]) or b[0].startswith(a[0])
    suffixes = a[1].endswith(b[1]) or b[1].endswith(a[1])
    return prefixes and suffixes


def check_configuration(config: dict[str, Any], region: str) -> list[str]:
    """Validate a NotificationConfiguration; the Lambda function ARNs it names."""
    seen: list[tuple[list[str], tuple[str, str]]] = []
    functions: list[str] = []
    for kind, (arn_member, service) in KINDS.items():
        for item in config.get(kind) or []:
            events = list(item.get("Events") or [])
            for event in events:
                if event not in EVENTS:
                    raise _invalid("The event is not supported for notifications", "Event", str(event))
            arn = str(item.get(arn_member) or "")
            match = _ARN.fullmatch(arn)
            if match is None or match.group(1) != service or match.group(2) != region:
                raise _invalid("The ARN is not well formed" if match is None else
                               "The notification destination service region is not valid for the bucket "
                               "location constraint", arn, arn)
            bounds = _filter_of(item)
            for other_events, other_bounds in seen:
                if _events_overlap(events, other_events) and _filters_overlap(bounds, other_bounds):
                    raise _invalid("Configurations overlap. Configurations on the same bucket cannot share a "
                                   "common event type.", "Event", ",".join(events))
            seen.append((events, bounds))
            if service == "lambda":
                functions.append(arn)
    return functions


def lambda_function_exists(conn: sa.Connection, arn: str) -> bool | None:
    """Whether the Lambda service knows the function; None when it keeps no table for functions."""
    inspector = sa.inspect(conn)
    if not inspector.has_table("lambda_functions"):
        return None
    columns = {c["name"] for c in inspector.get_columns("lambda_functions")}
    base = ":".join(arn.split(":")[:7])
    account, name = base.split(":")[4], base.split(":")[6]
    table = sa.table("lambda_functions", *(sa.column(c) for c in columns))
    if "arn" in columns or "function_arn" in columns:
        column = table.c["arn" if "arn" in columns else "function_arn"]
        return conn.execute(sa.select(sa.literal(1)).select_from(table).where(column == base)).first() is not None
    name_column = next((c for c in ("name", "function_name") if c in columns), None)
    if name_column is None:
        return None
    query = sa.select(sa.literal(1)).select_from(table).where(table.c[name_column] == name)
    if "account_id" in columns:
        query = query.where(table.c["account_id"] == account)
    return conn.execute(query).first() is not None


def _matches(event_name: str, events: list[str]) -> bool:
    return any(e == event_name or (e.endswith("*") and event_name.startswith(e[:-1])) for e in events)


@dataclass(slots=True)
class Notice:
    """The Lambda destinations one object event goes to, and how to record it."""

    bucket: Bucket
    event_name: str
    targets: list[tuple[str, str, tuple[str, str]]]  # (configuration id, function ARN, (prefix, suffix))
    region: str
    request_id: str
    source_ip: str
    principal_id: str
    now: datetime
    sequence: list[int] = field(default_factory=list)
    version: str = "2.1"  # of the event message: S3 sends 2.3 for lifecycle events and restore deletions

    def write(self, conn: sa.Connection, key: str, *, size: int | None = None, etag: str | None = None,
              version_id: str | None = None, extra: dict[str, Any] | None = None) -> None:
        """Insert the outbox rows for ``key`` (in the caller's transaction); ``extra``: the record's
        members of this kind of event (``lifecycleEventData``, ``glacierEventData``)."""
        for config_id, function_arn, (prefix, suffix) in self.targets:
            if not (key.startswith(prefix) and key.endswith(suffix)):
                continue
            record = {**self._record(config_id, key, size, etag, version_id), **(extra or {})}
            conn.execute(s3_event_outbox.insert().values(
                account_id=self.bucket.account_id, region=self.region, function_arn=function_arn,
                bucket=self.bucket.name, event_json=json.dumps({"Records": [record]}), created_at=self.now))

    def _record(self, config_id: str, key: str, size: int | None, etag: str | None,
                version_id: str | None) -> dict[str, Any]:
        obj: dict[str, Any] = {"key": quote_plus(key, safe="/")}
        if size is not None:
            obj["size"] = size
        if etag:
            obj["eTag"] = etag.strip('"')
        if version_id and version_id != "null":
            obj["versionId"] = version_id
        obj["sequencer"] = f"{time.time_ns():018X}"
        owner = {"principalId": canonical_id(self.bucket.account_id)}
        return {
            "eventVersion": self.version, "eventSource": "aws:s3", "awsRegion": self.region,
            "eventTime": self.now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{self.now.microsecond // 1000:03d}Z",
            "eventName": self.event_name.removeprefix("s3:"),
            "userIdentity": {"principalId": self.principal_id},
            "requestParameters": {"sourceIPAddress": self.source_ip},
            "responseElements": {"x-amz-request-id": self.request_id.replace("-", "")[:16].upper(),
                                 "x-amz-id-2": self.request_id},
            "s3": {"s3SchemaVersion": "1.0", "configurationId": config_id,
                   "bucket": {"name": self.bucket.name, "ownerIdentity": owner, "arn": bucket_arn(self.bucket.name)},
                   "object": obj},
        }


def _targets(bucket: Bucket, event_name: str) -> list[tuple[str, str, tuple[str, str]]]:
    if not bucket.notification:
        return []
    config = json.loads(bucket.notification)
    return [(str(item.get("Id") or ""), str(item["LambdaFunctionArn"]), _filter_of(item))
            for item in config.get("LambdaFunctionConfigurations") or []
            if _matches(event_name, list(item.get("Events") or []))]


def service_notice(bucket: Bucket, event_name: str, now: datetime, version: str = "2.1") -> Notice | None:
    """The Notice for an event S3 itself causes (lifecycle rules, restores), None when no Lambda
    configuration wants it: S3 names itself as the principal and the source of such events."""
    targets = _targets(bucket, event_name)
    if not targets:
        return None
    return Notice(bucket, event_name, targets, bucket.region, secrets.token_hex(16), SERVICE_PRINCIPAL,
                  SERVICE_PRINCIPAL, now, version=version)


def notice_for(ctx: RequestContext, bucket: Bucket, event_name: str) -> Notice | None:
    """The Notice for an event on ``bucket``, None when no Lambda configuration wants it."""
    targets = _targets(bucket, event_name)
    if not targets:
        return None
    principal = ctx.principal
    principal_id = principal.account_id if principal.kind == "root" else f"AWS:{principal.user_id}"
    return Notice(bucket, event_name, targets, bucket.region, ctx.request_id, ctx.request.client_ip,
                  principal_id if principal.account_id else "Anonymous", ctx.now)


class NotificationOperations(S3Base):
    async def put_bucket_notification_configuration(self, ctx: RequestContext,
                                                    params: dict[str, Any]) -> dict[str, Any]:
        bucket = await self.bucket_for(ctx, params, "PutBucketNotification")
        config = dict(params.get("NotificationConfiguration") or {})
        functions = check_configuration(config, bucket.region)
        if not params.get("SkipDestinationValidation"):
            for arn in functions:
                found = await self.db.read(lambda conn, a=arn: lambda_function_exists(conn, a))  # type: ignore[misc]
                if found is False:
                    raise _invalid("Unable to validate the following destination configurations", arn,
                                   "The destination function does not exist")
        for kind in KINDS:
            for item in config.get(kind) or []:
                item.setdefault("Id", secrets.token_hex(16))
        text = json.dumps(config, default=str) if any(config.get(k) for k in (*KINDS, "EventBridgeConfiguration")) \
            else None
        await self.db.write(lambda conn: store.update_bucket(conn, bucket.name, notification=text))
        self.forget_bucket(bucket.name)
        return {}

    async def get_bucket_notification_configuration(self, ctx: RequestContext,
                                                    params: dict[str, Any]) -> dict[str, Any]:
        bucket = await self.bucket_for(ctx, params, "GetBucketNotification")
        return dict(bucket.config("notification") or {})
