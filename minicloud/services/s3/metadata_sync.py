"""Replication of metadata changes: the tags (PutObjectTagging, DeleteObjectTagging), ACL
(PutObjectAcl) and Object Lock retention and legal hold (PutObjectRetention, PutObjectLegalHold) of
a version, changed after it was written, reach its other copy, as S3 replicates them.

Two directions. A source version (PENDING or COMPLETED) passes its changes to its replicas, in the
destinations of the rules that govern it (or, when a tag change took away the tags a rule selected
it by, of the rules that select its key). A replica passes its changes back to its source version
when a rule of the *replica's* bucket, towards the source's bucket, has ReplicaModifications
Enabled (two-way replication); without one, a replica's changes stay on the replica. A FAILED
version, or one never replicated, passes nothing.

Crash safety. The change and a row of ``s3_replication_syncs`` (the field changed, and the
version's status before the change: its ``origin``) are written in one transaction, which also marks
the version PENDING (as S3 reports a version whose changes are being replicated, a replica
included). The replication controller finds it like any PENDING version; the transaction that
copies the changes deletes the rows it has read and sets the final status: COMPLETED (REPLICA for a
replica), or PENDING still when more changes were recorded meanwhile, or FAILED (S3's reasons: the
role may not, s3:ReplicateTags for tags and s3:ReplicateObject for ACLs and Object Lock, on the
other copy; the other bucket gone or without Object Lock). A version whose first replication was
still pending (origin PENDING) is replicated in full first; its recorded changes then reach the
replica in a further pass.

What a copy writes: the fields changed, with the version's values *at the time of the copy* (in the
same transaction), onto the other copy's row of the same key and version id, in place: no version is
added, moved or rewritten, no data (blob) is touched, Last-Modified stays. A copy made by the
controller is never recorded as a change itself, so two-way replication cannot ping-pong. An ACL is
not copied to a destination whose rule has AccessControlTranslation (the replica's owner is the
destination's). A copy that is gone (its version deleted since) is not written again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from minicloud.services.s3.locks import MODES
from minicloud.services.s3.replication import COMPLETED, FAILED, PENDING, REPLICA, Rule, compiled, is_kms
from minicloud.services.s3.store import Bucket
from minicloud.services.s3.tables import s3_objects, s3_replication_syncs

FIELDS = ("tags", "acl", "lock")
ACTIONS = {"tags": "s3:ReplicateTags", "acl": "s3:ReplicateObject", "lock": "s3:ReplicateObject"}


@dataclass(frozen=True, slots=True)
class Syncs:
    """The changes recorded for one version: the newest record read, the fields, their origin."""

    seen: int = 0
    fields: frozenset[str] = frozenset()
    origin: str | None = None  # the version's status when its oldest unsynced change was made

    @property
    def metadata_only(self) -> bool:
        """The version had been replicated (or is a replica): only its changes are to be copied."""
        return self.origin in (COMPLETED, REPLICA)

    @property
    def settled(self) -> str:
        """The version's status once its changes are copied."""
        return REPLICA if self.origin == REPLICA else COMPLETED

    def fields_for(self, rule: Rule) -> tuple[str, ...]:
        """The fields to copy to ``rule``'s destination (ACLs not where the owner is overridden)."""
        translated = (rule.document.get("Destination") or {}).get("AccessControlTranslation") is not None
        return tuple(f for f in FIELDS if f in self.fields and not (f == "acl" and translated))


def _version(table: sa.Table, bucket: str, key: str, version_id: str) -> tuple[sa.ColumnElement[bool], ...]:
    return table.c.bucket == bucket, table.c.key == key, table.c.version_id == version_id


def recorded(conn: sa.Connection, bucket: str, key: str, version_id: str) -> Syncs:
    c = s3_replication_syncs.c
    rows = conn.execute(sa.select(c.id, c.field, c.origin).where(*_version(s3_replication_syncs, bucket, key,
                                                                           version_id)).order_by(c.id)).all()
    if not rows:
        return Syncs()
    return Syncs(rows[-1].id, frozenset(row.field for row in rows), rows[0].origin)


def _replicates_change(bucket: Bucket, key: str, tags: dict[str, str], kms: bool, origin: str) -> bool:
    """Whether a rule of ``bucket`` takes a change of this version to another bucket."""
    rules = compiled(bucket.replication or "{}").sync_targets(key, tags, sse_kms=kms)
    return any(rule.replica_modifications for rule in rules) if origin == REPLICA else bool(rules)


def mark_change(conn: sa.Connection, bucket: Bucket, key: str, version_id: str, field: str) -> bool:
    """After ``field`` (tags, acl or lock) of a version changed, in the same transaction: record
    the change and mark the version PENDING when it is to be replicated; whether it is (the caller
    then wakes the replication controller once the change has committed)."""
    if not bucket.replication:
        return False
    c = s3_objects.c
    row = conn.execute(sa.select(c.replication_status, c.tags, c.encryption, c.delete_marker)
                       .where(*_version(s3_objects, bucket.name, key, version_id))).first()
    if row is None or row.delete_marker or row.replication_status not in (PENDING, COMPLETED, REPLICA):
        return False
    origin = str(row.replication_status)
    if origin == PENDING:  # (a change recorded before says what the version was)
        origin = recorded(conn, bucket.name, key, version_id).origin or PENDING
    elif not _replicates_change(bucket, key, dict(_pairs(row.tags)), is_kms(row.encryption), origin):
        return False
    conn.execute(s3_replication_syncs.insert().values(bucket=bucket.name, key=key, version_id=version_id,
                                                      field=field, origin=origin))
    conn.execute(s3_objects.update().where(*_version(s3_objects, bucket.name, key, version_id))
                 .values(replication_status=PENDING))
    return True


def _pairs(tags: str | None) -> list[tuple[str, str]]:
    return [(str(k), str(v)) for k, v in json.loads(tags)] if tags else []


def copy_fields(conn: sa.Connection, bucket: str, key: str, version_id: str, target: str,
                fields: tuple[str, ...]) -> bool:
    """Copy ``fields`` of a version, as they are now, onto the same version in ``target``, in
    place; whether that version is there."""
    c = s3_objects.c
    source = conn.execute(sa.select(*[c[f] for f in fields]).where(*_version(s3_objects, bucket, key,
                                                                             version_id))).first()
    if source is None or not fields:
        return False
    values = {f: source._mapping[f] for f in fields}
    where = _version(s3_objects, target, key, version_id)
    if "lock" in values:  # (a retention there is never weakened: see ``merged_lock``)
        there = conn.execute(sa.select(c.lock).where(*where)).first()
        if there is None:
            return False
        values["lock"] = merged_lock(there.lock, values["lock"], datetime.now(UTC))
    done = conn.execute(s3_objects.update().where(*where).values(values))
    return bool(done.rowcount)


def _retention(lock: dict[str, Any], now: datetime) -> tuple[int, datetime] | None:
    """A lock's retention still in force, as (strength, until): COMPLIANCE 2, GOVERNANCE 1."""
    mode, until = lock.get("mode"), lock.get("until")
    if mode not in MODES or not until:
        return None
    end = datetime.fromisoformat(str(until))
    return (2 if mode == "COMPLIANCE" else 1, end) if end > now else None


def merged_lock(there: str | None, arriving: str | None, now: datetime) -> str | None:
    """The lock of a copy after its other copy's lock changed to ``arriving``: the legal hold
    follows (ON or OFF); the retention becomes the arriving one only where that is no weaker than
    the one in force there (a stronger mode, or the same mode for longer), so a replica's COMPLIANCE
    retention (its bucket's default, say) is never shortened or removed by a change elsewhere."""
    kept: dict[str, Any] = json.loads(there) if there else {}
    new: dict[str, Any] = json.loads(arriving) if arriving else {}
    merged = dict(kept)
    if "legal_hold" in new:
        merged["legal_hold"] = new["legal_hold"]
    current, incoming = _retention(kept, now), _retention(new, now)
    if incoming is not None and (current is None or incoming >= current):
        merged["mode"], merged["until"] = new["mode"], new["until"]
    return json.dumps(merged) if merged else None


def settle(conn: sa.Connection, bucket: str, key: str, version_id: str, seen: int, status: str) -> str:
    """Forget the changes copied (those up to record ``seen``); the version's status now: PENDING
    while changes recorded since wait, FAILED (and nothing more waits) when it failed."""
    where = _version(s3_replication_syncs, bucket, key, version_id)
    if status == FAILED:
        conn.execute(s3_replication_syncs.delete().where(*where))
        return FAILED
    if seen:
        conn.execute(s3_replication_syncs.delete().where(*where, s3_replication_syncs.c.id <= seen))
    more = conn.execute(sa.select(s3_replication_syncs.c.id).where(*where).limit(1)).first()
    return PENDING if more is not None else status


def forget_orphans(conn: sa.Connection) -> int:
    """Delete the change records whose version is gone (deleted while its change waited: nothing
    reads them again); how many."""
    o, r = s3_objects.c, s3_replication_syncs.c
    exists = sa.select(o.id).where(o.bucket == r.bucket, o.key == r.key, o.version_id == r.version_id).exists()
    return int(conn.execute(s3_replication_syncs.delete().where(~exists)).rowcount or 0)


__all__ = ["ACTIONS", "FIELDS", "Syncs", "copy_fields", "forget_orphans", "mark_change", "merged_lock", "recorded",
           "settle"]
