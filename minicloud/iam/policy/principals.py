"""``Principal`` / ``NotPrincipal``: who a resource-based or trust policy statement is about.

A request's principal is a chain of identities, outermost first (IAM user guide, "NotPrincipal":
"AWS might validate the account first, then the role, and then the assumed-role user"):

    root            account
    user            account, user ARN / unique id
    assumed-role    account, role ARN / role unique id, session ARN
    federated-user  account, ARN of the IAM user who federated, federated-user ARN
    service         service principal name
    web-identity    identity provider
    anonymous       (nothing but ``*``)

A ``Principal`` statement matches when any identity of the chain is named; how it matched decides
which implicit denies can still limit the grant (user guide, "Policy evaluation logic"): naming the
caller itself is a DIRECT grant, naming the role of a session (or the user behind a federated
session) is a ROLE grant (still limited by permissions boundaries and session policies), naming the
account is an ACCOUNT grant (the account must still allow it through identity-based policies).
A ``NotPrincipal`` statement applies unless every identity of the chain is named.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from .request import PrincipalInfo, PrincipalKind


class Grant(enum.IntEnum):
    NONE = 0
    ACCOUNT = 1
    ROLE = 2
    DIRECT = 3


_ACCOUNT_ID = re.compile(r"\d{12}")
_UNIQUE_ID = re.compile(r"A[A-Z0-9]{3}[A-Z0-9]{12,124}")
_AWS_ARN = re.compile(
    r"arn:aws[a-z0-9-]*:(?:"
    r"iam::(?P<iam_account>\d{12}|aws):(?P<iam>root|user/.+|role/.+|federated-user/.+)"
    r"|sts::(?P<sts_account>\d{12}):(?P<sts>assumed-role/[^/]+/.+|federated-user/.+))")


def valid_aws_principal(value: str) -> bool:
    """``"*"``, an account id, an IAM/STS principal ARN (no wildcards), or a unique id."""
    if value == "*":
        return True
    if "*" in value or "?" in value:
        return False
    return bool(_ACCOUNT_ID.fullmatch(value) or _UNIQUE_ID.fullmatch(value) or _AWS_ARN.fullmatch(value))


def account_of_root_arn(value: str) -> str | None:
    match = _AWS_ARN.fullmatch(value)
    if match and match.group("iam") == "root":
        return match.group("iam_account")
    return None


@dataclass(frozen=True, slots=True)
class Principals:
    """A parsed ``Principal`` (or, with ``negated``, ``NotPrincipal``) element."""

    negated: bool
    everyone: bool = False  # "*" or {"AWS": "*"}
    accounts: frozenset[str] = frozenset()
    arns: frozenset[str] = frozenset()  # user, role, session, federated-user ARNs; unique ids
    services: frozenset[str] = frozenset()  # lower-cased
    federated: frozenset[str] = frozenset()
    canonical: frozenset[str] = frozenset()

    def grant(self, principal: PrincipalInfo) -> Grant:
        """How this element covers *principal* (NONE if the statement does not apply to it)."""
        if self.negated:
            return Grant.NONE if self._names_all(principal) else Grant.DIRECT
        if self.everyone:
            return Grant.DIRECT
        return self._best(principal)

    def _best(self, principal: PrincipalInfo) -> Grant:
        kind = principal.kind
        if kind is PrincipalKind.SERVICE:
            return Grant.DIRECT if principal.arn.lower() in self.services else Grant.NONE
        if kind is PrincipalKind.WEB_IDENTITY:
            return Grant.DIRECT if principal.arn in self.federated else Grant.NONE
        if kind is PrincipalKind.ANONYMOUS:
            return Grant.NONE
        if principal.arn in self.arns or (principal.user_id and principal.user_id in self.arns):
            return Grant.DIRECT
        if principal.canonical_user_id and principal.canonical_user_id in self.canonical:
            return Grant.DIRECT
        parent = _parent(principal)
        if parent and (parent in self.arns or _parent_id(principal) in self.arns):
            return Grant.ROLE
        if principal.account_id in self.accounts:
            return Grant.ACCOUNT
        return Grant.NONE

    def _names_all(self, principal: PrincipalInfo) -> bool:
        if self.everyone:
            return True
        kind = principal.kind
        if kind is PrincipalKind.SERVICE:
            return principal.arn.lower() in self.services
        if kind is PrincipalKind.WEB_IDENTITY:
            return principal.arn in self.federated
        if kind is PrincipalKind.ANONYMOUS:
            return False
        if principal.account_id not in self.accounts:
            return False
        if kind is PrincipalKind.ROOT:
            return True
        parent = _parent(principal)
        if parent and not (parent in self.arns or _parent_id(principal) in self.arns):
            return False
        return principal.arn in self.arns or bool(principal.user_id and principal.user_id in self.arns)


def _parent(principal: PrincipalInfo) -> str | None:
    """The role of a session, or the IAM user behind a federated session (root: the account)."""
    if principal.kind is PrincipalKind.ASSUMED_ROLE:
        return principal.role_arn
    if principal.kind is PrincipalKind.FEDERATED_USER:
        source = principal.source_user_arn
        return None if source is None or account_of_root_arn(source) else source
    return None


def _parent_id(principal: PrincipalInfo) -> str:
    if principal.kind is PrincipalKind.ASSUMED_ROLE:
        return principal.user_id.partition(":")[0]
    return ""


def build_principals(negated: bool, everyone: bool, aws: list[str], services: list[str],
                     federated: list[str], canonical: list[str]) -> Principals:
    accounts: set[str] = set()
    arns: set[str] = set()
    for value in aws:
        if value == "*":
            everyone = True
        elif _ACCOUNT_ID.fullmatch(value):
            accounts.add(value)
        else:
            root_account = account_of_root_arn(value)
            if root_account is not None:
                accounts.add(root_account)
            else:
                arns.add(value)
    return Principals(negated=negated, everyone=everyone, accounts=frozenset(accounts),
                      arns=frozenset(arns), services=frozenset(s.lower() for s in services),
                      federated=frozenset(federated), canonical=frozenset(canonical))
