"""Console passwords of IAM users: Create/Get/Update/DeleteLoginProfile, ChangePassword.

Passwords are stored as scrypt hashes (``minicloud.iam.store.hash_password``), computed on a worker
thread so that the event loop never waits for the KDF. Without an account password policy IAM
applies its default one: at least 8 characters and three of upper case, lower case, digits and
symbols.
"""

from __future__ import annotations

import asyncio
import string
from typing import Any

import sqlalchemy as sa

from minicloud.aws.context import RequestContext
from minicloud.aws.errors import AccessDenied
from minicloud.iam import store
from minicloud.iam.identity import PrincipalKind
from minicloud.iam.tables import iam_login_profiles
from minicloud.services.iam.access_keys import AccessKeysMixin
from minicloud.services.iam.base import Params, Result
from minicloud.services.iam.errors import (
    EntityAlreadyExists,
    InvalidUserType,
    NoSuchEntity,
    PasswordPolicyViolation,
)

MIN_PASSWORD_LENGTH = 8
_SYMBOLS = set("!@#$%^&*()_+-=[]{}|'")
_CLASSES = (set(string.ascii_uppercase), set(string.ascii_lowercase), set(string.digits), _SYMBOLS)


def check_password_policy(password: str) -> None:
    classes = sum(1 for chars in _CLASSES if chars.intersection(password))
    if len(password) < MIN_PASSWORD_LENGTH or classes < 3:
        raise PasswordPolicyViolation("Password does not conform to the account password policy.")


def _profile_not_found(user_name: str) -> NoSuchEntity:
    return NoSuchEntity(f"Login Profile for User {user_name} cannot be found.")


def _profile_shape(user: store.UserRecord, created_at: Any, reset_required: bool) -> Result:
    return {"UserName": user.name, "CreateDate": created_at, "PasswordResetRequired": reset_required}


class LoginProfilesMixin(AccessKeysMixin):
    async def create_login_profile(self, ctx: RequestContext, params: Params) -> Result:
        user = await self.authorize_self_or_user(ctx, "iam:CreateLoginProfile", params.get("UserName"))
        password = params.get("Password")
        if password is None:
            raise PasswordPolicyViolation("Password is required to create a login profile.")
        check_password_policy(password)
        reset = bool(params.get("PasswordResetRequired"))
        hashed = await asyncio.to_thread(store.hash_password, password)

        def create(conn: sa.Connection) -> None:
            if store.get_user_by_id(conn, user.user_id) is None:
                raise NoSuchEntity(f"The user with name {user.name} cannot be found.")
            if store.get_login_profile(conn, user) is not None:
                raise EntityAlreadyExists(f"Login Profile for user {user.name} already exists.")
            conn.execute(iam_login_profiles.insert().values(
                user_id=user.user_id, password_hash=hashed, password_reset_required=reset,
                created_at=ctx.now))

        await self.write(create)
        return {"LoginProfile": _profile_shape(user, ctx.now, reset)}

    async def get_login_profile(self, ctx: RequestContext, params: Params) -> Result:
        user = await self.authorize_self_or_user(ctx, "iam:GetLoginProfile", params.get("UserName"))
        profile = await self.read(lambda conn: store.get_login_profile(conn, user))
        if profile is None:
            raise _profile_not_found(user.name)
        return {"LoginProfile": _profile_shape(user, profile.created_at, profile.password_reset_required)}

    async def update_login_profile(self, ctx: RequestContext, params: Params) -> Result:
        user = await self.authorize_self_or_user(ctx, "iam:UpdateLoginProfile", params.get("UserName"))
        values: dict[str, Any] = {}
        if params.get("Password") is not None:
            check_password_policy(params["Password"])
            values["password_hash"] = await asyncio.to_thread(store.hash_password, params["Password"])
        if params.get("PasswordResetRequired") is not None:
            values["password_reset_required"] = bool(params["PasswordResetRequired"])

        def update(conn: sa.Connection) -> None:
            if store.get_login_profile(conn, user) is None:
                raise _profile_not_found(user.name)
            if values:
                conn.execute(iam_login_profiles.update().where(
                    iam_login_profiles.c.user_id == user.user_id).values(**values))

        await self.write(update)
        return {}

    async def delete_login_profile(self, ctx: RequestContext, params: Params) -> Result:
        user = await self.authorize_self_or_user(ctx, "iam:DeleteLoginProfile", params.get("UserName"))

        def delete(conn: sa.Connection) -> None:
            deleted = conn.execute(iam_login_profiles.delete().where(
                iam_login_profiles.c.user_id == user.user_id))
            if not deleted.rowcount:
                raise _profile_not_found(user.name)

        await self.write(delete)
        return {}

    async def change_password(self, ctx: RequestContext, params: Params) -> Result:
        """An IAM user changes its own console password (needs iam:ChangePassword on itself)."""
        if ctx.principal.kind is not PrincipalKind.USER:
            raise InvalidUserType("Only IAM users can change their own password.")
        user = await self.authorize_self_or_user(ctx, "iam:ChangePassword", None)
        profile = await self.read(lambda conn: store.get_login_profile(conn, user))
        if profile is None:
            raise _profile_not_found(user.name)
        if not await asyncio.to_thread(store.check_password, profile.password_hash, params["OldPassword"]):
            raise AccessDenied("The old password was incorrect.")
        check_password_policy(params["NewPassword"])
        hashed = await asyncio.to_thread(store.hash_password, params["NewPassword"])
        await self.write(lambda conn: conn.execute(iam_login_profiles.update().where(
            iam_login_profiles.c.user_id == user.user_id).values(password_hash=hashed,
                                                                 password_reset_required=False)))
        return {}
