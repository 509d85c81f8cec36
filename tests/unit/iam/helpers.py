"""Small builders for policy-language tests."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from minicloud.iam.policy import (
    AuthzRequest,
    Decision,
    Policy,
    PolicyKind,
    PrincipalInfo,
    PrincipalKind,
    evaluate,
    parse_policy,
)

ACCOUNT = "111111111111"
OTHER = "222222222222"


def doc(*statements: Mapping[str, Any], version: str | None = "2012-10-17") -> str:
    body: dict[str, Any] = {"Statement": list(statements)}
    if version is not None:
        body = {"Version": version, **body}
    return json.dumps(body)


def allow(
    action: str | list[str] = "*", resource: str | list[str] | None = "*", **extra: Any
) -> dict[str, Any]:
    statement: dict[str, Any] = {"Effect": "Allow", "Action": action}
    if resource is not None:
        statement["Resource"] = resource
    statement.update(extra)
    return statement


def deny(
    action: str | list[str] = "*", resource: str | list[str] | None = "*", **extra: Any
) -> dict[str, Any]:
    statement = allow(action, resource, **extra)
    statement["Effect"] = "Deny"
    return statement


def policy(
    *statements: Mapping[str, Any], kind: PolicyKind = PolicyKind.IDENTITY, version: str | None = "2012-10-17"
) -> Policy:
    return parse_policy(doc(*statements, version=version), kind)


def resource_policy(*statements: Mapping[str, Any]) -> Policy:
    return policy(*statements, kind=PolicyKind.RESOURCE)


def root(account: str = ACCOUNT) -> PrincipalInfo:
    return PrincipalInfo(
        arn=f"arn:aws:iam::{account}:root", account_id=account, kind=PrincipalKind.ROOT, user_id=account
    )


def user(name: str = "bob", account: str = ACCOUNT, tags: Mapping[str, str] | None = None) -> PrincipalInfo:
    return PrincipalInfo(
        arn=f"arn:aws:iam::{account}:user/{name}",
        account_id=account,
        kind=PrincipalKind.USER,
        user_id=f"AIDA{name.upper():A<17}"[:21],
        username=name,
        tags=dict(tags or {}),
    )


def session(role: str = "app", name: str = "s1", account: str = ACCOUNT) -> PrincipalInfo:
    return PrincipalInfo(
        arn=f"arn:aws:sts::{account}:assumed-role/{role}/{name}",
        account_id=account,
        kind=PrincipalKind.ASSUMED_ROLE,
        role_arn=f"arn:aws:iam::{account}:role/{role}",
        user_id=f"AROAEXAMPLEROLEID0001:{name}",
    )


def federated(name: str = "fed", source: str = "bob", account: str = ACCOUNT) -> PrincipalInfo:
    source_arn = (
        f"arn:aws:iam::{account}:root" if source == "root" else f"arn:aws:iam::{account}:user/{source}"
    )
    return PrincipalInfo(
        arn=f"arn:aws:sts::{account}:federated-user/{name}",
        account_id=account,
        kind=PrincipalKind.FEDERATED_USER,
        user_id=f"{account}:{name}",
        source_user_arn=source_arn,
    )


def service(name: str = "lambda.amazonaws.com") -> PrincipalInfo:
    return PrincipalInfo(arn=name, account_id="", kind=PrincipalKind.SERVICE)


def request(
    action: str = "s3:GetObject",
    resource: str = "*",
    principal: PrincipalInfo | None = None,
    context: Mapping[str, Any] | None = None,
    resource_account: str | None = None,
) -> AuthzRequest:
    return AuthzRequest(
        action=action,
        resource=resource,
        principal=principal or user(),
        resource_account=resource_account,
        context=dict(context or {}),
    )


def decide(
    req: AuthzRequest,
    identity: Sequence[Policy] = (),
    *,
    resource: Policy | None = None,
    sessions: Sequence[Policy] = (),
    boundary: Policy | None = None,
) -> Decision:
    return evaluate(
        req, identity, resource_policy=resource, session_policies=sessions, permissions_boundary=boundary
    )
