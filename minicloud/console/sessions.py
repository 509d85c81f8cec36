"""Console sign-in sessions, kept server side in the ``console_sessions`` table (migration 0050_console).

The browser holds only a random token (the session cookie); the table keys sessions by the token's
SHA-256, so the table alone cannot be replayed as cookies. A session ends at sign-out, after
``IDLE_TIMEOUT`` without a request, or ``ABSOLUTE_TIMEOUT`` after sign-in, whichever comes first.
Each session has its own CSRF token, compared in constant time with the one every form sends.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from minicloud.iam.identity import PrincipalKind
from minicloud.storage.metadata.db import Database
from minicloud.storage.metadata.schema import UtcDateTime, metadata

IDLE_TIMEOUT = timedelta(hours=1)
ABSOLUTE_TIMEOUT = timedelta(hours=12)
TOUCH_INTERVAL = timedelta(seconds=60)  # last_seen_at is written at most this often

console_sessions = sa.Table(
    "console_sessions", metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("csrf_token", sa.String(64), nullable=False),
    sa.Column("principal_kind", sa.String(16), nullable=False),
    sa.Column("account_id", sa.String(12), nullable=False),
    sa.Column("user_id", sa.String(32), nullable=True),
    sa.Column("region", sa.String(32), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("last_seen_at", UtcDateTime, nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=False),
    sa.Column("flash", sa.Text, nullable=True),
)


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_matches(expected: str, sent: str | None) -> bool:
    return bool(sent) and hmac.compare_digest(expected.encode(), (sent or "").encode())


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    token_hash: str
    csrf_token: str
    principal_kind: PrincipalKind
    account_id: str
    user_id: str | None
    region: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    flash: str | None = None

    def idle_deadline(self) -> datetime:
        return min(self.last_seen_at + IDLE_TIMEOUT, self.expires_at)


def _from_row(row: sa.Row[tuple[object, ...]]) -> ConsoleSession:
    m = row._mapping
    return ConsoleSession(m["token_hash"], m["csrf_token"], PrincipalKind(m["principal_kind"]), m["account_id"],
                          m["user_id"], m["region"], m["created_at"], m["last_seen_at"], m["expires_at"], m["flash"])


class SessionStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, kind: PrincipalKind, account_id: str, user_id: str | None, region: str,
                     now: datetime) -> tuple[str, ConsoleSession]:
        """A new session; returns the cookie's token (never stored) and the session."""
        token = new_token()
        session = ConsoleSession(token_hash(token), secrets.token_urlsafe(32), kind, account_id, user_id, region,
                                 now, now, now + ABSOLUTE_TIMEOUT)
        values = {"token_hash": session.token_hash, "csrf_token": session.csrf_token,
                  "principal_kind": kind.value, "account_id": account_id, "user_id": user_id, "region": region,
                  "created_at": now, "last_seen_at": now, "expires_at": session.expires_at}

        def insert(conn: sa.Connection) -> None:
            conn.execute(console_sessions.delete().where(console_sessions.c.expires_at < now - IDLE_TIMEOUT))
            conn.execute(console_sessions.insert().values(**values))

        await self._db.write(insert)
        return token, session

    async def get(self, token: str | None, now: datetime) -> ConsoleSession | None:
        """The live session of a cookie token (its idle clock restarted), or None."""
        if not token or len(token) > 128:
            return None
        key = token_hash(token)
        row = await self._db.read(lambda conn: conn.execute(
            sa.select(console_sessions).where(console_sessions.c.token_hash == key)).first())
        if row is None:
            return None
        session = _from_row(row)
        if now >= session.idle_deadline():
            await self.delete(key)
            return None
        if now - session.last_seen_at >= TOUCH_INTERVAL:
            await self._update(key, last_seen_at=now)
        return session

    async def delete(self, key: str) -> None:
        await self._db.write(lambda conn: conn.execute(
            console_sessions.delete().where(console_sessions.c.token_hash == key)))

    async def set_region(self, key: str, region: str) -> None:
        await self._update(key, region=region)

    async def set_flash(self, key: str, message: str | None) -> None:
        await self._update(key, flash=message)

    async def _update(self, key: str, **values: object) -> None:
        await self._db.write(lambda conn: conn.execute(
            console_sessions.update().where(console_sessions.c.token_hash == key).values(**values)))
