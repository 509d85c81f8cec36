"""Authorization of every request of every service: ``Authorizer.check`` answers allow or deny.

Root users are allowed everything on their own account's resources (unless a resource policy
explicitly denies). Other principals are evaluated by the policy engine against their identity
policies (loaded through the registered ``PolicyLoader``), the resource's policy, session
policies and permissions boundary.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from minicloud.iam.failure_messages import PREFIX, FailureMessages, failure_document
from minicloud.iam.identity import Principal, PrincipalKind


@dataclass(frozen=True, slots=True)
class AuthzResult:
    allowed: bool
    message: str = ""


# Loads what the engine needs for a principal and evaluates; installed by the IAM service.
Evaluator = Callable[[Principal, str, str, Mapping[str, str | list[str]], str | None, str | None],
                     Awaitable[AuthzResult]]


class Authorizer:
    def __init__(self) -> None:
        self._evaluator: Evaluator | None = None
        # Seals the encoded failure messages some services' refusals carry (installed by STS, which
        # decodes them: sts:DecodeAuthorizationMessage); None: refusals carry none.
        self.failure_messages: FailureMessages | None = None

    def set_evaluator(self, evaluator: Evaluator) -> None:
        self._evaluator = evaluator

    def encoded_failure(self, principal: Principal, action: str, resource: str,
                        context: Mapping[str, str | list[str]], result: AuthzResult) -> str | None:
        """The "Encoded authorization failure message: ..." sentence of a refusal, if tokens are made."""
        if self.failure_messages is None:
            return None
        document = failure_document(principal, action, resource, context, "explicit deny" in result.message)
        return PREFIX + self.failure_messages.encode(principal.account_id, document)

    async def check(self, principal: Principal, action: str, resource: str, *,
                    context: Mapping[str, str | list[str]],
                    resource_policy: str | None = None, resource_account: str | None = None) -> AuthzResult:
        if self._evaluator is not None:
            return await self._evaluator(principal, action, resource, context, resource_policy,
                                         resource_account)
        same_account = resource_account is None or resource_account == principal.account_id
        if principal.kind is PrincipalKind.ROOT and same_account:
            return AuthzResult(True)
        return AuthzResult(False, f"User: {principal.arn} is not authorized to perform: {action} "
                                  f"on resource: {resource}")
