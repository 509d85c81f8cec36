"""Replication of metadata changes (``metadata_sync``) below the API: what a change records, in its
own transaction, and what the replication controller then copies, in place, both ways; driven
against a real metadata store and object data with IAM stubbed."""

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
from minicloud.services.s3 import store
from minicloud.services.s3.data import ObjectData
from minicloud.services.s3.metadata_sync import forget_orphans, mark_change, merged_lock
from minicloud.services.s3.replication import compiled, mark_pending, stored_configuration
from minicloud.services.s3.replicator import ReplicationController
from minicloud.services.s3.store import Bucket, ObjectRow
from minicloud.services.s3.tables import s3_objects, s3_replication_syncs
from minicloud.storage.metadata.db import Database

ACCOUNT = "111111111111"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/r"
EARLIER = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0)
VERSION = "v" * 32
SETTERS = {"tags": store.set_object_tags, "acl": store.set_object_acl, "lock": store.set_object_lock}


class Verdict:
    def __init__(self, allowed: bool) -> None:
        self.allowed = allowed


class Authorizer:
    """Allows everything but the actions in ``deny``; records the actions it was asked."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.deny: set[str] = set()

    async def check(self, role: Principal, action: str, *args: Any, **kwargs: Any) -> Verdict:
        self.asked.append(action)
        return Verdict(action not in self.deny)


class Controller(ReplicationController):
    """Passes run on one event loop of its own (its wake-up event is bound to one)."""

    runner = asyncio.Runner()

    async def _role(self, arn: str, source: Bucket) -> Principal:
        return Principal(PrincipalKind.ASSUMED_ROLE, ACCOUNT, f"arn:aws:sts::{ACCOUNT}:assumed-role/r/s",
                         "AROA:s", "s", role_arn=arn)


def rule(dest: str, **extra: Any) -> dict[str, Any]:
    return {"ID": f"to-{dest}", "Priority": 1, "Status": "Enabled", "Filter": {},
            "DeleteMarkerReplication": {"Status": "Disabled"}, "Destination": {"Bucket": f"arn:aws:s3:::{dest}"},
            **extra}


BOTH_WAYS = {"SourceSelectionCriteria": {"ReplicaModifications": {"Status": "Enabled"}}}


def configure(db: Database, bucket: str, *rules: dict[str, Any]) -> None:
    text = stored_configuration({"Role": ROLE, "Rules": list(rules)})
    db.write_sync(lambda c: store.update_bucket(c, bucket, replication=text))


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'm.sqlite3'}")
    database.migrate()
    for name in ("src", "dst"):
        database.write_sync(lambda c, n=name: store.insert_bucket(  # type: ignore[misc]
            c, Bucket(n, ACCOUNT, "us-east-1", EARLIER, "Enabled", None, None, None)))
    configure(database, "src", rule("dst"))
    yield database
    database.close()


@pytest.fixture
def data(tmp_path: Path) -> Iterator[ObjectData]:
    objects = ObjectData(tmp_path / "s3", ["a", "b", "c"])
    yield objects
    objects.close()


@pytest.fixture(autouse=True)
def loop() -> Iterator[None]:
    Controller.runner = asyncio.Runner()
    yield
    Controller.runner.close()


@pytest.fixture
def controller(db: Database, data: ObjectData) -> Controller:
    return Controller(db, data, Authorizer(), lambda: None)  # type: ignore[arg-type]


def bucket(db: Database, name: str) -> Bucket:
    found = db.read_sync(lambda c: store.get_bucket(c, name))
    assert found is not None
    return found


def put(db: Database, tags: str | None = None) -> None:
    """A version written to the source an hour ago, PENDING replication."""
    values = {"bucket": "src", "key": "k", "version_id": VERSION, "delete_marker": False, "size": 4,
              "etag": '"e"', "last_modified": EARLIER, "storage_class": "STANDARD", "owner": ACCOUNT,
              "digest": "sha256:" + "a" * 64, "parts": None, "meta": "{}", "checksums": None, "tags": tags,
              "encryption": '{"sse": "AES256"}', "lock": None, "acl": None}
    assert mark_pending(bucket(db, "src"), values)
    db.write_sync(lambda c: store.put_version(c, values, "Enabled"))


def change(db: Database, name: str, field: str, value: str | None) -> bool:
    """What PutObjectTagging (PutObjectAcl, PutObjectRetention ...) writes, in one transaction."""
    found = bucket(db, name)

    def write(conn: sa.Connection) -> bool:
        row = store.get_object(conn, name, "k", VERSION)
        assert row is not None
        SETTERS[field](conn, row.id, value)
        return mark_change(conn, found, "k", VERSION, field)
    return db.write_sync(write)


def version(db: Database, name: str) -> ObjectRow:
    row = db.read_sync(lambda c: store.get_object(c, name, "k", VERSION))
    assert row is not None
    return row


def recorded(db: Database) -> list[tuple[str, str, str]]:
    c = s3_replication_syncs.c
    return [tuple(r) for r in db.read_sync(lambda conn: conn.execute(  # type: ignore[misc]
        sa.select(c.bucket, c.field, c.origin).order_by(c.id)).all())]


def run(controller: Controller) -> None:
    controller.wake()
    controller.runner.run(controller.reconcile())


TAGS = json.dumps([["team", "blue"]])


def test_a_tag_change_of_a_replicated_version_reaches_its_replica_in_place(db: Database,
                                                                           controller: Controller) -> None:
    put(db)
    run(controller)
    before = version(db, "dst")
    assert version(db, "src").replication_status == "COMPLETED" and before.tags is None
    assert change(db, "src", "tags", TAGS)
    # recorded with the change itself: a crash now loses nothing
    assert version(db, "src").replication_status == "PENDING"
    assert recorded(db) == [("src", "tags", "COMPLETED")]
    run(controller)
    after = version(db, "dst")
    assert version(db, "src").replication_status == "COMPLETED" and recorded(db) == []
    assert after.tags == TAGS and after.replication_status == "REPLICA"
    # the same row: not a new version, not moved, its data and Last-Modified as they were
    assert (after.id, after.last_modified, after.digest, after.etag) == (before.id, EARLIER, before.digest,
                                                                         before.etag)
    assert len(db.read_sync(lambda c: store.list_versions(c, "dst", None, "", 10))) == 1
    authorizer = controller.authorizer
    assert isinstance(authorizer, Authorizer) and "s3:ReplicateTags" in authorizer.asked
    # a tag deletion as well
    assert change(db, "src", "tags", None)
    run(controller)
    assert version(db, "dst").tags is None


def test_acl_and_object_lock_changes(db: Database, controller: Controller) -> None:
    put(db)
    run(controller)
    acl = json.dumps([{"Grantee": {"Type": "Group", "URI": "http://acs.amazonaws.com/groups/global/AllUsers"},
                       "Permission": "READ"}])
    lock = json.dumps({"legal_hold": "ON"})
    assert change(db, "src", "acl", acl) and change(db, "src", "lock", lock)
    assert recorded(db) == [("src", "acl", "COMPLETED"), ("src", "lock", "COMPLETED")]
    run(controller)
    assert (version(db, "dst").acl, version(db, "dst").lock) == (acl, lock)
    assert version(db, "src").replication_status == "COMPLETED"


def test_an_acl_is_not_copied_over_an_owner_override(db: Database, controller: Controller) -> None:
    configure(db, "src", rule("dst", Destination={"Bucket": "arn:aws:s3:::dst", "Account": ACCOUNT,
                                                  "AccessControlTranslation": {"Owner": "Destination"}}))
    put(db)
    run(controller)
    assert change(db, "src", "acl", json.dumps([]))
    run(controller)
    assert version(db, "dst").acl is None and version(db, "src").replication_status == "COMPLETED"


def test_a_refused_change_fails_the_version(db: Database, controller: Controller) -> None:
    put(db)
    run(controller)
    authorizer = controller.authorizer
    assert isinstance(authorizer, Authorizer)
    authorizer.deny = {"s3:ReplicateTags"}
    assert change(db, "src", "tags", TAGS)
    run(controller)
    assert version(db, "src").replication_status == "FAILED" and recorded(db) == []
    assert version(db, "dst").tags is None
    # a FAILED version records no more changes (as S3, which does not retry it)
    assert not change(db, "src", "tags", None) and recorded(db) == []


def test_what_records_nothing(db: Database, controller: Controller) -> None:
    put(db)
    run(controller)
    # a replica without ReplicaModifications in a rule of its bucket: its changes stay on it
    assert not change(db, "dst", "tags", TAGS)
    configure(db, "dst", rule("src"))
    assert not change(db, "dst", "tags", TAGS)
    assert version(db, "dst").replication_status == "REPLICA" and version(db, "src").tags is None
    # a source bucket whose configuration is gone
    db.write_sync(lambda c: store.update_bucket(c, "src", replication=None))
    assert not change(db, "src", "tags", TAGS) and recorded(db) == []


def test_a_change_during_the_first_replication_is_not_lost(db: Database, data: ObjectData) -> None:
    class Racing(Controller):
        """Changes the version's tags after reading it, before committing its replica."""

        async def _destination(self, source: Bucket, rule: Any) -> Bucket:
            if version(db, "src").tags is None:
                assert change(db, "src", "tags", TAGS)
            return await super()._destination(source, rule)

    racing = Racing(db, data, Authorizer(), lambda: None)  # type: ignore[arg-type]
    put(db)
    run(racing)
    if version(db, "src").replication_status == "PENDING":  # (the same pass may already have copied it)
        run(racing)
    assert version(db, "src").replication_status == "COMPLETED" and recorded(db) == []
    assert version(db, "dst").tags == TAGS


def test_a_replica_change_goes_back_with_replica_modifications_and_not_again(db: Database,
                                                                             controller: Controller) -> None:
    configure(db, "src", rule("dst", **BOTH_WAYS))
    configure(db, "dst", rule("src", **BOTH_WAYS))
    put(db)
    run(controller)
    assert change(db, "dst", "tags", TAGS)
    assert version(db, "dst").replication_status == "PENDING"  # (as S3 reports a replica being synced)
    assert recorded(db) == [("dst", "tags", "REPLICA")]
    run(controller)
    source, replica = version(db, "src"), version(db, "dst")
    assert source.tags == TAGS and replica.replication_status == "REPLICA"
    # the copy made by replication is not itself a change: nothing goes back and forth
    assert source.replication_status == "COMPLETED" and recorded(db) == []
    assert source.last_modified == replica.last_modified == EARLIER
    # and the source's own changes still reach the replica
    assert change(db, "src", "tags", None)
    run(controller)
    assert version(db, "dst").tags is None and recorded(db) == []
    assert version(db, "dst").replication_status == "REPLICA"


def test_sync_targets_keep_a_replica_whose_selecting_tags_were_removed() -> None:
    text = stored_configuration({"Role": ROLE, "Rules": [
        rule("d1", Filter={"And": {"Prefix": "a", "Tags": [{"Key": "copy", "Value": "yes"}]}}),
        rule("d2", ID="other", Priority=2, Filter={"Prefix": "b"})]})
    config = compiled(text)
    assert [r.destination for r in config.targets("a1", {})] == []
    assert [r.destination for r in config.sync_targets("a1", {})] == ["d1"]
    assert [r.destination for r in config.sync_targets("a1", {"copy": "yes"})] == ["d1"]
    assert config.sync_targets("c", {}) == []
    assert not config.rules[0].replica_modifications


def test_a_lock_change_never_weakens_the_retention_of_the_other_copy() -> None:
    """The replica's own COMPLIANCE retention (its bucket's default) survives any change of the
    source's lock: a legal hold is copied, a retention only where it is no weaker."""
    now = datetime(2030, 1, 1, tzinfo=UTC)

    def lock(mode: str | None = None, days: int = 0, hold: str | None = None) -> str:
        value: dict[str, str] = {}
        if mode:
            value.update(mode=mode, until=(now + timedelta(days=days)).isoformat())
        if hold:
            value["legal_hold"] = hold
        return json.dumps(value)

    replica = lock("COMPLIANCE", 365)
    held = json.loads(str(merged_lock(replica, lock(hold="ON"), now)))
    assert (held["mode"], held["legal_hold"]) == ("COMPLIANCE", "ON")
    assert json.loads(str(merged_lock(replica, lock("COMPLIANCE", 10), now)))["until"] == json.loads(replica)["until"]
    assert json.loads(str(merged_lock(replica, lock("GOVERNANCE", 900), now)))["mode"] == "COMPLIANCE"
    assert json.loads(str(merged_lock(replica, None, now)))["mode"] == "COMPLIANCE"
    longer = lock("COMPLIANCE", 900)
    assert json.loads(str(merged_lock(replica, longer, now)))["until"] == json.loads(longer)["until"]
    assert json.loads(str(merged_lock(lock("GOVERNANCE", 900), lock("COMPLIANCE", 5), now)))["mode"] == "COMPLIANCE"
    expired = lock("COMPLIANCE", -1)
    assert json.loads(str(merged_lock(expired, lock("GOVERNANCE", 3), now)))["mode"] == "GOVERNANCE"
    assert merged_lock(None, None, now) is None


def test_a_change_made_after_the_version_was_listed_reaches_the_replica(db: Database, data: ObjectData) -> None:
    """The controller lists PENDING versions, then replicates each: a tag change committed in
    between is in the replica (it was read again), not settled and lost."""
    class Racing(Controller):
        async def replicate(self, row: ObjectRow) -> None:
            if version(db, "src").tags is None:
                assert change(db, "src", "tags", TAGS)  # committed after ``row`` was listed
            await super().replicate(row)

    racing = Racing(db, data, Authorizer(), lambda: None)
    put(db)
    run(racing)
    if version(db, "src").replication_status == "PENDING":
        run(racing)
    assert version(db, "dst").tags == TAGS
    assert version(db, "src").replication_status == "COMPLETED"


def test_the_records_of_a_deleted_version_are_forgotten(db: Database) -> None:
    put(db)
    db.write_sync(lambda c: c.execute(sa.update(s3_objects).values(replication_status="COMPLETED")))
    assert change(db, "src", "tags", TAGS) and recorded(db)
    assert db.write_sync(forget_orphans) == 0  # (its version is there)
    db.write_sync(lambda c: c.execute(sa.delete(s3_objects).where(s3_objects.c.bucket == "src")))
    assert db.write_sync(forget_orphans) == 1 and recorded(db) == []
