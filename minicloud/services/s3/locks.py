"""Object Lock: the bucket's configuration (default retention), per-version retention in
GOVERNANCE or COMPLIANCE mode, legal holds, and the rule that a locked version cannot be
deleted (GOVERNANCE gives way to x-amz-bypass-governance-retention with the
s3:BypassGovernanceRetention permission; COMPLIANCE and a legal hold never do). A write that sets
a retention or a legal hold through its headers needs the permission to set it (``lock_actions``);
what a request asks for is what policies see in S3's Object Lock condition keys
(``lock_condition_keys``).

A bucket's ``object_lock`` column: ``{"enabled": true, "rule": {"DefaultRetention": {...}}}``.
A version's ``lock`` column: ``{"mode": ..., "until": ISO-8601, "legal_hold": "ON"|"OFF"}``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from minicloud.services.s3.errors import (
    AccessDenied,
    InvalidArgument,
    InvalidRequest,
)
from minicloud.services.s3.store import Bucket, ObjectRow

MODES = ("GOVERNANCE", "COMPLIANCE")


def lock_enabled(bucket: Bucket) -> bool:
    config = bucket.config("object_lock")
    return bool(config and config.get("enabled"))


def stored_lock(row: ObjectRow) -> dict[str, Any]:
    return json.loads(row.lock) if row.lock else {}


def lock_members(row: ObjectRow) -> dict[str, Any]:
    """HeadObject/GetObject members for a version's lock."""
    lock = stored_lock(row)
    out: dict[str, Any] = {}
    if lock.get("mode"):
        out["ObjectLockMode"] = lock["mode"]
        out["ObjectLockRetainUntilDate"] = datetime.fromisoformat(lock["until"])
    if lock.get("legal_hold"):
        out["ObjectLockLegalHoldStatus"] = lock["legal_hold"]
    return out


def check_deletable(row: ObjectRow, now: datetime, bypass_governance: bool) -> None:
    """AccessDenied if the version is under a legal hold or an unexpired retention."""
    lock = stored_lock(row)
    if lock.get("legal_hold") == "ON":
        raise AccessDenied("Access Denied because object protected by object lock.")
    active = bool(lock.get("mode")) and datetime.fromisoformat(lock["until"]) > now
    if active and (lock["mode"] == "COMPLIANCE" or not bypass_governance):
        raise AccessDenied("Access Denied because object protected by object lock.")


def lock_actions(params: dict[str, Any]) -> list[str]:
    """What a write's own Object Lock headers need beside s3:PutObject (PutObject, CopyObject,
    CreateMultipartUpload): a retention (x-amz-object-lock-mode, x-amz-object-lock-retain-until-date)
    s3:PutObjectRetention, a legal hold (x-amz-object-lock-legal-hold, ON or OFF) s3:PutObjectLegalHold.
    The bucket's default retention, which the write does not ask for, needs neither."""
    actions = []
    if params.get("ObjectLockMode") is not None or params.get("ObjectLockRetainUntilDate") is not None:
        actions.append("PutObjectRetention")
    if params.get("ObjectLockLegalHoldStatus") is not None:
        actions.append("PutObjectLegalHold")
    return actions


def lock_condition_keys(mode: Any, until: datetime | None, hold: Any, now: datetime) -> dict[str, str]:
    """The Object Lock condition keys of a request, as S3 supplies them to policies (Service
    Authorization Reference, Amazon S3: s3:object-lock-mode and s3:object-lock-retain-until-date and
    s3:object-lock-remaining-retention-days for s3:PutObject and s3:PutObjectRetention,
    s3:object-lock-legal-hold for s3:PutObject and s3:PutObjectLegalHold): the mode as asked
    (GOVERNANCE or COMPLIANCE), the retain-until date (ISO 8601, UTC), the days from ``now`` until
    that date (a part of a day counts as a whole one; 0 for a date already past), the legal hold
    (ON or OFF). Each key is there only when the request gives its value: a write that leaves its
    lock to the bucket's default retention has none, so ``...IfExists`` and ``Null`` conditions
    behave as on S3."""
    keys: dict[str, str] = {}
    if mode is not None:
        keys["s3:object-lock-mode"] = str(mode)
    if until is not None:
        keys["s3:object-lock-retain-until-date"] = until.astimezone(UTC).isoformat().replace("+00:00", "Z")
        days, part = divmod(until - now, timedelta(days=1))
        keys["s3:object-lock-remaining-retention-days"] = str(max(0, days + (1 if part else 0)))
    if hold is not None:
        keys["s3:object-lock-legal-hold"] = str(hold)
    return keys


def write_lock_keys(params: dict[str, Any], now: datetime) -> dict[str, str]:
    """``lock_condition_keys`` of a write (PutObject, CopyObject, CreateMultipartUpload): its
    x-amz-object-lock-mode, -retain-until-date and -legal-hold headers. Empty for most writes."""
    return lock_condition_keys(params.get("ObjectLockMode"), params.get("ObjectLockRetainUntilDate"),
                               params.get("ObjectLockLegalHoldStatus"), now)


def lock_for_write(params: dict[str, Any], bucket: Bucket, now: datetime) -> str | None:
    """The lock a new version starts with: the request's headers, else the bucket's default."""
    mode: Any = params.get("ObjectLockMode")
    until: Any = params.get("ObjectLockRetainUntilDate")
    hold = params.get("ObjectLockLegalHoldStatus")
    if not lock_enabled(bucket):
        if mode or until or hold:
            raise InvalidRequest("Bucket is missing Object Lock Configuration")
        return None
    if (mode is None) != (until is None):
        raise InvalidArgument("x-amz-object-lock-retain-until-date and x-amz-object-lock-mode must both be supplied")
    lock: dict[str, Any] = {}
    if mode is not None:
        if mode not in MODES:
            raise InvalidArgument("Unknown wormMode directive.", ArgumentName="x-amz-object-lock-mode",
                                  ArgumentValue=str(mode))
        if until <= now:
            raise InvalidArgument("The retain until date must be in the future!")
        lock.update(mode=mode, until=until.isoformat())
    else:
        default = ((bucket.config("object_lock") or {}).get("rule") or {}).get("DefaultRetention")
        if default:
            days = int(default.get("Days") or 0) + 365 * int(default.get("Years") or 0)
            lock.update(mode=default["Mode"], until=(now + timedelta(days=days)).isoformat())
    if hold is not None:
        if hold not in ("ON", "OFF"):
            raise InvalidArgument("Legal Hold must be either of 'ON' or 'OFF'")
        lock["legal_hold"] = hold
    return json.dumps(lock) if lock else None
