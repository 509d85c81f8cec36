"""AWS STS: who am I, and temporary credentials (GetSessionToken, AssumeRole).

Temporary credentials are rows in ``sts_sessions`` (minicloud/iam/sessions.py); the credential
store resolves them with their session token and expiry, so they are refused once expired.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from minicloud.aws.context import RequestContext
from minicloud.aws.errors import AccessDenied, InvalidParameterValue, ValidationError
from minicloud.aws.provider import Provider
from minicloud.iam import sessions, store
from minicloud.iam.failure_messages import FailureMessages, InvalidMessage
from minicloud.iam.identity import Credential, Principal, PrincipalKind
from minicloud.iam.policy import MalformedPolicyDocument, PolicyKind, parse_policy, policy_size
from minicloud.iam.policy.limits import SESSION_POLICY_MAX
from minicloud.iam.tables import ROLE
from minicloud.runtime import Runtime
from minicloud.services.sts.errors import (
    InvalidAuthorizationMessageException,
    MalformedPolicyDocumentError,
    PackedPolicyTooLarge,
)

ROLE_CHAINING_MAX = 3600
USER_SESSION_MAX = 129600
ROOT_SESSION_MAX = 3600


class SessionReaper:
    """Forget temporary credentials some time after they expired."""

    name = "sts-session-reaper"
    interval = 300.0

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def reconcile(self) -> None:
        cutoff = datetime.now(UTC) - timedelta(hours=1)
        await self.runtime.db.write(lambda conn: sessions.delete_expired(conn, cutoff))


class StsProvider(Provider):
    service_name = "sts"

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        runtime.credentials.add_resolver(sessions.resolve_session)
        runtime.controllers.append(SessionReaper(runtime))
        self.failure_messages = FailureMessages.load(runtime.config.data_dir / "sts" / "authorization-messages.key")
        runtime.authorizer.failure_messages = self.failure_messages

    async def get_caller_identity(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        ctx.allow_unauthenticated()  # GetCallerIdentity needs no permission, even under an explicit deny
        p = ctx.principal
        return {"UserId": p.user_id, "Account": p.account_id, "Arn": p.arn}

    async def decode_authorization_message(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        """The document an encoded authorization failure message (EC2's refusals) holds."""
        await ctx.authorize("sts:DecodeAuthorizationMessage")
        try:
            decoded = self.failure_messages.decode(ctx.account_id, params["EncodedMessage"])
        except InvalidMessage:
            raise InvalidAuthorizationMessageException(
                "The error message could not be decoded: it is invalid, expired, or was issued to another "
                "account.") from None
        return {"DecodedMessage": decoded}

    # -- GetSessionToken ----------------------------------------------------------------------------
    async def get_session_token(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        caller = ctx.principal
        if _issued_by(ctx) is not None or caller.kind not in (PrincipalKind.USER, PrincipalKind.ROOT):
            raise AccessDenied("Cannot call GetSessionToken with session credentials")
        ctx.allow_unauthenticated()  # "No permissions are required for a user to get a session token."
        limit = ROOT_SESSION_MAX if caller.kind is PrincipalKind.ROOT else USER_SESSION_MAX
        duration = params.get("DurationSeconds", ROOT_SESSION_MAX if caller.kind is PrincipalKind.ROOT else 43200)
        if not 900 <= duration <= limit:
            raise ValidationError(f"1 validation error detected: Value '{duration}' at 'durationSeconds' failed "
                                  f"to satisfy constraint: Member must have value less than or equal to {limit}")
        expires = _whole_seconds(ctx.now + timedelta(seconds=duration))
        creds = await self.runtime.db.write(lambda conn: sessions.issue(conn, caller, "GetSessionToken", expires))
        return {"Credentials": _credentials(creds)}

    # -- AssumeRole ---------------------------------------------------------------------------------
    async def assume_role(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        caller = ctx.principal
        role_arn: str = params["RoleArn"]
        session_name: str = params["RoleSessionName"]
        if caller.kind is PrincipalKind.ROOT:
            raise AccessDenied("Roles may not be assumed by root accounts.")
        role = await self.runtime.db.read(lambda conn: store.get_role_by_arn(conn, role_arn))
        request_tags = [(t["Key"], t["Value"]) for t in params.get("Tags") or []]
        context: dict[str, str | list[str]] = {"sts:RoleSessionName": session_name}
        if params.get("ExternalId") is not None:
            context["sts:ExternalId"] = params["ExternalId"]
        if params.get("SourceIdentity") is not None:
            context["sts:SourceIdentity"] = params["SourceIdentity"]
        for key, value in request_tags:
            context[f"aws:RequestTag/{key}"] = value
        if request_tags:
            context["aws:TagKeys"] = [k for k, _ in request_tags]
        await ctx.authorize(
            "sts:AssumeRole", role_arn, context=context,
            resource_policy=role.assume_role_policy if role else None,
            resource_account=role.account_id if role else _arn_account(role_arn),
        )
        if role is None:  # only reachable for callers allowed everything: still no such role
            raise AccessDenied(f"User: {caller.arn} is not authorized to perform: sts:AssumeRole on resource: "
                               f"{role_arn}")
        if request_tags:
            await ctx.authorize("sts:TagSession", role_arn, context=context,
                                resource_policy=role.assume_role_policy, resource_account=role.account_id)
        source_identity = params.get("SourceIdentity")
        if source_identity is not None:
            if caller.source_identity is not None and source_identity != caller.source_identity:
                raise ValidationError("SourceIdentity cannot be changed once it is set for a role session.")
            await ctx.authorize("sts:SetSourceIdentity", role_arn, context=context,
                                resource_policy=role.assume_role_policy, resource_account=role.account_id)
        chained = caller.kind is PrincipalKind.ASSUMED_ROLE
        duration = params.get("DurationSeconds", 3600)
        if chained and duration > ROLE_CHAINING_MAX:
            raise ValidationError("The requested DurationSeconds exceeds the 1 hour session limit for roles "
                                  "assumed by role chaining.")
        if duration > role.max_session_duration:
            raise ValidationError("The requested DurationSeconds exceeds the MaxSessionDuration set for this role.")
        session_policies, packed = await self._session_policies(params, role.account_id)
        tags = dict(await self.runtime.db.read(lambda conn: store.get_tags(conn, ROLE, role.role_id)))
        tags.update(request_tags)
        principal = Principal(
            kind=PrincipalKind.ASSUMED_ROLE, account_id=role.account_id,
            arn=f"arn:aws:sts::{role.account_id}:assumed-role/{role.name}/{session_name}",
            user_id=f"{role.role_id}:{session_name}", name=session_name, role_arn=role.arn, role_id=role.role_id,
            tags=tuple(sorted(tags.items())), session_policies=tuple(session_policies),
            source_identity=source_identity or caller.source_identity,
        )
        expires = _whole_seconds(ctx.now + timedelta(seconds=duration))

        def issue(conn: sa.Connection) -> sessions.IssuedCredentials:
            store.note_role_used(conn, role.role_id, ctx.now, ctx.region)
            return sessions.issue(conn, principal, "AssumeRole", expires)

        creds = await self.runtime.db.write(issue)
        result: dict[str, Any] = {
            "Credentials": _credentials(creds),
            "AssumedRoleUser": {"AssumedRoleId": principal.user_id, "Arn": principal.arn},
        }
        if packed is not None:
            result["PackedPolicySize"] = packed
        if principal.source_identity:
            result["SourceIdentity"] = principal.source_identity
        return result

    async def _session_policies(self, params: dict[str, Any], role_account: str) -> tuple[list[str], int | None]:
        texts: list[str] = []
        packed: int | None = None
        if params.get("Policy") is not None:
            text: str = params["Policy"]
            try:
                parse_policy(text, PolicyKind.SESSION)
            except MalformedPolicyDocument as exc:
                raise MalformedPolicyDocumentError(exc.message) from exc
            size = policy_size(text)
            packed = max(1, size * 100 // SESSION_POLICY_MAX)
            if size > SESSION_POLICY_MAX:
                raise PackedPolicyTooLarge(
                    f"Packed size of consumed sessions policies exceeds the limit. Policy is {packed}% of the limit.")
            texts.append(text)
        arns = list(dict.fromkeys(p["arn"] for p in params.get("PolicyArns") or []))
        if arns:
            texts.extend(await self.runtime.db.read(lambda conn: _managed_session_policies(conn, arns, role_account)))
        return texts, packed


def _managed_session_policies(conn: sa.Connection, arns: list[str], role_account: str) -> list[str]:
    """The documents of the managed session policies; fails closed: each ARN must name an
    AWS-managed policy or a customer-managed one of the role's own account."""
    documents = []
    for arn in arns:
        found = store.managed_policy_documents(conn, [arn]) if _arn_account(arn) in ("aws", role_account) else []
        if not found:
            raise InvalidParameterValue(f"Policy {arn} does not exist or is not attachable.")
        documents.append(found[0])
    return documents


def _issued_by(ctx: RequestContext) -> str | None:
    credential = ctx.extra.get("credential")
    return credential.extra.get("issued_by") if isinstance(credential, Credential) else None


def _arn_account(arn: str) -> str | None:
    parts = arn.split(":")
    return parts[4] if len(parts) > 5 and parts[4] else None


def _whole_seconds(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


def _credentials(creds: sessions.IssuedCredentials) -> dict[str, Any]:
    return {"AccessKeyId": creds.access_key_id, "SecretAccessKey": creds.secret_access_key,
            "SessionToken": creds.session_token, "Expiration": creds.expiration}
