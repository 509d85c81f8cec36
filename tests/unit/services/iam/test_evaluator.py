"""The Authorizer's evaluator: which policies apply, how they are cached and invalidated."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

from minicloud.aws.errors import AccessDenied
from minicloud.iam.authorizer import AuthzResult
from minicloud.iam.evaluator import IamEvaluator
from minicloud.iam.identity import Principal, PrincipalKind
from minicloud.storage.metadata.db import Database
from tests.unit.services.iam.conftest import TRUST_EC2, Iam, allow, deny, doc

T = TypeVar("T")


def check(
    iam: Iam,
    principal: Principal,
    action: str,
    resource: str = "*",
    *,
    context: dict[str, str | list[str]] | None = None,
    resource_policy: str | None = None,
    resource_account: str | None = None,
) -> AuthzResult:
    return asyncio.run(
        iam.provider.evaluator(
            principal,
            action,
            resource,
            context or {},
            resource_policy,
            resource_account or principal.account_id,
        )
    )


def denied(iam: Iam, op: str, principal: Principal, **params: Any) -> str:
    with pytest.raises(AccessDenied) as caught:
        iam.call(op, principal, **params)
    return caught.value.message


def test_a_new_user_is_denied_with_aws_message(iam: Iam) -> None:
    iam.call("CreateUser", UserName="bob")
    bob = iam.user("bob")
    message = denied(iam, "ListUsers", bob)
    assert message == (
        f"User: {bob.arn} is not authorized to perform: iam:ListUsers on resource: "
        f"arn:aws:iam::{iam.account_id}:user/ because no identity-based policy allows the "
        "iam:ListUsers action"
    )


def test_policies_are_loaded_once_then_cached(iam: Iam) -> None:
    iam.call("CreateUser", UserName="bob")
    iam.call("PutUserPolicy", UserName="bob", PolicyName="p", PolicyDocument=doc(allow("s3:GetObject")))
    bob = iam.user("bob")
    evaluator = iam.provider.evaluator
    loads = evaluator.loads
    for _ in range(20):
        assert check(iam, bob, "s3:GetObject", "arn:aws:s3:::b/k").allowed
        assert not check(iam, bob, "s3:PutObject", "arn:aws:s3:::b/k").allowed
    assert evaluator.loads == loads + 1


def test_an_iam_write_takes_effect_on_the_next_request(iam: Iam) -> None:
    iam.call("CreateUser", UserName="bob")
    bob = iam.user("bob")
    denied(iam, "ListUsers", bob)
    iam.call("PutUserPolicy", UserName="bob", PolicyName="list", PolicyDocument=doc(allow("iam:ListUsers")))
    assert [u["UserName"] for u in iam.call("ListUsers", bob)["Users"]] == ["bob"]
    iam.call("PutUserPolicy", UserName="bob", PolicyName="no", PolicyDocument=doc(deny("iam:List*")))
    message = denied(iam, "ListUsers", bob)
    assert message.endswith("with an explicit deny in an identity-based policy")
    iam.call("DeleteUserPolicy", UserName="bob", PolicyName="no")
    iam.call("ListUsers", bob)


def test_a_load_that_races_with_a_write_is_not_cached(iam: Iam) -> None:
    iam.call("CreateUser", UserName="bob")
    bob = iam.user("bob")
    real: Database = iam.runtime.db
    evaluator = IamEvaluator(real)

    class WriteDuringRead:
        epoch = real.epoch

        async def read(self, fn: Callable[[Any], T]) -> T:
            result = await real.read(fn)
            evaluator.invalidate()  # an IAM write lands while the old policies are in flight
            return result

    evaluator._db = WriteDuringRead()  # type: ignore[assignment]
    asyncio.run(evaluator.policies_for(bob))
    asyncio.run(evaluator.policies_for(bob))
    assert evaluator.loads == 2


def test_entries_expire(iam: Iam) -> None:
    iam.call("CreateUser", UserName="bob")
    evaluator = IamEvaluator(iam.runtime.db, ttl=0.0)
    bob = iam.user("bob")
    asyncio.run(evaluator.policies_for(bob))
    asyncio.run(evaluator.policies_for(bob))
    assert evaluator.loads == 2


def test_a_shared_managed_policy_is_parsed_once(iam: Iam) -> None:
    arn = iam.call("CreatePolicy", PolicyName="shared", PolicyDocument=doc(allow("s3:List*")))["Policy"][
        "Arn"
    ]
    for name in ("a", "b", "c"):
        iam.call("CreateUser", UserName=name)
        iam.call("AttachUserPolicy", UserName=name, PolicyArn=arn)
    evaluator = IamEvaluator(iam.runtime.db)
    for name in ("a", "b", "c"):
        assert asyncio.run(
            evaluator(iam.user(name), "s3:ListBucket", "arn:aws:s3:::x", {}, None, iam.account_id)
        ).allowed
    assert evaluator.loads == 3 and evaluator.parses == 1


def test_group_policies_apply_and_explicit_deny_wins(iam: Iam) -> None:
    iam.call("CreateUser", UserName="bob")
    iam.call("CreateGroup", GroupName="readers")
    iam.call("AttachGroupPolicy", GroupName="readers", PolicyArn="arn:aws:iam::aws:policy/IAMReadOnlyAccess")
    bob = iam.user("bob")
    denied(iam, "GetAccountSummary", bob)
    iam.call("AddUserToGroup", GroupName="readers", UserName="bob")
    iam.call("GetAccountSummary", bob)
    iam.call(
        "PutGroupPolicy",
        GroupName="readers",
        PolicyName="no-summary",
        PolicyDocument=doc(deny("iam:GetAccountSummary")),
    )
    denied(iam, "GetAccountSummary", bob)
    iam.call("ListUsers", bob)


def test_conditions_on_source_ip_and_username(iam: Iam) -> None:
    iam.call("CreateUser", UserName="bob")
    iam.call("CreateUser", UserName="eve")
    iam.call(
        "PutUserPolicy",
        UserName="bob",
        PolicyName="office",
        PolicyDocument=doc(
            allow("iam:ListUsers", Condition={"IpAddress": {"aws:SourceIp": "10.1.0.0/16"}}),
            allow("iam:GetUser", "arn:aws:iam::*:user/${aws:username}"),
        ),
    )
    bob = iam.user("bob")
    iam.call("ListUsers", bob)
    iam.client_ip = "192.0.2.7"
    denied(iam, "ListUsers", bob)
    assert iam.call("GetUser", bob, UserName="bob")["User"]["UserName"] == "bob"
    denied(iam, "GetUser", bob, UserName="eve")


def test_permissions_boundary_limits_a_user(iam: Iam) -> None:
    boundary = iam.call("CreatePolicy", PolicyName="b", PolicyDocument=doc(allow("iam:List*")))["Policy"][
        "Arn"
    ]
    iam.call("CreateUser", UserName="bob", PermissionsBoundary=boundary)
    iam.call("AttachUserPolicy", UserName="bob", PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    bob = iam.user("bob")
    iam.call("ListUsers", bob)
    message = denied(iam, "GetAccountSummary", bob)
    assert message.endswith("because no permissions boundary allows the iam:GetAccountSummary action")
    iam.call("DeleteUserPermissionsBoundary", UserName="bob")
    iam.call("GetAccountSummary", bob)


def test_role_sessions_use_the_role_policies_and_session_policies(iam: Iam) -> None:
    role = iam.call("CreateRole", RoleName="app", AssumeRolePolicyDocument=TRUST_EC2)["Role"]
    iam.call(
        "PutRolePolicy", RoleName="app", PolicyName="p", PolicyDocument=doc(allow(["s3:*", "iam:ListRoles"]))
    )
    session = Principal(
        PrincipalKind.ASSUMED_ROLE,
        iam.account_id,
        f"arn:aws:sts::{iam.account_id}:assumed-role/app/s1",
        f"{role['RoleId']}:s1",
        "s1",
        role_arn=role["Arn"],
        role_id=role["RoleId"],
    )
    assert check(iam, session, "s3:GetObject", "arn:aws:s3:::b/k").allowed
    narrowed = dataclasses.replace(session, session_policies=(doc(allow("s3:GetObject")),))
    assert check(iam, narrowed, "s3:GetObject", "arn:aws:s3:::b/k").allowed
    result = check(iam, narrowed, "s3:PutObject", "arn:aws:s3:::b/k")
    assert not result.allowed and "session policy" in result.message
    iam.call("ListRoles", session)
    iam.call("DeleteRolePolicy", RoleName="app", PolicyName="p")
    assert not check(iam, session, "s3:GetObject", "arn:aws:s3:::b/k").allowed


def test_root_is_allowed_in_its_account_only(iam: Iam) -> None:
    assert check(iam, iam.root, "ec2:RunInstances").allowed
    other = iam.new_account("other")
    result = check(iam, other, "s3:GetObject", "arn:aws:s3:::b/k", resource_account=iam.account_id)
    assert not result.allowed
    bucket_policy = doc(
        {
            "Effect": "Allow",
            "Principal": {"AWS": other.account_id},
            "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::b/*",
        }
    )
    assert check(
        iam,
        other,
        "s3:GetObject",
        "arn:aws:s3:::b/k",
        resource_policy=bucket_policy,
        resource_account=iam.account_id,
    ).allowed
    locked = doc({"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*"})
    assert not check(iam, iam.root, "s3:GetObject", "arn:aws:s3:::b/k", resource_policy=locked).allowed


def test_a_deleted_user_has_no_permissions(iam: Iam) -> None:
    iam.call("CreateUser", UserName="bob")
    iam.call("AttachUserPolicy", UserName="bob", PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    bob = iam.user("bob")
    assert check(iam, bob, "ec2:RunInstances").allowed
    iam.call("DetachUserPolicy", UserName="bob", PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    iam.call("DeleteUser", UserName="bob")
    assert not check(iam, bob, "ec2:RunInstances").allowed


def test_federated_user_is_limited_to_its_user_and_session_policy(iam: Iam) -> None:
    iam.call("CreateUser", UserName="bob")
    iam.call("PutUserPolicy", UserName="bob", PolicyName="p", PolicyDocument=doc(allow("s3:*")))
    bob = iam.user("bob")
    federated = Principal(
        PrincipalKind.FEDERATED_USER,
        iam.account_id,
        f"arn:aws:sts::{iam.account_id}:federated-user/fed",
        f"{iam.account_id}:fed",
        "fed",
        role_arn=bob.arn,
        session_policies=(doc(allow(["s3:GetObject", "ec2:*"])),),
    )
    assert check(iam, federated, "s3:GetObject", "arn:aws:s3:::b/k").allowed
    assert not check(iam, federated, "s3:PutObject", "arn:aws:s3:::b/k").allowed
    assert not check(iam, federated, "ec2:RunInstances").allowed


def test_attribute_based_access_with_principal_and_resource_tags(iam: Iam) -> None:
    for name, team in (("bob", "blue"), ("ann", "blue"), ("zed", "red")):
        iam.call("CreateUser", UserName=name, Tags=[{"Key": "team", "Value": team}])
    same_team = {"StringEquals": {"aws:ResourceTag/team": "${aws:PrincipalTag/team}"}}
    iam.call("PutUserPolicy", UserName="bob", PolicyName="abac",
             PolicyDocument=doc(allow("iam:GetUser", Condition=same_team)))
    bob = iam.user("bob")
    assert iam.call("GetUser", bob, UserName="ann")["User"]["UserName"] == "ann"
    denied(iam, "GetUser", bob, UserName="zed")
    iam.call("TagUser", UserName="zed", Tags=[{"Key": "team", "Value": "blue"}])
    iam.call("GetUser", bob, UserName="zed")
