"""Evaluation: explicit deny > allow > implicit deny, per the IAM user guide's evaluation logic."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minicloud.iam.policy import (
    ANONYMOUS,
    AuthzRequest,
    Decision,
    PolicyKind,
    PolicyType,
    PrincipalInfo,
    PrincipalKind,
    Verdict,
    denial_message,
    evaluate,
    parse_policy,
)

from .helpers import (
    ACCOUNT,
    OTHER,
    allow,
    decide,
    deny,
    federated,
    policy,
    request,
    resource_policy,
    root,
    service,
    session,
    user,
)

BUCKET = "arn:aws:s3:::b"
OBJECT = "arn:aws:s3:::b/k"
GET = "s3:GetObject"

ALLOW_GET = policy(allow(GET, OBJECT))
ALLOW_ALL = policy(allow("*", "*"))
DENY_GET = policy(deny(GET, "*", Sid="NoGet"))


def implicit(source: PolicyType) -> Decision:
    return Decision(Verdict.IMPLICIT_DENY, source)


def explicit(source: PolicyType, sid: str | None = None) -> Decision:
    return Decision(Verdict.EXPLICIT_DENY, source, sid)


def bucket_policy(principal: Any, effect: str = "Allow", **extra: Any) -> Any:
    statement = {
        "Effect": effect,
        "Principal": principal,
        "Action": "s3:*",
        "Resource": [BUCKET, OBJECT],
        **extra,
    }
    return resource_policy(statement)


def aws(*principals: str) -> dict[str, Any]:
    return {"AWS": list(principals)}


# --- identity-based policies ----------------------------------------------------------------------


def test_no_policy_is_an_implicit_deny() -> None:
    assert decide(request(GET, OBJECT)) == implicit(PolicyType.IDENTITY)


def test_identity_allow() -> None:
    assert decide(request(GET, OBJECT), [ALLOW_GET]).allowed
    assert not decide(request("s3:PutObject", OBJECT), [ALLOW_GET]).allowed


def test_explicit_deny_beats_allow_in_any_policy() -> None:
    assert decide(request(GET, OBJECT), [ALLOW_ALL, DENY_GET]) == explicit(PolicyType.IDENTITY, "NoGet")
    assert decide(request(GET, OBJECT), [DENY_GET, ALLOW_ALL]) == explicit(PolicyType.IDENTITY, "NoGet")
    combined = policy(allow("*", "*"), deny(GET, OBJECT))
    assert decide(request(GET, OBJECT), [combined]).verdict is Verdict.EXPLICIT_DENY


def test_deny_with_condition_only_applies_when_it_holds() -> None:
    guarded = policy(allow("*", "*"), deny("*", "*", Condition={"Bool": {"aws:SecureTransport": "false"}}))
    assert decide(request(GET, OBJECT, context={"aws:SecureTransport": "true"}), [guarded]).allowed
    assert not decide(request(GET, OBJECT, context={"aws:SecureTransport": "false"}), [guarded]).allowed
    assert decide(request(GET, OBJECT), [guarded]).allowed  # key missing: Bool is false


def test_user_guide_carlos_example() -> None:
    carlos = policy(
        allow(
            ["s3:GetBucketLocation", "s3:ListAllMyBuckets"],
            "arn:aws:s3:::*",
            Sid="AllowS3ListRead",
        ),
        allow("s3:*", ["arn:aws:s3:::carlossalazar/*", "arn:aws:s3:::carlossalazar"], Sid="AllowS3Self"),
        deny("s3:*", "arn:aws:s3:::*log*", Sid="DenyS3Logs"),
    )
    who = user("carlossalazar")
    logs = request("s3:PutObject", "arn:aws:s3:::carlossalazar-logs", principal=who)
    assert decide(logs, [carlos]) == explicit(PolicyType.IDENTITY, "DenyS3Logs")
    own = request("s3:PutObject", "arn:aws:s3:::carlossalazar/file", principal=who)
    assert decide(own, [carlos]).allowed


# --- root user ------------------------------------------------------------------------------------


def test_root_is_allowed_in_its_own_account() -> None:
    assert decide(request("iam:CreateUser", "*", principal=root())).allowed
    assert decide(request(GET, OBJECT, principal=root(), resource_account=ACCOUNT)).allowed


def test_root_is_stopped_by_an_explicit_deny_in_a_resource_policy() -> None:
    denying = bucket_policy("*", "Deny")
    assert decide(request(GET, OBJECT, principal=root()), resource=denying) == explicit(PolicyType.RESOURCE)
    assert decide(request(GET, OBJECT, principal=root()), resource=bucket_policy(aws(ACCOUNT))).allowed


def test_root_of_another_account_needs_the_resource_policy() -> None:
    other_root = root(OTHER)
    req = request(GET, OBJECT, principal=other_root, resource_account=ACCOUNT)
    assert decide(req) == implicit(PolicyType.RESOURCE)
    assert decide(req, resource=bucket_policy(aws(OTHER))).allowed
    assert decide(req, resource=bucket_policy(aws(f"arn:aws:iam::{OTHER}:root"))).allowed
    assert not decide(req, resource=bucket_policy(aws(f"arn:aws:iam::{OTHER}:user/bob"))).allowed


# --- same account: identity OR resource-based policy ----------------------------------------------


def test_resource_policy_naming_the_user_allows_without_identity_policy() -> None:
    rbp = bucket_policy(aws(f"arn:aws:iam::{ACCOUNT}:user/bob"))
    assert decide(request(GET, OBJECT), resource=rbp).allowed
    assert not decide(request(GET, OBJECT, principal=user("alice")), resource=rbp).allowed


def test_resource_policy_naming_the_user_is_not_limited_by_a_boundary() -> None:
    rbp = bucket_policy(aws(f"arn:aws:iam::{ACCOUNT}:user/bob"))
    boundary = policy(allow("ec2:*", "*"))
    assert decide(request(GET, OBJECT), resource=rbp, boundary=boundary).allowed
    # ... but an explicit deny in the boundary still wins
    assert decide(request(GET, OBJECT), resource=rbp, boundary=DENY_GET) == explicit(
        PolicyType.BOUNDARY, "NoGet"
    )


def test_resource_policy_naming_the_account_needs_an_identity_allow() -> None:
    rbp = bucket_policy(aws(ACCOUNT))
    assert decide(request(GET, OBJECT), resource=rbp) == implicit(PolicyType.IDENTITY)
    assert decide(request(GET, OBJECT), [ALLOW_GET], resource=rbp).allowed


def test_identity_allow_suffices_without_resource_policy_allow() -> None:
    rbp = bucket_policy(aws(f"arn:aws:iam::{ACCOUNT}:user/alice"))
    assert decide(request(GET, OBJECT), [ALLOW_GET], resource=rbp).allowed


def test_explicit_deny_in_resource_policy() -> None:
    rbp = bucket_policy(aws(f"arn:aws:iam::{ACCOUNT}:user/bob"), "Deny", Sid="NoBob")
    assert decide(request(GET, OBJECT), [ALLOW_ALL], resource=rbp) == explicit(PolicyType.RESOURCE, "NoBob")
    assert decide(request(GET, OBJECT, principal=user("alice")), [ALLOW_ALL], resource=rbp).allowed


def test_resource_policy_deny_naming_the_account_denies_everyone_in_it() -> None:
    rbp = bucket_policy(aws(ACCOUNT), "Deny")
    assert decide(request(GET, OBJECT), [ALLOW_ALL], resource=rbp).verdict is Verdict.EXPLICIT_DENY
    assert (
        decide(request(GET, OBJECT, principal=session()), [ALLOW_ALL], resource=rbp).verdict
        is Verdict.EXPLICIT_DENY
    )
    other = user("eve", OTHER)
    assert decide(
        request(GET, OBJECT, principal=other, resource_account=ACCOUNT), [ALLOW_ALL], resource=rbp
    ) == (implicit(PolicyType.RESOURCE))


def test_public_resource_policy_allows_everyone() -> None:
    for principal in ("*", {"AWS": "*"}):
        rbp = bucket_policy(principal)
        assert decide(request(GET, OBJECT), resource=rbp).allowed
        assert decide(request(GET, OBJECT, principal=ANONYMOUS), resource=rbp).allowed
        assert decide(
            request(GET, OBJECT, principal=user("x", OTHER), resource_account=ACCOUNT),
            [ALLOW_ALL],
            resource=rbp,
        ).allowed


def test_resource_policy_conditions_and_actions_apply() -> None:
    rbp = resource_policy(
        {
            "Effect": "Allow",
            "Principal": "*",
            "Action": GET,
            "Resource": f"{BUCKET}/*",
            "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
        }
    )
    assert decide(request(GET, OBJECT, context={"aws:SourceIp": "10.1.1.1"}), resource=rbp).allowed
    assert not decide(request(GET, OBJECT, context={"aws:SourceIp": "192.0.2.1"}), resource=rbp).allowed
    assert not decide(
        request("s3:PutObject", OBJECT, context={"aws:SourceIp": "10.1.1.1"}), resource=rbp
    ).allowed


# --- role sessions: role ARN vs session ARN in resource policies, session policies, boundaries ----


ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/app"
SESSION_ARN = f"arn:aws:sts::{ACCOUNT}:assumed-role/app/s1"


def test_role_session_uses_the_role_identity_policies() -> None:
    assert decide(request(GET, OBJECT, principal=session()), [ALLOW_GET]).allowed
    assert decide(request(GET, OBJECT, principal=session())) == implicit(PolicyType.IDENTITY)


def test_resource_policy_naming_the_role_covers_its_sessions() -> None:
    rbp = bucket_policy(aws(ROLE_ARN))
    assert decide(request(GET, OBJECT, principal=session()), resource=rbp).allowed
    assert decide(request(GET, OBJECT, principal=session(name="other")), resource=rbp).allowed
    assert not decide(request(GET, OBJECT, principal=session(role="else")), resource=rbp).allowed


def test_resource_policy_naming_the_role_is_limited_by_boundary_and_session_policy() -> None:
    rbp = bucket_policy(aws(ROLE_ARN))
    req = request(GET, OBJECT, principal=session())
    ec2_only = policy(allow("ec2:*", "*"), kind=PolicyKind.BOUNDARY)
    assert decide(req, resource=rbp, boundary=ec2_only) == implicit(PolicyType.BOUNDARY)
    narrow = policy(allow("ec2:*", "*"), kind=PolicyKind.SESSION)
    assert decide(req, resource=rbp, sessions=[narrow]) == implicit(PolicyType.SESSION)
    wide = policy(allow("s3:*", "*"), kind=PolicyKind.SESSION)
    assert decide(req, resource=rbp, sessions=[wide], boundary=policy(allow("s3:*", "*"))).allowed


def test_resource_policy_naming_the_session_is_not_limited() -> None:
    rbp = bucket_policy(aws(SESSION_ARN))
    req = request(GET, OBJECT, principal=session())
    ec2_only = policy(allow("ec2:*", "*"))
    assert decide(req, resource=rbp, boundary=ec2_only, sessions=[ec2_only]).allowed
    assert not decide(request(GET, OBJECT, principal=session(name="s2")), resource=rbp).allowed


def test_resource_policy_may_name_the_role_by_unique_id() -> None:
    rbp = bucket_policy(aws("AROAEXAMPLEROLEID0001"))
    assert decide(request(GET, OBJECT, principal=session()), resource=rbp).allowed


def test_session_policy_intersects_with_identity_policies() -> None:
    req = request(GET, OBJECT, principal=session())
    session_get = policy(allow(GET, "*"), kind=PolicyKind.SESSION)
    session_put = policy(allow("s3:PutObject", "*"), kind=PolicyKind.SESSION)
    assert decide(req, [ALLOW_ALL], sessions=[session_get]).allowed
    assert decide(req, [ALLOW_ALL], sessions=[session_put]) == implicit(PolicyType.SESSION)
    assert decide(req, [ALLOW_ALL], sessions=[session_put, session_get]).allowed  # any session policy
    assert decide(req, [ALLOW_ALL]).allowed  # no session policy: the role's permissions
    assert decide(req, [], sessions=[session_get]) == implicit(PolicyType.IDENTITY)


def test_explicit_deny_in_session_policy() -> None:
    req = request(GET, OBJECT, principal=session())
    denying = policy(allow("*", "*"), deny(GET, "*", Sid="S"), kind=PolicyKind.SESSION)
    assert decide(req, [ALLOW_ALL], sessions=[denying]) == explicit(PolicyType.SESSION, "S")


# --- permissions boundaries -----------------------------------------------------------------------


def test_boundary_intersects_with_identity_policies() -> None:
    s3_only = policy(allow("s3:*", "*"), kind=PolicyKind.BOUNDARY)
    assert decide(request(GET, OBJECT), [ALLOW_ALL], boundary=s3_only).allowed
    assert decide(request("iam:CreateUser", "*"), [ALLOW_ALL], boundary=s3_only) == implicit(
        PolicyType.BOUNDARY
    )
    assert decide(request(GET, OBJECT), [], boundary=s3_only) == implicit(PolicyType.IDENTITY)


def test_explicit_deny_in_boundary() -> None:
    boundary = policy(allow("*", "*"), deny("iam:*", "*", Sid="NoIam"), kind=PolicyKind.BOUNDARY)
    assert decide(request("iam:CreateUser", "*"), [ALLOW_ALL], boundary=boundary) == (
        explicit(PolicyType.BOUNDARY, "NoIam")
    )


def test_boundary_session_and_identity_must_all_allow() -> None:
    req = request(GET, OBJECT, principal=session())
    s3 = policy(allow("s3:*", "*"))
    get = policy(allow(GET, "*"), kind=PolicyKind.SESSION)
    assert decide(req, [ALLOW_ALL], boundary=s3, sessions=[get]).allowed
    assert not decide(
        request("s3:PutObject", OBJECT, principal=session()), [ALLOW_ALL], boundary=s3, sessions=[get]
    ).allowed


# --- federated users (GetFederationToken) ---------------------------------------------------------


FED_ARN = f"arn:aws:sts::{ACCOUNT}:federated-user/fed"


def test_federated_user_needs_a_session_policy() -> None:
    req = request(GET, OBJECT, principal=federated())
    assert decide(req, [ALLOW_ALL]) == implicit(PolicyType.SESSION)
    assert decide(req, [ALLOW_ALL], sessions=[policy(allow(GET, "*"))]).allowed
    assert decide(req, [], sessions=[policy(allow(GET, "*"))]) == implicit(PolicyType.IDENTITY)


def test_federated_user_of_root_has_the_session_policy_permissions() -> None:
    req = request(GET, OBJECT, principal=federated(source="root"))
    assert decide(req, [], sessions=[policy(allow(GET, "*"))]).allowed
    assert not decide(req, []).allowed


def test_resource_policy_naming_the_federated_user_is_not_limited() -> None:
    rbp = bucket_policy(aws(FED_ARN))
    assert decide(request(GET, OBJECT, principal=federated()), resource=rbp).allowed


def test_resource_policy_naming_the_user_who_federated_is_limited_by_session_policy() -> None:
    rbp = bucket_policy(aws(f"arn:aws:iam::{ACCOUNT}:user/bob"))
    req = request(GET, OBJECT, principal=federated())
    assert decide(req, resource=rbp) == implicit(PolicyType.SESSION)
    assert decide(req, resource=rbp, sessions=[policy(allow(GET, "*"))]).allowed
    assert decide(req, resource=rbp, sessions=[policy(allow("ec2:*", "*"))]) == implicit(PolicyType.SESSION)


# --- cross-account: identity AND resource-based policy --------------------------------------------


def cross(principal: PrincipalInfo | None = None, action: str = GET) -> AuthzRequest:
    return request(action, OBJECT, principal=principal or user("bob", OTHER), resource_account=ACCOUNT)


def test_cross_account_needs_both_sides() -> None:
    rbp = bucket_policy(aws(f"arn:aws:iam::{OTHER}:user/bob"))
    assert decide(cross(), [ALLOW_GET], resource=rbp).allowed
    assert decide(cross(), [ALLOW_GET]) == implicit(PolicyType.RESOURCE)
    assert decide(cross(), [], resource=rbp) == implicit(PolicyType.IDENTITY)


def test_cross_account_resource_policy_may_name_the_account() -> None:
    rbp = bucket_policy(aws(OTHER))
    assert decide(cross(), [ALLOW_GET], resource=rbp).allowed
    assert decide(cross(session(account=OTHER)), [ALLOW_GET], resource=rbp).allowed
    assert not decide(cross(user("bob", "333333333333")), [ALLOW_GET], resource=rbp).allowed


def test_cross_account_session_named_directly_still_needs_identity_side() -> None:
    rbp = bucket_policy(aws(f"arn:aws:sts::{OTHER}:assumed-role/app/s1"))
    req = cross(session(account=OTHER))
    assert decide(req, resource=rbp) == implicit(PolicyType.IDENTITY)
    assert decide(req, [ALLOW_ALL], resource=rbp).allowed
    narrow = policy(allow("ec2:*", "*"), kind=PolicyKind.SESSION)
    assert decide(req, [ALLOW_ALL], resource=rbp, sessions=[narrow]) == implicit(PolicyType.SESSION)


def test_cross_account_boundary_applies() -> None:
    rbp = bucket_policy(aws(OTHER))
    ec2 = policy(allow("ec2:*", "*"))
    assert decide(cross(), [ALLOW_ALL], resource=rbp, boundary=ec2) == implicit(PolicyType.BOUNDARY)


def test_cross_account_explicit_deny_on_either_side() -> None:
    rbp = bucket_policy(aws(OTHER))
    assert decide(cross(), [ALLOW_ALL, DENY_GET], resource=rbp) == explicit(PolicyType.IDENTITY, "NoGet")
    denying = bucket_policy(aws(OTHER), "Deny")
    assert decide(cross(), [ALLOW_ALL], resource=denying) == explicit(PolicyType.RESOURCE)


def test_same_account_resource_owner_is_not_cross_account() -> None:
    assert decide(request(GET, OBJECT, resource_account=ACCOUNT), [ALLOW_GET]).allowed
    assert decide(request(GET, OBJECT, resource_account=""), [ALLOW_GET]).allowed


# --- anonymous and service principals -------------------------------------------------------------


def test_anonymous_only_through_a_public_resource_policy() -> None:
    anon = request(GET, OBJECT, principal=ANONYMOUS, resource_account=ACCOUNT)
    assert decide(anon) == implicit(PolicyType.RESOURCE)
    assert decide(anon, [ALLOW_ALL]) == implicit(PolicyType.RESOURCE)  # identity policies never apply
    assert decide(anon, resource=bucket_policy("*")).allowed
    assert decide(anon, resource=bucket_policy({"AWS": "*"})).allowed
    assert not decide(anon, resource=bucket_policy(aws(ACCOUNT))).allowed
    assert decide(anon, resource=bucket_policy("*", "Deny")) == explicit(PolicyType.RESOURCE)


def test_service_principal() -> None:
    rbp = resource_policy(
        {
            "Effect": "Allow",
            "Principal": {"Service": "sns.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": "arn:aws:sqs:us-east-1:111111111111:q",
            "Condition": {"ArnEquals": {"aws:SourceArn": "arn:aws:sns:us-east-1:111111111111:t"}},
        }
    )
    ok = request(
        "sqs:SendMessage",
        "arn:aws:sqs:us-east-1:111111111111:q",
        principal=service("sns.amazonaws.com"),
        context={"aws:SourceArn": "arn:aws:sns:us-east-1:111111111111:t"},
    )
    assert decide(ok, resource=rbp).allowed
    assert not decide(ok, resource=None).allowed
    wrong = request(
        "sqs:SendMessage", "arn:aws:sqs:us-east-1:111111111111:q", principal=service("s3.amazonaws.com")
    )
    assert not decide(wrong, resource=rbp).allowed
    assert decide(
        ok, resource=resource_policy({**rbp_statement(), "Principal": {"Service": "SNS.amazonaws.com"}})
    ).allowed


def rbp_statement() -> dict[str, Any]:
    return {"Effect": "Allow", "Principal": "*", "Action": "sqs:SendMessage", "Resource": "*"}


def test_canonical_user_principal() -> None:
    canonical = "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"
    rbp = bucket_policy({"CanonicalUser": canonical})
    who = PrincipalInfo(
        arn=f"arn:aws:iam::{OTHER}:user/x",
        account_id=OTHER,
        kind=PrincipalKind.USER,
        canonical_user_id=canonical,
    )
    assert decide(
        request(GET, OBJECT, principal=who, resource_account=ACCOUNT), [ALLOW_ALL], resource=rbp
    ).allowed


# --- NotPrincipal ---------------------------------------------------------------------------------


def test_not_principal_deny_exempts_only_fully_listed_principals() -> None:
    bob_arn = f"arn:aws:iam::{ACCOUNT}:user/bob"
    base = {"Effect": "Deny", "Action": "s3:*", "Resource": "*"}
    for account in (ACCOUNT, f"arn:aws:iam::{ACCOUNT}:root"):
        everyone_but_bob = resource_policy({**base, "NotPrincipal": aws(bob_arn, account)})
        assert decide(request(GET, OBJECT), [ALLOW_ALL], resource=everyone_but_bob).allowed
        alice = request(GET, OBJECT, principal=user("alice"))
        assert decide(alice, [ALLOW_ALL], resource=everyone_but_bob) == explicit(PolicyType.RESOURCE)
    # listing only Bob's ARN: his account is checked first and is denied, and so is Bob
    only_bob = resource_policy({**base, "NotPrincipal": aws(bob_arn)})
    assert decide(request(GET, OBJECT), [ALLOW_ALL], resource=only_bob).verdict is Verdict.EXPLICIT_DENY


def test_not_principal_deny_and_role_sessions() -> None:
    listed = [SESSION_ARN, ROLE_ARN, ACCOUNT]
    base = {"Effect": "Deny", "Action": "s3:*", "Resource": "*"}
    req = request(GET, OBJECT, principal=session())
    assert decide(req, [ALLOW_ALL], resource=resource_policy({**base, "NotPrincipal": aws(*listed)})).allowed
    for missing in listed:
        partial = [p for p in listed if p != missing]
        rbp = resource_policy({**base, "NotPrincipal": aws(*partial)})
        assert decide(req, [ALLOW_ALL], resource=rbp).verdict is Verdict.EXPLICIT_DENY, missing


def test_not_principal_allow_grants_everyone_else() -> None:
    rbp = resource_policy(
        {
            "Effect": "Allow",
            "NotPrincipal": aws(f"arn:aws:iam::{ACCOUNT}:user/eve", ACCOUNT),
            "Action": "s3:*",
            "Resource": "*",
        }
    )
    assert decide(request(GET, OBJECT, principal=ANONYMOUS), resource=rbp).allowed
    assert decide(request(GET, OBJECT, principal=user("eve")), resource=rbp) == implicit(PolicyType.IDENTITY)


def test_not_principal_for_root_and_services() -> None:
    base = {"Effect": "Deny", "Action": "s3:*", "Resource": "*"}
    rbp = resource_policy({**base, "NotPrincipal": aws(ACCOUNT)})
    assert decide(request(GET, OBJECT, principal=root()), resource=rbp).allowed
    svc = resource_policy({**base, "NotPrincipal": {"Service": "logs.amazonaws.com"}})
    assert not decide(request(GET, OBJECT, principal=service("s3.amazonaws.com")), resource=svc).allowed
    assert decide(
        request(GET, OBJECT, principal=service("logs.amazonaws.com")),
        resource=resource_policy({**base, "Effect": "Allow", "Principal": {"Service": "logs.amazonaws.com"}}),
    ).allowed


# --- role trust policies (sts:AssumeRole) ---------------------------------------------------------


def trust(principal: Any, **extra: Any) -> Any:
    return parse_policy(
        json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole", **extra}
                ],
            }
        ),
        PolicyKind.TRUST,
    )


def assume(principal: PrincipalInfo | None = None, *, owner: str = ACCOUNT) -> AuthzRequest:
    return request(
        "sts:AssumeRole", f"arn:aws:iam::{owner}:role/target", principal=principal, resource_account=owner
    )


ASSUME = policy(allow("sts:AssumeRole", "*"))


def test_trust_policy_naming_the_user_needs_no_identity_policy() -> None:
    assert decide(assume(), resource=trust(aws(f"arn:aws:iam::{ACCOUNT}:user/bob"))).allowed


def test_trust_policy_naming_the_account_needs_an_identity_allow() -> None:
    policy_ = trust(aws(f"arn:aws:iam::{ACCOUNT}:root"))
    assert decide(assume(), resource=policy_) == implicit(PolicyType.IDENTITY)
    assert decide(assume(), [ASSUME], resource=policy_).allowed


def test_trust_policy_must_allow_even_in_the_same_account() -> None:
    policy_ = trust(aws(f"arn:aws:iam::{ACCOUNT}:user/alice"))
    assert decide(assume(), [ASSUME], resource=policy_) == implicit(PolicyType.RESOURCE)


def test_cross_account_assume_role() -> None:
    policy_ = trust(aws(OTHER))
    other_bob = user("bob", OTHER)
    assert decide(assume(other_bob), [ASSUME], resource=policy_).allowed
    assert decide(assume(other_bob), resource=policy_) == implicit(PolicyType.IDENTITY)
    assert decide(assume(user("bob", "333333333333")), [ASSUME], resource=policy_) == implicit(
        PolicyType.RESOURCE
    )


def test_trust_policy_service_and_conditions() -> None:
    policy_ = trust({"Service": "ec2.amazonaws.com"})
    assert decide(assume(service("ec2.amazonaws.com")), resource=policy_).allowed
    assert not decide(assume(service("lambda.amazonaws.com")), resource=policy_).allowed
    external = trust(aws(OTHER), Condition={"StringEquals": {"sts:ExternalId": "secret"}})
    other = user("bob", OTHER)
    with_id = request(
        "sts:AssumeRole",
        "arn:aws:iam::111111111111:role/target",
        principal=other,
        resource_account=ACCOUNT,
        context={"sts:ExternalId": "secret"},
    )
    assert decide(with_id, [ASSUME], resource=external).allowed
    assert not decide(assume(other), [ASSUME], resource=external).allowed


def test_trust_policy_for_web_identity() -> None:
    policy_ = parse_policy(
        json.dumps(
            {
                "Statement": {
                    "Effect": "Allow",
                    "Principal": {"Federated": "cognito-identity.amazonaws.com"},
                    "Action": "sts:AssumeRoleWithWebIdentity",
                    "Condition": {"StringEquals": {"cognito-identity.amazonaws.com:aud": "pool-1"}},
                }
            }
        ),
        PolicyKind.TRUST,
    )
    web = PrincipalInfo(arn="cognito-identity.amazonaws.com", account_id="", kind=PrincipalKind.WEB_IDENTITY)
    ok = request(
        "sts:AssumeRoleWithWebIdentity",
        "arn:aws:iam::111111111111:role/r",
        principal=web,
        context={"cognito-identity.amazonaws.com:aud": "pool-1"},
    )
    assert decide(ok, resource=policy_).allowed
    other = PrincipalInfo(arn="accounts.google.com", account_id="", kind=PrincipalKind.WEB_IDENTITY)
    assert not decide(
        request("sts:AssumeRoleWithWebIdentity", "*", principal=other), resource=policy_
    ).allowed


# --- messages -------------------------------------------------------------------------------------


def test_denial_message_for_missing_identity_allow() -> None:
    req = request("iam:ListUsers", f"arn:aws:iam::{ACCOUNT}:user/", principal=user("bob"))
    assert denial_message(decide(req), req) == (
        "User: arn:aws:iam::111111111111:user/bob is not authorized to perform: iam:ListUsers on resource: "
        "arn:aws:iam::111111111111:user/ because no identity-based policy allows the iam:ListUsers action"
    )


@pytest.mark.parametrize(
    ("decision", "tail"),
    [
        (explicit(PolicyType.IDENTITY), "with an explicit deny in an identity-based policy"),
        (explicit(PolicyType.RESOURCE), "with an explicit deny in a resource-based policy"),
        (explicit(PolicyType.BOUNDARY), "with an explicit deny in a permissions boundary"),
        (explicit(PolicyType.SESSION), "with an explicit deny in a session policy"),
        (implicit(PolicyType.RESOURCE), "because no resource-based policy allows the s3:GetObject action"),
        (implicit(PolicyType.BOUNDARY), "because no permissions boundary allows the s3:GetObject action"),
        (implicit(PolicyType.SESSION), "because no session policy allows the s3:GetObject action"),
    ],
)
def test_denial_message_variants(decision: Decision, tail: str) -> None:
    req = request(GET, OBJECT, principal=session())
    assert denial_message(decision, req) == (
        f"User: {SESSION_ARN} is not authorized to perform: s3:GetObject on resource: {OBJECT} {tail}"
    )


def test_denial_message_without_resource_and_for_anonymous() -> None:
    req = request("s3:ListAllMyBuckets", "*", principal=ANONYMOUS)
    assert denial_message(implicit(PolicyType.RESOURCE), req) == (
        "User: anonymous is not authorized to perform: s3:ListAllMyBuckets because no resource-based policy "
        "allows the s3:ListAllMyBuckets action"
    )


def test_denial_message_of_an_allowed_decision_is_an_error() -> None:
    with pytest.raises(ValueError):
        denial_message(Decision(Verdict.ALLOW), request())


# --- robustness and speed -------------------------------------------------------------------------


ACTIONS = st.sampled_from(
    ["s3:GetObject", "S3:getobject", "iam:ListUsers", "sts:AssumeRole", "ec2:RunInstances", "x"]
)
RESOURCES = st.sampled_from(["*", OBJECT, BUCKET, "arn:aws:iam::111111111111:user/bob", "not-an-arn", ""])
PRINCIPALS = st.sampled_from(
    [user(), user("eve", OTHER), root(), root(OTHER), session(), federated(), ANONYMOUS, service()]
)
CONTEXTS = st.dictionaries(
    st.sampled_from(["aws:SourceIp", "aws:username", "aws:TagKeys", "s3:prefix", "aws:CurrentTime"]),
    st.text(max_size=5) | st.lists(st.text(max_size=5), max_size=3),
    max_size=3,
)
STATEMENTS: st.SearchStrategy[dict[str, Any]] = st.builds(
    dict,
    Effect=st.sampled_from(["Allow", "Deny"]),
    Action=st.sampled_from(["*", "s3:*", "s3:Get*", "iam:List*", "sts:AssumeRole"]),
    Resource=st.sampled_from(["*", OBJECT, "arn:aws:s3:::b/${aws:username}", "arn:aws:iam::*:user/*"]),
    Condition=st.sampled_from(
        [
            {},
            {"StringLike": {"s3:prefix": "a*"}},
            {"ForAllValues:StringEquals": {"aws:TagKeys": ["a", "b"]}},
            {"ForAnyValue:StringNotEquals": {"aws:TagKeys": "a"}},
            {"IpAddressIfExists": {"aws:SourceIp": "10.0.0.0/8"}},
            {"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}},
            {"Null": {"aws:username": "false"}},
        ]
    ),
)
RESOURCE_STATEMENTS = st.builds(
    lambda s, p: {**s, "Principal": p},
    STATEMENTS,
    st.sampled_from(
        [
            "*",
            aws(ACCOUNT),
            aws(OTHER),
            aws(ROLE_ARN),
            aws(f"arn:aws:iam::{ACCOUNT}:user/bob"),
            {"Service": "lambda.amazonaws.com"},
        ]
    ),
)


@settings(max_examples=500, deadline=None)
@given(
    ACTIONS,
    RESOURCES,
    PRINCIPALS,
    CONTEXTS,
    st.lists(STATEMENTS, min_size=1, max_size=4),
    st.lists(RESOURCE_STATEMENTS, max_size=3),
    st.sampled_from([None, ACCOUNT, OTHER]),
)
def test_evaluate_is_total_and_deny_wins(
    action: str,
    resource: str,
    principal: PrincipalInfo,
    context: dict[str, Any],
    statements: list[dict[str, Any]],
    resource_statements: list[dict[str, Any]],
    owner: str | None,
) -> None:
    identity = parse_policy(
        json.dumps({"Version": "2012-10-17", "Statement": statements}), PolicyKind.IDENTITY
    )
    rbp = None
    if resource_statements:
        rbp = parse_policy(
            json.dumps({"Version": "2012-10-17", "Statement": resource_statements}), PolicyKind.RESOURCE
        )
    req = AuthzRequest(action, resource, principal, owner, context)
    decision = evaluate(req, [identity], resource_policy=rbp)
    if not decision.allowed:
        assert denial_message(decision, req).startswith("User: ")
    # adding a policy that allows everything never turns an explicit deny into an allow
    everything = parse_policy(
        '{"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}}', PolicyKind.IDENTITY
    )
    widened = evaluate(req, [identity, everything], resource_policy=rbp)
    if decision.verdict is Verdict.EXPLICIT_DENY:
        assert widened == decision
    if decision.allowed:
        assert widened.allowed


def test_benchmark_five_policies_of_five_statements() -> None:
    policies = [
        parse_policy(
            json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        allow(
                            ["s3:GetObject", "s3:List*"],
                            [f"arn:aws:s3:::bucket{i}", f"arn:aws:s3:::bucket{i}/*"],
                            Sid=f"S3Read{i}",
                        ),
                        allow(
                            "ec2:Describe*",
                            "*",
                            Sid=f"Ec2{i}",
                            Condition={"StringEquals": {"aws:RequestedRegion": "us-east-1"}},
                        ),
                        allow(
                            ["iam:Get*", "iam:List*"],
                            f"arn:aws:iam::111111111111:user/team{i}/*",
                            Sid=f"Iam{i}",
                        ),
                        allow("s3:*", "arn:aws:s3:::home/${aws:username}/*", Sid=f"Home{i}"),
                        {
                            "Sid": f"Deny{i}",
                            "Effect": "Deny",
                            "NotAction": ["iam:*", "s3:*", "ec2:*", "sts:*"],
                            "Resource": "*",
                            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                        },
                    ],
                }
            ),
            PolicyKind.IDENTITY,
        )
        for i in range(5)
    ]
    bob = user("bob")
    context = {"aws:SourceIp": "10.0.0.1", "aws:SecureTransport": "true", "aws:RequestedRegion": "us-east-1"}
    cases = [
        ("iam:ListUsers", "arn:aws:iam::111111111111:user/"),
        ("iam:GetUser", "arn:aws:iam::111111111111:user/team4/x"),
        ("s3:PutObject", "arn:aws:s3:::home/bob/a.txt"),
        ("s3:GetObject", "arn:aws:s3:::bucket0/k"),
        ("ec2:DescribeInstances", "*"),
        ("sqs:SendMessage", "arn:aws:sqs:us-east-1:111111111111:q"),
    ]
    rounds = 2000
    worst = 0.0
    for action, resource in cases:
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            for _ in range(rounds):
                evaluate(AuthzRequest(action, resource, bob, None, context), policies)
            best = min(best, (time.perf_counter() - start) / rounds)
        worst = max(worst, best)
        print(f"evaluate {action:24s} {best * 1e6:6.2f} us")
    assert worst < 200e-6  # the target is well under 20 us; the bound is loose for slow CI machines


# --- reuse -------------------------------------------------------------------------------------------


def test_policy_is_immutable_and_reusable() -> None:
    parsed = policy(allow("s3:Get*", "arn:aws:s3:::b/*"), deny("s3:GetObjectAcl", "*"))
    with pytest.raises(AttributeError):
        parsed.kind = PolicyKind.RESOURCE  # type: ignore[misc]
    for _ in range(3):
        assert decide(request("s3:GetObject", OBJECT), [parsed]).allowed
        assert decide(request("s3:GetObjectAcl", OBJECT), [parsed]).verdict is Verdict.EXPLICIT_DENY
        assert not decide(request("s3:PutObject", OBJECT), [parsed]).allowed


def test_statement_cache_stays_correct_past_its_size() -> None:
    parsed = policy(allow("svc:Get*", "*"), deny("svc:GetSecret*", "*"))
    for i in range(5000):
        assert decide(request(f"svc:Get{i}", "*"), [parsed]).allowed
    assert decide(request("svc:GetSecretValue", "*"), [parsed]).verdict is Verdict.EXPLICIT_DENY
    assert not decide(request("svc:Put1", "*"), [parsed]).allowed


def test_caller_supplied_context_keys_win_over_derived_ones() -> None:
    parsed = policy(allow("s3:*", "arn:aws:s3:::home/${aws:username}/*"))
    req = request("s3:GetObject", "arn:aws:s3:::home/carol/x", context={"AWS:UserName": "carol"})
    assert decide(req, [parsed]).allowed
