"""Console sessions (server side, token hashed, idle and absolute expiry) and CSRF tokens, on SQLite
and PostgreSQL alike."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa

from minicloud.console.auth import ConsoleAuth
from minicloud.console.sessions import (
    ABSOLUTE_TIMEOUT,
    IDLE_TIMEOUT,
    SessionStore,
    console_sessions,
    csrf_matches,
    token_hash,
)
from minicloud.iam.accounts import bootstrap_root
from minicloud.iam.credentials import CredentialStore
from minicloud.iam.identity import PrincipalKind
from minicloud.storage.metadata.db import Database

NOW = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run on a thread of its own: Playwright's sync API may hold this thread's event loop."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def test_a_session_is_found_by_its_token_and_only_its_hash_is_stored(metadata_db: Database) -> None:
    store = SessionStore(metadata_db)
    token, session = run(store.create(PrincipalKind.ROOT, "123456789012", None, "us-east-1", NOW))
    rows = metadata_db.read_sync(lambda c: c.execute(sa.select(console_sessions)).all())
    assert [r.token_hash for r in rows] == [token_hash(token)]
    assert all(token not in str(tuple(r)) for r in rows)  # the cookie's token itself is never stored
    found = run(store.get(token, NOW + timedelta(minutes=5)))
    assert found is not None and found.account_id == "123456789012" and found.csrf_token == session.csrf_token
    assert run(store.get(token + "x", NOW)) is None
    assert run(store.get(None, NOW)) is None
    assert run(store.get("", NOW)) is None


def test_idle_sessions_expire_and_are_deleted(metadata_db: Database) -> None:
    store = SessionStore(metadata_db)
    token, _ = run(store.create(PrincipalKind.USER, "123456789012", "AIDAEXAMPLE", "us-east-1", NOW))
    assert run(store.get(token, NOW + IDLE_TIMEOUT - timedelta(seconds=1))) is not None
    # That request restarted the idle clock.
    assert run(store.get(token, NOW + IDLE_TIMEOUT + timedelta(minutes=30))) is not None
    assert run(store.get(token, NOW + 3 * IDLE_TIMEOUT)) is None
    assert metadata_db.read_sync(lambda c: c.execute(sa.select(sa.func.count()).select_from(console_sessions))
                                 .scalar()) == 0


def test_sessions_end_after_the_absolute_timeout_even_when_used(metadata_db: Database) -> None:
    store = SessionStore(metadata_db)
    token, _ = run(store.create(PrincipalKind.ROOT, "123456789012", None, "us-east-1", NOW))
    moment = NOW
    while moment < NOW + ABSOLUTE_TIMEOUT - timedelta(minutes=30):
        moment += timedelta(minutes=30)
        assert run(store.get(token, moment)) is not None
    assert run(store.get(token, NOW + ABSOLUTE_TIMEOUT)) is None


def test_sign_out_region_and_flash(metadata_db: Database) -> None:
    store = SessionStore(metadata_db)
    token, session = run(store.create(PrincipalKind.ROOT, "123456789012", None, "us-east-1", NOW))
    run(store.set_region(session.token_hash, "eu-west-1"))
    run(store.set_flash(session.token_hash, "done"))
    found = run(store.get(token, NOW))
    assert found is not None and found.region == "eu-west-1" and found.flash == "done"
    run(store.delete(session.token_hash))
    assert run(store.get(token, NOW)) is None


def test_csrf_tokens_are_per_session_and_compared_exactly(metadata_db: Database) -> None:
    store = SessionStore(metadata_db)
    _, one = run(store.create(PrincipalKind.ROOT, "123456789012", None, "us-east-1", NOW))
    _, two = run(store.create(PrincipalKind.ROOT, "123456789012", None, "us-east-1", NOW))
    assert one.csrf_token != two.csrf_token and len(one.csrf_token) >= 40
    assert csrf_matches(one.csrf_token, one.csrf_token)
    assert not csrf_matches(one.csrf_token, two.csrf_token)
    assert not csrf_matches(one.csrf_token, None)
    assert not csrf_matches(one.csrf_token, "")
    assert not csrf_matches(one.csrf_token, one.csrf_token[:-1])


def test_root_signs_in_with_its_access_key_only(metadata_db: Database, tmp_path: Path) -> None:
    keys = metadata_db.write_sync(lambda c: bootstrap_root(c, tmp_path / "credentials.json", None))
    auth = ConsoleAuth(metadata_db, CredentialStore(metadata_db))
    signed = run(auth.sign_in_root(keys.access_key_id, keys.secret_access_key))
    assert signed is not None and signed.principal.kind is PrincipalKind.ROOT
    assert signed.principal.account_id == keys.account_id
    assert run(auth.sign_in_root(keys.access_key_id, keys.secret_access_key + "x")) is None
    assert run(auth.sign_in_root("AKIANOSUCHKEY0000000", keys.secret_access_key)) is None
    assert run(auth.sign_in_root("", "")) is None
    # An IAM user with no login profile (here: no such user) cannot sign in with a password.
    assert run(auth.sign_in_user(keys.account_id, "nobody", "Passw0rd!x")) is None
