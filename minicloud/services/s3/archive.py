"""Archived storage classes: what reading a GLACIER or DEEP_ARCHIVE version takes, and its restore.

An archived version's data stays where it was written (a transition changes only the version's
storage class), but S3 serves it only while a restored copy exists: GetObject answers 403
InvalidObjectState, CopyObject and UploadPartCopy from it too, until RestoreObject has made a
temporary copy, for the Days asked. HeadObject always works and says how the restore stands in
``x-amz-restore``. GLACIER_IR (instant retrieval) is read like any other class.

A restore, stored as JSON on the version's row (``s3_objects.restore``): in progress until the
restore controller (``restore.py``) completes it, then done, with its copy's expiry: S3 counts
Days from the restore request (an extension: from the extending request) and rounds up to the
next midnight UTC (``lifecycle.due_at``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from minicloud.services.s3.errors import InvalidObjectState
from minicloud.services.s3.store import ObjectRow

ARCHIVE_CLASSES = frozenset({"GLACIER", "DEEP_ARCHIVE"})
_NOT_VALID = "The operation is not valid for the object's storage class"
_NOT_VALID_SOURCE = "Operation is not valid for the source object's storage class"


@dataclass(frozen=True, slots=True)
class Restore:
    ongoing: bool
    days: int
    tier: str
    requested: datetime
    expiry: datetime | None = None  # of the restored copy, once the restore is done

    def to_json(self) -> str:
        return json.dumps({"ongoing": self.ongoing, "days": self.days, "tier": self.tier,
                           "requested": self.requested.isoformat(),
                           "expiry": self.expiry.isoformat() if self.expiry else None})

    @classmethod
    def of(cls, row: ObjectRow) -> Restore | None:
        if not row.restore:
            return None
        data: dict[str, Any] = json.loads(row.restore)
        expiry = data.get("expiry")
        return cls(bool(data["ongoing"]), int(data["days"]), str(data["tier"]),
                   datetime.fromisoformat(data["requested"]), datetime.fromisoformat(expiry) if expiry else None)

    def available(self, now: datetime) -> bool:
        """Whether the restored copy can be read at ``now``."""
        return not self.ongoing and self.expiry is not None and self.expiry > now


def readable(row: ObjectRow, now: datetime) -> bool:
    """Whether GetObject may serve the version's bytes: any class but an archived one, or an
    archived one with a restored copy."""
    if row.storage_class not in ARCHIVE_CLASSES:
        return True
    restore = Restore.of(row)
    return restore is not None and restore.available(now)


def check_readable(row: ObjectRow, now: datetime, *, source: bool = False) -> None:
    """403 InvalidObjectState, as S3 answers a read (``source``: a copy) of an archived version
    that is not restored."""
    if not readable(row, now):
        raise InvalidObjectState(_NOT_VALID_SOURCE if source else _NOT_VALID, StorageClass=row.storage_class)


def restore_header(row: ObjectRow, now: datetime) -> str | None:
    """``x-amz-restore`` as S3 formats it: while the restore runs, then while its copy lasts."""
    restore = Restore.of(row)
    if restore is None:
        return None
    if restore.ongoing:
        return 'ongoing-request="true"'
    if restore.expiry is None or not restore.available(now):
        return None
    return f'ongoing-request="false", expiry-date="{format_datetime(restore.expiry.astimezone(UTC), usegmt=True)}"'


def restore_status(row: ObjectRow, now: datetime) -> dict[str, Any] | None:
    """A listing's RestoreStatus (OptionalObjectAttributes=RestoreStatus), None when there is none."""
    restore = Restore.of(row)
    if restore is None:
        return None
    if restore.ongoing:
        return {"IsRestoreInProgress": True}
    if restore.expiry is None or not restore.available(now):
        return None
    return {"IsRestoreInProgress": False, "RestoreExpiryDate": restore.expiry}
