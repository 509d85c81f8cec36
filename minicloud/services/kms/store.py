"""KMS's data layer: keys and aliases in the metadata store (functions of a connection)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from minicloud.services.kms.tables import kms_aliases, kms_keys

ENABLED, DISABLED, PENDING_DELETION = "Enabled", "Disabled", "PendingDeletion"


def key_arn(account_id: str, region: str, key_id: str) -> str:
    return f"arn:aws:kms:{region}:{account_id}:key/{key_id}"


def alias_arn(account_id: str, region: str, name: str) -> str:
    return f"arn:aws:kms:{region}:{account_id}:{name}"


def default_policy(account_id: str) -> str:
    """AWS's default key policy: the account (its root user) may do everything, so IAM policies apply."""
    return json.dumps({"Version": "2012-10-17", "Id": "key-default-1", "Statement": [{
        "Sid": "Enable IAM User Permissions", "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"}, "Action": "kms:*", "Resource": "*"}]},
        indent=2)


@dataclass(frozen=True, slots=True)
class Key:
    key_id: str
    account_id: str
    region: str
    description: str
    state: str
    manager: str
    created_at: datetime
    deletion_date: datetime | None
    pending_days: int | None
    policy: str
    tags: dict[str, str]
    material: bytes  # wrapped by the master key

    @property
    def arn(self) -> str:
        return key_arn(self.account_id, self.region, self.key_id)

    def metadata(self) -> dict[str, Any]:
        """The KeyMetadata structure of DescribeKey, CreateKey..."""
        meta: dict[str, Any] = {
            "AWSAccountId": self.account_id, "KeyId": self.key_id, "Arn": self.arn,
            "CreationDate": self.created_at, "Enabled": self.state == ENABLED, "Description": self.description,
            "KeyUsage": "ENCRYPT_DECRYPT", "KeyState": self.state, "Origin": "AWS_KMS", "KeyManager": self.manager,
            "CustomerMasterKeySpec": "SYMMETRIC_DEFAULT", "KeySpec": "SYMMETRIC_DEFAULT",
            "EncryptionAlgorithms": ["SYMMETRIC_DEFAULT"], "MultiRegion": False,
        }
        if self.state == PENDING_DELETION:
            meta["DeletionDate"] = self.deletion_date
            meta["PendingDeletionWindowInDays"] = self.pending_days
        return meta


def _key(row: Any) -> Key:
    m = row._mapping
    return Key(m["key_id"], m["account_id"], m["region"], m["description"], m["state"], m["manager"],
               m["created_at"], m["deletion_date"], m["pending_days"], m["policy"], json.loads(m["tags"]),
               bytes(m["material"]))


def get_key(conn: sa.Connection, key_id: str) -> Key | None:
    row = conn.execute(sa.select(kms_keys).where(kms_keys.c.key_id == key_id)).first()
    return _key(row) if row else None


def insert_key(conn: sa.Connection, values: dict[str, Any]) -> Key:
    conn.execute(kms_keys.insert().values(**values))
    key = get_key(conn, values["key_id"])
    assert key is not None
    return key


def update_key(conn: sa.Connection, key_id: str, **values: Any) -> None:
    conn.execute(kms_keys.update().where(kms_keys.c.key_id == key_id).values(**values))


def list_keys(conn: sa.Connection, account_id: str, region: str, after: str, limit: int) -> list[Key]:
    c = kms_keys.c
    rows = conn.execute(sa.select(kms_keys).where(c.account_id == account_id, c.region == region, c.key_id > after)
                        .order_by(c.key_id).limit(limit)).all()
    return [_key(r) for r in rows]


def alias_target(conn: sa.Connection, account_id: str, region: str, name: str) -> str | None:
    c = kms_aliases.c
    row = conn.execute(sa.select(c.key_id).where(c.account_id == account_id, c.region == region,
                                                 c.name == name)).first()
    return str(row[0]) if row else None


def list_aliases(conn: sa.Connection, account_id: str, region: str, key_id: str | None, after: str,
                 limit: int) -> list[Any]:
    c = kms_aliases.c
    query = sa.select(kms_aliases).where(c.account_id == account_id, c.region == region, c.name > after)
    if key_id is not None:
        query = query.where(c.key_id == key_id)
    return list(conn.execute(query.order_by(c.name).limit(limit)).all())


def put_alias(conn: sa.Connection, account_id: str, region: str, name: str, key_id: str, now: datetime) -> None:
    conn.execute(kms_aliases.insert().values(account_id=account_id, region=region, name=name, key_id=key_id,
                                             created_at=now, updated_at=now))


def retarget_alias(conn: sa.Connection, account_id: str, region: str, name: str, key_id: str, now: datetime) -> None:
    c = kms_aliases.c
    conn.execute(kms_aliases.update().where(c.account_id == account_id, c.region == region, c.name == name)
                 .values(key_id=key_id, updated_at=now))


def delete_alias(conn: sa.Connection, account_id: str, region: str, name: str) -> None:
    c = kms_aliases.c
    conn.execute(kms_aliases.delete().where(c.account_id == account_id, c.region == region, c.name == name))


def purge_deleted(conn: sa.Connection, now: datetime) -> int:
    """Delete the keys whose waiting period has passed (their aliases with them)."""
    c = kms_keys.c
    doomed = [r[0] for r in conn.execute(sa.select(c.key_id).where(
        c.state == PENDING_DELETION, c.deletion_date <= now)).all()]
    if doomed:
        conn.execute(kms_aliases.delete().where(kms_aliases.c.key_id.in_(doomed)))
        conn.execute(kms_keys.delete().where(c.key_id.in_(doomed)))
    return len(doomed)
