"""S3's metadata rows: blocking functions over a SQLAlchemy connection (run by ``Database``).

Every change to what references a blob adjusts ``s3_blobs.refs`` in the same transaction; the
functions return the digests whose count reached zero, for the caller to delete their files.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from minicloud.services.s3.tables import s3_blobs, s3_buckets, s3_objects, s3_upload_parts, s3_uploads
from minicloud.storage.metadata.prepared import Prepared

NULL_VERSION = "null"


@dataclass(frozen=True, slots=True)
class Bucket:
    name: str
    account_id: str
    region: str
    created_at: datetime
    versioning: str | None
    policy: str | None
    tags: str | None
    cors: str | None
    encryption: str | None = None
    object_lock: str | None = None
    lifecycle: str | None = None
    notification: str | None = None
    acl: str | None = None
    ownership: str | None = None
    public_access_block: str | None = None
    accelerate: str | None = None
    request_payment: str | None = None
    logging: str | None = None
    replication: str | None = None
    website: str | None = None
    inventory: str | None = None

    def config(self, name: str) -> Any:
        """One of the JSON configurations (encryption, object_lock, ...), None when unset."""
        text = getattr(self, name)
        return json.loads(text) if text else None


@dataclass(frozen=True, slots=True)
class ObjectRow:
    id: int
    bucket: str
    key: str
    version_id: str
    latest: bool
    delete_marker: bool
    size: int
    etag: str
    last_modified: datetime
    storage_class: str
    owner: str
    digest: str | None
    parts: str | None
    meta: str | None
    checksums: str | None
    tags: str | None
    encryption: str | None = None
    lock: str | None = None
    acl: str | None = None
    replication_status: str | None = None  # PENDING, COMPLETED, FAILED or REPLICA (replication.py)
    restore: str | None = None

    def segments(self) -> list[tuple[str, int]]:
        if self.parts:
            return [(str(d), int(n)) for d, n in json.loads(self.parts)]
        if self.digest:
            return [(self.digest, self.size)]
        return []

    def metadata(self) -> dict[str, Any]:
        return json.loads(self.meta) if self.meta else {}

    def checksum_values(self) -> dict[str, Any]:
        return json.loads(self.checksums) if self.checksums else {}

    def tag_pairs(self) -> list[list[str]]:
        return json.loads(self.tags) if self.tags else []


_OBJECT_COLUMNS = [s3_objects.c[name] for name in ObjectRow.__slots__]


def _object(row: Any) -> ObjectRow:
    return ObjectRow(*row)


# -- the statements of a small PUT and GET, compiled once (see storage/metadata/prepared.py) -------------

_WRITTEN_COLUMNS = [c.name for c in s3_objects.c if c.name != "id"]


def _latest_object() -> Prepared:
    c = s3_objects.c
    return Prepared(sa.select(*_OBJECT_COLUMNS).where(c.bucket == sa.bindparam("bucket"), c.key == sa.bindparam("key"),
                                                      c.latest == sa.true()).order_by(c.id.desc()).limit(1))


def _object_version() -> Prepared:
    c = s3_objects.c
    return Prepared(sa.select(*_OBJECT_COLUMNS).where(c.bucket == sa.bindparam("bucket"), c.key == sa.bindparam("key"),
                                                      c.version_id == sa.bindparam("version_id"))
                    .order_by(c.id.desc()).limit(1))


_LATEST_OBJECT = _latest_object()
_OBJECT_VERSION = _object_version()
_KEY_ROWS = Prepared(sa.select(s3_objects.c.id, s3_objects.c.version_id, s3_objects.c.digest, s3_objects.c.parts,
                               s3_objects.c.size).where(s3_objects.c.bucket == sa.bindparam("bucket"),
                                                        s3_objects.c.key == sa.bindparam("key")).limit(2))
_INSERT_OBJECT = Prepared(s3_objects.insert().values({name: sa.bindparam(name) for name in _WRITTEN_COLUMNS}))
_REPLACE_OBJECT = Prepared(s3_objects.update().where(s3_objects.c.id == sa.bindparam("row_id"))
                           .values({name: sa.bindparam(name) for name in _WRITTEN_COLUMNS}))
_ADD_REF = {
    "sqlite": Prepared(sqlite.insert(s3_blobs).values(digest=sa.bindparam("digest"), refs=1)
                       .on_conflict_do_update(index_elements=[s3_blobs.c.digest],
                                              set_={"refs": s3_blobs.c.refs + sa.literal_column("1")})),
    "postgresql": Prepared(postgresql.insert(s3_blobs).values(digest=sa.bindparam("digest"), refs=1)
                           .on_conflict_do_update(index_elements=[s3_blobs.c.digest],
                                                  set_={"refs": s3_blobs.c.refs + sa.literal_column("1")})),
}
_DROP_REF = Prepared(s3_blobs.update().where(s3_blobs.c.digest == sa.bindparam("digest"))
                     .values(refs=s3_blobs.c.refs - sa.literal_column("1")).returning(s3_blobs.c.refs))
# (each released blob, once its grace period is over: a PUT overwriting an object releases one)
_BLOB_REFS = Prepared(sa.select(s3_blobs.c.refs).where(s3_blobs.c.digest == sa.bindparam("digest")))
_DELETE_BLOB_ROW = Prepared(s3_blobs.delete().where(s3_blobs.c.digest == sa.bindparam("digest"),
                                                    s3_blobs.c.refs <= sa.literal_column("0")))


# -- buckets -----------------------------------------------------------------------------------------

def get_bucket(conn: sa.Connection, name: str) -> Bucket | None:
    row = conn.execute(sa.select(s3_buckets).where(s3_buckets.c.name == name)).first()
    return Bucket(*row) if row else None


def insert_bucket(conn: sa.Connection, bucket: Bucket) -> bool:
    if get_bucket(conn, bucket.name) is not None:
        return False
    conn.execute(s3_buckets.insert().values(
        name=bucket.name, account_id=bucket.account_id, region=bucket.region, created_at=bucket.created_at,
        versioning=bucket.versioning, policy=None, tags=None, cors=None, object_lock=bucket.object_lock,
        acl=bucket.acl, ownership=bucket.ownership))
    return True


def update_bucket(conn: sa.Connection, name: str, **values: Any) -> None:
    conn.execute(s3_buckets.update().where(s3_buckets.c.name == name).values(**values))


def list_buckets(conn: sa.Connection, account_id: str, after: str, prefix: str, limit: int) -> list[Bucket]:
    query = (sa.select(s3_buckets).where(s3_buckets.c.account_id == account_id, s3_buckets.c.name > after)
             .order_by(s3_buckets.c.name).limit(limit))
    if prefix:
        query = query.where(s3_buckets.c.name >= prefix, s3_buckets.c.name < prefix_end(prefix))
    return [Bucket(*row) for row in conn.execute(query)]


def bucket_is_empty(conn: sa.Connection, name: str) -> bool:
    """No object version or delete marker (unfinished multipart uploads do not count, as on S3)."""
    return conn.execute(sa.select(s3_objects.c.id).where(s3_objects.c.bucket == name).limit(1)).first() is None


def delete_bucket(conn: sa.Connection, name: str) -> list[str]:
    """Delete a bucket and its unfinished uploads; the blobs released."""
    released: list[str] = []
    for (upload_id,) in conn.execute(sa.select(s3_uploads.c.upload_id).where(s3_uploads.c.bucket == name)).all():
        released += drop_upload(conn, upload_id)
    conn.execute(s3_buckets.delete().where(s3_buckets.c.name == name))
    return released


# -- blob references ---------------------------------------------------------------------------------

def add_refs(conn: sa.Connection, digests: list[str]) -> None:
    """Increment (one upsert each: a new blob's row starts at 1)."""
    statement = _ADD_REF.get(conn.dialect.name)
    for digest in digests:
        if statement is not None:
            statement.run(conn, {"digest": digest})
            continue
        done = conn.execute(s3_blobs.update().where(s3_blobs.c.digest == digest)
                            .values(refs=s3_blobs.c.refs + 1))
        if done.rowcount == 0:
            conn.execute(s3_blobs.insert().values(digest=digest, refs=1))


def drop_refs(conn: sa.Connection, digests: list[str]) -> list[str]:
    """Decrement; the digests no longer referenced (their rows are gone)."""
    released = []
    for digest in digests:
        left = _DROP_REF.rows(conn, {"digest": digest})
        if left and left[0].refs <= 0:
            _DELETE_BLOB_ROW.run(conn, {"digest": digest})
            released.append(digest)
    return released


def is_referenced(conn: sa.Connection, digest: str) -> bool:
    return bool(_BLOB_REFS.rows(conn, {"digest": digest}))


def referenced(conn: sa.Connection, digests: list[str]) -> set[str]:
    """Those of ``digests`` that something still refers to (one prepared query each: an ``IN`` of
    hundreds of values costs SQLAlchemy more to compile than the queries cost SQLite)."""
    return {digest for digest in digests if is_referenced(conn, digest)}


def _digests(row: ObjectRow) -> list[str]:
    return [digest for digest, _ in row.segments()]


# -- objects -----------------------------------------------------------------------------------------

def get_object(conn: sa.Connection, bucket: str, key: str, version_id: str | None = None) -> ObjectRow | None:
    if version_id is None:
        rows = _LATEST_OBJECT.rows(conn, {"bucket": bucket, "key": key})
    else:
        rows = _OBJECT_VERSION.rows(conn, {"bucket": bucket, "key": key, "version_id": version_id})
    return ObjectRow(**rows[0]._mapping) if rows else None


def _segment_digests(parts: str | None, digest: str | None) -> list[str]:
    if parts:
        return [str(d) for d, _ in json.loads(parts)]
    return [digest] if digest else []


def _put_unversioned(conn: sa.Connection, values: dict[str, Any]) -> list[str] | None:
    """``put_version`` in a bucket that never had versioning, where a key has at most its one
    "null" version: replaced in place (one UPDATE), or inserted. None when the key's rows are
    not that shape (the general path then handles it)."""
    found = _KEY_ROWS.rows(conn, {"bucket": values["bucket"], "key": values["key"]})
    if len(found) > 1 or (found and found[0].version_id != NULL_VERSION):
        return None
    row = {name: values.get(name) for name in _WRITTEN_COLUMNS}
    row["latest"] = True
    new = _segment_digests(row["parts"], row["digest"])
    add_refs(conn, new)  # before the old ones are dropped: a shared blob never reaches zero
    if not found:
        _INSERT_OBJECT.run(conn, row)
        return []
    old = found[0]
    _REPLACE_OBJECT.run(conn, {**row, "row_id": old.id})
    return drop_refs(conn, _segment_digests(old.parts, old.digest))


def put_version(conn: sa.Connection, values: dict[str, Any], versioning: str | None) -> list[str]:
    """Make ``values`` the latest version of its key; what it replaces is released (unversioned
    or suspended buckets keep a single "null" version)."""
    if versioning is None:
        fast = _put_unversioned(conn, values)
        if fast is not None:
            return fast
    bucket, key = values["bucket"], values["key"]
    where = (s3_objects.c.bucket == bucket, s3_objects.c.key == key)
    released: list[str] = []
    if versioning != "Enabled":
        for row in conn.execute(sa.select(*_OBJECT_COLUMNS).where(
                *where, s3_objects.c.version_id == NULL_VERSION)):
            released += drop_refs(conn, _digests(_object(row)))
            conn.execute(s3_objects.delete().where(s3_objects.c.id == row.id))
    conn.execute(s3_objects.update().where(*where, s3_objects.c.latest == sa.true()).values(latest=False))
    conn.execute(s3_objects.insert().values(latest=True, **values))
    segments = json.loads(values["parts"]) if values.get("parts") else (
        [[values["digest"], values["size"]]] if values.get("digest") else [])
    add_refs(conn, [d for d, _ in segments])
    return [d for d in released if d not in {s[0] for s in segments}]


def delete_version(conn: sa.Connection, row: ObjectRow) -> list[str]:
    """Remove one version for good; the newest remaining version becomes the latest."""
    conn.execute(s3_objects.delete().where(s3_objects.c.id == row.id))
    released = drop_refs(conn, _digests(row))
    if row.latest:
        newest = conn.execute(sa.select(s3_objects.c.id).where(
            s3_objects.c.bucket == row.bucket, s3_objects.c.key == row.key)
            .order_by(s3_objects.c.id.desc()).limit(1)).scalar()
        if newest is not None:
            conn.execute(s3_objects.update().where(s3_objects.c.id == newest).values(latest=True))
    return released


def set_object_tags(conn: sa.Connection, row_id: int, tags: str | None) -> None:
    conn.execute(s3_objects.update().where(s3_objects.c.id == row_id).values(tags=tags))


def set_object_acl(conn: sa.Connection, row_id: int, acl: str | None) -> None:
    conn.execute(s3_objects.update().where(s3_objects.c.id == row_id).values(acl=acl))


def set_object_lock(conn: sa.Connection, row_id: int, lock: str | None) -> None:
    conn.execute(s3_objects.update().where(s3_objects.c.id == row_id).values(lock=lock))


def set_storage_class(conn: sa.Connection, row: ObjectRow, storage_class: str) -> bool:
    """Move one version to another storage class (its data stays where it is), unless it changed
    since ``row`` was read; whether it moved."""
    c = s3_objects.c
    done = conn.execute(s3_objects.update().where(
        c.id == row.id, c.version_id == row.version_id, c.etag == row.etag, c.last_modified == row.last_modified,
        c.storage_class == row.storage_class).values(storage_class=storage_class))
    return bool(done.rowcount)


def set_restore(conn: sa.Connection, row_id: int, restore: str | None, due: datetime | None) -> None:
    """A version's restore (JSON, ``archive.Restore``) and when the restore controller must next
    look at it."""
    conn.execute(s3_objects.update().where(s3_objects.c.id == row_id).values(restore=restore, restore_due=due))


def get_object_by_id(conn: sa.Connection, row_id: int, *, for_update: bool = False) -> ObjectRow | None:
    """One version by its row id; ``for_update``: locked until the transaction ends (PostgreSQL;
    SQLite's write transactions are serial already)."""
    query = sa.select(*_OBJECT_COLUMNS).where(s3_objects.c.id == row_id)
    row = conn.execute(query.with_for_update() if for_update else query).first()
    return _object(row) if row is not None else None


def restores_due(conn: sa.Connection, now: datetime, limit: int) -> list[ObjectRow]:
    """Versions whose restore needs the restore controller by ``now``, the most overdue first."""
    return [_object(row) for row in conn.execute(restores_due_query(now, limit))]


def restores_due_query(now: datetime, limit: int) -> sa.Select[Any]:
    """(``IS NOT NULL`` stated: what lets the partial ``ix_s3_objects_restore_due`` serve it)"""
    c = s3_objects.c
    return (sa.select(*_OBJECT_COLUMNS).where(c.restore_due.is_not(None), c.restore_due <= now)
            .order_by(c.restore_due).limit(limit))


def prefix_end(prefix: str) -> str:
    """The smallest string greater than every string starting with ``prefix``."""
    chars = list(prefix)
    while chars:
        last = ord(chars[-1])
        if last < 0x10FFFF:
            chars[-1] = chr(last + 1 if last + 1 not in range(0xD800, 0xE000) else 0xE000)
            return "".join(chars)
        chars.pop()
    return "\U0010ffff" * 2


def list_latest(conn: sa.Connection, bucket: str, after: str | None, prefix: str,
                limit: int, *, inclusive: bool = False, modified_by: datetime | None = None,
                classes: Collection[str] | None = None) -> list[ObjectRow]:
    """Current, non-deleted objects in key order, keys > ``after`` (>= when ``inclusive``); only
    those last modified by ``modified_by``, of the storage ``classes``, when given."""
    c = s3_objects.c
    query = sa.select(*_OBJECT_COLUMNS).where(c.bucket == bucket, c.latest == sa.true(),
                                              c.delete_marker == sa.false())
    if modified_by is not None:
        query = query.where(c.last_modified <= modified_by)
    if classes is not None:
        query = query.where(c.storage_class.in_(sorted(classes)))
    if after is not None:
        query = query.where(c.key >= after if inclusive else c.key > after)
    if prefix:
        query = query.where(c.key >= prefix, c.key < prefix_end(prefix))
    return [_object(row) for row in conn.execute(query.order_by(c.key).limit(limit))]


def list_versions(conn: sa.Connection, bucket: str, after: tuple[str, int] | None, prefix: str,
                  limit: int) -> list[ObjectRow]:
    """Every version in (key, newest first) order, after the (key, id) position ``after``."""
    c = s3_objects.c
    query = sa.select(*_OBJECT_COLUMNS).where(c.bucket == bucket)
    if after is not None:
        key, row_id = after
        if row_id < 0:  # every version of keys >= key
            query = query.where(c.key >= key)
        else:
            query = query.where(sa.or_(c.key > key, sa.and_(c.key == key, c.id < row_id)))
    if prefix:
        query = query.where(c.key >= prefix, c.key < prefix_end(prefix))
    return [_object(row) for row in conn.execute(query.order_by(c.key, c.id.desc()).limit(limit))]


def list_noncurrent(conn: sa.Connection, bucket: str, after: tuple[str, int] | None, prefix: str, limit: int, *,
                    noncurrent_by: datetime, keeps: Collection[int], markers: bool,
                    classes: Collection[str] | None = None) -> list[Noncurrent]:
    """Versions that became noncurrent (a newer version of their key was written) by
    ``noncurrent_by``, in (key, newest first) order after the (key, id) position ``after``, each
    with when it did and, for each of ``keeps``, whether more than that many versions are newer
    (only those with more than the least of them are read); delete markers if ``markers``, and
    of the storage ``classes`` only, when given. A read: the lifecycle controller's scans."""
    c, newer = s3_objects.c, s3_objects.alias("newer")
    same_key = sa.and_(newer.c.bucket == c.bucket, newer.c.key == c.key, newer.c.id > c.id)
    since = sa.select(newer.c.last_modified).where(same_key).order_by(newer.c.id).limit(1).scalar_subquery()

    def more_than(keep: int) -> sa.ColumnElement[bool]:
        return sa.select(newer.c.id).where(same_key).order_by(newer.c.id).limit(1).offset(keep) \
            .scalar_subquery().is_not(None)
    ordered = sorted(set(keeps))
    query = sa.select(*_OBJECT_COLUMNS, since.label("since"), *(more_than(k).label(f"more_{k}") for k in ordered))
    query = query.where(c.bucket == bucket, c.latest == sa.false(), since <= noncurrent_by)
    if ordered and ordered[0] > 0:
        query = query.where(more_than(ordered[0]))
    if not markers:
        query = query.where(c.delete_marker == sa.false())
    if classes is not None:
        query = query.where(c.storage_class.in_(sorted(classes)))
    if after is not None:
        key, row_id = after
        query = query.where(sa.or_(c.key > key, sa.and_(c.key == key, c.id < row_id)))
    if prefix:
        query = query.where(c.key >= prefix, c.key < prefix_end(prefix))
    width = len(_OBJECT_COLUMNS)
    return [Noncurrent(_object(row[:width]), row[width], dict(zip(ordered, map(bool, row[width + 1:]), strict=True)))
            for row in conn.execute(query.order_by(c.key, c.id.desc()).limit(limit))]


@dataclass(frozen=True, slots=True)
class Noncurrent:
    row: ObjectRow
    since: datetime  # when it became noncurrent: its successor's last_modified
    more_than: dict[int, bool]  # whether more than so many versions are newer


def list_lone_markers(conn: sa.Connection, bucket: str, after: str | None, prefix: str, limit: int) -> list[ObjectRow]:
    """Delete markers that are their key's only version, in key order, keys > ``after``."""
    c, other = s3_objects.c, s3_objects.alias("other")
    alone = ~sa.exists().where(other.c.bucket == c.bucket, other.c.key == c.key, other.c.id != c.id)
    query = sa.select(*_OBJECT_COLUMNS).where(c.bucket == bucket, c.latest == sa.true(),
                                              c.delete_marker == sa.true(), alone)
    if after is not None:
        query = query.where(c.key > after)
    if prefix:
        query = query.where(c.key >= prefix, c.key < prefix_end(prefix))
    return [_object(row) for row in conn.execute(query.order_by(c.key).limit(limit))]


def key_version_ids(conn: sa.Connection, bucket: str, key: str, limit: int) -> list[int]:
    c = s3_objects.c
    return list(conn.execute(sa.select(c.id).where(c.bucket == bucket, c.key == key).limit(limit)).scalars())


# -- multipart uploads -------------------------------------------------------------------------------

def get_upload(conn: sa.Connection, upload_id: str) -> Any:
    return conn.execute(sa.select(s3_uploads).where(s3_uploads.c.upload_id == upload_id)).first()


def put_part(conn: sa.Connection, values: dict[str, Any]) -> list[str]:
    c = s3_upload_parts.c
    old = conn.execute(sa.select(c.digest).where(c.upload_id == values["upload_id"],
                                                 c.part_number == values["part_number"])).scalar()
    released: list[str] = []
    if old is not None:
        conn.execute(s3_upload_parts.delete().where(c.upload_id == values["upload_id"],
                                                    c.part_number == values["part_number"]))
        released = drop_refs(conn, [old])
    conn.execute(s3_upload_parts.insert().values(**values))
    add_refs(conn, [values["digest"]])
    return [d for d in released if d != values["digest"]]


def list_parts(conn: sa.Connection, upload_id: str, after: int = 0, limit: int | None = None) -> list[Any]:
    c = s3_upload_parts.c
    query = (sa.select(s3_upload_parts).where(c.upload_id == upload_id, c.part_number > after)
             .order_by(c.part_number))
    if limit is not None:
        query = query.limit(limit)
    return list(conn.execute(query))


def drop_upload(conn: sa.Connection, upload_id: str, keep: set[int] | None = None) -> list[str]:
    """Delete an upload and its parts; parts in ``keep`` hand their references to the object."""
    c = s3_upload_parts.c
    parts = conn.execute(sa.select(c.part_number, c.digest).where(c.upload_id == upload_id)).all()
    conn.execute(s3_upload_parts.delete().where(c.upload_id == upload_id))
    conn.execute(s3_uploads.delete().where(s3_uploads.c.upload_id == upload_id))
    return drop_refs(conn, [digest for number, digest in parts if not keep or number not in keep])


def list_uploads(conn: sa.Connection, bucket: str, after: tuple[str, str] | None, prefix: str,
                 limit: int, *, created_by: datetime | None = None) -> list[Any]:
    c = s3_uploads.c
    query = sa.select(s3_uploads).where(c.bucket == bucket)
    if created_by is not None:
        query = query.where(c.created_at <= created_by)
    if after is not None:
        key, upload_id = after
        query = query.where(sa.or_(c.key > key, sa.and_(c.key == key, c.upload_id > upload_id)))
    if prefix:
        query = query.where(c.key >= prefix, c.key < prefix_end(prefix))
    return list(conn.execute(query.order_by(c.key, c.upload_id).limit(limit)))
