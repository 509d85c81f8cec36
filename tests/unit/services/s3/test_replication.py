"""S3 replication below the API: which rules select a version, what the write path marks, and the
controller's metadata work (pending versions by their partial index, replicas written once, with
their blob references) on every metadata backend."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from minicloud.services.s3 import store
from minicloud.services.s3.errors import InvalidArgument, InvalidRequest, MalformedXML
from minicloud.services.s3.replication import (
    check_configuration,
    compiled,
    mark_pending,
    stored_configuration,
)
from minicloud.services.s3.replicator import finish, insert_replica, pending_versions
from minicloud.services.s3.store import Bucket
from minicloud.services.s3.tables import s3_blobs, s3_objects
from minicloud.storage.metadata.db import Database

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
DIGEST = "sha256:" + "a" * 64


def v2(dest: str, priority: int, flt: dict[str, Any], markers: str = "Disabled", **extra: Any) -> dict[str, Any]:
    return {"ID": f"{dest}-{priority}", "Priority": priority, "Status": "Enabled", "Filter": flt,
            "DeleteMarkerReplication": {"Status": markers}, "Destination": {"Bucket": f"arn:aws:s3:::{dest}"},
            **extra}


def bucket_with(*rules: dict[str, Any]) -> Bucket:
    text = stored_configuration({"Role": "arn:aws:iam::123456789012:role/r", "Rules": list(rules)})
    return Bucket("src", "123456789012", "us-east-1", NOW, "Enabled", None, None, None, replication=text)


def test_the_highest_priority_rule_governs_each_destination() -> None:
    excluded = {"Or": {"Prefixes": ["logs/tmp"], "Tags": [{"Key": "private", "Value": "1"}]}}
    config = compiled(bucket_with(
        v2("d1", 1, {}, "Enabled"), v2("d1", 7, {"Prefix": "logs/"}, "Disabled"),
        v2("d2", 3, {"And": {"Prefix": "logs/", "Tags": [{"Key": "keep", "Value": "yes"}]}}),
        v2("d3", 4, {"Not": excluded})).replication or "")
    chosen = {r.destination: r.rule_id for r in config.targets("logs/a", {"keep": "yes"})}
    assert chosen == {"d1": "d1-7", "d2": "d2-3", "d3": "d3-4"}
    assert {r.destination for r in config.targets("logs/tmp/x", {})} == {"d1"}
    assert {r.destination for r in config.targets("other", {"private": "1"})} == {"d1"}
    # delete markers: the governing rule decides (d1's higher-priority rule replicates none under logs/)
    assert [r.destination for r in config.targets("other", None, delete_marker=True)] == ["d1"]
    assert config.targets("logs/a", None, delete_marker=True) == []
    # SSE-KMS versions only where the rule opts in
    assert config.targets("other", {}, sse_kms=True) == []


def test_disabled_rules_select_nothing_and_v1_rules_replicate_markers() -> None:
    v1 = {"ID": "v1", "Prefix": "a", "Status": "Enabled", "Destination": {"Bucket": "arn:aws:s3:::d"}}
    off = {**v1, "ID": "off", "Prefix": "b", "Status": "Disabled"}
    config = compiled(bucket_with(v1, off).replication or "")
    assert [r.rule_id for r in config.targets("a1", None, delete_marker=True)] == ["v1"]
    assert config.targets("b1", {}) == []


def _values(**extra: Any) -> dict[str, Any]:
    return {"bucket": "src", "key": "k", "version_id": "v" * 32, "delete_marker": False, "size": 4, "etag": '"e"',
            "last_modified": NOW, "storage_class": "STANDARD", "owner": "123456789012", "digest": DIGEST,
            "parts": None, "meta": "{}", "checksums": None, "tags": None, "encryption": '{"sse": "AES256"}',
            "lock": None, "acl": None, **extra}


def test_the_write_path_marks_what_a_rule_selects() -> None:
    bucket = bucket_with(v2("d", 1, {"Tag": {"Key": "copy", "Value": "yes"}}))
    plain = _values()
    assert not mark_pending(bucket, plain) and "replication_status" not in plain
    tagged = _values(tags=json.dumps([["copy", "yes"]]))
    assert mark_pending(bucket, tagged) and tagged["replication_status"] == "PENDING"
    archived = _values(tags=json.dumps([["copy", "yes"]]), storage_class="GLACIER")
    assert not mark_pending(bucket, archived)
    kms = _values(tags=json.dumps([["copy", "yes"]]), encryption=json.dumps({"sse": "aws:kms", "key_arn": "k"}))
    assert not mark_pending(bucket, kms)
    unconfigured = Bucket("src", "123456789012", "us-east-1", NOW, "Enabled", None, None, None)
    assert not mark_pending(unconfigured, _values())


@pytest.mark.parametrize(("rules", "error"), [
    ([], MalformedXML),
    ([v2("d", 1, {"Prefix": "a", "Tag": {"Key": "k", "Value": "v"}})], MalformedXML),
    ([{**v2("d", 1, {}), "Prefix": "a"}], MalformedXML),
    ([v2("d", 1, {}, Status="Maybe")], MalformedXML),
    ([v2("d", 1, {}), v2("e", 1, {})], InvalidRequest),
    ([{**v2("d", 1, {}), "ID": "same"}, {**v2("e", 2, {}), "ID": "same"}], InvalidArgument),
    ([{k: v for k, v in v2("d", 1, {}).items() if k != "DeleteMarkerReplication"}], InvalidRequest),
    ([v2("src", 1, {})], InvalidRequest),
    ([{"Prefix": "a", "Status": "Enabled", "Destination": {"Bucket": "arn:aws:s3:::d"}},
      {"Prefix": "b", "Status": "Enabled", "Destination": {"Bucket": "arn:aws:s3:::e"}}], InvalidRequest),
])
def test_invalid_configurations(rules: list[dict[str, Any]], error: type[Exception]) -> None:
    with pytest.raises(error):
        check_configuration({"Role": "arn:aws:iam::123456789012:role/r", "Rules": rules}, "src")


def test_stored_configuration_fills_in_ids_and_priorities() -> None:
    rule = {k: v for k, v in v2("d", 0, {}).items() if k not in ("ID", "Priority")}
    assert check_configuration({"Role": "r", "Rules": [rule]}, "src") == ["d"]
    (stored,) = json.loads(stored_configuration({"Role": "r", "Rules": [rule]}))["Rules"]
    assert stored["ID"] and stored["Priority"] == 0 and stored["Filter"] == {}


def _refs(db: Database) -> dict[str, int]:
    return dict(db.read_sync(lambda c: c.execute(sa.select(s3_blobs.c.digest, s3_blobs.c.refs)).all()))


def test_pending_versions_become_replicas_once(metadata_db: Database) -> None:
    db = metadata_db
    db.write_sync(lambda c: store.put_version(c, _values(key="done"), "Enabled"))
    db.write_sync(lambda c: store.put_version(c, _values(replication_status="PENDING"), "Enabled"))
    (row,) = db.read_sync(lambda c: pending_versions(c, 10))
    assert row.key == "k" and row.replication_status == "PENDING"
    replica = {**_values(bucket="dst", replication_status="REPLICA")}
    assert db.write_sync(lambda c: finish(c, row.id, [replica], "COMPLETED"))
    assert not db.write_sync(lambda c: finish(c, row.id, [replica], "COMPLETED"))  # done already: nothing more
    assert db.read_sync(lambda c: pending_versions(c, 10)) == []
    copy = db.read_sync(lambda c: store.get_object(c, "dst", "k"))
    assert copy is not None and copy.replication_status == "REPLICA" and copy.latest and copy.last_modified == NOW
    assert _refs(db) == {DIGEST: 3}  # the source's two versions and the replica share the blob
    db.write_sync(lambda c: insert_replica(c, replica))  # the same version again: no second row
    assert len(db.read_sync(lambda c: store.list_versions(c, "dst", None, "", 10))) == 1


def test_an_older_replica_arriving_late_is_not_the_latest(metadata_db: Database) -> None:
    db = metadata_db
    newer = _values(bucket="dst", version_id="n" * 32, replication_status="REPLICA")
    older = _values(bucket="dst", version_id="o" * 32, replication_status="REPLICA",
                    last_modified=NOW - timedelta(minutes=1), digest=None, parts=json.dumps([[DIGEST, 2], [DIGEST, 2]]))
    db.write_sync(lambda c: insert_replica(c, newer))
    db.write_sync(lambda c: insert_replica(c, older))
    latest = db.read_sync(lambda c: store.get_object(c, "dst", "k"))
    assert latest is not None and latest.version_id == "n" * 32
    assert _refs(db) == {DIGEST: 3}  # one for the newer version, one per part of the older


def test_the_partial_index_serves_the_pending_query(metadata_db: Database) -> None:
    db = metadata_db
    if db.engine.dialect.name != "sqlite":
        indexes = db.read_sync(lambda c: sa.inspect(c).get_indexes("s3_objects"))
        assert "ix_s3_objects_replication_pending" in {i["name"] for i in indexes}
        return
    query = (sa.select(s3_objects.c.id).where(s3_objects.c.replication_status == sa.literal_column("'PENDING'"))
             .order_by(s3_objects.c.id).limit(5))
    plan = db.read_sync(lambda c: c.execute(sa.text("EXPLAIN QUERY PLAN " + str(query.compile(
        c, compile_kwargs={"literal_binds": True})))).all())
    assert any("ix_s3_objects_replication_pending" in str(step) for step in plan)


def _source_versions(db: Database, *versions: tuple[str, datetime, bool]) -> dict[str, int]:
    """Versions of src/k, in this order; their row ids (the source's sequence)."""
    for version_id, modified, marker in versions:
        db.write_sync(lambda c, v=version_id, m=modified, d=marker: store.put_version(  # type: ignore[misc]
            c, _values(version_id=v, last_modified=m, delete_marker=d, digest=None if d else DIGEST), "Enabled"))
    rows = db.read_sync(lambda c: store.list_versions(c, "src", None, "k", 100))
    return {row.version_id: row.id for row in rows}


def _replicate(db: Database, ids: dict[str, int], version_id: str) -> None:
    row = db.read_sync(lambda c: store.get_object(c, "src", "k", version_id))
    assert row is not None
    values = {name: getattr(row, name) for name in _values()} | {"bucket": "dst", "replication_status": "REPLICA"}
    db.write_sync(lambda c: insert_replica(c, values, ("src", ids[version_id])))


def _dst_versions(db: Database) -> list[tuple[str, bool]]:
    return [(r.version_id, r.latest) for r in db.read_sync(lambda c: store.list_versions(c, "dst", None, "k", 100))]


def test_replicas_arriving_out_of_order_keep_the_source_order(metadata_db: Database) -> None:
    db = metadata_db
    w1, w2, w3 = "1" * 32, "2" * 32, "3" * 32
    ids = _source_versions(db, (w1, NOW, False), (w2, NOW + timedelta(seconds=5), False),
                           (w3, NOW + timedelta(seconds=9), False))
    for version in (w2, w1, w3):  # w1 arrives late
        _replicate(db, ids, version)
    assert _dst_versions(db) == [(w3, True), (w2, False), (w1, False)]
    row = db.read_sync(lambda c: store.get_object(c, "dst", "k", w3))
    assert row is not None
    db.write_sync(lambda c: store.delete_version(c, row))
    assert _dst_versions(db) == [(w2, True), (w1, False)]
    assert _refs(db) == {DIGEST: 5}  # three source versions, two replicas (rows moved keep their references)


def test_replicas_of_one_second_keep_the_source_order(metadata_db: Database) -> None:
    db = metadata_db
    put, marker = "o" * 32, "m" * 32  # PutObject then DeleteObject in the same second
    ids = _source_versions(db, (put, NOW, False), (marker, NOW, True))
    _replicate(db, ids, marker)
    _replicate(db, ids, put)  # arrives last, with the same Last-Modified: not current
    assert _dst_versions(db) == [(marker, True), (put, False)]
    latest = db.read_sync(lambda c: store.get_object(c, "dst", "k"))
    assert latest is not None and latest.delete_marker


def test_local_writes_in_the_destination_and_replicas(metadata_db: Database) -> None:
    db = metadata_db
    old, tie = "o" * 32, "t" * 32
    ids = _source_versions(db, (old, NOW - timedelta(seconds=30), False), (tie, NOW, False))
    local = _values(bucket="dst", version_id="l" * 32)  # written in the destination at NOW
    db.write_sync(lambda c: store.put_version(c, local, "Enabled"))
    _replicate(db, ids, old)  # older than the local write: below it
    assert _dst_versions(db) == [("l" * 32, True), (old, False)]
    _replicate(db, ids, tie)  # the same second: the replica, written later, is current
    assert _dst_versions(db) == [(tie, True), ("l" * 32, False), (old, False)]
    db.write_sync(lambda c: store.put_version(c, _values(bucket="dst", version_id="n" * 32), "Enabled"))
    assert _dst_versions(db)[0] == ("n" * 32, True)  # a local write is always the newest
