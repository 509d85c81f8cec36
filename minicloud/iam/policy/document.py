"""Policy documents: parse, validate the way IAM does, compile for evaluation.

``parse_policy(text, kind)`` returns an immutable, reusable :class:`Policy` or raises
:class:`MalformedPolicyDocument` with the sentence IAM answers for the first problem found.
Everything evaluation needs is compiled here, once: wildcard patterns, condition operators and
their values, policy-variable templates, principals, and an index of statements by service
prefix so that evaluating ``iam:ListUsers`` never looks at an ``s3:*`` statement.

Grammar (IAM user guide, "Grammar of the IAM JSON policy language")::

    policy     = {Version?, Id?, Statement}          Statement: one object or a list of them
    statement  = {Sid?, Effect, (Principal|NotPrincipal)?, (Action|NotAction),
                  (Resource|NotResource)?, Condition?}

What each kind of policy requires or forbids:

    kind       Principal   Resource
    IDENTITY   forbidden   required      (also SESSION and BOUNDARY)
    RESOURCE   required    required      (S3 bucket policies, SQS/SNS/Lambda/ECR policies, ...)
    TRUST      required    forbidden     (a role's AssumeRolePolicyDocument; sts actions only)
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .conditions import Condition, UnknownOperator, compile_condition
from .errors import MalformedPolicyDocument
from .matching import (
    Matcher,
    VariableSource,
    any_glob_matcher,
    has_wildcard,
    parse_template,
    template_matcher,
)
from .principals import Grant, Principals, build_principals, valid_aws_principal
from .request import AuthzRequest, PrincipalInfo


class PolicyKind(enum.Enum):
    IDENTITY = "identity"
    RESOURCE = "resource"
    TRUST = "trust"
    SESSION = "session"
    BOUNDARY = "boundary"


IDENTITY_KINDS = frozenset({PolicyKind.IDENTITY, PolicyKind.SESSION, PolicyKind.BOUNDARY})
IAM_KINDS = IDENTITY_KINDS | {PolicyKind.TRUST}
VERSION_2012 = "2012-10-17"
VERSION_2008 = "2008-10-17"

# IAM's MalformedPolicyDocument sentences. Seen verbatim in public reports of IAM/S3 answers:
# SYNTAX_ERROR, INVALID_JSON (CreateRole), NO_PRINCIPAL_ALLOWED, MISSING_PRINCIPAL, NEEDS_ACTIONS,
# NEEDS_RESOURCES, LEGACY_PARSING, INVALID_PRINCIPAL, VENDOR_PREFIX, ONE_COLON, SID_UNIQUE, SID_ALNUM,
# "Resource X must be in ARN format or "*".", "Partition "X" is not valid for resource "Y".",
# "IAM resource X cannot contain region information.", "Has prohibited field Resource",
# "Invalid effect: X" (S3). Best knowledge, not confirmed verbatim: MISSING_EFFECT,
# VENDOR_WILDCARD, RESOURCE_VENDOR, TRUST_ACTIONS, "Vendor X is not valid",
# "Has prohibited field NotResource/NotPrincipal", "Invalid Condition type : X.".
SYNTAX_ERROR = "Syntax errors in policy."
INVALID_JSON = "This policy contains invalid Json"
NO_PRINCIPAL_ALLOWED = "Policy document should not specify a principal."
MISSING_PRINCIPAL = "Missing required field Principal"
MISSING_EFFECT = "Missing required field Effect"
NEEDS_ACTIONS = "Policy statement must contain actions."
NEEDS_RESOURCES = "Policy statement must contain resources."
LEGACY_PARSING = "The policy failed legacy parsing"
INVALID_PRINCIPAL = "Invalid principal in policy"
VENDOR_PREFIX = "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc."
ONE_COLON = "Actions/Condition can contain only one colon."
VENDOR_WILDCARD = "Action vendors (e.g., aws, ec2, etc.) must not contain wildcards"
RESOURCE_VENDOR = "Resource vendor must be fully qualified and cannot contain regexes."
TRUST_ACTIONS = "AssumeRole policy may only specify STS AssumeRole actions."
SID_UNIQUE = "Statement IDs (SID) in a single policy must be unique."
SID_ALNUM = ("Statement IDs (SID) must be alpha-numeric. "
             "Check that your input satisfies the regular expression [0-9A-Za-z]*")

_TOP_KEYS = frozenset({"Version", "Id", "Statement"})
_STATEMENT_KEYS = frozenset({"Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction",
                             "Resource", "NotResource", "Condition"})
_PRINCIPAL_KEYS = ("AWS", "Service", "Federated", "CanonicalUser")
_SID = re.compile(r"[0-9A-Za-z]*")
_VENDOR = re.compile(r"[A-Za-z0-9-]+")
_PARTITION = re.compile(r"aws(?:-[a-z0-9]+)*")
_ACCOUNT = re.compile(r"\d{12}|aws")
_JSON_WHITESPACE = frozenset(" \t\n\r")
_POLICY_VARIABLE = re.compile(r"\$\{[^}]*\}")

TemplateTest = Callable[[str, VariableSource], bool]


@dataclass(frozen=True, slots=True, eq=False)
class Statement:
    """One compiled statement.

    ``has_resource`` is False when the statement has no Resource element (trust policies);
    ``resource_test`` matches the patterns without variables, ``resource_templates`` those with
    variables (rendered per request). ``principals`` is None without a Principal element.
    """

    sid: str | None
    allow: bool
    action_test: Matcher  # on the lower-cased action
    not_action: bool
    has_resource: bool
    resource_test: Matcher | None
    resource_templates: tuple[TemplateTest, ...]
    not_resource: bool
    principals: Principals | None
    conditions: tuple[Condition, ...]
    vendors: frozenset[str] | None  # service prefixes of Action; None: any (NotAction, "*")

    def matches_action(self, action_key: str) -> bool:
        return bool(self.action_test(action_key)) != self.not_action

    def applies(self, request: AuthzRequest) -> bool:
        """Action, Resource and Condition match (the principal is checked by the caller)."""
        return self.matches_action(request.action_key) and self.applies_to_resource(request)

    def applies_to_resource(self, request: AuthzRequest) -> bool:
        """Resource and Condition match (for a statement already known to match the action)."""
        if self.has_resource and self._resource_hit(request) == self.not_resource:
            return False
        if self.conditions:
            context = request.eval_context
            for condition in self.conditions:
                if not condition.holds(context):
                    return False
        return True

    def _resource_hit(self, request: AuthzRequest) -> bool:
        test = self.resource_test
        if test is not None and test(request.resource):
            return True
        if self.resource_templates:
            context = request.eval_context
            return any(match(request.resource, context) for match in self.resource_templates)
        return False

    def grant(self, principal: PrincipalInfo) -> Grant:
        return Grant.NONE if self.principals is None else self.principals.grant(principal)


@dataclass(frozen=True, slots=True, eq=False)
class Policy:
    """A parsed, validated, compiled policy; immutable and safe to share between threads."""

    kind: PolicyKind
    version: str | None
    id: str | None
    statements: tuple[Statement, ...]
    size: int
    index: Mapping[str, _Candidates] = field(repr=False)
    generic: _Candidates = field(repr=False)

    action_cache: dict[str, _Candidates] = field(default_factory=dict, repr=False)

    def candidates(self, action_key: str, vendor: str) -> _Candidates:
        """(Deny, Allow) statements whose Action (or NotAction) matches the lower-cased action, in
        document order. Memoized per action: evaluation then only checks resources and conditions.
        """
        found = self.action_cache.get(action_key)
        if found is None:
            denies, allows = self.index.get(vendor, self.generic)
            found = (tuple(s for s in denies if s.matches_action(action_key)),
                     tuple(s for s in allows if s.matches_action(action_key)))
            if len(self.action_cache) >= _ACTION_CACHE_MAX:
                self.action_cache.clear()
            self.action_cache[action_key] = found
        return found


_ACTION_CACHE_MAX = 4096
_Candidates = tuple[tuple[Statement, ...], tuple[Statement, ...]]


def policy_size(text: str) -> int:
    """Characters that count against IAM's policy size quotas: everything but white space."""
    return len(text) - sum(text.count(char) for char in _JSON_WHITESPACE)


def parse_policy(text: str, kind: PolicyKind) -> Policy:
    document = _load(text, kind)
    if not isinstance(document, dict) or not document.keys() <= _TOP_KEYS or "Statement" not in document:
        raise MalformedPolicyDocument(SYNTAX_ERROR)
    version = document.get("Version")
    if "Version" in document and version not in (VERSION_2012, VERSION_2008):
        raise MalformedPolicyDocument(SYNTAX_ERROR)
    policy_id = document.get("Id")
    if "Id" in document and not isinstance(policy_id, str):
        raise MalformedPolicyDocument(SYNTAX_ERROR)
    raw = document["Statement"]
    raw_statements = raw if isinstance(raw, list) else [raw]
    variables = version == VERSION_2012
    statements = tuple(_statement(item, kind, variables) for item in raw_statements)
    if kind in IAM_KINDS:
        _check_sids(statements)
    index, generic = _index(statements)
    return Policy(kind=kind, version=version, id=policy_id, statements=statements,
                  size=policy_size(text), index=index, generic=generic)


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def _reject_constant(name: str) -> Any:
    raise ValueError(name)


def _load(text: str, kind: PolicyKind) -> Any:
    if not isinstance(text, str):
        raise MalformedPolicyDocument(SYNTAX_ERROR)
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except _DuplicateKey:
        raise MalformedPolicyDocument(SYNTAX_ERROR) from None
    except (ValueError, RecursionError):
        raise MalformedPolicyDocument(INVALID_JSON if kind is PolicyKind.TRUST else SYNTAX_ERROR) from None


# --- statements -----------------------------------------------------------------------------

def _statement(raw: object, kind: PolicyKind, variables: bool) -> Statement:
    if not isinstance(raw, dict) or not raw.keys() <= _STATEMENT_KEYS:
        raise MalformedPolicyDocument(SYNTAX_ERROR)
    for a, b in (("Action", "NotAction"), ("Resource", "NotResource"), ("Principal", "NotPrincipal")):
        if a in raw and b in raw:
            raise MalformedPolicyDocument(SYNTAX_ERROR)
    sid = raw.get("Sid")
    if "Sid" in raw and not isinstance(sid, str):
        raise MalformedPolicyDocument(SYNTAX_ERROR)
    allow = _effect(raw)
    principals = _statement_principals(raw, kind)
    not_action = "NotAction" in raw
    actions = _actions(raw.get("NotAction" if not_action else "Action"), kind)
    not_resource = "NotResource" in raw
    resources = _statement_resources(raw, kind, not_resource)
    resource_test, templates = _resource_tests(resources or [], variables)
    conditions = _conditions(raw["Condition"], variables) if "Condition" in raw else ()
    vendors = None
    if not not_action and "*" not in actions:
        vendors = frozenset(action.partition(":")[0].lower() for action in actions)
    return Statement(sid=sid, allow=allow, action_test=any_glob_matcher([a.lower() for a in actions]),
                     not_action=not_action,
                     has_resource=resources is not None and (not_resource or "*" not in resources),
                     resource_test=resource_test, resource_templates=templates, not_resource=not_resource,
                     principals=principals, conditions=conditions, vendors=vendors)


def _effect(raw: dict[str, Any]) -> bool:
    if "Effect" not in raw:
        raise MalformedPolicyDocument(MISSING_EFFECT)
    effect = raw["Effect"]
    if not isinstance(effect, str):
        raise MalformedPolicyDocument(SYNTAX_ERROR)
    lowered = effect.lower()
    if lowered not in ("allow", "deny"):
        raise MalformedPolicyDocument(f"Invalid effect: {effect}")
    return lowered == "allow"


def _strings(value: object) -> list[str]:
    """A string or a list of strings (the grammar's ``[x, ...]`` with optional brackets)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return list(value)
    raise MalformedPolicyDocument(SYNTAX_ERROR)


def _actions(value: object, kind: PolicyKind) -> list[str]:
    if value is None:
        raise MalformedPolicyDocument(NEEDS_ACTIONS)
    actions = _strings(value)
    if not actions:
        raise MalformedPolicyDocument(NEEDS_ACTIONS)
    for action in actions:
        _check_action(action)
        if kind is PolicyKind.TRUST and action != "*" and action.partition(":")[0].lower() != "sts":
            raise MalformedPolicyDocument(TRUST_ACTIONS)
    return actions


def _check_action(action: str) -> None:
    if action == "*":
        return
    vendor, colon, name = action.partition(":")
    if not colon or not vendor:
        raise MalformedPolicyDocument(VENDOR_PREFIX)
    if ":" in name:
        raise MalformedPolicyDocument(ONE_COLON)
    if has_wildcard(vendor):
        raise MalformedPolicyDocument(VENDOR_WILDCARD)
    if not _VENDOR.fullmatch(vendor):
        raise MalformedPolicyDocument(f"Vendor {vendor} is not valid")


def _statement_resources(raw: dict[str, Any], kind: PolicyKind, negated: bool) -> list[str] | None:
    key = "NotResource" if negated else "Resource"
    if kind is PolicyKind.TRUST:
        if key in raw:
            raise MalformedPolicyDocument(f"Has prohibited field {key}")
        return None
    if key not in raw:
        raise MalformedPolicyDocument(NEEDS_RESOURCES)
    resources = _strings(raw[key])
    if not resources:
        raise MalformedPolicyDocument(NEEDS_RESOURCES)
    for resource in resources:
        _check_resource(resource)
    return resources


def _check_resource(resource: str) -> None:
    if resource == "*":
        return
    if not resource.startswith("arn:"):
        raise MalformedPolicyDocument(f'Resource {resource} must be in ARN format or "*".')
    parts = _arn_segments(resource)
    if len(parts) < 6:
        raise MalformedPolicyDocument(LEGACY_PARSING)
    partition, service, region, account = parts[1:5]
    if not (_PARTITION.fullmatch(partition) or has_wildcard(partition)):
        raise MalformedPolicyDocument(f'Partition "{partition}" is not valid for resource "{resource}".')
    if not service or has_wildcard(service):
        raise MalformedPolicyDocument(RESOURCE_VENDOR)
    if service == "iam" and region and region != "*":
        raise MalformedPolicyDocument(f"IAM resource {resource} cannot contain region information.")
    if account and not (_ACCOUNT.fullmatch(account) or has_wildcard(account) or "${" in account):
        raise MalformedPolicyDocument(LEGACY_PARSING)


def _arn_segments(resource: str) -> list[str]:
    """The six segments of an ARN, not splitting on a colon inside a ``${policy:variable}``."""
    masked = _POLICY_VARIABLE.sub(lambda m: "\0" * len(m.group()), resource)
    parts: list[str] = []
    start = 0
    for _ in range(5):
        colon = masked.find(":", start)
        if colon < 0:
            break
        parts.append(resource[start:colon])
        start = colon + 1
    parts.append(resource[start:])
    return parts


def _resource_tests(resources: list[str], variables: bool) -> tuple[Matcher | None, tuple[TemplateTest, ...]]:
    static: list[str] = []
    dynamic: list[TemplateTest] = []
    for resource in resources:
        template = parse_template(resource) if variables else None
        if template is None:
            static.append(resource)
        else:
            dynamic.append(template_matcher(template, arn=True))
    return (any_glob_matcher(static, arn=True) if static else None), tuple(dynamic)


# --- principals -------------------------------------------------------------------------------

def _statement_principals(raw: dict[str, Any], kind: PolicyKind) -> Principals | None:
    has_principal = "Principal" in raw or "NotPrincipal" in raw
    if kind in IDENTITY_KINDS:
        if has_principal:
            raise MalformedPolicyDocument(NO_PRINCIPAL_ALLOWED)
        return None
    if not has_principal:
        raise MalformedPolicyDocument(MISSING_PRINCIPAL)
    if kind is PolicyKind.TRUST and "NotPrincipal" in raw:
        raise MalformedPolicyDocument("Has prohibited field NotPrincipal")
    negated = "NotPrincipal" in raw
    return _principals(raw["NotPrincipal" if negated else "Principal"], negated)


def _principals(value: object, negated: bool) -> Principals:
    if value == "*":
        return build_principals(negated, True, [], [], [], [])
    if not isinstance(value, dict) or not value:
        raise MalformedPolicyDocument(INVALID_PRINCIPAL)
    entries: dict[str, list[str]] = {key: [] for key in _PRINCIPAL_KEYS}
    for key, raw in value.items():
        if key not in entries:
            raise MalformedPolicyDocument(INVALID_PRINCIPAL)
        values = _strings(raw)
        if not values:
            raise MalformedPolicyDocument(INVALID_PRINCIPAL)
        for item in values:
            if not _valid_principal(key, item):
                raise MalformedPolicyDocument(f'{INVALID_PRINCIPAL}: "{key}":"{item}"')
        entries[key] = values
    return build_principals(negated, False, entries["AWS"], entries["Service"], entries["Federated"],
                            entries["CanonicalUser"])


def _valid_principal(key: str, value: str) -> bool:
    if key == "AWS":
        return valid_aws_principal(value)
    if not value or value != value.strip():
        return False
    return value == "*" or not has_wildcard(value)


# --- conditions -------------------------------------------------------------------------------

def _conditions(block: object, variables: bool) -> tuple[Condition, ...]:
    if not isinstance(block, dict):
        raise MalformedPolicyDocument(SYNTAX_ERROR)
    compiled: list[Condition] = []
    for operator_name, mapping in block.items():
        if not isinstance(mapping, dict):
            raise MalformedPolicyDocument(SYNTAX_ERROR)
        try:
            compile_condition(operator_name, "aws:probe", [], False)
        except UnknownOperator:
            raise MalformedPolicyDocument(f"Invalid Condition type : {operator_name}.") from None
        for key, raw in mapping.items():
            vendor, colon, _rest = key.partition(":")
            if not colon or not vendor:
                raise MalformedPolicyDocument(VENDOR_PREFIX)
            compiled.append(compile_condition(operator_name, key, _condition_values(raw), variables))
    return tuple(compiled)


def _condition_values(raw: object) -> list[str]:
    items = raw if isinstance(raw, list) else [raw]
    values: list[str] = []
    for item in items:
        if isinstance(item, bool):
            values.append("true" if item else "false")
        elif isinstance(item, str):
            values.append(item)
        elif isinstance(item, (int, float)):
            values.append(json.dumps(item))
        else:
            raise MalformedPolicyDocument(SYNTAX_ERROR)
    return values


# --- whole policy -------------------------------------------------------------------------------

def _check_sids(statements: tuple[Statement, ...]) -> None:
    seen: set[str] = set()
    for statement in statements:
        sid = statement.sid
        if not sid:
            continue
        if not _SID.fullmatch(sid):
            raise MalformedPolicyDocument(SID_ALNUM)
        if sid in seen:
            raise MalformedPolicyDocument(SID_UNIQUE)
        seen.add(sid)


def _split(statements: list[Statement]) -> _Candidates:
    return (tuple(s for s in statements if not s.allow), tuple(s for s in statements if s.allow))


def _index(statements: tuple[Statement, ...]) -> tuple[dict[str, _Candidates], _Candidates]:
    vendors = {vendor for s in statements if s.vendors is not None for vendor in s.vendors}
    generic = _split([s for s in statements if s.vendors is None])
    index = {vendor: _split([s for s in statements if s.vendors is None or vendor in s.vendors])
             for vendor in vendors}
    return index, generic
