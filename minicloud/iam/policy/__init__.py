"""The IAM policy language: parse and validate documents, evaluate requests. Pure and fast: no
I/O, no database; a parsed :class:`Policy` is immutable and reusable across threads.

    document.py    parse_policy(text, kind) -> Policy; validation with IAM's messages; policy_size
    matching.py    wildcards (actions, ARNs), policy variables
    conditions.py  condition operators, IfExists, ForAnyValue/ForAllValues
    principals.py  Principal/NotPrincipal matching
    request.py     PrincipalInfo, AuthzRequest (the request context)
    evaluate.py    evaluate(...) -> Decision; denial_message(...)
    limits.py      IAM's policy size quotas
"""

from .document import Policy, PolicyKind, Statement, parse_policy, policy_size
from .errors import MalformedPolicyDocument
from .evaluate import ALLOWED, Decision, PolicyType, Verdict, denial_message, evaluate
from .limits import (
    INLINE_GROUP_POLICIES_MAX,
    INLINE_ROLE_POLICIES_MAX,
    INLINE_USER_POLICIES_MAX,
    MANAGED_POLICY_MAX,
    ROLE_TRUST_POLICY_MAX,
    SESSION_POLICY_MAX,
)
from .request import ANONYMOUS, AuthzRequest, PrincipalInfo, PrincipalKind

__all__ = [
    "ALLOWED",
    "ANONYMOUS",
    "INLINE_GROUP_POLICIES_MAX",
    "INLINE_ROLE_POLICIES_MAX",
    "INLINE_USER_POLICIES_MAX",
    "MANAGED_POLICY_MAX",
    "ROLE_TRUST_POLICY_MAX",
    "SESSION_POLICY_MAX",
    "AuthzRequest",
    "Decision",
    "MalformedPolicyDocument",
    "Policy",
    "PolicyKind",
    "PolicyType",
    "PrincipalInfo",
    "PrincipalKind",
    "Statement",
    "Verdict",
    "denial_message",
    "evaluate",
    "parse_policy",
    "policy_size",
]
