"""Who may sign in to the console, and the principal a session stands for.

Two ways in, as on AWS:
- an IAM user: account id or alias, user name and the console password of its login profile
  (``CreateLoginProfile``; scrypt hashes checked by ``minicloud.iam.store.verify_console_password``);
- an account's root user: minicloud's root users have access keys but no password, so root signs
  in with the root access key id and secret access key.

A session keeps only who signed in; its principal is loaded again on every request, so a deleted
user's sessions stop working and tag changes apply at once.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

import sqlalchemy as sa

from minicloud.console.sessions import ConsoleSession
from minicloud.iam import store
from minicloud.iam.credentials import CredentialStore
from minicloud.iam.identity import Principal, PrincipalKind, root_principal
from minicloud.storage.metadata.db import Database

SIGN_IN_FAILED = "Your authentication information is incorrect. Please try again."


@dataclass(frozen=True, slots=True)
class SignedIn:
    principal: Principal
    password_reset_required: bool = False


class ConsoleAuth:
    def __init__(self, db: Database, credentials: CredentialStore) -> None:
        self._db = db
        self._credentials = credentials

    async def sign_in_user(self, account: str, user_name: str, password: str) -> SignedIn | None:
        if not account.strip() or not user_name.strip() or not password:
            return None
        login = await store.verify_console_password(self._db, account.strip(), user_name.strip(), password)
        return SignedIn(login.principal, login.password_reset_required) if login is not None else None

    async def sign_in_root(self, access_key_id: str, secret_access_key: str) -> SignedIn | None:
        access_key_id = access_key_id.strip()
        if not access_key_id or not secret_access_key or len(access_key_id) > 128:
            return None
        credential = await self._credentials.resolve(access_key_id)
        if (credential is None or not credential.active or credential.session_token is not None
                or credential.principal.kind is not PrincipalKind.ROOT):
            return None
        if not hmac.compare_digest(credential.secret_access_key.encode(), secret_access_key.strip().encode()):
            return None
        return SignedIn(credential.principal)

    async def reset_required(self, session: ConsoleSession) -> bool:
        """Whether an IAM user must choose a new console password before doing anything else."""
        user_id = session.user_id
        if session.principal_kind is not PrincipalKind.USER or user_id is None:
            return False

        def load(conn: sa.Connection) -> bool:
            user = store.get_user_by_id(conn, user_id)
            profile = store.get_login_profile(conn, user) if user is not None else None
            return bool(profile is not None and profile.password_reset_required)

        return await self._db.read(load)

    async def principal_of(self, session: ConsoleSession) -> Principal | None:
        """The principal a live session acts as (None when its user no longer exists)."""
        if session.principal_kind is PrincipalKind.ROOT:
            return root_principal(session.account_id)
        user_id = session.user_id
        if session.principal_kind is not PrincipalKind.USER or user_id is None:
            return None

        def load(conn: sa.Connection) -> Principal | None:
            user = store.get_user_by_id(conn, user_id)
            if user is None or user.account_id != session.account_id:
                return None
            return store.user_principal(conn, user)

        return await self._db.read(load)
