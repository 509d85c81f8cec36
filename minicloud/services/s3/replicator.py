"""The replication controller: copies each object version left PENDING by a write (see
``replication.py``) to the destination buckets of the rules that select it, then marks it
COMPLETED, or FAILED when a destination cannot take it. A version is PENDING again while its later
tag, ACL or Object Lock changes (recorded with them, see ``metadata_sync``) are copied to the copy
already there, in place; a replica is, under ReplicaModifications, while its changes go back.

Work is found in the metadata store alone (the versions whose ``replication_status`` is PENDING,
through a partial index), so nothing is lost to a crash or a restart: a version stays PENDING
until the transaction that writes its replicas also marks it done, and writing a replica that
already exists is a no-op. The provider wakes the controller after a write; it also looks every
``POLL_SECONDS`` (writes made by S3 workers, or by another API server).

A replica keeps the source version's key, version id, ETag, size, checksums, metadata, tags,
Last-Modified, Object Lock retention and ACL (the owner and ACL change with AccessControlTranslation),
in the destination's StorageClass (else the source's), and says REPLICA. Its data is the source's
blobs, shared by reference (content-addressed, sealed under the master key or the customer's own
key, which open them in any bucket): only an SSE-KMS version, whose data key is bound to its
bucket and key, is sealed anew under the rule's ReplicaKmsKeyID.

The role of the configuration is evaluated as S3 would assume it: it must exist in the source
bucket's account and trust s3.amazonaws.com; it needs s3:GetObjectVersionForReplication on the
source version, s3:ReplicateObject (s3:ReplicateDelete for a delete marker, s3:ReplicateTags for
a tagged version, s3:ObjectOwnerOverrideToBucketOwner with AccessControlTranslation) on the
destination (its identity policies with the destination bucket's policy), and for SSE-KMS
kms:Decrypt on the source key and kms:Encrypt on the replica key (with the keys' policies).
Anything refused, a destination that is gone (its bucket deleted) or no longer versioned, or one
without Object Lock for a source with it, fails the version (FAILED, as S3 reports it; S3 does not
retry those either). Other errors are transient (a metadata store or a blob store zone that cannot
be reached now): the version is tried again with a backoff (0.5 s doubling, at most
``BACKOFF_SECONDS`` apart) for ``RETRY_SECONDS`` after its first failure, then FAILED. The window
is this process's: a restart, or another API server taking over the controllers, starts it anew.

Order. The versions of one source key are replicated one at a time, in the source's order (row
id): a version is not started while an older version of its key is still PENDING (being
replicated, or waiting for a retry); a FAILED one does not hold the later ones back. So replicas of
one source arrive in the source's order, and the destination, which orders a key's versions by row
id like every bucket (the latest version, ListObjectVersions, the version that becomes current when
the latest is deleted, noncurrent lifecycle rules), keeps the source's order. A destination key's
order is the order in which its versions were written *into the destination*, with one exception
that keeps replicas in their place: a local write (PutObject, DeleteObject ... in the destination)
is always its newest version and current, as S3 makes it; a replica is written as the newest
version and current unless versions already there are newer than it, and then goes below them
(``insert_replica``). A version already there is newer than an arriving replica when it is a
replica of a version that comes later in the same source bucket's sequence (the source's row ids,
whatever their Last-Modified seconds), or otherwise (a local write, a replica from another source,
or one whose source version has been deleted since) when its Last-Modified is later (a tie goes to
the replica, which was written later). A replica placed below newer versions moves them above it:
they are written again with new row ids (same version ids and contents), so row-id order stays the
version order; this happens only when a replica arrives after something newer, and costs nothing
to the buckets that receive no replicas.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from minicloud.aws.errors import ServiceError
from minicloud.iam import store as iam_store
from minicloud.iam.authorizer import Authorizer
from minicloud.iam.identity import Principal, PrincipalKind
from minicloud.iam.trust import service_may_assume
from minicloud.services.kms import key_policy
from minicloud.services.kms.keyring import KeyRing
from minicloud.services.kms.store import Key
from minicloud.services.s3 import metadata_sync, store
from minicloud.services.s3.acl import ownership
from minicloud.services.s3.base import policy_for
from minicloud.services.s3.crypto import Sealer
from minicloud.services.s3.data import ONE_ZONE_CLASSES, ObjectData, Staged
from minicloud.services.s3.encryption import kms_context
from minicloud.services.s3.locks import lock_for_write
from minicloud.services.s3.names import bucket_arn, object_arn
from minicloud.services.s3.replication import (
    FAILED,
    PENDING,
    REPLICA,
    S3_SERVICE,
    Configuration,
    Rule,
    compiled,
)
from minicloud.services.s3.store import Bucket, ObjectRow
from minicloud.services.s3.tables import s3_objects
from minicloud.services.s3.uploads import MAX_PUT_BYTES
from minicloud.storage.blobs import Digest
from minicloud.storage.metadata.db import Database

log = logging.getLogger("minicloud.s3.replication")

POLL_SECONDS = 1.0  # how long a pass waits for a wake before looking for work anyway
SWEEP_SECONDS = 600.0  # how often the change records of versions deleted since are forgotten
BATCH = 200  # pending versions read at once (besides those being replicated or waiting for a retry)
PARALLEL = 4  # versions replicated at once (a slot takes new work as soon as it is free)
BACKOFF_SECONDS = 60.0  # the longest wait between two attempts at a version
RETRY_SECONDS = 3600.0  # how long transient failures are retried, from a version's first failure
SESSION = "s3-replication"

_COLUMNS = [s3_objects.c[name] for name in ObjectRow.__slots__]
_IS_PENDING = s3_objects.c.replication_status == sa.literal_column("'PENDING'")  # (the partial index's own test)


class ReplicationFailed(Exception):
    """A version cannot be replicated to a destination: S3's failure reason."""


Update = tuple[str, tuple[str, ...]]  # a copy of a version to update in place: its bucket, the fields


def _current(conn: sa.Connection, row: ObjectRow) -> tuple[ObjectRow, metadata_sync.Syncs] | None:
    """A PENDING version as it is now, and its recorded metadata changes. The records are read
    first: a change committed in between is then in the row but not among them (the statements
    need not share a snapshot), so it stays recorded and is copied again on a later pass; never
    the other way round (a change settled that the row, and so the copy, does not have)."""
    syncs = metadata_sync.recorded(conn, row.bucket, row.key, row.version_id)
    found = conn.execute(sa.select(*_COLUMNS).where(s3_objects.c.id == row.id, _IS_PENDING)).first()
    return (ObjectRow(*found), syncs) if found is not None else None


def pending_versions(conn: sa.Connection, limit: int) -> list[ObjectRow]:
    query = sa.select(*_COLUMNS).where(_IS_PENDING).order_by(s3_objects.c.id).limit(limit)
    return [ObjectRow(*row) for row in conn.execute(query)]


def insert_replica(conn: sa.Connection, values: dict[str, Any], source: tuple[str, int] | None = None) -> None:
    """Add a replica version to its bucket (nothing if that version is already there), the replica
    of version ``source`` (its bucket and row id): the key's newest version and current, unless
    versions already there are newer than it (see the module's "Order"): it goes below them."""
    c = s3_objects.c
    where = (c.bucket == values["bucket"], c.key == values["key"])
    if conn.execute(sa.select(c.id).where(*where, c.version_id == values["version_id"]).limit(1)).first():
        return
    versions = sa.select(c.id, c.version_id, c.last_modified, c.replication_status).where(*where).order_by(c.id.desc())
    top = conn.execute(versions.limit(1)).first()
    above: list[int] = []  # the versions newer than the replica, newest first
    if top is not None and _newer(conn, top, values, source):
        for row in conn.execute(versions).all():
            if not _newer(conn, row, values, source):
                break
            above.append(row.id)
    if not above:
        conn.execute(s3_objects.update().where(*where, c.latest == sa.true()).values(latest=False))
    conn.execute(s3_objects.insert().values(latest=not above, **values))
    _rewrite(conn, above[::-1])
    segments = json.loads(values["parts"]) if values.get("parts") else (
        [[values["digest"], values["size"]]] if values.get("digest") else [])
    store.add_refs(conn, [str(digest) for digest, _ in segments])


def _newer(conn: sa.Connection, row: Any, values: dict[str, Any], source: tuple[str, int] | None) -> bool:
    """Whether a version already in the replica's bucket is newer than the replica ``values``."""
    c = s3_objects.c
    # (a replica is known by its version id in the source, whatever its status says now: a replica
    # whose own metadata changes are going back reads PENDING, or FAILED; a "null" version id
    # names no version of its own)
    if source is not None and row.version_id != "null":
        position = conn.execute(sa.select(c.id).where(c.bucket == source[0], c.key == values["key"],
                                                      c.version_id == row.version_id).limit(1)).scalar()
        if position is not None:  # a replica of the same source's key: the source's order decides
            return bool(position > source[1])
    return bool(row.last_modified > values["last_modified"])


def _rewrite(conn: sa.Connection, row_ids: list[int]) -> None:
    """Write these versions again, in this order, under new (higher) row ids: the newest versions
    of their key once more after a replica placed below them (their blob references unchanged)."""
    if not row_ids:
        return
    c = s3_objects.c
    rows = {row.id: row for row in conn.execute(sa.select(s3_objects).where(c.id.in_(row_ids))).all()}
    conn.execute(s3_objects.delete().where(c.id.in_(row_ids)))
    for row_id in row_ids:
        conn.execute(s3_objects.insert().values({k: v for k, v in rows[row_id]._mapping.items() if k != "id"}))


def finish(conn: sa.Connection, row_id: int, replicas: list[dict[str, Any]], status: str,
           updates: list[Update] | None = None, seen: int = 0) -> bool:
    """Write the replicas, copy the metadata changes recorded up to ``seen`` (``metadata_sync``) to
    the copies in ``updates``, and set the version's final status, if it is still there and PENDING."""
    c = s3_objects.c
    row = conn.execute(sa.select(c.id, c.bucket, c.key, c.version_id).where(c.id == row_id, _IS_PENDING)).first()
    if row is None:
        return False
    for values in replicas:
        insert_replica(conn, values, (row.bucket, row_id))
    for target, fields in updates or []:
        metadata_sync.copy_fields(conn, row.bucket, row.key, row.version_id, target, fields)
    status = metadata_sync.settle(conn, row.bucket, row.key, row.version_id, seen, status)
    conn.execute(s3_objects.update().where(c.id == row_id).values(replication_status=status))
    return True


@dataclass(frozen=True)
class Attempts:
    """A version's transient failures: how many, the first one's time, when to try again."""

    failures: int
    first: float
    not_before: float


@dataclass
class Replica:
    """One destination's copy of a version, ready to commit: its row, and blobs sealed for it."""

    values: dict[str, Any]
    staged: list[Staged] = field(default_factory=list)


async def _empty() -> AsyncIterator[bytes]:
    return
    yield b""  # (an async generator that yields nothing)


class ReplicationController:
    name = "s3-replication"
    interval = 0.05  # (a pass waits for work itself: see ``reconcile``)

    def __init__(self, db: Database, data: ObjectData, authorizer: Authorizer,
                 key_ring: Callable[[], KeyRing], clock: Callable[[], float] = time.monotonic) -> None:
        self.db = db
        self.data = data
        self.authorizer = authorizer
        self.key_ring = key_ring
        self.clock = clock
        self._dirty = asyncio.Event()
        self._next_sweep = 0.0
        self._dirty.set()
        self._attempts: dict[int, Attempts] = {}  # row id -> its transient failures so far

    def wake(self) -> None:
        self._dirty.set()

    async def reconcile(self) -> None:
        """One pass: replicate what is pending, PARALLEL versions at a time, each slot taking the
        next startable version as soon as it is free (new work included: a wake re-reads), until
        nothing is running and nothing more can start."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._dirty.wait(), POLL_SECONDS)
        self._dirty.clear()
        if time.monotonic() >= self._next_sweep:  # the change records of versions deleted meanwhile
            self._next_sweep = time.monotonic() + SWEEP_SECONDS
            await self.db.write(metadata_sync.forget_orphans)
        running: dict[int, asyncio.Task[bool]] = {}
        async with asyncio.TaskGroup() as group:
            rows, more = await self._pending(0)
            while True:
                for row in self._startable(rows, running, PARALLEL - len(running)):
                    running[row.id] = group.create_task(self._attempt(row))
                if not running:
                    return
                woken = group.create_task(self._dirty.wait())  # (a wake re-reads at once: new work)
                done, _ = await asyncio.wait([woken, *running.values()], return_when=asyncio.FIRST_COMPLETED)
                woken.cancel()
                settled = {row_id for row_id, task in running.items() if task in done and task.result()}
                running = {row_id: task for row_id, task in running.items() if task not in done}
                rows = [row for row in rows if row.id not in settled]
                if self._dirty.is_set() or (more and not self._startable(rows, running, 1)):
                    self._dirty.clear()
                    rows, more = await self._pending(len(running))

    async def _pending(self, running: int) -> tuple[list[ObjectRow], bool]:
        """The oldest pending versions (those being replicated or waiting for a retry do not take
        the place of others), and whether there may be more; forgets the retries of versions that
        are no longer pending (replicated elsewhere, or deleted while they waited)."""
        limit = BATCH + len(self._attempts) + running
        rows = await self.db.read(lambda conn: pending_versions(conn, limit))
        more = len(rows) == limit
        ids = {row.id for row in rows}
        for row_id in [row_id for row_id in self._attempts if row_id not in ids]:
            if not more or row_id < rows[-1].id:  # (beyond the batch's last one, it may still be pending)
                del self._attempts[row_id]
        return rows, more

    def _startable(self, rows: list[ObjectRow], running: dict[int, asyncio.Task[bool]], n: int) -> list[ObjectRow]:
        """Up to ``n`` versions to start now: each the oldest pending version of its key (see
        "Order"), not running already, and not waiting for a retry."""
        now = self.clock()
        keys: set[tuple[str, str]] = set()
        chosen: list[ObjectRow] = []
        for row in rows:
            if len(chosen) >= n:
                break
            if (row.bucket, row.key) in keys:
                continue  # an older version of the key is still pending
            keys.add((row.bucket, row.key))
            attempts = self._attempts.get(row.id)
            if row.id not in running and (attempts is None or attempts.not_before <= now):
                chosen.append(row)
        return chosen

    async def _attempt(self, row: ObjectRow) -> bool:
        """Replicate one version; whether it is settled (not to be tried again)."""
        try:
            await self.replicate(row)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            now = self.clock()
            attempts = self._attempts.get(row.id) or Attempts(0, now, now)
            if now - attempts.first >= RETRY_SECONDS:
                log.warning("replication of %s/%s (%s) failed %d times in %.0f s, last: %s", row.bucket, row.key,
                            row.version_id, attempts.failures + 1, now - attempts.first, exc)
                self._attempts.pop(row.id, None)
                await self.db.write(lambda conn: finish(conn, row.id, [], FAILED))
                return True
            log.info("replication of %s/%s (%s) will be tried again: %s", row.bucket, row.key, row.version_id, exc)
            failures = attempts.failures + 1
            self._attempts[row.id] = Attempts(failures, attempts.first,
                                              now + min(BACKOFF_SECONDS, 0.5 * 2 ** min(failures, 16)))
            return False
        self._attempts.pop(row.id, None)
        return True

    # -- one version ---------------------------------------------------------------------------------
    async def replicate(self, row: ObjectRow) -> None:
        """Replicate a version to the destinations of the rules that select it: a replica where
        there is none yet, its recorded metadata changes (``metadata_sync``) where there is one."""
        source = await self.db.read(lambda conn: store.get_bucket(conn, row.bucket))
        # The version as it is now (``row`` was listed a while ago) and its recorded changes: a
        # change committed after this is recorded beyond ``seen``, and copied on a later pass.
        current = await self.db.read(lambda conn: _current(conn, row))
        if current is None:  # (gone, or no longer PENDING: nothing to do)
            return
        row, syncs = current
        replicas: list[Replica] = []
        updates: list[Update] = []
        status = syncs.settled
        try:
            if source is None or not source.replication:
                raise ReplicationFailed("the source bucket has no replication configuration")
            config = compiled(source.replication)
            rules = self._rules(row, config, syncs)
            if not rules and not syncs.metadata_only:
                raise ReplicationFailed("no enabled rule replicates it any more")
            role = await self._role(config.role, source)
            if not row.delete_marker:
                await self._require(role, "s3:GetObjectVersionForReplication", object_arn(source.name, row.key),
                                    source)
            for rule in rules:
                try:
                    await self._to(row, source, rule, role, syncs, replicas, updates)
                except ReplicationFailed as why:
                    log.warning("replication of %s/%s (%s) to %s failed: %s", row.bucket, row.key, row.version_id,
                                rule.destination, why)
                    status = FAILED
        except ReplicationFailed as why:
            log.warning("replication of %s/%s (%s) failed: %s", row.bucket, row.key, row.version_id, why)
            status = FAILED
        await self._commit(row, replicas, status, updates, syncs.seen)

    @staticmethod
    def _rules(row: ObjectRow, config: Configuration, syncs: metadata_sync.Syncs) -> list[Rule]:
        """The rules whose destinations the version (or its changes) go to."""
        kms = _kms(row) is not None
        if not syncs.metadata_only:
            tags = None if row.delete_marker else dict((k, v) for k, v in row.tag_pairs())
            return config.targets(row.key, tags, delete_marker=row.delete_marker, sse_kms=kms)
        rules = config.sync_targets(row.key, dict((k, v) for k, v in row.tag_pairs()), sse_kms=kms)
        return [rule for rule in rules if rule.replica_modifications or syncs.origin != REPLICA]

    async def _to(self, row: ObjectRow, source: Bucket, rule: Rule, role: Principal, syncs: metadata_sync.Syncs,
                  replicas: list[Replica], updates: list[Update]) -> None:
        """One destination: its replica to write, or the changes to copy to the copy already there."""
        dest = await self._destination(source, rule)
        key, version_id = row.key, row.version_id
        there = await self.db.read(lambda conn: store.get_object(conn, dest.name, key, version_id))
        if there is None:
            if not syncs.metadata_only:  # (a copy deleted since is not written again)
                replicas.append(await self._replica(row, source, rule, role, dest))
            return
        fields = syncs.fields_for(rule)
        if not fields:
            return
        resource = object_arn(dest.name, row.key)
        for action in sorted({metadata_sync.ACTIONS[name] for name in fields}):
            await self._require(role, action, resource, dest)
        updates.append((dest.name, fields))

    async def _commit(self, row: ObjectRow, replicas: list[Replica], status: str, updates: list[Update] | None = None,
                      seen: int = 0) -> None:
        staged = [blob for replica in replicas for blob in replica.staged]
        rows = [replica.values for replica in replicas]
        if not staged:
            await self.db.write(lambda conn: finish(conn, row.id, rows, status, updates, seen))
            return
        digests = [blob.digest for blob in staged]
        async with self.data.lock_all(digests):
            done = False
            try:
                for blob in staged:
                    await blob.commit()
                done = await self.db.write(lambda conn: finish(conn, row.id, rows, status, updates, seen))
            finally:
                if not done:  # (the version went away meanwhile, or the commit failed): no orphans
                    for digest in digests:
                        if not await self.db.read(lambda conn, d=digest: store.is_referenced(conn, d)):  # type: ignore[misc]
                            await self.data.delete(digest)

    async def _destination(self, source: Bucket, rule: Rule) -> Bucket:
        dest = await self.db.read(lambda conn: store.get_bucket(conn, rule.destination))
        if dest is None:
            raise ReplicationFailed("DstBucketNotFound")
        if dest.versioning != "Enabled":
            raise ReplicationFailed("DstBucketUnversioned")
        if source.object_lock and not dest.object_lock:
            raise ReplicationFailed("DstBucketObjectLockConfigMissing")
        return dest

    async def _replica(self, row: ObjectRow, source: Bucket, rule: Rule, role: Principal, dest: Bucket) -> Replica:
        destination: dict[str, Any] = rule.document.get("Destination") or {}
        translate = destination.get("AccessControlTranslation") is not None
        resource = object_arn(dest.name, row.key)
        await self._require(role, "s3:ReplicateDelete" if row.delete_marker else "s3:ReplicateObject", resource, dest)
        if row.tags and not row.delete_marker:
            await self._require(role, "s3:ReplicateTags", resource, dest)
        if translate:
            await self._require(role, "s3:ObjectOwnerOverrideToBucketOwner", resource, dest)
        storage_class = "STANDARD" if row.delete_marker else str(destination.get("StorageClass") or row.storage_class)
        values = _replica_values(row, dest, storage_class, translate)
        replica = Replica(values)
        if row.delete_marker or not row.segments():
            return replica
        if _kms(row) is not None:
            await self._reseal(row, source, dest, rule, role, replica)
        elif storage_class not in ONE_ZONE_CLASSES and row.storage_class in ONE_ZONE_CLASSES:
            for digest, _ in row.segments():  # data kept in one zone now needs every zone
                await self.data.store.repair(Digest.parse(digest))
        return replica

    # -- SSE-KMS -------------------------------------------------------------------------------------
    async def _reseal(self, row: ObjectRow, source: Bucket, dest: Bucket, rule: Rule, role: Principal,
                      replica: Replica) -> None:
        """Open the version's data with its KMS data key, seal it anew under a data key of the
        rule's ReplicaKmsKeyID for the replica's ARN (each part a blob of its own, as uploaded)."""
        stored = _kms(row) or {}
        ring = self.key_ring()
        replica_key_id = str(((rule.document.get("Destination") or {}).get("EncryptionConfiguration") or {})
                             .get("ReplicaKmsKeyID") or "")
        bucket_key = bool(stored.get("bucket_key"))
        try:
            blob = base64.b64decode(stored["data_key"])
            source_key = await ring.key_of(blob)
            await self._require_key(role, source_key, "Decrypt")
            resource = bucket_arn(source.name) if bucket_key else object_arn(source.name, row.key)
            kek = ring.decrypt(source_key, blob, kms_context(stored, resource))
            replica_key = await ring.find(dest.account_id, dest.region, replica_key_id)
            await self._require_key(role, replica_key, "Encrypt")
            target = bucket_arn(dest.name) if bucket_key else object_arn(dest.name, row.key)
            data_key, wrapped = ring.generate_data_key(replica_key, 32, kms_context(stored, target))
        except ServiceError as error:
            raise ReplicationFailed(f"KMS: {error.message}") from None
        sealed: dict[str, Any] = {"sse": "aws:kms", "key_arn": replica_key.arn,
                                  "data_key": base64.b64encode(wrapped).decode(), "bucket_key": bucket_key}
        if stored.get("context"):
            sealed["context"] = stored["context"]
        storage_class = str(replica.values["storage_class"])
        for digest, size in row.segments():
            body: Any = self.data.read_sealed([(digest, size)], 0, size, kek) if size else _empty()
            replica.staged.append(await self.data.stage(body, storage_class, checksums=set(), limit=MAX_PUT_BYTES,
                                                        sealer=Sealer(data_key), plain_sha256=False))
        pieces = [[blob.digest, blob.size] for blob in replica.staged]
        replica.values.update(encryption=json.dumps(sealed), digest=None if row.parts else pieces[0][0],
                              parts=json.dumps(pieces) if row.parts else None)

    # -- the role ------------------------------------------------------------------------------------
    async def _role(self, arn: str, source: Bucket) -> Principal:
        """A session of the configuration's role, as S3 assumes it (AssumeRoleNotPermitted if it cannot)."""
        role = await self.db.read(lambda conn: iam_store.get_role_by_arn(conn, arn))
        if role is None or role.account_id != source.account_id:
            raise ReplicationFailed(f"AssumeRoleNotPermitted: no role {arn} in the source bucket's account")
        if not service_may_assume(role.assume_role_policy, role.arn, role.account_id, S3_SERVICE):
            raise ReplicationFailed(f"AssumeRoleNotPermitted: {arn} does not trust {S3_SERVICE}")
        return Principal(PrincipalKind.ASSUMED_ROLE, role.account_id,
                         f"arn:aws:sts::{role.account_id}:assumed-role/{role.name}/{SESSION}",
                         f"{role.role_id}:{SESSION}", SESSION, role_arn=role.arn, role_id=role.role_id)

    @staticmethod
    def _context(role: Principal, region: str) -> dict[str, str | list[str]]:
        now = datetime.now(UTC)
        return {"aws:CurrentTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"), "aws:EpochTime": str(int(now.timestamp())),
                "aws:PrincipalArn": role.role_arn or role.arn, "aws:PrincipalAccount": role.account_id,
                "aws:PrincipalType": "AssumedRole", "aws:userid": role.user_id, "aws:RequestedRegion": region,
                "aws:SecureTransport": "true"}

    async def _require(self, role: Principal, action: str, resource: str, bucket: Bucket) -> None:
        result = await self.authorizer.check(role, action, resource, context=self._context(role, bucket.region),
                                             resource_policy=policy_for(bucket, role.account_id),
                                             resource_account=bucket.account_id)
        if not result.allowed:
            raise ReplicationFailed(f"{role.role_arn} may not {action} on {resource}")

    async def _require_key(self, role: Principal, key: Key, action: str) -> None:
        context = self._context(role, key.region)
        result = await self.authorizer.check(role, f"kms:{action}", key.arn, context=context,
                                             resource_policy=key.policy, resource_account=key.account_id)
        if not result.allowed or not key_policy.admits(key.policy, role, f"kms:{action}", key.arn, key.account_id,
                                                       context):
            raise ReplicationFailed(f"{role.role_arn} may not kms:{action} with {key.arn}")


def _kms(row: ObjectRow) -> dict[str, Any] | None:
    """The stored SSE-KMS encryption of a version, None when it is sealed otherwise."""
    if not row.encryption:
        return None
    stored: dict[str, Any] = json.loads(row.encryption)
    return stored if stored.get("sse") == "aws:kms" else None


def _replica_values(row: ObjectRow, dest: Bucket, storage_class: str, translate: bool) -> dict[str, Any]:
    """The replica's row: the source version's, in the destination bucket."""
    owner = dest.account_id if translate or ownership(dest) == "BucketOwnerEnforced" else row.owner
    lock = row.lock
    if lock is None and not row.delete_marker:  # the destination's default retention applies
        lock = lock_for_write({}, dest, datetime.now(UTC))
    return {
        "bucket": dest.name, "key": row.key, "version_id": row.version_id, "delete_marker": row.delete_marker,
        "size": row.size, "etag": row.etag, "last_modified": row.last_modified, "storage_class": storage_class,
        "owner": owner, "digest": row.digest, "parts": row.parts, "meta": row.meta, "checksums": row.checksums,
        "tags": row.tags, "encryption": row.encryption, "lock": lock, "acl": None if translate else row.acl,
        "replication_status": REPLICA,
    }


__all__ = ["PENDING", "ReplicationController", "finish", "insert_replica", "pending_versions"]
