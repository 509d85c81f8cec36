"""The replication controller's scheduling (one source key's versions in order, slots that take new
work at once, retries of transient failures for a bounded window) and what it asks IAM, driven
against a real metadata store and object data with IAM stubbed (the role and each check)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from minicloud.iam.identity import Principal, PrincipalKind
from minicloud.services.s3 import replicator, store
from minicloud.services.s3.data import ObjectData
from minicloud.services.s3.replication import mark_pending, stored_configuration
from minicloud.services.s3.replicator import ReplicationController, insert_replica
from minicloud.services.s3.store import Bucket, ObjectRow
from minicloud.services.s3.tables import s3_objects
from minicloud.storage.metadata.db import Database

ACCOUNT = "111111111111"
NOW = datetime.now(UTC).replace(microsecond=0)


class Allowed:
    allowed = True


class Authorizer:
    """Allows everything, after an await (as a policy look-up costs); records what it was asked."""

    def __init__(self) -> None:
        self.checks: list[dict[str, Any]] = []

    async def check(self, *args: Any, **kwargs: Any) -> Allowed:
        self.checks.append({"args": args, **kwargs})
        await asyncio.sleep(0.01)
        return Allowed()


class Controller(ReplicationController):
    async def _role(self, arn: str, source: Bucket) -> Principal:
        return Principal(PrincipalKind.ASSUMED_ROLE, ACCOUNT, f"arn:aws:sts::{ACCOUNT}:assumed-role/r/s",
                         "AROA:s", "s", role_arn=arn)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'm.sqlite3'}")
    database.migrate()
    rule = {"ID": "all", "Priority": 1, "Status": "Enabled", "Filter": {},
            "DeleteMarkerReplication": {"Status": "Enabled"}, "Destination": {"Bucket": "arn:aws:s3:::dst"}}
    config = stored_configuration({"Role": f"arn:aws:iam::{ACCOUNT}:role/r", "Rules": [rule]})
    for name in ("src", "dst"):
        database.write_sync(lambda c, n=name: store.insert_bucket(  # type: ignore[misc]
            c, Bucket(n, ACCOUNT, "us-east-1", NOW, "Enabled", None, None, None)))
    database.write_sync(lambda c: store.update_bucket(c, "src", replication=config))
    yield database
    database.close()


@pytest.fixture
def data(tmp_path: Path) -> Iterator[ObjectData]:
    objects = ObjectData(tmp_path / "s3", ["a", "b", "c"])
    yield objects
    objects.close()


def controller(db: Database, data: ObjectData, cls: type[Controller] = Controller, **kw: Any) -> Controller:
    return cls(db, data, Authorizer(), lambda: None, **kw)  # type: ignore[arg-type]


def put(db: Database, version_id: str, key: str = "k", *, marker: bool = False) -> None:
    """A version written to the source in this second, PENDING replication."""
    values = {"bucket": "src", "key": key, "version_id": version_id, "delete_marker": marker,
              "size": 0 if marker else 4, "etag": "" if marker else '"e"', "last_modified": NOW,
              "storage_class": "STANDARD", "owner": ACCOUNT, "digest": None if marker else "sha256:" + "a" * 64,
              "parts": None, "meta": "{}", "checksums": None, "tags": None, "encryption": '{"sse": "AES256"}',
              "lock": None, "acl": None}
    source = db.read_sync(lambda c: store.get_bucket(c, "src"))
    assert source is not None and mark_pending(source, values)
    db.write_sync(lambda c: store.put_version(c, values, "Enabled"))


def status(db: Database, version_id: str, key: str = "k") -> str | None:
    row = db.read_sync(lambda c: store.get_object(c, "src", key, version_id))
    return row.replication_status if row else None


def test_a_delete_in_the_same_second_stays_deleted_in_the_destination(db: Database, data: ObjectData) -> None:
    # the delete marker needs one permission check less than the object: replicated side by side,
    # its replica would commit first, and the object's (same Last-Modified second) then become current
    put(db, "o" * 32)
    put(db, "m" * 32, marker=True)
    asyncio.run(controller(db, data).reconcile())
    assert status(db, "o" * 32) == status(db, "m" * 32) == "COMPLETED"
    latest = db.read_sync(lambda c: store.get_object(c, "dst", "k"))
    assert latest is not None and latest.delete_marker and latest.version_id == "m" * 32
    versions = db.read_sync(lambda c: store.list_versions(c, "dst", None, "", 10))
    assert [v.version_id for v in versions] == ["m" * 32, "o" * 32]


class Recording(Controller):
    """Records when each version's replication starts and ends; fails the ones in ``fail`` once."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.events: list[tuple[str, str]] = []
        self.fail: set[str] = set()

    async def replicate(self, row: ObjectRow) -> None:
        self.events.append(("start", row.version_id))
        await asyncio.sleep(0.02 if row.version_id.startswith("1") else 0.001)
        if row.version_id in self.fail:
            self.fail.discard(row.version_id)
            self.events.append(("error", row.version_id))
            raise OSError("a zone cannot be reached")
        await super().replicate(row)
        self.events.append(("end", row.version_id))


def test_one_keys_versions_are_replicated_in_order_others_alongside(db: Database, data: ObjectData) -> None:
    clock = Clock()
    recorder = controller(db, data, Recording, clock=clock)
    assert isinstance(recorder, Recording)
    for version in ("1" * 32, "2" * 32, "3" * 32):
        put(db, version)
    put(db, "x" * 32, key="other")
    recorder.fail = {"1" * 32}

    async def passes() -> None:
        await recorder.reconcile()
        # the first version failed (a passing reason): its key's later ones wait for it; the other key does not
        assert [e for e in recorder.events if e[1] != "x" * 32] == [("start", "1" * 32), ("error", "1" * 32)]
        assert ("end", "x" * 32) in recorder.events and status(db, "x" * 32, "other") == "COMPLETED"
        assert status(db, "2" * 32) == status(db, "3" * 32) == "PENDING"
        clock.now += 5
        recorder.events.clear()
        recorder.wake()
        await recorder.reconcile()
        assert recorder.events == [("start", "1" * 32), ("end", "1" * 32), ("start", "2" * 32), ("end", "2" * 32),
                                   ("start", "3" * 32), ("end", "3" * 32)]
    asyncio.run(passes())
    versions = db.read_sync(lambda c: store.list_versions(c, "dst", None, "k", 10))
    assert [v.version_id for v in versions if v.key == "k"] == ["3" * 32, "2" * 32, "1" * 32]


def test_a_failed_version_does_not_hold_back_the_later_ones(db: Database, data: ObjectData) -> None:
    put(db, "1" * 32)
    put(db, "2" * 32)
    db.write_sync(lambda c: replicator.finish(c, db.read_sync(
        lambda r: store.get_object(r, "src", "k", "1" * 32)).id, [], "FAILED"))  # type: ignore[union-attr]
    asyncio.run(controller(db, data).reconcile())
    assert status(db, "2" * 32) == "COMPLETED"


class Slow(Controller):
    """Holds the replication of version "s..." until ``release`` is set."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.release = asyncio.Event()

    async def replicate(self, row: ObjectRow) -> None:
        if row.version_id.startswith("s"):
            await self.release.wait()
        await super().replicate(row)


def test_a_slow_version_does_not_hold_back_new_work(db: Database, data: ObjectData) -> None:
    put(db, "s" * 32, key="large")

    async def scenario() -> None:
        slow = controller(db, data, Slow)
        assert isinstance(slow, Slow)
        task = asyncio.create_task(slow.reconcile())
        await asyncio.sleep(0.05)
        put(db, "n" * 32, key="new")  # written while the slow one is replicated
        slow.wake()
        for _ in range(200):
            if status(db, "n" * 32, "new") == "COMPLETED":
                break
            await asyncio.sleep(0.01)
        assert status(db, "n" * 32, "new") == "COMPLETED" and status(db, "s" * 32, "large") == "PENDING"
        slow.release.set()
        await task
        assert status(db, "s" * 32, "large") == "COMPLETED"
    asyncio.run(scenario())


class Failing(Controller):
    async def replicate(self, row: ObjectRow) -> None:
        raise OSError("the destination's zones cannot be reached")


def test_transient_failures_are_retried_for_a_bounded_window(db: Database, data: ObjectData) -> None:
    clock = Clock()
    failing = controller(db, data, Failing, clock=clock)
    put(db, "1" * 32)
    start = clock.now
    passes = 0

    async def retries() -> None:
        nonlocal passes
        while status(db, "1" * 32) == "PENDING":
            failing.wake()
            await failing.reconcile()
            passes += 1
            clock.now += replicator.BACKOFF_SECONDS
            assert clock.now - start <= replicator.RETRY_SECONDS + 2 * replicator.BACKOFF_SECONDS
    asyncio.run(retries())
    assert status(db, "1" * 32) == "FAILED" and failing._attempts == {}
    assert passes > 20  # (more than a minute of an unreachable destination)
    assert clock.now - start >= replicator.RETRY_SECONDS


def test_retries_of_deleted_versions_are_forgotten(db: Database, data: ObjectData) -> None:
    clock = Clock()
    failing = controller(db, data, Failing, clock=clock)
    put(db, "1" * 32)

    async def passes() -> None:
        await failing.reconcile()
        assert len(failing._attempts) == 1
        row = db.read_sync(lambda c: store.get_object(c, "src", "k", "1" * 32))
        assert row is not None
        db.write_sync(lambda c: store.delete_version(c, row))
        failing.wake()
        await failing.reconcile()
        assert failing._attempts == {}
    asyncio.run(passes())


def test_the_destination_policy_is_the_one_that_applies_to_the_role(db: Database, data: ObjectData) -> None:
    public = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::dst/*"}]})
    block = json.dumps({"BlockPublicAcls": False, "IgnorePublicAcls": False, "BlockPublicPolicy": False,
                        "RestrictPublicBuckets": True})
    db.write_sync(lambda c: store.update_bucket(c, "dst", account_id="222222222222", policy=public,
                                                public_access_block=block))
    put(db, "1" * 32)
    checker = controller(db, data)
    asyncio.run(checker.reconcile())
    authorizer = checker.authorizer
    assert isinstance(authorizer, Authorizer)
    (check,) = [c for c in authorizer.checks if c["args"][1] == "s3:ReplicateObject"]
    assert check["resource_account"] == "222222222222"
    assert check["resource_policy"] is None or "Allow" not in check["resource_policy"]


def test_a_replica_syncing_back_keeps_its_place_in_the_sources_order(db: Database) -> None:
    """A replica whose own changes are going back to its source reads PENDING: an older version of
    the source arriving later, with a later Last-Modified, still goes below it (the source's order)."""
    put(db, "a" * 32)
    put(db, "b" * 32)
    rows = {v: db.read_sync(lambda c, v=v: store.get_object(c, "src", "k", v)) for v in ("a" * 32, "b" * 32)}  # type: ignore[misc]

    def replica_of(version_id: str, last_modified: datetime) -> dict[str, Any]:
        row = rows[version_id]
        assert row is not None
        values = {name: getattr(row, name) for name in ObjectRow.__slots__ if name not in ("id", "latest")}
        return {**values, "bucket": "dst", "last_modified": last_modified, "replication_status": "REPLICA"}

    newer = rows["b" * 32]
    assert newer is not None
    db.write_sync(lambda c: insert_replica(c, replica_of("b" * 32, NOW), ("src", newer.id)))
    db.write_sync(lambda c: c.execute(sa.update(s3_objects).where(s3_objects.c.bucket == "dst")
                                      .values(replication_status="PENDING")))  # (its tag change going back)
    older = rows["a" * 32]
    assert older is not None
    db.write_sync(lambda c: insert_replica(c, replica_of("a" * 32, NOW + timedelta(seconds=5)), ("src", older.id)))
    latest = db.read_sync(lambda c: store.get_object(c, "dst", "k"))
    assert latest is not None and latest.version_id == "b" * 32
