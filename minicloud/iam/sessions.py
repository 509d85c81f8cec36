"""Temporary security credentials issued by STS, and how they resolve back to a principal."""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
import sqlalchemy as sa

from minicloud.iam import ids
from minicloud.iam.identity import Credential, Principal, PrincipalKind
from minicloud.storage.metadata.schema import UtcDateTime, metadata

sts_sessions = sa.Table(
    "sts_sessions",
    metadata,
    sa.Column("access_key_id", sa.String(32), primary_key=True),
    sa.Column("secret_access_key", sa.String(64), nullable=False),
    sa.Column("session_token", sa.Text, nullable=False),
    sa.Column("account_id", sa.String(12), nullable=False, index=True),
    # how the session was made: GetSessionToken, AssumeRole, GetFederationToken
    sa.Column("issued_by", sa.String(32), nullable=False),
    sa.Column("principal", sa.Text, nullable=False),  # JSON of the Principal the keys stand for
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=False, index=True),
)


@dataclass(frozen=True, slots=True)
class IssuedCredentials:
    access_key_id: str
    secret_access_key: str
    session_token: str
    expiration: datetime


def _encode_principal(p: Principal) -> str:
    return orjson.dumps({
        "kind": p.kind.value, "account_id": p.account_id, "arn": p.arn, "user_id": p.user_id,
        "name": p.name, "role_arn": p.role_arn, "role_id": p.role_id, "tags": [list(t) for t in p.tags],
        "session_policies": list(p.session_policies), "source_identity": p.source_identity,
    }).decode()


def _decode_principal(text: str) -> Principal:
    d = orjson.loads(text)
    return Principal(
        kind=PrincipalKind(d["kind"]), account_id=d["account_id"], arn=d["arn"], user_id=d["user_id"],
        name=d["name"], role_arn=d["role_arn"], role_id=d["role_id"],
        tags=tuple((k, v) for k, v in d["tags"]), session_policies=tuple(d["session_policies"]),
        source_identity=d["source_identity"],
    )


def new_session_token() -> str:
    # Opaque to clients, like AWS's; long enough that guessing is hopeless.
    return "IQoJb3JpZ2luX2VjE" + base64.b64encode(secrets.token_bytes(192)).decode()


def issue(conn: sa.Connection, principal: Principal, issued_by: str, expires_at: datetime) -> IssuedCredentials:
    creds = IssuedCredentials(ids.access_key_id(temporary=True), ids.secret_access_key(), new_session_token(),
                              expires_at)
    conn.execute(sts_sessions.insert().values(
        access_key_id=creds.access_key_id, secret_access_key=creds.secret_access_key,
        session_token=creds.session_token, account_id=principal.account_id, issued_by=issued_by,
        principal=_encode_principal(principal), created_at=datetime.now(UTC), expires_at=expires_at,
    ))
    return creds


def resolve_session(conn: sa.Connection, access_key_id: str) -> Credential | None:
    if not access_key_id.startswith(ids.TEMPORARY_ACCESS_KEY):
        return None
    row = conn.execute(sa.select(sts_sessions).where(sts_sessions.c.access_key_id == access_key_id)).first()
    if row is None:
        return None
    m = row._mapping
    return Credential(access_key_id, m["secret_access_key"], _decode_principal(m["principal"]),
                      session_token=m["session_token"], expires_at=m["expires_at"],
                      extra={"issued_by": m["issued_by"]})


def delete_expired(conn: sa.Connection, now: datetime) -> int:
    return int(conn.execute(sts_sessions.delete().where(sts_sessions.c.expires_at < now)).rowcount or 0)
