"""Policy evaluation: explicit deny > allow > implicit deny, exactly as AWS documents it.

Sources: IAM user guide, "Policy evaluation logic" (single account), "Cross-account policy
evaluation logic", "Permissions boundaries for IAM entities" (evaluating effective permissions),
"Troubleshooting access denied error messages" (the messages).

1. An explicit ``Deny`` that applies in any policy (resource-based, identity-based, permissions
   boundary, session) decides: EXPLICIT_DENY.
2. Anonymous callers, services and web identities have no identity-based policies: only a
   resource-based (or trust) policy statement naming them (or ``*``) allows.
3. Same account (``resource_account`` is None or the principal's account):
   * the root user is allowed (only an explicit deny stops it);
   * a resource-based policy naming the caller itself (user ARN, session ARN, federated-user ARN,
     or ``*``) allows, whatever identity policies, boundary or session policies say;
   * one naming the role of a session (or the IAM user behind a federated session) allows unless
     the permissions boundary or the session policies implicitly deny;
   * otherwise identity-based policies must allow, AND the permissions boundary (if any), AND the
     session policies (if any; a federated-user session without one has no permissions);
   * a role trust policy is an exception: it must itself allow (naming the account then still
     needs an identity-based allow).
4. Cross-account: both sides must allow: the principal's account (identity-based policies,
   boundary, session policies; implicit for its root user) and the resource's account (the
   resource-based policy must name the caller, its role or its account, or ``*``).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from .document import Policy, PolicyKind, Statement
from .principals import Grant
from .request import AuthzRequest, PrincipalKind


class Verdict(enum.Enum):
    ALLOW = "Allow"
    EXPLICIT_DENY = "ExplicitDeny"
    IMPLICIT_DENY = "ImplicitDeny"


class PolicyType(enum.Enum):
    """Which kind of policy decided a denial; the value is AWS's wording in messages."""

    IDENTITY = "identity-based policy"
    RESOURCE = "resource-based policy"
    BOUNDARY = "permissions boundary"
    SESSION = "session policy"


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    source: PolicyType | None = None  # the policy type that denied (None when allowed)
    sid: str | None = None  # the Sid of the explicit Deny statement, when it has one

    @property
    def allowed(self) -> bool:
        return self.verdict is Verdict.ALLOW


ALLOWED = Decision(Verdict.ALLOW)
_IMPLICIT = {source: Decision(Verdict.IMPLICIT_DENY, source) for source in PolicyType}


def evaluate(request: AuthzRequest, identity_policies: Sequence[Policy], *,
             resource_policy: Policy | None = None, session_policies: Sequence[Policy] = (),
             permissions_boundary: Policy | None = None) -> Decision:
    principal = request.principal
    grant = Grant.NONE
    if resource_policy is not None:
        deny, grant = _scan_resource_policy(resource_policy, request)
        if deny is not None:
            return Decision(Verdict.EXPLICIT_DENY, PolicyType.RESOURCE, deny.sid)
    if principal.kind in (PrincipalKind.ANONYMOUS, PrincipalKind.SERVICE, PrincipalKind.WEB_IDENTITY):
        return ALLOWED if grant else _IMPLICIT[PolicyType.RESOURCE]

    # Deny evaluation first, in every policy; then look for allows (stopping at the first one).
    deny = _find_deny(identity_policies, request)
    if deny is not None:
        return Decision(Verdict.EXPLICIT_DENY, PolicyType.IDENTITY, deny.sid)
    boundary = (permissions_boundary,) if permissions_boundary is not None else ()
    deny = _find_deny(boundary, request)
    if deny is not None:
        return Decision(Verdict.EXPLICIT_DENY, PolicyType.BOUNDARY, deny.sid)
    deny = _find_deny(session_policies, request)
    if deny is not None:
        return Decision(Verdict.EXPLICIT_DENY, PolicyType.SESSION, deny.sid)

    is_root = principal.kind is PrincipalKind.ROOT
    if request.cross_account:
        if not is_root:
            own = _own_account(request, identity_policies, boundary, session_policies)
            if own is not ALLOWED:
                return own
        return ALLOWED if grant else _IMPLICIT[PolicyType.RESOURCE]
    if grant is Grant.DIRECT:
        return ALLOWED
    if grant is Grant.ROLE:
        return _own_account(request, (), boundary, session_policies, identity=False)
    if resource_policy is not None and resource_policy.kind is PolicyKind.TRUST and grant is Grant.NONE:
        return _IMPLICIT[PolicyType.RESOURCE]
    if is_root:
        return ALLOWED
    return _own_account(request, identity_policies, boundary, session_policies)


def _own_account(request: AuthzRequest, identity_policies: Sequence[Policy], boundary: Sequence[Policy],
                 session_policies: Sequence[Policy], *, identity: bool = True) -> Decision:
    """What the principal's own policies say (no explicit deny is left at this point):
    identity-based policies, AND the permissions boundary, AND the session policies."""
    if identity and not _federated_by_root(request) and not _finds_allow(identity_policies, request):
        return _IMPLICIT[PolicyType.IDENTITY]
    if boundary and not _finds_allow(boundary, request):
        return _IMPLICIT[PolicyType.BOUNDARY]
    if session_policies:
        if not _finds_allow(session_policies, request):
            return _IMPLICIT[PolicyType.SESSION]
    elif request.principal.kind is PrincipalKind.FEDERATED_USER:
        # GetFederationToken without a policy: the session has no permissions (step 6 of the
        # evaluation logic); a role session without one keeps its role's permissions.
        return _IMPLICIT[PolicyType.SESSION]
    return ALLOWED


def _federated_by_root(request: AuthzRequest) -> bool:
    principal = request.principal
    source = principal.source_user_arn
    return (principal.kind is PrincipalKind.FEDERATED_USER and source is not None
            and source.endswith(":root"))


def _find_deny(policies: Sequence[Policy], request: AuthzRequest) -> Statement | None:
    action, vendor = request.action_key, request.vendor
    for policy in policies:
        for statement in policy.candidates(action, vendor)[0]:
            if statement.applies_to_resource(request):
                return statement
    return None


def _finds_allow(policies: Sequence[Policy], request: AuthzRequest) -> bool:
    action, vendor = request.action_key, request.vendor
    for policy in policies:
        for statement in policy.candidates(action, vendor)[1]:
            if statement.applies_to_resource(request):
                return True
    return False


def _scan_resource_policy(policy: Policy, request: AuthzRequest) -> tuple[Statement | None, Grant]:
    """(the first applicable Deny naming the caller, the strongest Allow grant to the caller)."""
    principal = request.principal
    denies, allows = policy.candidates(request.action_key, request.vendor)
    for statement in denies:
        if statement.grant(principal) and statement.applies_to_resource(request):
            return statement, Grant.NONE
    best = Grant.NONE
    for statement in allows:
        grant = statement.grant(principal)
        if grant > best and statement.applies_to_resource(request):
            best = grant
            if best is Grant.DIRECT:
                break
    return None, best


def denial_message(decision: Decision, request: AuthzRequest) -> str:
    """AWS's AccessDenied text, e.g. ``User: arn:aws:iam::123456789012:user/bob is not authorized
    to perform: iam:ListUsers on resource: arn:aws:iam::123456789012:user/ because no
    identity-based policy allows the iam:ListUsers action``."""
    if decision.allowed:
        raise ValueError("an allowed request has no denial message")
    principal = request.principal
    who = "anonymous" if principal.kind is PrincipalKind.ANONYMOUS else principal.arn
    on = f" on resource: {request.resource}" if request.resource and request.resource != "*" else ""
    policy_type = (decision.source or PolicyType.IDENTITY).value
    if decision.verdict is Verdict.EXPLICIT_DENY:
        article = "an" if policy_type[0] in "aeiou" else "a"
        why = f"with an explicit deny in {article} {policy_type}"
    else:
        why = f"because no {policy_type} allows the {request.action} action"
    return f"User: {who} is not authorized to perform: {request.action}{on} {why}"
