"""Lifecycle configuration: Put/Get/DeleteBucketLifecycleConfiguration, validated as S3 does,
and the rule matching the lifecycle controller (``expiry.py``) applies.

Stored (bucket ``lifecycle`` column) as the JSON list of rules as received. Storage-class
transitions are validated as S3 does (a malformed one gets S3's error), then a valid one is refused
with NotImplemented: minicloud has no colder tiers to move objects to.
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
    NotImplementedFeature,
)
from minicloud.services.s3.store import Bucket, ObjectRow

MAX_RULES = 1000
_MALFORMED = "The XML you provided was not well-formed or did not validate against our published schema"


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
    for rule in json.loads(bucket.lifecycle):
        expiration = rule.get("Expiration") or {}
        if rule.get("Status") != "Enabled" or not (expiration.get("Days") or expiration.get("Date")):
            continue
        if not matches(rule_filter(rule), row):
            continue
        if expiration.get("Date"):
            at = datetime.fromisoformat(str(expiration["Date"]))
        else:
            start = row.last_modified + timedelta(days=int(expiration["Days"]))
            at = start.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        if found is None or at < found[0]:
            found = (at, str(rule.get("ID") or ""))
    if found is None:
        return None
    return f'expiry-date="{format_datetime(found[0].astimezone(UTC), usegmt=True)}", rule-id="{found[1]}"'


_TRANSITION_CLASSES = ("GLACIER", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "DEEP_ARCHIVE", "GLACIER_IR")


def _at_least(value: Any, minimum: int, message: str) -> None:
    if value is None or int(value) < minimum:
        raise InvalidArgument(message)


def _positive(value: Any, message: str) -> None:
    _at_least(value, 1, message)


def check_rule(rule: dict[str, Any]) -> bool:
    """Validate one rule as S3 does; whether it has storage-class transitions."""
    if rule.get("Status") not in ("Enabled", "Disabled"):
        raise MalformedXML(_MALFORMED)
    if "Filter" in rule and "Prefix" in rule:
        raise MalformedXML(_MALFORMED)
    if len(str(rule.get("ID") or "")) > 255:
        raise InvalidArgument("ID length should not exceed allowed limit of 255")
    flt = rule.get("Filter")
    if flt is not None:
        given = [k for k in ("Prefix", "Tag", "And", "ObjectSizeGreaterThan", "ObjectSizeLessThan") if k in flt]
        if len(given) > 1:
            raise MalformedXML(_MALFORMED)
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
            raise MalformedXML(_MALFORMED)
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
    transitions = _listed(rule, "Transitions", "Transition")
    noncurrent_transitions = _listed(rule, "NoncurrentVersionTransitions", "NoncurrentVersionTransition")
    for transition in transitions:
        _check_transition(transition)
    for transition in noncurrent_transitions:
        _check_noncurrent_transition(transition)
    return bool(transitions or noncurrent_transitions)


def _listed(rule: dict[str, Any], plural: str, singular: str) -> list[dict[str, Any]]:
    """A rule's transitions: the lifecycle configuration's lists, or the older API's single one."""
    return [*(rule.get(plural) or []), *([rule[singular]] if rule.get(singular) else [])]


def _at_midnight(date: datetime) -> None:
    if (date.hour, date.minute, date.second, date.microsecond) != (0, 0, 0, 0):
        raise InvalidArgument("'Date' must be at midnight GMT")


def _check_storage_class(transition: dict[str, Any]) -> None:
    if transition.get("StorageClass") not in _TRANSITION_CLASSES:
        raise MalformedXML(_MALFORMED)


def _check_transition(transition: dict[str, Any]) -> None:
    """A Transition as S3 validates it: a storage class, and either Days (0 or more; 30 or more to
    an infrequent-access class) or a Date at midnight GMT."""
    _check_storage_class(transition)
    given = [k for k in ("Days", "Date") if transition.get(k) is not None]
    if len(given) != 1:
        raise MalformedXML(_MALFORMED)
    if "Days" in given:
        _at_least(transition["Days"], 0, "'Days' in Transition action must be nonnegative")
        _infrequent_after_30(transition, "Days", "Transition")
    else:
        _at_midnight(transition["Date"])


def _check_noncurrent_transition(transition: dict[str, Any]) -> None:
    _check_storage_class(transition)
    if transition.get("NoncurrentDays") is None:
        raise MalformedXML(_MALFORMED)
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
        raise MalformedXML(_MALFORMED)
    ids = [r.get("ID") for r in rules if r.get("ID")]
    if len(ids) != len(set(ids)):
        raise InvalidArgument("RuleId must be unique. Found same ID for more than one rule")
    transitions = [check_rule(rule) for rule in rules]  # (every rule validated first, as S3 does)
    if any(transitions):
        # Valid transition rules: stored by S3, but minicloud has no colder tiers to move objects to.
        raise NotImplementedFeature("Lifecycle storage-class transitions are not implemented by minicloud "
                                    "(there are no colder tiers); expiration and abort rules are.")


class LifecycleOperations(S3Base):
    async def put_bucket_lifecycle_configuration(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = await self.bucket_for(ctx, params, "PutLifecycleConfiguration")
        rules = list((params.get("LifecycleConfiguration") or {}).get("Rules") or [])
        check_rules(rules)
        for rule in rules:
            rule.setdefault("ID", secrets.token_urlsafe(36)[:48])
        text = json.dumps(rules, default=lambda v: v.isoformat() if isinstance(v, datetime) else str(v))
        await self.db.write(lambda conn: store.update_bucket(conn, bucket.name, lifecycle=text))
        self.forget_bucket(bucket.name)
        return {}

    async def get_bucket_lifecycle_configuration(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = await self.bucket_for(ctx, params, "GetLifecycleConfiguration")
        if not bucket.lifecycle:
            raise NoSuchLifecycleConfiguration("The lifecycle configuration does not exist", BucketName=bucket.name)
        rules = json.loads(bucket.lifecycle)
        for rule in rules:
            expiration = rule.get("Expiration") or {}
            if isinstance(expiration.get("Date"), str):
                expiration["Date"] = datetime.fromisoformat(expiration["Date"])
        return {"Rules": rules}

    async def delete_bucket_lifecycle(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = await self.bucket_for(ctx, params, "PutLifecycleConfiguration")
        await self.db.write(lambda conn: store.update_bucket(conn, bucket.name, lifecycle=None))
        self.forget_bucket(bucket.name)
        return {}
