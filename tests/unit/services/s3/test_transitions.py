"""Storage-class transitions and restores without a server: S3's checks of a rule's transitions,
the waterfall, the lifecycle controller's moves (with their events and the copies a one-zone
version needs) and the restore controller, on every metadata backend."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from minicloud.aws.errors import ServiceError
from minicloud.services.s3 import archive, lifecycle, store, transitions
from minicloud.services.s3 import store as store_rows
from minicloud.services.s3.base import S3Base
from minicloud.services.s3.data import ObjectData
from minicloud.services.s3.events import service_notice
from minicloud.services.s3.expiry import LifecycleController
from minicloud.services.s3.restore import Begin, RestoreController, copy_expiry, restore_request
from minicloud.services.s3.scrub import every_zone_digests
from minicloud.services.s3.store import Bucket, ObjectRow
from minicloud.services.s3.tables import s3_blobs, s3_event_outbox
from minicloud.storage.blobs import Digest
from minicloud.storage.metadata.db import Database

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
_serial = itertools.count(1)
ARN = "arn:aws:lambda:us-east-1:111111111111:function:f"


def rule(**actions: Any) -> dict[str, Any]:
    return {"ID": "r", "Status": "Enabled", "Filter": {"Prefix": "logs/"}, **actions}


def refusal(bad: dict[str, Any]) -> ServiceError:
    with pytest.raises(ServiceError) as err:
        lifecycle.check_rule(bad)
    return err.value


def test_a_rules_transitions_follow_the_waterfall_and_come_before_expiration() -> None:
    lifecycle.check_rule(rule(Transitions=[{"Days": 30, "StorageClass": "STANDARD_IA"},
                                           {"Days": 60, "StorageClass": "INTELLIGENT_TIERING"},
                                           {"Days": 90, "StorageClass": "GLACIER_IR"},
                                           {"Days": 180, "StorageClass": "GLACIER"},
                                           {"Days": 270, "StorageClass": "DEEP_ARCHIVE"}],
                              Expiration={"Days": 271}))
    lifecycle.check_rule(rule(Transitions=[{"Days": 0, "StorageClass": "GLACIER"}]))
    error = refusal(rule(Transitions=[{"Days": 30, "StorageClass": "STANDARD_IA"},
                                      {"Days": 59, "StorageClass": "GLACIER"}]))
    assert error.code == "InvalidArgument" and error.message == (
        "'Days' in the Transition action for StorageClass 'GLACIER' for filter '(prefix=logs/)' must be 30 days "
        "more than 'filter '(prefix=logs/)'' in the Transition action for StorageClass 'STANDARD_IA'")
    error = refusal(rule(Transitions=[{"Days": 30, "StorageClass": "GLACIER_IR"},
                                      {"Days": 100, "StorageClass": "DEEP_ARCHIVE"}]))
    assert "must be 90 days more than" in error.message  # GLACIER_IR's minimum storage duration
    assert refusal(rule(Transitions=[{"Days": 5, "StorageClass": "DEEP_ARCHIVE"},
                                     {"Days": 100, "StorageClass": "GLACIER"}])).code == "InvalidArgument"
    error = refusal(rule(Expiration={"Days": 180}, Transitions=[{"Days": 180, "StorageClass": "GLACIER"}]))
    assert error.message == ("'Days' in the Expiration action for filter '(prefix=logs/)' must be greater than "
                             "'Days' in the Transition action")
    day = datetime(2030, 1, 1, tzinfo=UTC)
    lifecycle.check_rule(rule(Transitions=[{"Date": day, "StorageClass": "STANDARD_IA"},
                                           {"Date": day + timedelta(days=30), "StorageClass": "GLACIER"}],
                              Expiration={"Date": day + timedelta(days=31)}))
    assert refusal(rule(Transitions=[{"Date": day, "StorageClass": "GLACIER"}],
                        Expiration={"Date": day})).code == "InvalidArgument"
    assert refusal(rule(Transitions=[{"Date": day, "StorageClass": "GLACIER"}],
                        Expiration={"Days": 10})).code == "InvalidRequest"
    assert refusal(rule(Transitions=[{"Date": day, "StorageClass": "GLACIER"},
                                     {"Days": 10, "StorageClass": "DEEP_ARCHIVE"}])).code == "InvalidRequest"
    error = refusal(rule(Transitions=[{"Days": 1, "StorageClass": "GLACIER"},
                                      {"Days": 200, "StorageClass": "GLACIER"}]))
    assert (error.code, error.message) == (
        "InvalidRequest", "'StorageClass' must be different for 'Transition' actions in same 'Rule' with filter "
                          "'(prefix=logs/)'")


def test_noncurrent_transitions_are_checked_alike() -> None:
    lifecycle.check_rule(rule(NoncurrentVersionTransitions=[
        {"NoncurrentDays": 30, "StorageClass": "ONEZONE_IA", "NewerNoncurrentVersions": 3},
        {"NoncurrentDays": 60, "StorageClass": "GLACIER"}], NoncurrentVersionExpiration={"NoncurrentDays": 61}))
    assert refusal(rule(NoncurrentVersionTransitions=[{"NoncurrentDays": 30, "StorageClass": "GLACIER"}],
                        NoncurrentVersionExpiration={"NoncurrentDays": 30})).code == "InvalidArgument"
    assert refusal(rule(NoncurrentVersionTransitions=[
        {"NoncurrentDays": 30, "StorageClass": "STANDARD_IA"},
        {"NoncurrentDays": 40, "StorageClass": "DEEP_ARCHIVE"}])).code == "InvalidArgument"
    assert refusal(rule(NoncurrentVersionTransitions=[
        {"NoncurrentDays": 30, "StorageClass": "GLACIER"}, {"NoncurrentDays": 300, "StorageClass": "GLACIER"}])
    ).code == "InvalidRequest"
    for newer in (0, 101):
        transition = {"NoncurrentDays": 1, "StorageClass": "GLACIER", "NewerNoncurrentVersions": newer}
        assert refusal(rule(NoncurrentVersionTransitions=[transition])).code == "InvalidArgument"


def test_filters_are_named_as_in_s3_messages() -> None:
    assert transitions.filter_text({"Prefix": "a/"}) == "(prefix=a/)"
    assert transitions.filter_text({"Filter": {}}) == "(prefix=)"
    assert transitions.filter_text({"Filter": {"And": {"Prefix": "p/", "Tags": [{"Key": "k", "Value": "v"}],
                                                       "ObjectSizeGreaterThan": 5}}}) == (
        "(prefix=p/ and tag: key=k, value=v and objectsizegreaterthan=5)")


def test_the_waterfall_and_the_minimum_size() -> None:
    assert transitions.allowed("STANDARD", "ONEZONE_IA") and transitions.allowed("INTELLIGENT_TIERING", "GLACIER_IR")
    for source, target in [("GLACIER", "STANDARD_IA"), ("ONEZONE_IA", "GLACIER_IR"), ("ONEZONE_IA", "STANDARD_IA"),
                           ("INTELLIGENT_TIERING", "STANDARD_IA"), ("DEEP_ARCHIVE", "GLACIER"), ("GLACIER", "GLACIER"),
                           ("STANDARD_IA", "STANDARD")]:
        assert not transitions.allowed(source, target), (source, target)
    assert transitions.coldest("STANDARD", ["STANDARD_IA", "GLACIER", "ONEZONE_IA"]) == "GLACIER"
    assert transitions.coldest("ONEZONE_IA", ["GLACIER_IR", "STANDARD_IA"]) is None
    assert transitions.coldest("GLACIER", ["GLACIER", "DEEP_ARCHIVE"]) == "DEEP_ARCHIVE"
    small = transitions.SMALL_OBJECT - 1
    assert not transitions.size_allows(small, "GLACIER", "all_storage_classes_128K", sized_rule=False)
    assert transitions.size_allows(small, "GLACIER", "varies_by_storage_class", sized_rule=False)
    assert not transitions.size_allows(small, "GLACIER_IR", "varies_by_storage_class", sized_rule=False)
    assert transitions.size_allows(small, "STANDARD_IA", "all_storage_classes_128K", sized_rule=True)
    assert transitions.size_allows(small + 1, "STANDARD_IA", "all_storage_classes_128K", sized_rule=False)


# -- the controllers, on the metadata store ------------------------------------------------------------

def _bucket(db: Database, name: str, rules: list[dict[str, Any]], versioning: str | None = None,
            minimum: str = "all_storage_classes_128K") -> Bucket:
    notification = {"LambdaFunctionConfigurations": [
        {"Id": "all", "LambdaFunctionArn": ARN, "Events": ["s3:LifecycleTransition", "s3:ObjectRestore:*"]}]}
    db.write_sync(lambda c: store.insert_bucket(c, Bucket(name, "111111111111", "us-east-1", NOW, versioning,
                                                          None, None, None)))
    config = json.dumps({"Rules": rules, "TransitionDefaultMinimumObjectSize": minimum}, default=str)
    db.write_sync(lambda c: store.update_bucket(c, name, lifecycle=config, notification=json.dumps(notification)))
    found = db.read_sync(lambda c: store.get_bucket(c, name))
    assert found is not None
    return found


def _put(db: Database, bucket: Bucket, key: str, size: int, storage_class: str = "STANDARD",
         at: datetime = NOW, digest: str | None = None) -> ObjectRow:
    serial = next(_serial)
    version = f"v{serial:031d}" if bucket.versioning else store.NULL_VERSION
    values = {"bucket": bucket.name, "key": key, "version_id": version, "delete_marker": False, "size": size,
              "etag": '"e"', "last_modified": at, "storage_class": storage_class, "owner": "111111111111",
              "digest": digest or f"sha256:{serial:064x}", "parts": None,
              "meta": "{}", "checksums": None, "tags": None}
    db.write_sync(lambda c: store.put_version(c, values, bucket.versioning))
    row = db.read_sync(lambda c: store.get_object(c, bucket.name, key, version))
    assert row is not None
    return row


def _class(db: Database, row: ObjectRow) -> str:
    found = db.read_sync(lambda c: store.get_object_by_id(c, row.id))
    assert found is not None
    return found.storage_class


def _events(db: Database, bucket: str) -> list[dict[str, Any]]:
    rows = db.read_sync(lambda c: c.execute(sa.select(s3_event_outbox.c.event_json)
                                             .where(s3_event_outbox.c.bucket == bucket)).all())
    return [json.loads(r[0])["Records"][0] for r in rows]


class Controller(LifecycleController):
    def __init__(self, db: Database) -> None:
        self.widened: list[str] = []

        async def release(_: list[str]) -> None:
            return None

        async def widen(digests: list[str]) -> set[str]:
            self.widened += digests
            return set()
        super().__init__(db, release, day_seconds=1.0, widen=widen)


def test_current_versions_move_down_the_waterfall(metadata_db: Database) -> None:
    db = metadata_db
    bucket = _bucket(db, "current", [
        rule(Transitions=[{"Days": 30, "StorageClass": "STANDARD_IA"}, {"Days": 60, "StorageClass": "GLACIER"}]),
        {"ID": "dated", "Status": "Enabled", "Filter": {"Prefix": "dated/"},
         "Transitions": [{"Date": NOW - timedelta(days=1), "StorageClass": "DEEP_ARCHIVE"}]},
        {"ID": "later", "Status": "Enabled", "Filter": {"Prefix": "later/"},
         "Transitions": [{"Date": NOW + timedelta(days=1), "StorageClass": "DEEP_ARCHIVE"}]}])
    young = _put(db, bucket, "logs/young", 200_000, at=NOW - timedelta(seconds=10))
    ia = _put(db, bucket, "logs/ia", 200_000, at=NOW - timedelta(seconds=45))
    old = _put(db, bucket, "logs/old", 200_000, at=NOW - timedelta(seconds=90))
    small = _put(db, bucket, "logs/small", 1000, at=NOW - timedelta(seconds=90))
    narrow = _put(db, bucket, "logs/narrow", 200_000, "ONEZONE_IA", at=NOW - timedelta(seconds=90))
    cold = _put(db, bucket, "logs/cold", 200_000, "DEEP_ARCHIVE", at=NOW - timedelta(seconds=90))
    dated = _put(db, bucket, "dated/x", 200_000)
    later = _put(db, bucket, "later/x", 200_000)
    refs = db.read_sync(lambda c: dict(c.execute(sa.select(s3_blobs.c.digest, s3_blobs.c.refs)).all()))
    controller = Controller(db)
    asyncio.run(controller.apply(bucket, NOW))
    assert [_class(db, r) for r in (young, ia, old, small, narrow, cold, dated, later)] == [
        "STANDARD", "STANDARD_IA", "GLACIER", "STANDARD", "GLACIER", "DEEP_ARCHIVE", "DEEP_ARCHIVE", "STANDARD"]
    assert controller.widened == [narrow.digest]  # it left one zone: every zone holds it now
    assert db.read_sync(lambda c: dict(c.execute(sa.select(s3_blobs.c.digest, s3_blobs.c.refs)).all())) == refs
    events = {e["s3"]["object"]["key"]: e for e in _events(db, "current")}
    assert set(events) == {"logs/ia", "logs/old", "logs/narrow", "dated/x"}
    event = events["logs/old"]
    assert event["eventName"] == "LifecycleTransition" and event["eventVersion"] == "2.3"
    assert event["userIdentity"] == {"principalId": "s3.amazonaws.com"}
    assert event["lifecycleEventData"] == {"transitionEventData": {"destinationStorageClass": "GLACIER"}}
    asyncio.run(controller.apply(bucket, NOW))  # nothing more is due: nothing moves, nothing is sent
    assert len(_events(db, "current")) == 4 and _class(db, ia) == "STANDARD_IA"


def test_noncurrent_versions_move_after_their_noncurrent_days(metadata_db: Database) -> None:
    db = metadata_db
    bucket = _bucket(db, "noncurrent", [rule(NoncurrentVersionTransitions=[
        {"NoncurrentDays": 10, "StorageClass": "GLACIER", "NewerNoncurrentVersions": 1}])], versioning="Enabled",
        minimum="varies_by_storage_class")
    oldest = _put(db, bucket, "logs/k", 1000, at=NOW - timedelta(seconds=100))
    middle = _put(db, bucket, "logs/k", 1000, at=NOW - timedelta(seconds=50))
    newer = _put(db, bucket, "logs/k", 1000, at=NOW - timedelta(seconds=5))  # made ``middle`` noncurrent 5 s ago
    current = _put(db, bucket, "logs/k", 1000, at=NOW - timedelta(seconds=1))
    asyncio.run(Controller(db).apply(bucket, NOW))
    # ``newer`` is the one newest noncurrent version kept; ``middle`` turned noncurrent only 5 "days" ago
    assert [_class(db, r) for r in (oldest, middle, newer, current)] == ["GLACIER", "STANDARD", "STANDARD", "STANDARD"]
    asyncio.run(Controller(db).apply(bucket, NOW + timedelta(seconds=6)))
    assert [_class(db, r) for r in (oldest, middle, newer, current)] == ["GLACIER", "GLACIER", "STANDARD", "STANDARD"]


def test_a_blob_shared_with_a_standard_object_stays_on_every_zone(metadata_db: Database) -> None:
    db = metadata_db
    bucket = _bucket(db, "shared", [rule(Transitions=[{"Days": 30, "StorageClass": "ONEZONE_IA"}])])
    shared = "sha256:" + "5" * 64
    moved = _put(db, bucket, "logs/a", 200_000, at=NOW - timedelta(seconds=60), digest=shared)
    _put(db, bucket, "keep/b", 200_000, at=NOW - timedelta(seconds=60), digest=shared)
    alone = _put(db, bucket, "logs/c", 200_000, at=NOW - timedelta(seconds=60))
    asyncio.run(Controller(db).apply(bucket, NOW))
    assert _class(db, moved) == _class(db, alone) == "ONEZONE_IA"
    everywhere = db.read_sync(every_zone_digests)
    assert shared in everywhere and alone.digest not in everywhere  # (its copies stay; the scrubber only verifies)


def test_restores_begin_extend_complete_and_expire(metadata_db: Database) -> None:
    db = metadata_db
    bucket = _bucket(db, "restores", [rule(Expiration={"Days": 1000})])
    row = _put(db, bucket, "logs/cold", 10, "GLACIER")

    def begin(days: int, now: datetime) -> int:
        notice = service_notice(bucket, "s3:ObjectRestore:Post", now)
        return db.write_sync(lambda c: Begin(days, "Standard", now, 1.0, 2.0, notice).run(c, row))
    assert begin(10, NOW) == 202
    with pytest.raises(ServiceError) as err:
        begin(10, NOW + timedelta(seconds=1))
    assert (err.value.code, err.value.status) == ("RestoreAlreadyInProgress", 409)
    restoring = db.read_sync(lambda c: store.get_object_by_id(c, row.id))
    assert restoring is not None and archive.restore_header(restoring, NOW) == 'ongoing-request="true"'
    assert not archive.readable(restoring, NOW)
    controller = RestoreController(db, day_seconds=1.0, delay=2.0)
    db.write_sync(lambda c: controller.advance(c, restoring, NOW + timedelta(seconds=2)))
    done = db.read_sync(lambda c: store.get_object_by_id(c, row.id))
    assert done is not None and archive.readable(done, NOW + timedelta(seconds=3))
    assert archive.restore_header(done, NOW + timedelta(seconds=3)) == (
        'ongoing-request="false", expiry-date="Sun, 29 Nov 2026 12:00:10 GMT"')
    assert begin(10, NOW + timedelta(seconds=4)) == 200  # extended: ten "days" from now
    extended = db.read_sync(lambda c: store.get_object_by_id(c, row.id))
    assert extended is not None and not archive.readable(extended, NOW + timedelta(seconds=14))
    db.write_sync(lambda c: controller.advance(c, extended, NOW + timedelta(seconds=14)))
    gone = db.read_sync(lambda c: store.get_object_by_id(c, row.id))
    assert gone is not None and gone.restore is None and archive.restore_header(gone, NOW) is None
    names = [e["eventName"] for e in _events(db, "restores")]
    assert names == ["ObjectRestore:Post", "ObjectRestore:Completed", "ObjectRestore:Delete"]
    completed = _events(db, "restores")[1]
    assert completed["glacierEventData"]["restoreEventData"] == {
        "lifecycleRestorationExpiryTime": "2026-11-29T12:00:10.000Z", "lifecycleRestoreStorageClass": "GLACIER"}


def test_restore_requests_are_checked_as_s3_does() -> None:
    def row(storage_class: str) -> ObjectRow:
        return ObjectRow(1, "b", "k", "null", True, False, 1, '"e"', NOW, storage_class, "1", None, None, None,
                         None, None)
    assert restore_request({"Days": 3, "GlacierJobParameters": {"Tier": "Bulk"}}, row("DEEP_ARCHIVE")) == (3, "Bulk")
    assert restore_request({"Days": 3}, row("GLACIER")) == (3, "Standard")
    for request, storage_class, expected in [
            ({"Days": 3}, "STANDARD", "InvalidObjectState"), ({"Days": 3}, "GLACIER_IR", "InvalidObjectState"),
            ({}, "INTELLIGENT_TIERING", "ObjectAlreadyInActiveTierError"),
            ({"Days": 3}, "INTELLIGENT_TIERING", "InvalidArgument"), ({}, "GLACIER", "MalformedXML"),
            ({"Days": -1}, "GLACIER", "InvalidArgument"), ({"Days": 1, "Tier": "Bulk"}, "GLACIER", "MalformedXML"),
            ({"Days": 1, "OutputLocation": {"S3": {}}}, "GLACIER", "MalformedXML"),
            ({"Type": "SELECT"}, "GLACIER", "NotImplemented"),
            ({"Days": 1, "GlacierJobParameters": {"Tier": "Quick"}}, "GLACIER", "MalformedXML")]:
        with pytest.raises(ServiceError) as err:
            restore_request(request, row(storage_class))
        assert err.value.code == expected, (request, storage_class)
    assert copy_expiry(datetime(2026, 1, 1, 15, 30, tzinfo=UTC), 3, lifecycle.DAY) == datetime(2026, 1, 5, tzinfo=UTC)
    assert copy_expiry(NOW, 1, 0.25) == NOW + timedelta(seconds=1)  # (whole seconds, as x-amz-restore tells them)


def test_widening_copies_a_referenced_one_zone_blob_to_every_zone(metadata_db: Database, store: ObjectData) -> None:
    """What the lifecycle controller asks for a version that left ONEZONE_IA: every zone gets a copy
    (only of a blob something still refers to: a released one is not brought back)."""
    async def body(data: bytes) -> AsyncIterator[bytes]:
        yield data

    async def staged_in_one_zone(data: bytes) -> str:
        staged = await store.stage(body(data), "ONEZONE_IA", checksums=set(), limit=1 << 20)
        await staged.commit()
        return staged.digest

    async def scenario() -> tuple[str, str]:
        kept, released = await staged_in_one_zone(os.urandom(300_000)), await staged_in_one_zone(os.urandom(300_000))
        await metadata_db.write(lambda c: store_rows.add_refs(c, [kept]))
        ops = S3Base.__new__(S3Base)
        ops.db, ops.data = metadata_db, store
        await ops.widen([kept, released, kept])
        return kept, released
    kept, released = asyncio.run(scenario())
    assert [r.has(Digest.parse(kept)) for r in store.replicas] == [True] * 3
    assert sum(r.has(Digest.parse(released)) for r in store.replicas) == 1


# -- days no date can hold, and controllers that one bad row or rule cannot stop ----------------------

FAR = 3_000_000  # days: within the protocol's int32, past the year 9999


def test_days_past_the_calendar_are_refused() -> None:
    for bad in (rule(Transitions=[{"Days": FAR, "StorageClass": "GLACIER"}]),
                rule(NoncurrentVersionTransitions=[{"NoncurrentDays": FAR, "StorageClass": "GLACIER"}]),
                rule(Expiration={"Days": FAR}), rule(NoncurrentVersionExpiration={"NoncurrentDays": FAR}),
                rule(AbortIncompleteMultipartUpload={"DaysAfterInitiation": FAR}),
                # (a 90-day gap after the calendar's last day: compared, never added)
                rule(Transitions=[{"Date": datetime(9999, 12, 31, tzinfo=UTC), "StorageClass": "GLACIER_IR"},
                                  {"Date": datetime(9999, 12, 31, tzinfo=UTC), "StorageClass": "DEEP_ARCHIVE"}])):
        assert refusal(bad).code == "InvalidArgument", bad
    lifecycle.check_rule(rule(Transitions=[{"Days": 2_000_000, "StorageClass": "GLACIER"}]))  # (year 7500: fine)
    glacier = ObjectRow(1, "b", "k", "null", True, False, 1, '"e"', NOW, "GLACIER", "1", None, None, None, None, None)
    with pytest.raises(ServiceError) as err:
        restore_request({"Days": FAR}, glacier)
    assert (err.value.code, err.value.status) == ("InvalidArgument", 400)
    assert lifecycle.due_at(NOW, FAR) == lifecycle.NEVER and lifecycle.started_by(NOW, FAR) is None


def test_a_rule_stored_with_such_days_stops_no_rule(metadata_db: Database) -> None:
    """Rules stored before such Days were refused (or damaged): never due, and the others run."""
    db = metadata_db
    bucket = _bucket(db, "poisoned", [
        {"ID": "far", "Status": "Enabled", "Filter": {"Prefix": "far/"},
         "Transitions": [{"Days": FAR, "StorageClass": "GLACIER"}], "Expiration": {"Days": FAR + 1}},
        {"ID": "broken", "Status": "Enabled", "Filter": {"Prefix": "broken/"}, "Expiration": {"Days": "x"}},
        {"ID": "gone", "Status": "Enabled", "Filter": {"Prefix": "gone/"}, "Expiration": {"Days": 1},
         "NoncurrentVersionTransitions": [{"NoncurrentDays": FAR, "StorageClass": "GLACIER"}]}])
    far = _put(db, bucket, "far/x", 200_000, at=NOW - timedelta(seconds=90))
    gone = _put(db, bucket, "gone/x", 200_000, at=NOW - timedelta(seconds=90))
    real = LifecycleController(db, Controller(db).release, day_seconds=lifecycle.DAY)
    asyncio.run(real.apply(bucket, NOW + timedelta(days=2)))
    asyncio.run(Controller(db).apply(bucket, NOW))
    assert _class(db, far) == "STANDARD"
    assert db.read_sync(lambda c: store.get_object_by_id(c, gone.id)) is None
    assert lifecycle.expiration_header(bucket, far) is None  # (HEAD of such an object: no 500)


def _restoring(db: Database, bucket: Bucket, key: str, days: int, asked: datetime) -> ObjectRow:
    row = _put(db, bucket, key, 10, "GLACIER")
    db.write_sync(lambda c: Begin(days, "Standard", asked, lifecycle.DAY, 0.0, None).run(c, row))
    return row


def test_a_restore_that_fails_stalls_no_other(metadata_db: Database) -> None:
    db = metadata_db
    bucket = _bucket(db, "restoring", [rule(Expiration={"Days": 1000})])
    now = datetime.now(UTC)
    far = _restoring(db, bucket, "far", FAR, now - timedelta(seconds=30))  # (accepted before the fix)
    broken = _restoring(db, bucket, "broken", 1, now - timedelta(seconds=20))
    db.write_sync(lambda c: store.set_restore(c, broken.id, '{"ongoing": true}', now - timedelta(seconds=20)))
    victim = _restoring(db, bucket, "victim", 1, now - timedelta(seconds=10))
    asyncio.run(RestoreController(db, lifecycle.DAY, 0.0).reconcile())
    done = db.read_sync(lambda c: store.get_object_by_id(c, victim.id))
    assert done is not None and archive.readable(done, datetime.now(UTC))
    far_done = db.read_sync(lambda c: store.get_object_by_id(c, far.id))
    assert far_done is not None and archive.readable(far_done, datetime.now(UTC))  # its copy lasts "forever"
    with pytest.raises(ServiceError):  # extending it with such Days: refused before it is begun, never a 500
        restore_request({"Days": FAR}, far_done)
    assert db.write_sync(lambda c: Begin(FAR, "Standard", now, lifecycle.DAY, 0.0, None).run(c, far_done)) == 200


# -- what a pass reads and writes -----------------------------------------------------------------------

class Counted(Controller):
    """Counts the write transactions of its passes."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.writes = 0
        write = db.write

        async def counted(fn: Any, *, bulk: bool = False) -> Any:
            self.writes += 1
            return await write(fn, bulk=bulk)
        self.db = type("CountingDb", (), {"read": db.read, "write": staticmethod(counted)})()  # type: ignore[assignment]


def test_a_pass_with_nothing_due_writes_nothing(metadata_db: Database) -> None:
    db = metadata_db
    bucket = _bucket(db, "idle", [rule(Transitions=[{"Days": 30, "StorageClass": "GLACIER"}],
                                       NoncurrentVersionTransitions=[{"NoncurrentDays": 30, "StorageClass": "GLACIER"}],
                                       NoncurrentVersionExpiration={"NoncurrentDays": 60}, Expiration={"Days": 100},
                                       AbortIncompleteMultipartUpload={"DaysAfterInitiation": 7}),
                                  {"ID": "m", "Status": "Enabled", "Filter": {"Prefix": "logs/"},
                                   "Expiration": {"ExpiredObjectDeleteMarker": True}}], versioning="Enabled")
    fresh = _put(db, bucket, "logs/fresh", 200_000, at=NOW - timedelta(seconds=5))
    cold = _put(db, bucket, "logs/cold", 200_000, "DEEP_ARCHIVE", at=NOW - timedelta(seconds=90))
    _put(db, bucket, "logs/k", 200_000, at=NOW - timedelta(seconds=20))
    _put(db, bucket, "logs/k", 200_000, at=NOW - timedelta(seconds=10))  # (noncurrent for 10 "days" only)
    controller = Counted(db)
    asyncio.run(controller.apply(bucket, NOW))
    assert controller.writes == 0 and _class(db, fresh) == "STANDARD" and _class(db, cold) == "DEEP_ARCHIVE"
    # 40 "days" on: ``fresh`` and the noncurrent version move, ``cold`` expires: a write each, no more
    asyncio.run(controller.apply(bucket, NOW + timedelta(seconds=40)))
    assert controller.writes == 3 and _class(db, fresh) == "GLACIER"


def test_expiration_scans_delete_what_is_due_only(metadata_db: Database) -> None:
    db = metadata_db
    bucket = _bucket(db, "expiring", [
        rule(Expiration={"Days": 30}, NoncurrentVersionExpiration={"NoncurrentDays": 10,
                                                                   "NewerNoncurrentVersions": 1}),
        {"ID": "m", "Status": "Enabled", "Filter": {"Prefix": "logs/"},
         "Expiration": {"ExpiredObjectDeleteMarker": True}},
    ], versioning="Enabled")
    old = _put(db, bucket, "logs/old", 10, at=NOW - timedelta(seconds=40))
    young = _put(db, bucket, "logs/young", 10, at=NOW - timedelta(seconds=10))
    v1 = _put(db, bucket, "logs/v", 10, at=NOW - timedelta(seconds=29))  # noncurrent 28 "days": expired
    v2 = _put(db, bucket, "logs/v", 10, at=NOW - timedelta(seconds=28))
    v3 = _put(db, bucket, "logs/v", 10, at=NOW - timedelta(seconds=27))
    asyncio.run(Controller(db).apply(bucket, NOW))

    def versions(key: str) -> list[tuple[int, bool]]:
        rows = db.read_sync(lambda c: store.list_versions(c, bucket.name, None, key, 100))
        return [(r.id, r.delete_marker) for r in rows if r.key == key]
    assert versions("logs/old")[1:] == [(old.id, False)] and versions("logs/old")[0][1]  # hidden by a marker
    assert versions("logs/young") == [(young.id, False)]
    assert [i for i, _ in versions("logs/v")] == [v3.id, v2.id] and v1.id not in [i for i, _ in versions("logs/v")]
    db.write_sync(lambda c: store.delete_version(c, old))  # the marker alone now: removed by the next pass
    asyncio.run(Controller(db).apply(bucket, NOW))
    assert versions("logs/old") == []


# -- a transition out of one zone: data first -----------------------------------------------------------

def test_a_version_leaves_one_zone_only_once_every_zone_holds_it(metadata_db: Database) -> None:
    db = metadata_db
    bucket = _bucket(db, "widened", [rule(Transitions=[{"Days": 30, "StorageClass": "GLACIER"}])])
    narrow = _put(db, bucket, "logs/narrow", 200_000, "ONEZONE_IA", at=NOW - timedelta(seconds=90))
    unlucky = _put(db, bucket, "logs/unlucky", 200_000, "ONEZONE_IA", at=NOW - timedelta(seconds=90))
    seen: list[str] = []

    async def release(_: list[str]) -> None:
        return None

    async def widen(digests: list[str]) -> set[str]:
        seen.extend(_class(db, r) for r in (narrow, unlucky))  # (what the class was while copying)
        return {str(unlucky.digest)}  # this one's copy failed
    asyncio.run(LifecycleController(db, release, 1.0, widen=widen).apply(bucket, NOW))
    assert seen == ["ONEZONE_IA", "ONEZONE_IA"]
    assert (_class(db, narrow), _class(db, unlucky)) == ("GLACIER", "ONEZONE_IA")  # tried again next pass


def test_the_restore_index_is_partial_and_serves_the_due_query(metadata_db: Database) -> None:
    db = metadata_db
    if db.engine.dialect.name != "sqlite":
        definition = db.read_sync(lambda c: c.execute(sa.text(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_s3_objects_restore_due'")).scalar())
        assert definition is not None and "WHERE (restore_due IS NOT NULL)" in definition
        return
    definition = db.read_sync(lambda c: c.execute(sa.text(
        "SELECT sql FROM sqlite_master WHERE name = 'ix_s3_objects_restore_due'")).scalar())
    assert definition is not None and "WHERE restore_due IS NOT NULL" in definition
    compiled = store.restores_due_query(NOW, 5).compile(db.engine)
    params = tuple(str(compiled.params[p]) for p in compiled.positiontup or ())
    plan = db.read_sync(lambda c: c.exec_driver_sql("EXPLAIN QUERY PLAN " + str(compiled), params).all())
    assert any("ix_s3_objects_restore_due" in str(step) for step in plan)
