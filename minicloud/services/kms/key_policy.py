"""What a key policy decides beyond the IAM evaluation every service shares.

``ctx.authorize`` evaluates IAM with the key policy as the key's resource policy: an explicit Deny
there wins, a statement naming the caller allows. KMS adds one rule (AWS's "key policies are the
primary way to control access"): IAM policies count only when the key policy allows the account
itself (``arn:aws:iam::<account>:root``, as the default policy does) for the action. A key policy
that leaves the account out admits only the principals it names; the root user included.
"""

from __future__ import annotations

from collections import OrderedDict

from minicloud.aws.context import RequestContext
from minicloud.iam.evaluator import principal_info
from minicloud.iam.identity import Principal
from minicloud.iam.policy import AuthzRequest, Policy, PolicyKind, PrincipalInfo, PrincipalKind, parse_policy
from minicloud.iam.policy.principals import Grant

_COMPILED: OrderedDict[str, Policy] = OrderedDict()
_MAX_COMPILED = 1024


def compiled(text: str) -> Policy:
    policy = _COMPILED.get(text)
    if policy is None:
        policy = _COMPILED[text] = parse_policy(text, PolicyKind.RESOURCE)
        while len(_COMPILED) > _MAX_COMPILED:
            _COMPILED.popitem(last=False)
    return policy


def _allows(policy: Policy, principal: PrincipalInfo, request: AuthzRequest, strongest: bool) -> bool:
    for statement in policy.candidates(request.action_key, request.vendor)[1]:
        grant = statement.grant(principal)
        wanted = grant in (Grant.DIRECT, Grant.ROLE) if strongest else grant > Grant.NONE
        if wanted and statement.applies_to_resource(request):
            return True
    return False


def admits(policy_text: str, principal: Principal, action: str, key_arn: str, key_account: str,
           context: dict[str, str | list[str]]) -> bool:
    """Whether the key policy lets IAM decide for ``principal`` (it allows the account), or names
    ``principal`` itself. Callers from another account are left to the IAM evaluation."""
    if principal.account_id != key_account:
        return True
    policy = compiled(policy_text)
    root = PrincipalInfo(arn=f"arn:aws:iam::{key_account}:root", account_id=key_account, kind=PrincipalKind.ROOT)
    as_root = AuthzRequest(action=action, resource=key_arn, principal=root, context=context)
    if _allows(policy, root, as_root, strongest=False):
        return True
    caller = principal_info(principal)
    return _allows(policy, caller, AuthzRequest(action=action, resource=key_arn, principal=caller, context=context),
                   strongest=True)


async def authorize(ctx: RequestContext, policy_text: str, action: str, key_arn: str, key_account: str) -> None:
    await ctx.authorize(action, key_arn, resource_policy=policy_text, resource_account=key_account)
    if not admits(policy_text, ctx.principal, action, key_arn, key_account, ctx.condition_keys()):
        raise ctx.access_denied(f"User: {ctx.principal.arn} is not authorized to perform: {action} on resource: "
                                f"{key_arn} because no resource-based policy allows the {action} action")
