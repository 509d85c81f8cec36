"""Accounts and their root users: creation, the management account's bootstrap, root keys."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from minicloud.iam import ids
from minicloud.storage.metadata.schema import access_keys, accounts


@dataclass(frozen=True, slots=True)
class Account:
    account_id: str
    name: str
    email: str
    status: str
    management: bool
    joined_method: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class RootKeys:
    account_id: str
    access_key_id: str
    secret_access_key: str


def _row_to_account(row: sa.Row[tuple[object, ...]]) -> Account:
    m = row._mapping
    return Account(m["account_id"], m["name"], m["email"], m["status"], m["management"],
                   m["joined_method"], m["created_at"])


def create_account(conn: sa.Connection, name: str, email: str, *, management: bool = False,
                   keys: tuple[str, str] | None = None) -> tuple[Account, RootKeys]:
    """Create an account with a root access key (``keys`` given, or generated)."""
    now = datetime.now(UTC)
    while True:
        account_id = ids.account_id()
        if conn.execute(sa.select(accounts.c.account_id).where(accounts.c.account_id == account_id)).first() is None:
            break
    conn.execute(accounts.insert().values(
        account_id=account_id, name=name, email=email, status="ACTIVE", management=management,
        joined_method="CREATED", created_at=now,
    ))
    key_id, secret = keys or (ids.access_key_id(), ids.secret_access_key())
    conn.execute(access_keys.insert().values(
        access_key_id=key_id, secret_access_key=secret, account_id=account_id, user_id=None,
        status="Active", created_at=now,
    ))
    account = Account(account_id, name, email, "ACTIVE", management, "CREATED", now)
    return account, RootKeys(account_id, key_id, secret)


def get_account(conn: sa.Connection, account_id: str) -> Account | None:
    row = conn.execute(sa.select(accounts).where(accounts.c.account_id == account_id)).first()
    return _row_to_account(row) if row else None


def list_accounts(conn: sa.Connection) -> list[Account]:
    rows = conn.execute(sa.select(accounts).order_by(accounts.c.created_at, accounts.c.account_id))
    return [_row_to_account(r) for r in rows]


def management_account(conn: sa.Connection) -> Account | None:
    row = conn.execute(sa.select(accounts).where(accounts.c.management.is_(True))).first()
    return _row_to_account(row) if row else None


def email_taken(conn: sa.Connection, email: str) -> bool:
    query = sa.select(accounts.c.account_id).where(sa.func.lower(accounts.c.email) == email.lower())
    return conn.execute(query).first() is not None


def bootstrap_root(conn: sa.Connection, credentials_file: Path,
                   env_keys: tuple[str, str] | None) -> RootKeys:
    """Make sure the management account exists and return its root keys.

    Keys from the environment win (and are recorded); otherwise the keys generated on the first
    start are read back from ``credentials_file`` (mode 0600).
    """
    account = management_account(conn)
    if account is None:
        account, keys = create_account(conn, "minicloud", "root@minicloud.local", management=True,
                                       keys=env_keys)
    elif env_keys is not None:
        key_id, secret = env_keys
        existing = conn.execute(sa.select(access_keys).where(access_keys.c.access_key_id == key_id)).first()
        if existing is None:
            conn.execute(access_keys.insert().values(
                access_key_id=key_id, secret_access_key=secret, account_id=account.account_id,
                user_id=None, status="Active", created_at=datetime.now(UTC)))
        elif existing._mapping["account_id"] != account.account_id or existing._mapping["user_id"] is not None:
            raise RuntimeError(f"access key {key_id} already belongs to another principal")
        else:
            conn.execute(access_keys.update().where(access_keys.c.access_key_id == key_id)
                         .values(secret_access_key=secret, status="Active"))
        keys = RootKeys(account.account_id, key_id, secret)
        previous = _read_credentials_file(credentials_file)
        if previous and previous != key_id:  # the key minicloud managed before is replaced, not kept
            conn.execute(access_keys.delete().where(access_keys.c.access_key_id == previous,
                                                    access_keys.c.account_id == account.account_id,
                                                    access_keys.c.user_id.is_(None)))
    else:
        row = conn.execute(
            sa.select(access_keys).where(access_keys.c.account_id == account.account_id,
                                         access_keys.c.user_id.is_(None))
            .order_by(access_keys.c.created_at)
        ).first()
        if row is None:
            raise RuntimeError("the management account has no root access key")
        keys = RootKeys(account.account_id, row._mapping["access_key_id"], row._mapping["secret_access_key"])
    _write_credentials_file(credentials_file, keys)
    return keys


def _read_credentials_file(path: Path) -> str | None:
    try:
        value = json.loads(path.read_text()).get("access_key_id")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def _write_credentials_file(path: Path, keys: RootKeys) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = json.dumps({"account_id": keys.account_id, "access_key_id": keys.access_key_id,
                       "secret_access_key": keys.secret_access_key}, indent=2) + "\n"
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(body)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    os.chmod(path, 0o600)
