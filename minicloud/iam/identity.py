"""Who is calling: the principal behind a verified request."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class PrincipalKind(StrEnum):
    ROOT = "root"
    USER = "user"
    ASSUMED_ROLE = "assumed-role"
    FEDERATED_USER = "federated-user"
    ANONYMOUS = "anonymous"


@dataclass(frozen=True, slots=True)
class Principal:
    kind: PrincipalKind
    account_id: str
    arn: str
    user_id: str  # AIDA... for users, AROA...:session for role sessions, the account id for root
    name: str = ""  # user name, or role session name
    role_arn: str | None = None  # the role of an assumed-role session
    role_id: str | None = None
    tags: tuple[tuple[str, str], ...] = ()
    # Session policies (JSON texts) narrowing an assumed-role or federated session.
    session_policies: tuple[str, ...] = ()
    source_identity: str | None = None


ANONYMOUS = Principal(PrincipalKind.ANONYMOUS, "", "*", "anonymous")


def root_principal(account_id: str) -> Principal:
    return Principal(PrincipalKind.ROOT, account_id, f"arn:aws:iam::{account_id}:root", account_id)


@dataclass(frozen=True, slots=True)
class Credential:
    """A secret that signs requests and the principal it stands for."""

    access_key_id: str
    secret_access_key: str
    principal: Principal
    active: bool = True
    session_token: str | None = None
    expires_at: datetime | None = None
    extra: dict[str, str] = field(default_factory=dict)
