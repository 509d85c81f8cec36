"""What is being authorized: who asks, for which action on which resource, in which context.

The request context is what conditions and policy variables read. Its keys are case-insensitive
(IAM user guide, "Key names are case-insensitive"), so it is lower-cased once per request; the
principal's own keys (``aws:username``, ``aws:userid``, ``aws:PrincipalArn``,
``aws:PrincipalAccount``, ``aws:PrincipalType``, ``aws:PrincipalTag/*``) are derived from
:class:`PrincipalInfo` unless the caller already put them in the context.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

ContextValue = str | Sequence[str]

_EMPTY: Mapping[str, str] = MappingProxyType({})


class PrincipalKind(enum.StrEnum):
    ROOT = "root"
    USER = "user"
    ASSUMED_ROLE = "assumed-role"
    FEDERATED_USER = "federated-user"  # a GetFederationToken session
    WEB_IDENTITY = "web-identity"  # an OIDC/SAML identity asking to assume a role
    SERVICE = "service"
    ANONYMOUS = "anonymous"


_PRINCIPAL_TYPE = {
    PrincipalKind.ROOT: "Account",
    PrincipalKind.USER: "User",
    PrincipalKind.ASSUMED_ROLE: "AssumedRole",
    PrincipalKind.FEDERATED_USER: "FederatedUser",
    PrincipalKind.ANONYMOUS: "Anonymous",
}


@dataclass(frozen=True)
class PrincipalInfo:
    """The authenticated caller.

    ``arn`` is the caller's own ARN: ``arn:aws:iam::A:root``, ``arn:aws:iam::A:user/path/name``,
    ``arn:aws:sts::A:assumed-role/role/session``, ``arn:aws:sts::A:federated-user/name``; for a
    service its principal name (``lambda.amazonaws.com``); for a web identity its provider
    (``cognito-identity.amazonaws.com`` or an ``oidc-provider``/``saml-provider`` ARN).
    ``role_arn`` is the role of an assumed-role session; ``source_user_arn`` the IAM user (or root)
    that created a federated-user session. ``user_id`` is the unique id (``AIDA...`` for a user,
    ``AROA...:session`` for a role session).
    """

    arn: str
    account_id: str
    kind: PrincipalKind
    role_arn: str | None = None
    user_id: str = ""
    username: str | None = None
    tags: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    source_user_arn: str | None = None
    canonical_user_id: str | None = None

    @property
    def is_session(self) -> bool:
        return self.kind in (PrincipalKind.ASSUMED_ROLE, PrincipalKind.FEDERATED_USER)

    @property
    def principal_arn(self) -> str:
        """``aws:PrincipalArn``: the role (not the session) for an assumed-role session."""
        if self.kind is PrincipalKind.ASSUMED_ROLE and self.role_arn:
            return self.role_arn
        return self.arn


ANONYMOUS = PrincipalInfo(arn="anonymous", account_id="", kind=PrincipalKind.ANONYMOUS)


class EvalContext:
    """The request context with lower-cased keys: condition values and policy variables.

    Keys the caller gave win; the principal's own keys are derived on first use.
    """

    __slots__ = ("_derived", "_principal", "_tags", "_values")

    def __init__(self, values: dict[str, tuple[str, ...]], principal: PrincipalInfo | None = None) -> None:
        self._values = values
        self._principal = principal
        self._derived: dict[str, tuple[str, ...] | None] = {}
        self._tags: dict[str, str] | None = None

    def _lookup(self, key: str) -> tuple[str, ...] | None:
        values = self._values.get(key)
        if values is not None or self._principal is None:
            return values
        derived = self._derived
        if key not in derived:
            derived[key] = self._derive(key, self._principal)
        return derived[key]

    def get(self, key: str) -> tuple[str, ...] | None:
        """Values of a lower-cased key; None when absent or empty (a null data set)."""
        values = self._values.get(key)
        if values is None and self._principal is not None:
            values = self._lookup(key)
        return values if values else None

    def variable(self, key: str) -> str | None:
        """A single-valued key as a policy variable; multivalued keys cannot be variables."""
        values = self._lookup(key)
        if values is None or len(values) != 1:
            return None
        return values[0]

    def _derive(self, key: str, principal: PrincipalInfo) -> tuple[str, ...] | None:
        kind = principal.kind
        if key.startswith("aws:principaltag/"):
            if self._tags is None:
                self._tags = {k.lower(): v for k, v in principal.tags.items()}
            tag = self._tags.get(key[len("aws:principaltag/"):])
            return None if tag is None else (tag,)
        value: str | None = None
        if key == "aws:principaltype":
            value = _PRINCIPAL_TYPE.get(kind)
        elif kind is PrincipalKind.ANONYMOUS:
            return None
        elif key == "aws:userid":
            value = principal.user_id or None
        elif key == "aws:username":
            value = principal.username
        elif key == "aws:principalservicename":
            value = principal.arn if kind is PrincipalKind.SERVICE else None
        elif kind is PrincipalKind.SERVICE or kind is PrincipalKind.WEB_IDENTITY:
            return None
        elif key == "aws:principalarn":
            value = principal.principal_arn
        elif key == "aws:principalaccount":
            value = principal.account_id
        return None if value is None else (value,)


def _as_values(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, bool):
        return ("true" if value else "false",)
    if isinstance(value, (int, float)):
        return (str(value),)
    if isinstance(value, (list, tuple, set, frozenset)):
        return tuple(v for item in value for v in _as_values(item))
    return (str(value),)


def build_context(principal: PrincipalInfo, context: Mapping[str, object]) -> EvalContext:
    values = {key.lower(): (value,) if type(value) is str else _as_values(value)
              for key, value in context.items()}
    return EvalContext(values, principal)


@dataclass(frozen=True)
class AuthzRequest:
    """One authorization question: may *principal* perform *action* on *resource*?

    ``resource`` is an ARN, or ``*`` for actions without resource-level permissions.
    ``resource_account`` is the account that owns the resource; None means the principal's own
    account (or no owner, as for ``iam:ListUsers``).
    """

    action: str
    resource: str
    principal: PrincipalInfo
    resource_account: str | None = None
    context: Mapping[str, ContextValue] = field(default_factory=lambda: _EMPTY)
    action_key: str = field(init=False, repr=False, compare=False)  # lower-cased action
    vendor: str = field(init=False, repr=False, compare=False)  # its service prefix
    _context: EvalContext | None = field(init=False, default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        key = self.action.lower()
        object.__setattr__(self, "action_key", key)
        object.__setattr__(self, "vendor", key.partition(":")[0])

    @property
    def eval_context(self) -> EvalContext:
        """The lower-cased context, built on first use (many evaluations never need it)."""
        context = self._context
        if context is None:
            context = build_context(self.principal, self.context)
            object.__setattr__(self, "_context", context)
        return context

    @property
    def cross_account(self) -> bool:
        owner = self.resource_account
        return owner is not None and owner != "" and owner != self.principal.account_id
