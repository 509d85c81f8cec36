"""Whether an AWS service may assume a role: the role's trust policy, evaluated as STS evaluates it
for that service principal (the real evaluator, so a Deny or an unmet condition refuses)."""

from __future__ import annotations

from minicloud.iam.policy import (
    AuthzRequest,
    MalformedPolicyDocument,
    PolicyKind,
    PrincipalInfo,
    evaluate,
    parse_policy,
)
from minicloud.iam.policy import PrincipalKind as PolicyPrincipalKind


def service_may_assume(trust_policy: str | None, role_arn: str, account_id: str, service: str) -> bool:
    """``service`` is a service principal such as ``lambda.amazonaws.com``."""
    try:
        policy = parse_policy(trust_policy or "", PolicyKind.TRUST)
    except MalformedPolicyDocument:
        return False
    principal = PrincipalInfo(arn=service, account_id="", kind=PolicyPrincipalKind.SERVICE)
    request = AuthzRequest("sts:AssumeRole", role_arn, principal, resource_account=account_id)
    return evaluate(request, (), resource_policy=policy).allowed
