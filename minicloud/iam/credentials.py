"""Resolving an access key id to its secret and principal, with a short-lived cache.

Long-term keys (an account root's or an IAM user's) live in the ``access_keys`` table; temporary
keys issued by STS are resolved by the resolvers registered with ``add_resolver``.
The cache is cleared by ``invalidate()`` after every IAM/STS write in this process, and entries
expire after ``ttl`` seconds so that changes made by another process are seen soon.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

import sqlalchemy as sa

from minicloud.iam.identity import Credential, root_principal
from minicloud.storage.metadata.db import Database
from minicloud.storage.metadata.schema import access_keys

Resolver = Callable[[sa.Connection, str], Credential | None]


def _resolve_root_key(conn: sa.Connection, access_key_id: str) -> Credential | None:
    row = conn.execute(
        sa.select(access_keys).where(access_keys.c.access_key_id == access_key_id,
                                     access_keys.c.user_id.is_(None))
    ).first()
    if row is None:
        return None
    m = row._mapping
    return Credential(access_key_id, m["secret_access_key"], root_principal(m["account_id"]),
                      active=m["status"] == "Active")


class CredentialStore:
    def __init__(self, db: Database, ttl: float = 2.0) -> None:
        self._db = db
        self._ttl = ttl
        self._cache: dict[str, tuple[float, Credential]] = {}
        self._epoch = db.epoch.value()
        self._resolvers: list[Resolver] = [_resolve_root_key]
        self._usage: dict[str, tuple[datetime, str, str]] = {}

    def add_resolver(self, resolver: Resolver) -> None:
        self._resolvers.append(resolver)
        self.invalidate()

    def invalidate(self) -> None:
        """Forget every key (after a change to keys or principals), in every process sharing the store."""
        self._cache.clear()
        self._db.epoch.bump()

    async def resolve(self, access_key_id: str) -> Credential | None:
        epoch = self._db.epoch.value()
        if epoch != self._epoch:  # a change by another process
            self._cache.clear()
            self._epoch = epoch
        now = time.monotonic()
        hit = self._cache.get(access_key_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        credential = await self._db.read(lambda conn: self._load(conn, access_key_id))
        if credential is not None and self._db.epoch.value() == epoch:
            self._cache[access_key_id] = (now + self._ttl, credential)
        return credential

    def _load(self, conn: sa.Connection, access_key_id: str) -> Credential | None:
        for resolver in self._resolvers:
            credential = resolver(conn, access_key_id)
            if credential is not None:
                return credential
        return None

    # -- last-used bookkeeping (flushed in batches by a controller, not on every request) ----------
    def note_used(self, access_key_id: str, service: str, region: str, when: datetime) -> None:
        self._usage[access_key_id] = (when, service, region)

    def take_usage(self) -> dict[str, tuple[datetime, str, str]]:
        usage, self._usage = self._usage, {}
        return usage


def flush_usage(conn: sa.Connection, usage: dict[str, tuple[datetime, str, str]]) -> None:
    for key_id, (when, service, region) in usage.items():
        conn.execute(access_keys.update().where(access_keys.c.access_key_id == key_id).values(
            last_used_at=when, last_used_service=service, last_used_region=region))
