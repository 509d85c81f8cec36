"""The policy simulator: SimulatePrincipalPolicy and SimulateCustomPolicy, answered by the same
policy engine that authorizes every request."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from minicloud.aws.context import RequestContext
from minicloud.iam import store
from minicloud.iam.policy import (
    AuthzRequest,
    Policy,
    PolicyKind,
    PolicyType,
    PrincipalInfo,
    Verdict,
    evaluate,
)
from minicloud.iam.policy import PrincipalKind as EngineKind
from minicloud.services.iam.account import AccountMixin
from minicloud.services.iam.base import Params, Result, page_list, paged
from minicloud.services.iam.errors import InvalidInput, NoSuchEntity

_IDENTITY_KEYS = frozenset({"aws:principalarn", "aws:principalaccount", "aws:principaltype", "aws:userid",
                            "aws:username"})
_DECISIONS = {Verdict.ALLOW: "allowed", Verdict.EXPLICIT_DENY: "explicitDeny",
              Verdict.IMPLICIT_DENY: "implicitDeny"}


def context_entries(entries: Sequence[dict[str, Any]] | None) -> dict[str, str | list[str]]:
    context: dict[str, str | list[str]] = {}
    for entry in entries or ():
        values = [str(v) for v in entry.get("ContextKeyValues") or []]
        many = str(entry.get("ContextKeyType") or "string").endswith("List")
        context[entry["ContextKeyName"]] = values if many or len(values) != 1 else values[0]
    return context


def _source(conn: sa.Connection, account_id: str,
            arn: str) -> tuple[PrincipalInfo, store.PolicySources] | None:
    """The simulated principal and its policies, for a user, group or role ARN of the account."""
    if (parts := store.split_arn(arn, "user")) and parts[0] == account_id:
        user = store.get_user(conn, account_id, parts[2])
        if user is not None:
            info = PrincipalInfo(arn=user.arn, account_id=account_id, kind=EngineKind.USER,
                                 user_id=user.user_id, username=user.name)
            return info, store.user_policies(conn, user.user_id) or store.PolicySources()
    if (parts := store.split_arn(arn, "group")) and parts[0] == account_id:
        group = store.get_group(conn, account_id, parts[2])
        if group is not None:
            info = PrincipalInfo(arn=group.arn, account_id=account_id, kind=EngineKind.USER)
            return info, store.group_policies(conn, group.group_id)
    if (parts := store.split_arn(arn, "role")) and parts[0] == account_id:
        role = store.get_role(conn, account_id, parts[2])
        if role is not None:
            info = PrincipalInfo(arn=role.arn, account_id=account_id, kind=EngineKind.ASSUMED_ROLE,
                                 role_arn=role.arn, user_id=role.role_id)
            return info, store.role_policies(conn, role.role_id) or store.PolicySources()
    return None


class SimulationMixin(AccountMixin):
    def _parse_all(self, texts: Sequence[str] | None, kind: PolicyKind) -> tuple[Policy, ...]:
        return tuple(self.evaluator.compile(text, kind) for text in texts or ())

    async def simulate_principal_policy(self, ctx: RequestContext, params: Params) -> Result:
        source = params["PolicySourceArn"]
        await ctx.authorize("iam:SimulatePrincipalPolicy", source)

        info_sources = await self.read(lambda conn: _source(conn, ctx.account_id, source))
        if info_sources is None:
            raise NoSuchEntity(f"The entity {source} cannot be found.")
        info, sources = info_sources
        identity = self._parse_all(sources.identity, PolicyKind.IDENTITY)
        identity += self._parse_all(params.get("PolicyInputList"), PolicyKind.IDENTITY)
        boundaries = self._parse_all(params.get("PermissionsBoundaryPolicyInputList"), PolicyKind.BOUNDARY)
        if not boundaries and sources.boundary:
            boundaries = (self.evaluator.compile(sources.boundary, PolicyKind.BOUNDARY),)
        return self._simulate(ctx, params, info, identity, boundaries)

    async def simulate_custom_policy(self, ctx: RequestContext, params: Params) -> Result:
        await ctx.authorize("iam:SimulateCustomPolicy", "*")
        caller = params.get("CallerArn")
        info = PrincipalInfo(arn=caller or f"arn:aws:iam::{ctx.account_id}:user/simulated",
                             account_id=ctx.account_id, kind=EngineKind.USER)
        identity = self._parse_all(params["PolicyInputList"], PolicyKind.IDENTITY)
        boundaries = self._parse_all(params.get("PermissionsBoundaryPolicyInputList"), PolicyKind.BOUNDARY)
        return self._simulate(ctx, params, info, identity, boundaries)

    def _simulate(self, ctx: RequestContext, params: Params, info: PrincipalInfo,
                  identity: tuple[Policy, ...], boundaries: tuple[Policy, ...]) -> Result:
        if len(boundaries) > 1:
            raise InvalidInput("Only one permissions boundary policy can be simulated.")
        resource_policy = None
        if params.get("ResourcePolicy"):
            resource_policy = self.evaluator.compile(params["ResourcePolicy"], PolicyKind.RESOURCE)
        owner = params.get("ResourceOwner")
        owner_account = owner.split(":")[4] if owner and owner.count(":") >= 4 else None
        # The request's environment (time, source IP...), not the caller's identity: the simulated
        # principal's own keys (aws:username, aws:PrincipalArn...) come from ``info``.
        environment = {k: v for k, v in ctx.condition_keys().items() if k.lower() not in _IDENTITY_KEYS
                       and not k.lower().startswith("aws:principaltag/")}
        context = {**environment, **context_entries(params.get("ContextEntries"))}
        results = []
        for action in params["ActionNames"]:
            for resource in params.get("ResourceArns") or ["*"]:
                request = AuthzRequest(action=action, resource=resource, principal=info,
                                       resource_account=owner_account, context=context)
                decision = evaluate(request, identity, resource_policy=resource_policy,
                                    permissions_boundary=boundaries[0] if boundaries else None)
                result: Result = {"EvalActionName": action, "EvalResourceName": resource,
                                  "EvalDecision": _DECISIONS[decision.verdict], "MatchedStatements": [],
                                  "MissingContextValues": []}
                if boundaries:
                    result["PermissionsBoundaryDecisionDetail"] = {
                        "AllowedByPermissionsBoundary": decision.source is not PolicyType.BOUNDARY}
                results.append(result)
        chosen, marker = page_list(list(enumerate(results)), lambda r: f"{r[0]:08d}", params)
        return paged("EvaluationResults", [r for _, r in chosen], marker)
