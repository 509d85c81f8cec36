"""Actions, resources and policy variables: wildcards, ARN segments, case rules."""

from __future__ import annotations

import functools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minicloud.iam.policy.matching import any_glob_matcher, arn_matcher, glob_matcher

from .helpers import allow, decide, deny, policy, request, session, user


def allows(
    action_pattern: str | list[str],
    action: str,
    *,
    resource_pattern: str | list[str] = "*",
    resource: str = "*",
    not_action: bool = False,
    not_resource: bool = False,
    version: str | None = "2012-10-17",
    tags: dict[str, str] | None = None,
) -> bool:
    statement: dict[str, object] = {"Effect": "Allow"}
    statement["NotAction" if not_action else "Action"] = action_pattern
    statement["NotResource" if not_resource else "Resource"] = resource_pattern
    return decide(
        request(action, resource, principal=user("bob", tags=tags)), [policy(statement, version=version)]
    ).allowed


@pytest.mark.parametrize(
    ("pattern", "action", "expected"),
    [
        ("*", "iam:ListUsers", True),
        ("iam:*", "iam:ListUsers", True),
        ("iam:*", "s3:ListBucket", False),
        ("iam:ListUsers", "iam:ListUsers", True),
        ("iam:listusers", "IAM:ListUsers", True),  # actions are case-insensitive
        ("IAM:LIST*", "iam:listUsers", True),
        ("iam:List*", "iam:GetUser", False),
        ("iam:*User", "iam:GetUser", True),
        ("iam:*User", "iam:GetUsers", False),
        ("iam:Get?ser", "iam:GetUser", True),
        ("iam:Get?ser", "iam:GetUUser", False),
        ("iam:*Access*", "iam:CreateAccessKey", True),
        ("iam:ListUsers", "iam:ListUsersX", False),
        ("s3:Get*", "s3:GetObject", True),
        ("s3:Get*", "s3x:GetObject", False),
        (["s3:Get*", "s3:List*"], "s3:ListBucket", True),
        (["ec2:Describe*", "s3:PutObject"], "s3:PutObject", True),
    ],
)
def test_action_matching(pattern: str | list[str], action: str, expected: bool) -> None:
    assert allows(pattern, action) is expected


def test_not_action() -> None:
    assert allows("iam:*", "s3:GetObject", not_action=True)
    assert not allows("iam:*", "iam:GetUser", not_action=True)
    assert not allows(["iam:*", "s3:*"], "s3:GetObject", not_action=True)
    assert not allows("*", "s3:GetObject", not_action=True)  # "NotAction": "*" matches nothing


@pytest.mark.parametrize(
    ("pattern", "resource", "expected"),
    [
        ("*", "arn:aws:s3:::b/k", True),
        ("*", "*", True),
        ("arn:aws:s3:::b/*", "*", False),  # an action without resource-level permissions needs "*"
        ("arn:aws:s3:::b", "arn:aws:s3:::b", True),
        ("arn:aws:s3:::b", "arn:aws:s3:::B", False),  # resources are case-sensitive
        ("arn:aws:s3:::b/*", "arn:aws:s3:::b/k", True),
        ("arn:aws:s3:::b/*", "arn:aws:s3:::b", False),
        ("arn:aws:s3:::b/*", "arn:aws:s3:::b/", True),
        ("arn:aws:s3:::b*", "arn:aws:s3:::bucket/a/b", True),
        ("arn:aws:s3:::b/*/test/*", "arn:aws:s3:::b/1/2/test/3/object.jpg", True),
        ("arn:aws:s3:::b/*/test/*", "arn:aws:s3:::b//test/object.jpg", True),
        ("arn:aws:s3:::b/*/test/*", "arn:aws:s3:::b/1/tests/x", False),
        ("arn:aws:s3:::b/?", "arn:aws:s3:::b/x", True),
        ("arn:aws:s3:::b/?", "arn:aws:s3:::b/xy", False),
        ("arn:aws:s3:::*log*", "arn:aws:s3:::my-logs", True),
        ("arn:aws:s3:::*log*", "arn:aws:s3:::my-bucket/x", False),
        ("arn:aws:sqs:*:111111111111:q", "arn:aws:sqs:us-east-1:111111111111:q", True),
        ("arn:aws:sqs:*:111111111111:q", "arn:aws:sqs:us-east-1:222222222222:111111111111:q", False),
        ("arn:aws:sqs:us-*:*:*", "arn:aws:sqs:us-east-1:111111111111:q", True),
        ("arn:aws:sqs:us-*:*:*", "arn:aws:sqs:eu-west-1:111111111111:q", False),
        ("arn:aws:sqs:*:*:*", "arn:aws:sqs:eu-west-1:111111111111:q", True),
        ("arn:*:sqs:*:*:*", "arn:aws-cn:sqs:cn-north-1:111111111111:q", True),
        ("arn:aws:iam::111111111111:user/*", "arn:aws:iam::111111111111:user/path/bob", True),
        ("arn:aws:iam::111111111111:user/*", "arn:aws:iam::111111111111:role/bob", False),
        ("arn:aws:iam::*:role/x", "arn:aws:iam::111111111111:role/x", True),
        ("arn:aws:iam::?????????111:role/x", "arn:aws:iam::111111111111:role/x", True),
        (
            "arn:aws:logs:*:*:log-group:/app:*",
            "arn:aws:logs:us-east-1:111111111111:log-group:/app:log-stream:s",
            True,
        ),
        ("arn:aws:s3:::b.c", "arn:aws:s3:::bxc", False),  # regex characters are literal
        ("arn:aws:s3:::b(1)", "arn:aws:s3:::b(1)", True),
        (["arn:aws:s3:::a", "arn:aws:s3:::b/*"], "arn:aws:s3:::b/k", True),
    ],
)
def test_resource_matching(pattern: str | list[str], resource: str, expected: bool) -> None:
    assert allows("s3:GetObject", "s3:GetObject", resource_pattern=pattern, resource=resource) is expected


def test_not_resource() -> None:
    assert allows(
        "s3:*",
        "s3:GetObject",
        resource_pattern="arn:aws:s3:::secret/*",
        resource="arn:aws:s3:::b/k",
        not_resource=True,
    )
    assert not allows(
        "s3:*",
        "s3:GetObject",
        resource_pattern="arn:aws:s3:::secret/*",
        resource="arn:aws:s3:::secret/k",
        not_resource=True,
    )
    assert allows(
        "s3:*",
        "s3:ListAllMyBuckets",
        resource_pattern="arn:aws:s3:::secret/*",
        resource="*",
        not_resource=True,
    )


def test_deny_with_not_resource_and_not_action() -> None:
    admin = policy(
        allow("*", "*"), deny("s3:*", NotResource=["arn:aws:s3:::ok", "arn:aws:s3:::ok/*"], resource=None)
    )
    assert decide(request("s3:GetObject", "arn:aws:s3:::ok/k"), [admin]).allowed
    assert not decide(request("s3:GetObject", "arn:aws:s3:::other/k"), [admin]).allowed
    assert decide(request("ec2:RunInstances", "*"), [admin]).allowed


# --- policy variables in Resource ----------------------------------------------------------------

HOME = ["arn:aws:s3:::b/home/${aws:username}", "arn:aws:s3:::b/home/${aws:username}/*"]


def test_username_variable() -> None:
    assert allows("s3:*", "s3:GetObject", resource_pattern=HOME, resource="arn:aws:s3:::b/home/bob/x")
    assert allows("s3:*", "s3:GetObject", resource_pattern=HOME, resource="arn:aws:s3:::b/home/bob")
    assert not allows("s3:*", "s3:GetObject", resource_pattern=HOME, resource="arn:aws:s3:::b/home/alice/x")
    assert not allows("s3:*", "s3:GetObject", resource_pattern=HOME, resource="arn:aws:s3:::b/home/bobby")


def test_variables_are_literal_without_version_2012() -> None:
    literal = "arn:aws:s3:::b/home/${aws:username}/x"
    assert not allows(
        "s3:*", "s3:GetObject", resource_pattern=HOME, resource="arn:aws:s3:::b/home/bob/x", version=None
    )
    assert allows("s3:*", "s3:GetObject", resource_pattern=HOME[1], resource=literal, version=None)
    assert allows("s3:*", "s3:GetObject", resource_pattern=HOME[1], resource=literal, version="2008-10-17")


def test_tag_variable_and_default() -> None:
    pattern = "arn:aws:s3:::bucket-${aws:PrincipalTag/team, 'company-wide'}"
    assert allows(
        "s3:*",
        "s3:GetObject",
        resource_pattern=pattern,
        resource="arn:aws:s3:::bucket-yellow",
        tags={"team": "yellow"},
    )
    assert allows(
        "s3:*", "s3:GetObject", resource_pattern=pattern, resource="arn:aws:s3:::bucket-company-wide"
    )
    assert not allows("s3:*", "s3:GetObject", resource_pattern=pattern, resource="arn:aws:s3:::bucket-yellow")


def test_variable_values_are_not_wildcards() -> None:
    pattern = "arn:aws:s3:::b/${aws:PrincipalTag/dir}/*"
    assert not allows(
        "s3:*", "s3:GetObject", resource_pattern=pattern, resource="arn:aws:s3:::b/x/k", tags={"dir": "*"}
    )
    assert allows(
        "s3:*", "s3:GetObject", resource_pattern=pattern, resource="arn:aws:s3:::b/*/k", tags={"dir": "*"}
    )
    assert allows(
        "s3:*", "s3:GetObject", resource_pattern=pattern, resource="arn:aws:s3:::b/a.b/k", tags={"dir": "a.b"}
    )
    assert not allows(
        "s3:*", "s3:GetObject", resource_pattern=pattern, resource="arn:aws:s3:::b/aXb/k", tags={"dir": "a.b"}
    )


def test_special_character_variables_in_resources() -> None:
    pattern = "arn:aws:s3:::b/${*}${?}${$}"
    assert allows("s3:*", "s3:GetObject", resource_pattern=pattern, resource="arn:aws:s3:::b/*?$")
    assert not allows("s3:*", "s3:GetObject", resource_pattern=pattern, resource="arn:aws:s3:::b/ab$")


def test_unresolved_variable_matches_no_resource() -> None:
    pattern = "arn:aws:s3:::b/${aws:PrincipalTag/team}/*"
    assert not allows("s3:*", "s3:GetObject", resource_pattern=pattern, resource="arn:aws:s3:::b//k")
    assert not allows(
        "s3:*", "s3:GetObject", resource_pattern=[pattern, "arn:aws:s3:::x"], resource="arn:aws:s3:::b/x/k"
    )
    # ... and so a NotResource with it excludes nothing
    assert allows(
        "s3:*", "s3:GetObject", resource_pattern=pattern, resource="arn:aws:s3:::b/x/k", not_resource=True
    )


def test_userid_and_session_variables() -> None:
    statement = allow("s3:*", "arn:aws:s3:::b/${aws:userid}/*")
    alice = session("app", "alice")
    assert decide(
        request("s3:GetObject", f"arn:aws:s3:::b/{alice.user_id}/k", principal=alice), [policy(statement)]
    ).allowed
    statement = allow("s3:*", "arn:aws:s3:::b/${aws:PrincipalArn}")
    assert decide(
        request("s3:GetObject", f"arn:aws:s3:::b/{alice.role_arn}", principal=alice), [policy(statement)]
    ).allowed


def test_context_keys_as_variables() -> None:
    statement = allow("sqs:*", "arn:aws:sqs:${aws:RequestedRegion}:111111111111:q")
    parsed = policy(statement)
    region = {"aws:RequestedRegion": "eu-west-1"}
    good = request("sqs:SendMessage", "arn:aws:sqs:eu-west-1:111111111111:q", context=region)
    bad = request("sqs:SendMessage", "arn:aws:sqs:us-east-1:111111111111:q", context=region)
    assert decide(good, [parsed]).allowed
    assert not decide(bad, [parsed]).allowed


# --- the matchers against a reference implementation -----------------------------------------------


def reference_glob(pattern: str, value: str) -> bool:
    @functools.cache
    def match(i: int, j: int) -> bool:
        if i == len(pattern):
            return j == len(value)
        if pattern[i] == "*":
            return match(i + 1, j) or (j < len(value) and match(i, j + 1))
        if j < len(value) and pattern[i] in ("?", value[j]):
            return match(i + 1, j + 1)
        return False

    return match(0, 0)


def reference_arn(pattern: str, value: str) -> bool:
    parts, values = pattern.split(":", 5), value.split(":", 5)
    if len(parts) < 6:
        return reference_glob(pattern, value)
    if len(values) < 6:
        return False
    return all(reference_glob(p, v) for p, v in zip(parts, values, strict=True))


ALPHABET = st.sampled_from("ab:/*?.")
PATTERNS = st.text(ALPHABET, max_size=10)
VALUES = st.text(st.sampled_from("ab:/.*?"), max_size=10)


@settings(max_examples=800, deadline=None)
@given(PATTERNS, VALUES)
def test_glob_matches_reference(pattern: str, value: str) -> None:
    assert bool(glob_matcher(pattern)(value)) == reference_glob(pattern, value)
    assert bool(any_glob_matcher([pattern])(value)) == reference_glob(pattern, value)


@settings(max_examples=800, deadline=None)
@given(st.lists(PATTERNS, min_size=1, max_size=3), VALUES)
def test_any_glob_matches_reference(patterns: list[str], value: str) -> None:
    assert bool(any_glob_matcher(patterns)(value)) == any(reference_glob(p, value) for p in patterns)


ARN_PATTERNS = st.builds(
    lambda *parts: ":".join(parts),
    *([st.text(st.sampled_from("ab*?"), max_size=3)] * 5),
    st.text(st.sampled_from("ab:/*?"), max_size=6),
)
ARN_VALUES = st.builds(
    lambda *parts: ":".join(parts),
    *([st.text(st.sampled_from("ab"), max_size=3)] * 5),
    st.text(st.sampled_from("ab:/"), max_size=6),
)


@settings(max_examples=800, deadline=None)
@given(ARN_PATTERNS | PATTERNS, ARN_VALUES | VALUES)
def test_arn_matches_reference(pattern: str, value: str) -> None:
    expected = reference_arn(pattern, value)
    assert bool(arn_matcher(pattern)(value)) == expected
    assert bool(any_glob_matcher([pattern], arn=True)(value)) == expected
