"""Repository records in the metadata store: plain functions on a connection, shared by the OCI
API and the ECR API. Each function runs inside the caller's transaction (``db.read``/``db.write``).

    RepositoryError
     ├── RepositoryExists     a repository of that name exists (in any account: names are global)
     ├── ReferencesUnknown    a manifest refers to blobs or manifests the repository lacks
     └── TagImmutable         the repository's tags are immutable and the tag points elsewhere
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from minicloud.registry.manifests import Manifest
from minicloud.registry.tables import blob_links, manifests, repositories, tags, uploads


class RepositoryError(Exception):
    pass


class RepositoryExists(RepositoryError):
    pass


class ReferencesUnknown(RepositoryError):
    def __init__(self, digests: Sequence[str]) -> None:
        super().__init__(", ".join(digests))
        self.digests = list(digests)


class TagImmutable(RepositoryError):
    def __init__(self, tag: str) -> None:
        super().__init__(tag)
        self.tag = tag


@dataclass(frozen=True, slots=True)
class Repository:
    id: int
    name: str
    account_id: str
    region: str
    created_at: datetime
    tag_mutability: str
    scan_on_push: bool
    encryption_type: str
    kms_key: str | None
    policy: str | None
    lifecycle_policy: str | None
    tags: list[dict[str, str]]

    @property
    def arn(self) -> str:
        return f"arn:aws:ecr:{self.region}:{self.account_id}:repository/{self.name}"


@dataclass(frozen=True, slots=True)
class ManifestRecord:
    digest: str
    media_type: str
    size: int
    content: bytes
    artifact_type: str | None
    subject: str | None
    annotations: dict[str, str] | None
    image_size: int
    pushed_at: datetime


def _repository(row: Any) -> Repository:
    m = row._mapping
    return Repository(
        id=m["id"], name=m["name"], account_id=m["account_id"], region=m["region"],
        created_at=m["created_at"], tag_mutability=m["tag_mutability"], scan_on_push=bool(m["scan_on_push"]),
        encryption_type=m["encryption_type"], kms_key=m["kms_key"], policy=m["policy"],
        lifecycle_policy=m["lifecycle_policy"], tags=json.loads(m["tags"] or "[]"),
    )


def _manifest(row: Any) -> ManifestRecord:
    m = row._mapping
    return ManifestRecord(
        digest=m["digest"], media_type=m["media_type"], size=m["size"], content=bytes(m["content"]),
        artifact_type=m["artifact_type"], subject=m["subject"],
        annotations=orjson.loads(m["annotations"]) if m["annotations"] else None,
        image_size=m["image_size"], pushed_at=m["pushed_at"],
    )


def _insert(conn: sa.Connection, table: sa.Table) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


# -- repositories ------------------------------------------------------------------------------------
def get_repository(conn: sa.Connection, name: str) -> Repository | None:
    row = conn.execute(sa.select(repositories).where(repositories.c.name == name)).first()
    return _repository(row) if row is not None else None


def create_repository(conn: sa.Connection, name: str, account_id: str, region: str, now: datetime, *,
                      tag_mutability: str = "MUTABLE", scan_on_push: bool = False,
                      encryption_type: str = "AES256", kms_key: str | None = None,
                      resource_tags: list[dict[str, str]] | None = None) -> Repository:
    values = dict(name=name, account_id=account_id, region=region, created_at=now,
                  tag_mutability=tag_mutability, scan_on_push=scan_on_push, encryption_type=encryption_type,
                  kms_key=kms_key, tags=json.dumps(resource_tags or []))
    result = conn.execute(_insert(conn, repositories).values(**values).on_conflict_do_nothing())
    if result.rowcount == 0:
        raise RepositoryExists(name)
    repository = get_repository(conn, name)
    assert repository is not None
    return repository


def ensure_repository(conn: sa.Connection, name: str, account_id: str, region: str,
                      now: datetime) -> Repository:
    """The repository ``name``, created for ``account_id`` when it does not exist yet."""
    existing = get_repository(conn, name)
    if existing is not None:
        return existing
    try:
        return create_repository(conn, name, account_id, region, now)
    except RepositoryExists:
        found = get_repository(conn, name)
        assert found is not None
        return found


def update_repository(conn: sa.Connection, repository_id: int, **values: Any) -> None:
    if "tags" in values:
        values["tags"] = json.dumps(values["tags"])
    conn.execute(repositories.update().where(repositories.c.id == repository_id).values(**values))


def delete_repository(conn: sa.Connection, repository_id: int) -> None:
    for table in (uploads, tags, manifests, blob_links):
        conn.execute(table.delete().where(table.c.repository_id == repository_id))
    conn.execute(repositories.delete().where(repositories.c.id == repository_id))


def list_repositories(conn: sa.Connection, *, account_id: str | None = None, region: str | None = None,
                      after: str | None = None, limit: int | None = None,
                      names: Sequence[str] | None = None) -> list[Repository]:
    query = sa.select(repositories).order_by(repositories.c.name)
    if account_id is not None:
        query = query.where(repositories.c.account_id == account_id)
    if region is not None:
        query = query.where(repositories.c.region == region)
    if after is not None:
        query = query.where(repositories.c.name > after)
    if names is not None:
        query = query.where(repositories.c.name.in_(list(names)))
    if limit is not None:
        query = query.limit(limit)
    return [_repository(r) for r in conn.execute(query)]


def count_images(conn: sa.Connection, repository_id: int) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(manifests).where(
        manifests.c.repository_id == repository_id)).scalar_one())


# -- blob links --------------------------------------------------------------------------------------
def blob_size(conn: sa.Connection, repository_id: int, digest: str) -> int | None:
    return conn.execute(sa.select(blob_links.c.size).where(
        blob_links.c.repository_id == repository_id, blob_links.c.digest == digest)).scalar_one_or_none()


def link_blob(conn: sa.Connection, repository_id: int, digest: str, size: int, now: datetime) -> None:
    conn.execute(_insert(conn, blob_links).values(
        repository_id=repository_id, digest=digest, size=size, created_at=now).on_conflict_do_nothing())


def unlink_blob(conn: sa.Connection, repository_id: int, digest: str) -> bool:
    result = conn.execute(blob_links.delete().where(
        blob_links.c.repository_id == repository_id, blob_links.c.digest == digest))
    return bool(result.rowcount)


def linked_in_account(conn: sa.Connection, account_id: str, digest: str) -> int | None:
    """The size of ``digest`` when any repository of the account links it."""
    return conn.execute(sa.select(blob_links.c.size).join(
        repositories, repositories.c.id == blob_links.c.repository_id).where(
        repositories.c.account_id == account_id, blob_links.c.digest == digest).limit(1)).scalar_one_or_none()


def linked_blobs(conn: sa.Connection, repository_id: int, digests: Sequence[str]) -> dict[str, int]:
    if not digests:
        return {}
    rows = conn.execute(sa.select(blob_links.c.digest, blob_links.c.size).where(
        blob_links.c.repository_id == repository_id, blob_links.c.digest.in_(list(set(digests)))))
    return {r.digest: r.size for r in rows}


# -- manifests and tags ------------------------------------------------------------------------------
def resolve(conn: sa.Connection, repository_id: int, reference: str) -> str | None:
    """The digest a reference (a tag or a digest) names in the repository."""
    if ":" in reference:
        return reference
    return conn.execute(sa.select(tags.c.digest).where(
        tags.c.repository_id == repository_id, tags.c.tag == reference)).scalar_one_or_none()


def get_manifest(conn: sa.Connection, repository_id: int, reference: str) -> ManifestRecord | None:
    if ":" in reference:
        query = sa.select(manifests).where(manifests.c.repository_id == repository_id,
                                           manifests.c.digest == reference)
    else:
        query = sa.select(manifests).join(tags, sa.and_(
            tags.c.repository_id == manifests.c.repository_id, tags.c.digest == manifests.c.digest)).where(
            tags.c.repository_id == repository_id, tags.c.tag == reference)
    row = conn.execute(query).first()
    return _manifest(row) if row is not None else None


def manifest_exists(conn: sa.Connection, repository_id: int, digests: Sequence[str]) -> set[str]:
    if not digests:
        return set()
    rows = conn.execute(sa.select(manifests.c.digest).where(
        manifests.c.repository_id == repository_id, manifests.c.digest.in_(list(set(digests)))))
    return {r.digest for r in rows}


def check_tags(conn: sa.Connection, repository: Repository, digest: str, tag_names: Sequence[str]) -> None:
    if repository.tag_mutability != "IMMUTABLE" or not tag_names:
        return
    rows = conn.execute(sa.select(tags.c.tag, tags.c.digest).where(
        tags.c.repository_id == repository.id, tags.c.tag.in_(list(tag_names))))
    for row in rows:
        if row.digest != digest:
            raise TagImmutable(row.tag)


def put_manifest(conn: sa.Connection, repository: Repository, manifest: Manifest, tag_names: Sequence[str],
                 now: datetime) -> None:
    """Store a manifest and point ``tag_names`` at it, once everything it refers to is here."""
    blobs = [str(d.digest) for d in manifest.blobs if not d.foreign]
    children = [str(d.digest) for d in manifest.children]
    missing = [d for d in blobs if d not in linked_blobs(conn, repository.id, blobs)]
    present = manifest_exists(conn, repository.id, children)
    missing += [d for d in children if d not in present]
    if missing:
        raise ReferencesUnknown(missing)
    digest = str(manifest.digest)
    check_tags(conn, repository, digest, tag_names)
    values = dict(
        media_type=manifest.media_type, size=manifest.size, content=manifest.content,
        artifact_type=manifest.artifact_type, subject=str(manifest.subject) if manifest.subject else None,
        annotations=orjson.dumps(manifest.annotations).decode() if manifest.annotations else None,
        image_size=manifest.image_size, pushed_at=now,
    )
    insert = _insert(conn, manifests).values(repository_id=repository.id, digest=digest, **values)
    conn.execute(insert.on_conflict_do_nothing())
    for tag in tag_names:
        statement = _insert(conn, tags).values(repository_id=repository.id, tag=tag, digest=digest,
                                               updated_at=now)
        conn.execute(statement.on_conflict_do_update(
            index_elements=[tags.c.repository_id, tags.c.tag], set_={"digest": digest, "updated_at": now}))


def delete_manifest(conn: sa.Connection, repository_id: int, digest: str) -> bool:
    result = conn.execute(manifests.delete().where(manifests.c.repository_id == repository_id,
                                                   manifests.c.digest == digest))
    conn.execute(tags.delete().where(tags.c.repository_id == repository_id, tags.c.digest == digest))
    return bool(result.rowcount)


def delete_tag(conn: sa.Connection, repository_id: int, tag: str) -> bool:
    result = conn.execute(tags.delete().where(tags.c.repository_id == repository_id, tags.c.tag == tag))
    return bool(result.rowcount)


def list_tags(conn: sa.Connection, repository_id: int, *, last: str | None = None,
              limit: int | None = None) -> list[str]:
    query = sa.select(tags.c.tag).where(tags.c.repository_id == repository_id).order_by(tags.c.tag)
    if last:
        query = query.where(tags.c.tag > last)
    if limit is not None:
        query = query.limit(limit)
    return [r.tag for r in conn.execute(query)]


def tags_by_digest(conn: sa.Connection, repository_id: int,
                   digests: Sequence[str] | None = None) -> dict[str, list[str]]:
    query = sa.select(tags.c.tag, tags.c.digest).where(tags.c.repository_id == repository_id)
    if digests is not None:
        query = query.where(tags.c.digest.in_(list(digests)))
    found: dict[str, list[str]] = {}
    for row in conn.execute(query.order_by(tags.c.tag)):
        found.setdefault(row.digest, []).append(row.tag)
    return found


def list_manifests(conn: sa.Connection, repository_id: int) -> list[ManifestRecord]:
    rows = conn.execute(sa.select(manifests).where(manifests.c.repository_id == repository_id)
                        .order_by(manifests.c.pushed_at, manifests.c.digest))
    return [_manifest(r) for r in rows]


def referrers(conn: sa.Connection, repository_id: int, subject: str) -> list[ManifestRecord]:
    rows = conn.execute(sa.select(manifests).where(
        manifests.c.repository_id == repository_id, manifests.c.subject == subject).order_by(manifests.c.digest))
    return [_manifest(r) for r in rows]


# -- upload sessions ---------------------------------------------------------------------------------
def create_upload(conn: sa.Connection, upload_id: str, repository_id: int, now: datetime) -> None:
    conn.execute(uploads.insert().values(id=upload_id, repository_id=repository_id, started_at=now,
                                         updated_at=now))


def upload_repository(conn: sa.Connection, upload_id: str) -> int | None:
    return conn.execute(sa.select(uploads.c.repository_id).where(uploads.c.id == upload_id)).scalar_one_or_none()


def touch_upload(conn: sa.Connection, upload_id: str, now: datetime) -> None:
    conn.execute(uploads.update().where(uploads.c.id == upload_id).values(updated_at=now))


def delete_upload(conn: sa.Connection, upload_id: str) -> bool:
    return bool(conn.execute(uploads.delete().where(uploads.c.id == upload_id)).rowcount)


def finish_upload(conn: sa.Connection, upload_id: str, repository_id: int, digest: str, size: int,
                  now: datetime) -> None:
    """The upload's blob is committed: link it and end the session, in one transaction."""
    link_blob(conn, repository_id, digest, size, now)
    delete_upload(conn, upload_id)
