"""Lifecycle configuration: Put/Get/DeleteBucketLifecycleConfiguration, validated as S3 does,
and the rule matching the lifecycle controller (``expiry.py``) applies.

Stored (bucket ``lifecycle`` column) as JSON: ``{"Rules": [...], "TransitionDefaultMinimumObjectSize":
...}`` with the rules as received (a configuration stored before transitions were supported is the
bare list of its rules). Storage-class transitions are checked as S3 does (``transitions.py``).
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

from minicloud.aws.context import RequestContext
from minicloud.services.s3 import store
from minicloud.services.s3.base import S3Base
from minicloud.services.s3.errors import (
    InvalidArgument,
    InvalidRequest,
    MalformedXML,
    NoSuchLifecycleConfiguration,
)
from minicloud.services.s3.store import Bucket, ObjectRow
from minicloud.services.s3.transitions import (
    DEFAULT_MINIMUM_SIZE,
    MINIMUM_SIZES,
    TRANSITION_CLASSES,
    check_transitions,
    current_transitions,
    noncurrent_transitions,
)

MAX_RULES = 1000
DAY = 86_400.0


# What a due date past the calendar's end (the year 9999) becomes: never reached.
NEVER = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)


def due_at(start: datetime, days: int, day_seconds: float = DAY) -> datetime:
    """When something that started at ``start`` is ``days`` old: S3 rounds up to midnight UTC;
    a shortened lifecycle day (``lifecycle_day_seconds``, for tests) is counted exactly. A date
    past the year 9999 is ``NEVER`` (a rule stored before such Days were refused must not fail)."""
    try:
        return _due_at(start, days, day_seconds)
    except OverflowError:
        return NEVER


def _due_at(start: datetime, days: int, day_seconds: float) -> datetime:
    at = start + timedelta(seconds=days * day_seconds)
    if day_seconds == DAY:
        midnight = at.replace(hour=0, minute=0, second=0, microsecond=0)
        at = midnight if midnight == at else midnight + timedelta(days=1)
    return at


def started_by(now: datetime, days: int, day_seconds: float = DAY) -> datetime | None:
    """The latest start whose ``due_at(start, days)`` is ``now`` or earlier (None: no start is):
    what a scan compares ``last_modified`` with, in SQL, to read only what may be due."""
    try:
        if day_seconds == DAY:
            return now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=days)
        return now - timedelta(seconds=days * day_seconds)
    except OverflowError:
        return None


def within_calendar(days: int, now: datetime | None = None) -> bool:
    """Whether ``days`` days from now (S3's days, rounded up to midnight UTC) is a date before the
    year 10000: larger values pass the protocol's int32 check but no date can hold them."""
    try:
        _due_at(now or datetime.now(UTC), int(days), DAY)
    except OverflowError:
        return False
    return True


def lifecycle_rules(bucket: Bucket) -> list[dict[str, Any]]:
    """The bucket's lifecycle rules as stored ([] without a configuration)."""
    stored = json.loads(bucket.lifecycle) if bucket.lifecycle else []
    return list(stored if isinstance(stored, list) else stored["Rules"])


def minimum_object_size(bucket: Bucket) -> str:
    """The configuration's TransitionDefaultMinimumObjectSize (S3's default when it named none)."""
    stored = json.loads(bucket.lifecycle) if bucket.lifecycle else []
    return DEFAULT_MINIMUM_SIZE if isinstance(stored, list) else str(stored["TransitionDefaultMinimumObjectSize"])


def rule_filter(rule: dict[str, Any]) -> dict[str, Any]:
    """A rule's filter as (prefix, tags, size bounds), from Filter or the legacy Prefix."""
    if "Filter" not in rule:
        return {"prefix": rule.get("Prefix") or "", "tags": {}, "gt": None, "lt": None}
    flt = rule.get("Filter") or {}
    source = flt.get("And") or flt
    tags = {t["Key"]: t.get("Value", "") for t in source.get("Tags") or []}
    if flt.get("Tag"):
        tags[flt["Tag"]["Key"]] = flt["Tag"].get("Value", "")
    return {"prefix": source.get("Prefix") or "", "tags": tags, "gt": source.get("ObjectSizeGreaterThan"),
            "lt": source.get("ObjectSizeLessThan")}


def matches(flt: dict[str, Any], row: ObjectRow) -> bool:
    if not row.key.startswith(flt["prefix"]):
        return False
    if flt["gt"] is not None and not row.size > int(flt["gt"]):
        return False
    if flt["lt"] is not None and not row.size < int(flt["lt"]):
        return False
    if flt["tags"]:
        tags = dict((k, v) for k, v in row.tag_pairs())
        return all(tags.get(k) == v for k, v in flt["tags"].items())
    return True


def expiration_header(bucket: Bucket, row: ObjectRow) -> str | None:
    """x-amz-expiration for a current version: the earliest expiration rule that applies (days
    count to the next midnight UTC, as S3 rounds them)."""
    if not bucket.lifecycle or row.delete_marker:
        return None
    found: tuple[datetime, str] | None = None
    for rule in lifecycle_rules(bucket):
        expiration = rule.get("Expiration") or {}
        if rule.get("Status") != "Enabled" or not (expiration.get("Days") or expiration.get("Date")):
            continue
        if not matches(rule_filter(rule), row):
            continue
        if expiration.get("Date"):
            at = datetime.fromisoformat(str(expiration["Date"]))
        else:
            try:
                start = row.last_modified + timedelta(days=int(expiration["Days"]))
                at = start.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
            except OverflowError:  # (a rule stored before such Days were refused: it never expires)
                continue
        if found is None or at < found[0]:
            found = (at, str(rule.get("ID") or ""))
    if found is None:
        return None
    return f'expiry-date="{format_datetime(found[0].astimezone(UTC), usegmt=True)}", rule-id="{found[1]}"'


def _at_least(value: Any, minimum: int, message: str) -> None:
    if value is None or int(value) < minimum:
        raise InvalidArgument(message)
    if not within_calendar(int(value)):  # (S3 documents no maximum: refused where no date can hold it)
        raise InvalidArgument(f"{message.split(' must ')[0]} must give a date before the year 10000")


def _positive(value: Any, message: str) -> None:
    _at_least(value, 1, message)


def check_rule(rule: dict[str, Any]) -> None:
    """Validate one rule as S3 does."""
    if rule.get("Status") not in ("Enabled", "Disabled"):
        raise MalformedXML()
    if "Filter" in rule and "Prefix" in rule:
        raise MalformedXML()
    if len(str(rule.get("ID") or "")) > 255:
        raise InvalidArgument("ID length should not exceed allowed limit of 255")
    flt = rule.get("Filter")
    if flt is not None:
        given = [k for k in ("Prefix", "Tag", "And", "ObjectSizeGreaterThan", "ObjectSizeLessThan") if k in flt]
        if len(given) > 1:
            raise MalformedXML()
    tagged = bool(rule_filter(rule)["tags"])
    actions = [k for k in ("Expiration", "Transitions", "NoncurrentVersionExpiration",
                           "NoncurrentVersionTransitions", "AbortIncompleteMultipartUpload", "Transition",
                           "NoncurrentVersionTransition") if rule.get(k)]
    if not actions:
        raise InvalidRequest("At least one action needs to be specified in a rule")
    expiration = rule.get("Expiration")
    if expiration:
        given = [k for k in ("Days", "Date", "ExpiredObjectDeleteMarker") if expiration.get(k) is not None]
        if len(given) != 1:
            raise MalformedXML()
        if "Days" in given:
            _positive(expiration["Days"], "'Days' for Expiration action must be a positive integer")
        if "Date" in given:
            _at_midnight(expiration["Date"])
        if "ExpiredObjectDeleteMarker" in given and tagged:
            raise InvalidRequest("ExpiredObjectDeleteMarker cannot be specified with Tag-based filter")
    noncurrent = rule.get("NoncurrentVersionExpiration")
    if noncurrent:
        _positive(noncurrent.get("NoncurrentDays"),
                  "'NoncurrentDays' for NoncurrentVersionExpiration action must be a positive integer")
    abort = rule.get("AbortIncompleteMultipartUpload")
    if abort:
        if tagged:
            raise InvalidRequest("AbortIncompleteMultipartUpload cannot be specified with Tag-based filter")
        _positive(abort.get("DaysAfterInitiation"), "'DaysAfterInitiation' for AbortIncompleteMultipartUpload "
                                                    "action must be a positive integer")
    for transition in current_transitions(rule):
        _check_transition(transition)
    for transition in noncurrent_transitions(rule):
        _check_noncurrent_transition(transition)
    check_transitions(rule)


def _at_midnight(date: datetime) -> None:
    if (date.hour, date.minute, date.second, date.microsecond) != (0, 0, 0, 0):
        raise InvalidArgument("'Date' must be at midnight GMT")


def _check_storage_class(transition: dict[str, Any]) -> None:
    if transition.get("StorageClass") not in TRANSITION_CLASSES:
        raise MalformedXML()


def _check_transition(transition: dict[str, Any]) -> None:
    """A Transition as S3 validates it: a storage class, and either Days (0 or more; 30 or more to
    an infrequent-access class) or a Date at midnight GMT."""
    _check_storage_class(transition)
    given = [k for k in ("Days", "Date") if transition.get(k) is not None]
    if len(given) != 1:
        raise MalformedXML()
    if "Days" in given:
        _at_least(transition["Days"], 0, "'Days' in Transition action must be nonnegative")
        _infrequent_after_30(transition, "Days", "Transition")
    else:
        _at_midnight(transition["Date"])


def _check_noncurrent_transition(transition: dict[str, Any]) -> None:
    _check_storage_class(transition)
    if transition.get("NoncurrentDays") is None:
        raise MalformedXML()
    _at_least(transition["NoncurrentDays"], 0,
              "'NoncurrentDays' in NoncurrentVersionTransition action must be nonnegative")
    _infrequent_after_30(transition, "NoncurrentDays", "NoncurrentVersionTransition")


def _infrequent_after_30(transition: dict[str, Any], days: str, action: str) -> None:
    """S3 moves objects to STANDARD_IA or ONEZONE_IA only once they are 30 days old."""
    storage_class = transition["StorageClass"]
    if storage_class in ("STANDARD_IA", "ONEZONE_IA"):
        _at_least(transition[days], 30, f"'{days}' in {action} action must be greater than or equal to 30 for "
                                        f"storageClass '{storage_class}'")


def check_rules(rules: list[dict[str, Any]]) -> None:
    if not rules or len(rules) > MAX_RULES:
        raise MalformedXML()
    ids = [r.get("ID") for r in rules if r.get("ID")]
    if len(ids) != len(set(ids)):
        raise InvalidArgument("RuleId must be unique. Found same ID for more than one rule")
    for rule in rules:
        check_rule(rule)


def _minimum_size_of(params: dict[str, Any]) -> str:
    value = params.get("TransitionDefaultMinimumObjectSize")
    if value is None:
        return DEFAULT_MINIMUM_SIZE
    if value not in MINIMUM_SIZES:
        raise InvalidArgument("Invalid TransitionDefaultMinimumObjectSize found",
                              ArgumentName="x-amz-transition-default-minimum-object-size", ArgumentValue=str(value))
    return str(value)


def _dates_parsed(rule: dict[str, Any]) -> dict[str, Any]:
    """A stored rule as GetBucketLifecycleConfiguration answers it: its dates as timestamps."""
    for action in (rule.get("Expiration"), *current_transitions(rule)):
        if action and isinstance(action.get("Date"), str):
            action["Date"] = datetime.fromisoformat(action["Date"])
    return rule


class LifecycleOperations(S3Base):
    async def put_bucket_lifecycle_configuration(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = await self.bucket_for(ctx, params, "PutLifecycleConfiguration")
        rules = list((params.get("LifecycleConfiguration") or {}).get("Rules") or [])
        check_rules(rules)
        minimum_size = _minimum_size_of(params)
        for rule in rules:
            rule.setdefault("ID", secrets.token_urlsafe(36)[:48])
        config = {"Rules": rules, "TransitionDefaultMinimumObjectSize": minimum_size}
        text = json.dumps(config, default=lambda v: v.isoformat() if isinstance(v, datetime) else str(v))
        await self.db.write(lambda conn: store.update_bucket(conn, bucket.name, lifecycle=text))
        self.forget_bucket(bucket.name)
        return {"TransitionDefaultMinimumObjectSize": minimum_size}

    async def get_bucket_lifecycle_configuration(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = await self.bucket_for(ctx, params, "GetLifecycleConfiguration")
        if not bucket.lifecycle:
            raise NoSuchLifecycleConfiguration("The lifecycle configuration does not exist", BucketName=bucket.name)
        return {"Rules": [_dates_parsed(rule) for rule in lifecycle_rules(bucket)],
                "TransitionDefaultMinimumObjectSize": minimum_object_size(bucket)}

    async def delete_bucket_lifecycle(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = await self.bucket_for(ctx, params, "PutLifecycleConfiguration")
        await self.db.write(lambda conn: store.update_bucket(conn, bucket.name, lifecycle=None))
        self.forget_bucket(bucket.name)
        return {}
