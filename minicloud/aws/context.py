"""What a provider knows about the request it serves."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from minicloud.aws.errors import ServiceError
from minicloud.aws.request import AwsRequest
from minicloud.iam.authorizer import Authorizer
from minicloud.iam.identity import Principal, PrincipalKind

ConditionValues = Mapping[str, str | list[str]]


@dataclass(slots=True)
class RequestContext:
    request_id: str
    service: str
    operation: str
    region: str
    principal: Principal
    request: AwsRequest
    now: datetime
    authorizer: Authorizer
    access_denied: type[ServiceError]
    authorized: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def account_id(self) -> str:
        return self.principal.account_id

    def condition_keys(self) -> dict[str, str | list[str]]:
        """The global condition keys (aws:*) of this request."""
        p = self.principal
        keys: dict[str, str | list[str]] = {
            "aws:CurrentTime": self.now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "aws:EpochTime": str(int(self.now.timestamp())),
            "aws:SourceIp": self.request.client_ip,
            "aws:SecureTransport": "true" if self.request.secure else "false",
            "aws:RequestedRegion": self.region,
            "aws:PrincipalArn": p.role_arn if p.kind is PrincipalKind.ASSUMED_ROLE and p.role_arn else p.arn,
            "aws:PrincipalAccount": p.account_id,
            "aws:PrincipalType": {
                PrincipalKind.ROOT: "Account", PrincipalKind.USER: "User",
                PrincipalKind.ASSUMED_ROLE: "AssumedRole", PrincipalKind.FEDERATED_USER: "FederatedUser",
                PrincipalKind.ANONYMOUS: "Anonymous",
            }[p.kind],
            "aws:userid": p.user_id,
        }
        if p.kind is PrincipalKind.USER:
            keys["aws:username"] = p.name
        if p.source_identity is not None:
            keys["aws:SourceIdentity"] = p.source_identity
        for tag_key, tag_value in p.tags:
            keys[f"aws:PrincipalTag/{tag_key}"] = tag_value
        return keys

    async def authorize(self, action: str, resource: str = "*", *,
                        context: ConditionValues | None = None, resource_policy: str | None = None,
                        resource_account: str | None = None) -> None:
        """Raise the service's access-denied error unless IAM allows ``action`` on ``resource``."""
        owner = resource_account if resource_account is not None else self.account_id
        if self.principal.kind is PrincipalKind.ROOT and resource_policy is None and owner == self.account_id:
            # An account's root user may do anything to its own account's resources; only a
            # resource policy's explicit deny could stop it, and there is none here.
            self.authorized = True
            return
        keys = self.condition_keys()
        if context:
            keys.update(context)
        result = await self.authorizer.check(
            self.principal, action, resource, context=keys, resource_policy=resource_policy,
            resource_account=owner,
        )
        if not result.allowed:
            message = result.message
            if self.access_denied.encodes_failure:
                encoded = self.authorizer.encoded_failure(self.principal, action, resource, keys, result)
                if encoded is not None:
                    message = f"{message} {encoded}".strip()
            raise self.access_denied(message)
        self.authorized = True

    def allow_unauthenticated(self) -> None:
        """For operations that need no permission (sts:GetCallerIdentity)."""
        self.authorized = True
