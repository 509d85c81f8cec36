"""Authorization of every request of every service: ``Authorizer.check`` answers allow or deny.

Root users are allowed everything on their own account's resources (unless a resource policy
explicitly denies). Other principals are evaluated by the policy engine against their identity
policies (loaded through the registered ``PolicyLoader``), the resource's policy, session
policies and permissions boundary.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

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

    def set_evaluator(self, evaluator: Evaluator) -> None:
        self._evaluator = evaluator

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
