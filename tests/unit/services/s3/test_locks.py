"""Object Lock rules: the permissions a write's own lock headers need beside s3:PutObject."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from minicloud.services.s3.locks import lock_actions

UNTIL = datetime(2030, 1, 1, tzinfo=UTC)


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
