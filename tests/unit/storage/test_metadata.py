"""The metadata store's suite, run against SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio
import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from minicloud.controllers.runner import LeaderLease
from minicloud.iam.accounts import bootstrap_root, create_account, email_taken, get_account, list_accounts
from minicloud.storage.metadata.db import Database
from minicloud.storage.metadata.schema import access_keys, leases


def test_migrate_is_idempotent(metadata_db: Database) -> None:
    metadata_db.migrate()
    tables = metadata_db.read_sync(lambda c: set(sa.inspect(c).get_table_names()))
    assert {"accounts", "access_keys", "leases", "alembic_version"} <= tables


def test_accounts_round_trip(metadata_db: Database) -> None:
    account, keys = metadata_db.write_sync(lambda c: create_account(c, "dev", "dev@example.com"))
    assert len(account.account_id) == 12 and account.account_id.isdigit()
    assert keys.access_key_id.startswith("AKIA") and len(keys.secret_access_key) == 40
    loaded = metadata_db.read_sync(lambda c: get_account(c, account.account_id))
    assert loaded == account
    assert loaded.created_at.tzinfo is not None
    assert metadata_db.read_sync(lambda c: email_taken(c, "DEV@example.com"))
    assert [a.account_id for a in metadata_db.read_sync(list_accounts)] == [account.account_id]


def test_duplicate_email_is_refused_and_changes_nothing(metadata_db: Database) -> None:
    metadata_db.write_sync(lambda c: create_account(c, "a", "same@example.com"))
    with pytest.raises(sa.exc.IntegrityError):
        metadata_db.write_sync(lambda c: create_account(c, "b", "same@example.com"))
    assert len(metadata_db.read_sync(list_accounts)) == 1
    assert metadata_db.read_sync(lambda c: c.execute(sa.select(sa.func.count()).select_from(access_keys)).scalar()) == 1


def test_bootstrap_root_generates_once_and_keeps_keys(metadata_db: Database, tmp_path: Path) -> None:
    creds = tmp_path / "credentials.json"
    first = metadata_db.write_sync(lambda c: bootstrap_root(c, creds, None))
    again = metadata_db.write_sync(lambda c: bootstrap_root(c, creds, None))
    assert first == again
    assert stat.S_IMODE(creds.stat().st_mode) == 0o600
    assert json.loads(creds.read_text())["secret_access_key"] == first.secret_access_key


def test_bootstrap_root_takes_keys_from_environment(metadata_db: Database, tmp_path: Path) -> None:
    creds = tmp_path / "credentials.json"
    generated = metadata_db.write_sync(lambda c: bootstrap_root(c, creds, None))
    chosen = metadata_db.write_sync(lambda c: bootstrap_root(c, creds, ("AKIAMINICLOUDTEST01", "s" * 40)))
    assert chosen.account_id == generated.account_id
    assert chosen.access_key_id == "AKIAMINICLOUDTEST01"
    # the environment's secret wins if it changes
    changed = metadata_db.write_sync(lambda c: bootstrap_root(c, creds, ("AKIAMINICLOUDTEST01", "t" * 40)))
    row = metadata_db.read_sync(lambda c: c.execute(
        sa.select(access_keys.c.secret_access_key).where(access_keys.c.access_key_id == "AKIAMINICLOUDTEST01")
    ).scalar_one())
    assert row == "t" * 40 == changed.secret_access_key


def test_async_writes_are_serialised_and_all_land(metadata_db: Database) -> None:
    async def many() -> None:
        await asyncio.gather(*(
            metadata_db.write(lambda c, i=i: create_account(c, f"acct{i}", f"a{i}@example.com"))
            for i in range(20)
        ))

    asyncio.run(many())
    assert len(metadata_db.read_sync(list_accounts)) == 20


def test_leader_lease_is_exclusive_until_it_expires(metadata_db: Database) -> None:
    async def scenario() -> None:
        a = LeaderLease(metadata_db, ttl=30)
        b = LeaderLease(metadata_db, ttl=30)
        assert await a.acquire()
        assert await a.acquire()  # renewal
        assert not await b.acquire()
        await metadata_db.write(lambda c: c.execute(
            leases.update().values(expires_at=datetime.now(UTC) - timedelta(seconds=1))))
        assert await b.acquire()
        assert not await a.acquire()
        await b.release()
        assert await a.acquire()

    asyncio.run(scenario())


def test_rotating_root_keys_through_the_environment_replaces_the_old_one(metadata_db: Database,
                                                                         tmp_path: Path) -> None:
    creds = tmp_path / "credentials.json"
    generated = metadata_db.write_sync(lambda c: bootstrap_root(c, creds, None))
    metadata_db.write_sync(lambda c: bootstrap_root(c, creds, ("AKIAROTATEDKEY000001", "a" * 40)))
    metadata_db.write_sync(lambda c: bootstrap_root(c, creds, ("AKIAROTATEDKEY000002", "b" * 40)))
    keys = metadata_db.read_sync(lambda c: {r.access_key_id for r in c.execute(sa.select(access_keys.c.access_key_id))})
    assert keys == {"AKIAROTATEDKEY000002"}
    assert generated.access_key_id not in keys
