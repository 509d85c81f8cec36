"""Registry authentication (Basic, Docker bearer tokens, ECR passwords) and authorization by IAM.

Who: an access key id and its secret; or ``AWS`` and the password from ECR GetAuthorizationToken
(valid 12 hours); or a bearer token from the token endpoint (valid ``TOKEN_TTL`` seconds). Tokens
and ECR passwords are signed with an HMAC key kept in ``<data-dir>/registry/token.key``.

What: the Docker scope actions map to IAM actions on ``arn:aws:ecr:<region>:<account>:repository/<name>``,
evaluated with the repository's policy, so a repository policy can grant other accounts or
anonymous pulls. A token carries the actions granted when it was issued.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from minicloud.aws.context import RequestContext
from minicloud.aws.errors import AccessDenied
from minicloud.aws.request import AwsRequest
from minicloud.iam.authorizer import Authorizer
from minicloud.iam.credentials import CredentialStore
from minicloud.iam.identity import ANONYMOUS, Credential, Principal, PrincipalKind
from minicloud.registry.repositories import Repository
from minicloud.storage.keyfile import load_or_create_key

TOKEN_TTL = 900
ECR_PASSWORD_TTL = 12 * 3600
SERVICE = "minicloud"

# Docker scope actions -> the IAM actions that all must be allowed.
SCOPE_ACTIONS: Mapping[str, tuple[str, ...]] = {
    "pull": ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"),
    "push": ("ecr:PutImage", "ecr:InitiateLayerUpload", "ecr:UploadLayerPart", "ecr:CompleteLayerUpload",
             "ecr:BatchCheckLayerAvailability"),
    "delete": ("ecr:BatchDeleteImage",),
}
CATALOG_ACTION = "ecr:DescribeRepositories"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@functools.lru_cache(maxsize=1024)
def effective_policy(text: str | None, arn: str) -> str | None:
    """A repository policy as the policy engine reads it: ECR policies name no Resource (the
    repository is implied), so each statement without one gets the repository's ARN."""
    if not text:
        return None
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError:
        return text
    statements = doc.get("Statement") if isinstance(doc, dict) else None
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list):
        return text
    for statement in statements:
        if isinstance(statement, dict) and "Resource" not in statement and "NotResource" not in statement:
            statement["Resource"] = arn
    doc["Statement"] = statements
    return orjson.dumps(doc).decode()


async def authorize_pull(ctx: RequestContext, repository: Repository) -> None:
    """Raise ``ctx``'s access-denied error unless its caller may pull from ``repository`` (every IAM
    action of a Docker pull, with the repository's policy: another account needs that policy to grant
    it). For services that pull an image for a caller with minicloud's own credentials (EC2's
    registered AMIs, Lambda's container images)."""
    policy = effective_policy(repository.policy, repository.arn)
    for action in SCOPE_ACTIONS["pull"]:
        await ctx.authorize(action, repository.arn, resource_policy=policy, resource_account=repository.account_id)


def load_key(data_dir: Path) -> bytes:
    """The signing key, created once (0600) in the data dir: linked into place whole, so racers of
    the first start (threads or processes) all read the one key that won."""
    return load_or_create_key(data_dir / "registry" / "token.key")


@dataclass(frozen=True, slots=True)
class Grant:
    type: str
    name: str
    actions: frozenset[str]


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a registry request comes from."""

    principal: Principal
    access_key_id: str | None = None
    grants: tuple[Grant, ...] | None = None  # set for bearer tokens: what the token allows

    @property
    def anonymous(self) -> bool:
        return self.principal.kind is PrincipalKind.ANONYMOUS

    def asked(self, name: str, kind: str = "repository") -> bool:
        """Whether the token was issued for a scope on ``name`` (granted or not)."""
        return self.grants is not None and any(g.type == kind and g.name == name for g in self.grants)

    def granted(self, name: str, action: str, kind: str = "repository") -> bool:
        if self.grants is None:
            return False
        return any(g.type == kind and g.name == name and (action in g.actions or "*" in g.actions)
                   for g in self.grants)


class Signer:
    """HMAC-signed documents: bearer tokens and ECR passwords (distinct purposes, distinct MACs)."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def _mac(self, purpose: str, body: str) -> str:
        return _b64(hmac.new(self._key, f"{purpose}.{body}".encode(), hashlib.sha256).digest())

    def sign(self, purpose: str, payload: dict[str, Any]) -> str:
        body = _b64(orjson.dumps(payload))
        return f"{body}.{self._mac(purpose, body)}"

    def verify(self, purpose: str, token: str, now: float | None = None) -> dict[str, Any] | None:
        body, _, mac = token.strip().partition(".")
        if not body or not mac or not hmac.compare_digest(mac, self._mac(purpose, body)):
            return None
        try:
            payload = orjson.loads(_unb64(body))
        except (binascii.Error, ValueError, orjson.JSONDecodeError):
            return None
        if not isinstance(payload, dict) or not isinstance(payload.get("exp"), int | float):
            return None
        if payload["exp"] <= (time.time() if now is None else now):
            return None
        return payload


def principal_document(principal: Principal) -> dict[str, Any]:
    return {"kind": principal.kind.value, "account": principal.account_id, "arn": principal.arn,
            "user_id": principal.user_id, "name": principal.name, "role_arn": principal.role_arn,
            "role_id": principal.role_id, "tags": [list(t) for t in principal.tags],
            "session_policies": list(principal.session_policies)}


def principal_from(doc: Mapping[str, Any]) -> Principal:
    return Principal(PrincipalKind(doc["kind"]), doc["account"], doc["arn"], doc["user_id"], doc.get("name", ""),
                     doc.get("role_arn"), doc.get("role_id"), tuple(tuple(t) for t in doc.get("tags", [])),
                     tuple(doc.get("session_policies", [])))


class RegistryAuth:
    def __init__(self, credentials: CredentialStore, authorizer: Authorizer, key: bytes, region: str) -> None:
        self.credentials = credentials
        self.authorizer = authorizer
        self.signer = Signer(key)
        self.region = region
        self._decisions: dict[tuple[str, str, str, str], tuple[float, bool]] = {}

    # -- ECR passwords -------------------------------------------------------------------------------
    def ecr_password(self, credential: Credential, now: float | None = None) -> tuple[str, float]:
        expires = (now or time.time()) + ECR_PASSWORD_TTL
        if credential.expires_at is not None:
            expires = min(expires, credential.expires_at.timestamp())
        return self.signer.sign("ecr", {"kid": credential.access_key_id, "exp": int(expires)}), expires

    # -- authentication ------------------------------------------------------------------------------
    async def basic(self, username: str, password: str) -> Identity | None:
        """The identity behind Basic credentials, or None when they are wrong."""
        if username == "AWS":
            payload = self.signer.verify("ecr", password)
            if payload is None:
                return None
            credential = await self.credentials.resolve(str(payload["kid"]))
            if credential is None or not self._usable(credential):
                return None
        else:
            credential = await self.credentials.resolve(username)
            if credential is None or not self._usable(credential):
                return None
            if not hmac.compare_digest(credential.secret_access_key.encode(), password.encode()):
                return None
        return Identity(credential.principal, credential.access_key_id)

    @staticmethod
    def _usable(credential: Credential) -> bool:
        if not credential.active:
            return False
        return credential.expires_at is None or credential.expires_at > datetime.now(UTC)

    def bearer(self, token: str) -> Identity | None:
        payload = self.signer.verify("token", token)
        if payload is None or payload.get("aud") != SERVICE:
            return None
        grants = tuple(Grant(g["type"], g["name"], frozenset(g["actions"])) for g in payload.get("access", []))
        principal = principal_from(payload["principal"]) if payload.get("principal") else ANONYMOUS
        return Identity(principal, payload.get("kid"), grants)

    def issue(self, identity: Identity, grants: Iterable[Grant]) -> tuple[str, int]:
        now = int(time.time())
        payload = {
            "iss": SERVICE, "aud": SERVICE, "iat": now, "exp": now + TOKEN_TTL, "jti": secrets.token_hex(8),
            "kid": identity.access_key_id,
            "principal": None if identity.anonymous else principal_document(identity.principal),
            "access": [{"type": g.type, "name": g.name, "actions": sorted(g.actions)} for g in grants],
        }
        return self.signer.sign("token", payload), TOKEN_TTL

    # -- authorization -------------------------------------------------------------------------------
    def arn(self, account_id: str, name: str) -> str:
        return f"arn:aws:ecr:{self.region}:{account_id}:repository/{name}"

    async def check(self, principal: Principal, action: str, resource: str, *, client_ip: str,
                    resource_policy: str | None, resource_account: str) -> bool:
        key = (principal.arn + "|" + principal.user_id, action, resource, resource_policy or "")
        hit = self._decisions.get(key)
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            return hit[1]
        ctx = RequestContext(
            request_id="", service="ecr", operation=action.split(":", 1)[1], region=self.region,
            principal=principal, request=AwsRequest("GET", "/v2/", client_ip=client_ip),
            now=datetime.now(UTC), authorizer=self.authorizer, access_denied=AccessDenied,
        )
        result = await self.authorizer.check(principal, action, resource, context=ctx.condition_keys(),
                                             resource_policy=resource_policy, resource_account=resource_account)
        if len(self._decisions) > 10_000:
            self._decisions.clear()
        self._decisions[key] = (now + 2.0, result.allowed)
        return result.allowed

    async def allowed(self, identity: Identity, name: str, repository: Repository | None, action: str,
                      client_ip: str) -> bool:
        """May ``identity`` do the Docker scope ``action`` (pull, push, delete) on repository ``name``?"""
        if identity.grants is not None:
            return identity.granted(name, action)
        principal = identity.principal
        iam_actions = list(SCOPE_ACTIONS.get(action, ()))
        if not iam_actions:
            return False
        if repository is None:
            if identity.anonymous:
                return False
            account, policy = principal.account_id, None
            if action == "push":
                iam_actions.append("ecr:CreateRepository")
        else:
            account = repository.account_id
            policy = effective_policy(repository.policy, self.arn(account, name))
        resource = self.arn(account, name)
        for iam_action in iam_actions:
            if not await self.check(principal, iam_action, resource, client_ip=client_ip,
                                    resource_policy=policy, resource_account=account):
                return False
        return True

    async def catalog_allowed(self, identity: Identity, client_ip: str) -> bool:
        if identity.grants is not None:
            return identity.granted("catalog", "*", "registry")
        if identity.anonymous:
            return False
        principal = identity.principal
        return await self.check(principal, CATALOG_ACTION, self.arn(principal.account_id, "*"),
                                client_ip=client_ip, resource_policy=None, resource_account=principal.account_id)
