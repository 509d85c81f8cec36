"""Object Lock rules: the permissions a write's own lock headers need beside s3:PutObject, and the
Object Lock condition keys policies see."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from minicloud.services.s3.locks import lock_actions, lock_condition_keys, write_lock_keys

UNTIL = datetime(2030, 1, 1, tzinfo=UTC)
NOW = datetime(2029, 12, 22, 12, 0, 0, tzinfo=UTC)  # 9.5 days before UNTIL


@pytest.mark.parametrize(("params", "actions"), [
    ({}, []),
    ({"ObjectLockMode": "GOVERNANCE", "ObjectLockRetainUntilDate": UNTIL}, ["PutObjectRetention"]),
    ({"ObjectLockMode": "COMPLIANCE"}, ["PutObjectRetention"]),  # (refused as incomplete after)
    ({"ObjectLockRetainUntilDate": UNTIL}, ["PutObjectRetention"]),
    ({"ObjectLockLegalHoldStatus": "ON"}, ["PutObjectLegalHold"]),
    ({"ObjectLockLegalHoldStatus": "OFF"}, ["PutObjectLegalHold"]),
    ({"ObjectLockMode": "GOVERNANCE", "ObjectLockRetainUntilDate": UNTIL, "ObjectLockLegalHoldStatus": "ON"},
     ["PutObjectRetention", "PutObjectLegalHold"]),
    ({"ObjectLockMode": None, "ObjectLockLegalHoldStatus": None, "Tagging": "a=b"}, []),
])
def test_lock_actions(params: dict[str, Any], actions: list[str]) -> None:
    assert lock_actions(params) == actions


def test_condition_keys_of_a_retention_and_a_hold() -> None:
    assert lock_condition_keys("COMPLIANCE", UNTIL, "ON", NOW) == {
        "s3:object-lock-mode": "COMPLIANCE",
        "s3:object-lock-retain-until-date": "2030-01-01T00:00:00Z",
        "s3:object-lock-remaining-retention-days": "10",  # 9.5 days: a part of a day counts
        "s3:object-lock-legal-hold": "ON",
    }


def test_condition_keys_are_only_those_the_request_gives() -> None:
    assert lock_condition_keys(None, None, None, NOW) == {}
    assert lock_condition_keys(None, None, "OFF", NOW) == {"s3:object-lock-legal-hold": "OFF"}
    assert lock_condition_keys("GOVERNANCE", None, None, NOW) == {"s3:object-lock-mode": "GOVERNANCE"}
    assert set(lock_condition_keys(None, UNTIL, None, NOW)) == {"s3:object-lock-retain-until-date",
                                                                 "s3:object-lock-remaining-retention-days"}


@pytest.mark.parametrize(("until", "days"), [
    (NOW + timedelta(days=30), "30"),
    (NOW + timedelta(days=10), "10"),
    (NOW + timedelta(days=10, seconds=1), "11"),
    (NOW + timedelta(days=10, seconds=-1), "10"),
    (NOW + timedelta(seconds=1), "1"),
    (NOW, "0"),
    (NOW - timedelta(days=3, hours=5), "0"),  # already past (refused after authorization)
])
def test_remaining_retention_days(until: datetime, days: str) -> None:
    assert lock_condition_keys(None, until, None, NOW)["s3:object-lock-remaining-retention-days"] == days


def test_retain_until_date_is_iso_8601_in_utc() -> None:
    paris = datetime(2030, 1, 1, 1, 0, 0, 250000, tzinfo=timezone(timedelta(hours=1)))
    keys = lock_condition_keys(None, paris, None, NOW)
    assert keys["s3:object-lock-retain-until-date"] == "2030-01-01T00:00:00.250000Z"


def test_write_lock_keys_read_the_write_headers() -> None:
    assert write_lock_keys({"Key": "k", "Tagging": "a=b"}, NOW) == {}
    assert write_lock_keys({"ObjectLockMode": "GOVERNANCE", "ObjectLockRetainUntilDate": UNTIL,
                            "ObjectLockLegalHoldStatus": "OFF"}, NOW) == lock_condition_keys("GOVERNANCE", UNTIL,
                                                                                             "OFF", NOW)
