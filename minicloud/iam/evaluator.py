"""The Authorizer's evaluator: which policies are in force for a principal, and the engine's verdict.

For every request (``Authorizer.check``) it needs the caller's identity-based policies:

    IAM user         its inline policies, attached managed policies, and the inline and attached
                     policies of each of its groups; its permissions boundary
    role session     the role's inline and attached policies, its boundary; the session policies
                     carried by the session (``Principal.session_policies``)
    federated user   the policies of the IAM user that called GetFederationToken (the principal's
                     ``role_arn`` names it), narrowed by the session policies
    root, anonymous  none (the engine allows the root user in its own account)

Loading them costs several queries and parsing costs more, so both are done once per principal
and cached: ``_principals`` maps a principal (user id / role id) to its *compiled* policies, and
``_compiled`` maps a document's text to its parsed ``Policy`` so that a managed policy attached to
a hundred users is parsed once. ``invalidate()`` — called after every IAM write in this process —
drops the principal cache (a generation counter keeps a load that raced with a write from being
cached); entries also expire after ``ttl`` seconds so that writes by another API server on the
same metadata store are seen.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

import sqlalchemy as sa

from minicloud.iam import store
from minicloud.iam.authorizer import AuthzResult
from minicloud.iam.identity import Principal, PrincipalKind
from minicloud.iam.policy import (
    ANONYMOUS,
    AuthzRequest,
    MalformedPolicyDocument,
    Policy,
    PolicyKind,
    PrincipalInfo,
    denial_message,
    evaluate,
    parse_policy,
)
from minicloud.iam.policy import PrincipalKind as EngineKind
from minicloud.storage.metadata.db import Database

log = logging.getLogger("minicloud.iam.evaluator")

# Actions whose resource policy is a role's trust policy.
_TRUST_ACTIONS = frozenset({"sts:assumerole", "sts:assumerolewithsaml", "sts:assumerolewithwebidentity",
                            "sts:tagsession", "sts:setsourceidentity", "sts:setcontext"})


@dataclass(frozen=True, slots=True)
class CompiledPolicies:
    """A principal's identity-based policies and boundary, parsed and ready for the engine."""

    identity: tuple[Policy, ...] = ()
    boundary: Policy | None = None


NO_POLICIES = CompiledPolicies()


class IamEvaluator:
    def __init__(self, db: Database, *, ttl: float = 10.0, max_principals: int = 10_000,
                 max_documents: int = 10_000) -> None:
        self._db = db
        self._ttl = ttl
        self._max_principals = max_principals
        self._max_documents = max_documents
        self._generation = 0
        self._epoch = db.epoch.value()
        self._principals: OrderedDict[tuple[str, str], tuple[float, CompiledPolicies]] = OrderedDict()
        self._compiled: OrderedDict[tuple[PolicyKind, str], Policy] = OrderedDict()
        self.loads = 0  # principal loads from the metadata store (observable by tests)
        self.parses = 0  # documents parsed

    # -- cache control -------------------------------------------------------------------------
    def invalidate(self) -> None:
        """Forget every principal's policies (after any IAM write), in every process sharing the store."""
        self._generation += 1
        self._principals.clear()
        self._db.epoch.bump()

    # -- the Authorizer's evaluator ------------------------------------------------------------
    async def __call__(self, principal: Principal, action: str, resource: str,
                       context: Mapping[str, str | list[str]], resource_policy: str | None,
                       resource_account: str | None) -> AuthzResult:
        policies = await self.policies_for(principal)
        info = principal_info(principal)
        request = AuthzRequest(action=action, resource=resource, principal=info,
                               resource_account=resource_account, context=context)
        resource_doc = None
        if resource_policy:
            kind = PolicyKind.TRUST if action.lower() in _TRUST_ACTIONS else PolicyKind.RESOURCE
            resource_doc = self._compile_stored(resource_policy, kind)
        session = tuple(p for p in (self._compile_stored(text, PolicyKind.SESSION)
                                    for text in principal.session_policies) if p is not None)
        decision = evaluate(request, policies.identity, resource_policy=resource_doc,
                            session_policies=session, permissions_boundary=policies.boundary)
        if decision.allowed:
            return AuthzResult(True)
        return AuthzResult(False, denial_message(decision, request))

    # -- loading -----------------------------------------------------------------------------------
    async def policies_for(self, principal: Principal) -> CompiledPolicies:
        key = _cache_key(principal)
        if key is None:
            return NO_POLICIES
        epoch = self._db.epoch.value()
        if epoch != self._epoch:  # an IAM write by another process
            self._principals.clear()
            self._epoch = epoch
        now = time.monotonic()
        hit = self._principals.get(key)
        if hit is not None and hit[0] > now:
            self._principals.move_to_end(key)
            return hit[1]
        generation = self._generation
        sources = await self._db.read(lambda conn: _load_sources(conn, key))
        self.loads += 1
        compiled = self._compile_sources(sources)
        if generation == self._generation and self._db.epoch.value() == epoch:  # no IAM write meanwhile
            self._principals[key] = (now + self._ttl, compiled)
            self._principals.move_to_end(key)
            while len(self._principals) > self._max_principals:
                self._principals.popitem(last=False)
        return compiled

    def _compile_sources(self, sources: store.PolicySources | None) -> CompiledPolicies:
        if sources is None:
            return NO_POLICIES
        identity = tuple(p for p in (self._compile_stored(text, PolicyKind.IDENTITY)
                                     for text in sources.identity) if p is not None)
        boundary = None
        if sources.boundary is not None:
            boundary = self._compile_stored(sources.boundary, PolicyKind.BOUNDARY)
            if boundary is None:  # a boundary that cannot be read allows nothing
                boundary = self.compile('{"Version": "2012-10-17", "Statement": []}', PolicyKind.BOUNDARY)
        return CompiledPolicies(identity, boundary)

    def compile(self, text: str, kind: PolicyKind) -> Policy:
        """Parse a document once; later calls with the same text return the same Policy."""
        key = (kind, text)
        policy = self._compiled.get(key)
        if policy is not None:
            self._compiled.move_to_end(key)
            return policy
        policy = parse_policy(text, kind)
        self.parses += 1
        self._compiled[key] = policy
        while len(self._compiled) > self._max_documents:
            self._compiled.popitem(last=False)
        return policy

    def _compile_stored(self, text: str, kind: PolicyKind) -> Policy | None:
        """A stored document was validated when it was written; one that no longer parses (an
        engine change) is logged and ignored rather than failing every request."""
        try:
            return self.compile(text, kind)
        except MalformedPolicyDocument as exc:
            log.warning("ignoring a stored %s policy that does not parse: %s", kind.value, exc.message)
            return None


def _cache_key(principal: Principal) -> tuple[str, str] | None:
    if principal.kind is PrincipalKind.USER:
        return ("user", principal.user_id)
    if principal.kind is PrincipalKind.ASSUMED_ROLE:
        if principal.role_id:
            return ("role-id", principal.role_id)
        if principal.role_arn:
            return ("role-arn", principal.role_arn)
        return None
    if (principal.kind is PrincipalKind.FEDERATED_USER and principal.role_arn
            and store.split_arn(principal.role_arn, "user") is not None):
        return ("user-arn", principal.role_arn)
    return None


def _load_sources(conn: sa.Connection, key: tuple[str, str]) -> store.PolicySources | None:
    kind, value = key
    if kind == "user":
        return store.user_policies(conn, value)
    if kind == "role-id":
        return store.role_policies(conn, value)
    if kind == "role-arn":
        role = store.get_role_by_arn(conn, value)
        return store.role_policies(conn, role.role_id) if role else None
    parts = store.split_arn(value, "user")
    if parts is None:
        return None
    user = store.get_user(conn, parts[0], parts[2])
    if user is None or user.arn != value:
        return None
    return store.user_policies(conn, user.user_id)


def principal_info(principal: Principal) -> PrincipalInfo:
    """The engine's view of a verified caller."""
    if principal.kind is PrincipalKind.ANONYMOUS:
        return ANONYMOUS
    kind = EngineKind(principal.kind.value)
    return PrincipalInfo(
        arn=principal.arn, account_id=principal.account_id, kind=kind,
        role_arn=principal.role_arn if kind is EngineKind.ASSUMED_ROLE else None,
        user_id=principal.user_id,
        username=principal.name if kind is EngineKind.USER else None,
        tags=dict(principal.tags),
        source_user_arn=principal.role_arn if kind is EngineKind.FEDERATED_USER else None,
    )
