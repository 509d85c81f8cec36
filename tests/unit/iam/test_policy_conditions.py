"""Condition operators, IfExists, set operators and missing keys, as the IAM user guide describes."""

from __future__ import annotations

from typing import Any

import pytest

from minicloud.iam.policy import PrincipalInfo
from minicloud.iam.policy.conditions import parse_date, parse_number

from .helpers import allow, decide, policy, request, user

MISSING = object()


def holds(
    operator: str,
    key: str,
    values: Any,
    context_value: Any = MISSING,
    *,
    principal: PrincipalInfo | None = None,
    version: str | None = "2012-10-17",
) -> bool:
    """Does ``{operator: {key: values}}`` hold for a request whose context has *context_value*?"""
    condition = {operator: {key: values}}
    context = {} if context_value is MISSING else {key: context_value}
    parsed = policy(allow("s3:GetObject", "*", Condition=condition), version=version)
    return decide(request(context=context, principal=principal), [parsed]).allowed


def holds_all(condition: dict[str, Any], context: dict[str, Any]) -> bool:
    parsed = policy(allow("s3:GetObject", "*", Condition=condition))
    return decide(request(context=context), [parsed]).allowed


K = "s3:prefix"

CASES = [
    # strings
    ("StringEquals", "home/", "home/", True),
    ("StringEquals", "home/", "Home/", False),
    ("StringEquals", ["a", "home/"], "home/", True),  # values are ORed
    ("StringEquals", "home/*", "home/x", False),  # no wildcards
    ("StringNotEquals", "home/", "other", True),
    ("StringNotEquals", "home/", "home/", False),
    ("StringNotEquals", ["a", "b"], "a", False),  # NOR: matching any value makes it false
    ("StringNotEquals", ["a", "b"], "c", True),
    ("StringEqualsIgnoreCase", "HOME/", "home/", True),
    ("StringEqualsIgnoreCase", "HOME/", "homer", False),
    ("StringNotEqualsIgnoreCase", "HOME/", "home/", False),
    ("StringNotEqualsIgnoreCase", "HOME/", "away/", True),
    ("StringLike", "home/*", "home/bob/x", True),
    ("StringLike", "home/*", "Home/bob", False),  # case-sensitive
    ("StringLike", "home/?", "home/a", True),
    ("StringLike", "home/?", "home/ab", False),
    ("StringLike", ["", "home/"], "", True),
    ("StringLike", "*", "", True),
    ("StringLike", "a*b*c", "aXbYc", True),
    ("StringLike", "a.b", "aXb", False),  # regex characters are literal
    ("StringLike", "a+", "aa", False),
    ("StringNotLike", "home/*", "tmp/x", True),
    ("StringNotLike", "home/*", "home/x", False),
    ("StringNotLike", ["home/*", "tmp/*"], "tmp/x", False),
    # numbers
    ("NumericEquals", "10", "10", True),
    ("NumericEquals", "10", "10.0", True),
    ("NumericEquals", 10, "10", True),
    ("NumericEquals", "10", "11", False),
    ("NumericEquals", "10", "ten", False),
    ("NumericNotEquals", "10", "11", True),
    ("NumericNotEquals", "10", "10", False),
    ("NumericLessThan", "10", "9.5", True),
    ("NumericLessThan", "10", "10", False),
    ("NumericLessThanEquals", "10", "10", True),
    ("NumericLessThanEquals", "10", "11", False),
    ("NumericGreaterThan", "10", "11", True),
    ("NumericGreaterThan", "10", "10", False),
    ("NumericGreaterThanEquals", "-1.5e1", "-15", True),
    ("NumericGreaterThanEquals", "10", "9", False),
    ("NumericLessThan", ["1", "100"], "50", True),
    # dates: ISO 8601 and epoch, in the policy and in the request
    ("DateEquals", "2020-01-01T00:00:00Z", "2020-01-01T00:00:00Z", True),
    ("DateEquals", "2020-01-01T00:00:00Z", "1577836800", True),
    ("DateEquals", "1577836800", "2020-01-01T01:00:00+01:00", True),
    ("DateEquals", "2020-01-01", "2020-01-01T00:00:00Z", True),
    ("DateNotEquals", "2020-01-01T00:00:00Z", "2020-01-02T00:00:00Z", True),
    ("DateNotEquals", "2020-01-01T00:00:00Z", "2020-01-01T00:00:00Z", False),
    ("DateLessThan", "2020-06-30T00:00:00Z", "2020-06-29T23:59:59Z", True),
    ("DateLessThan", "2020-06-30T00:00:00Z", "2020-06-30T00:00:00Z", False),
    ("DateLessThanEquals", "2020-06-30T00:00:00Z", "2020-06-30T00:00:00Z", True),
    ("DateGreaterThan", "2020-01-01T00:00:01Z", "2021-01-01T00:00:00.123Z", True),
    ("DateGreaterThan", "2020-01-01T00:00:01Z", "2019-12-31T23:59:59Z", False),
    ("DateGreaterThanEquals", "2020-01-01T00:00:00-05:00", "2020-01-01T05:00:00Z", True),
    ("DateGreaterThan", "2020-01-01T00:00:00Z", "not a date", False),
    ("DateGreaterThan", "not a date", "2020-01-01T00:00:00Z", False),
    # Bool
    ("Bool", "true", "true", True),
    ("Bool", "true", "TRUE", True),
    ("Bool", True, "true", True),
    ("Bool", "false", "true", False),
    ("Bool", "false", "false", True),
    # BinaryEquals compares bytes; request values are base64 too
    ("BinaryEquals", "QmluYXJ5VmFsdWVJbkJhc2U2NA==", "QmluYXJ5VmFsdWVJbkJhc2U2NA==", True),
    ("BinaryEquals", "QmluYXJ5VmFsdWVJbkJhc2U2NA==", "QmluYXJ5", False),
    ("BinaryEquals", "QmluYXJ5", "Binary", True),  # a raw (non-base64) request value compares as bytes
    # IP addresses
    ("IpAddress", "203.0.113.0/24", "203.0.113.7", True),
    ("IpAddress", "203.0.113.0/24", "203.0.114.7", False),
    ("IpAddress", "203.0.113.7", "203.0.113.7", True),  # no prefix: /32
    ("IpAddress", "203.0.113.7", "203.0.113.8", False),
    ("IpAddress", "2001:DB8:1234:5678::/64", "2001:db8:1234:5678::1", True),
    ("IpAddress", "2001:DB8:1234:5678::/64", "2001:db8:1234:5679::1", False),
    ("IpAddress", ["203.0.113.0/24", "2001:DB8::/32"], "2001:db8::9", True),
    ("IpAddress", "0.0.0.0/0", "::1", False),  # families never mix
    ("IpAddress", "203.0.113.0/24", "not-an-ip", False),
    ("NotIpAddress", "203.0.113.0/24", "198.51.100.1", True),
    ("NotIpAddress", "203.0.113.0/24", "203.0.113.1", False),
    # ARNs: each of the six segments is matched separately
    (
        "ArnEquals",
        "arn:aws:sns:us-east-1:111111111111:topic",
        "arn:aws:sns:us-east-1:111111111111:topic",
        True,
    ),
    ("ArnEquals", "arn:aws:sns:*:111111111111:topic", "arn:aws:sns:eu-west-1:111111111111:topic", True),
    ("ArnLike", "arn:aws:sns:*:111111111111:*", "arn:aws:sns:eu-west-1:111111111111:a:b", True),
    (
        "ArnLike",
        "arn:aws:someservice:*:111111111111:finance/*",
        "arn:aws:someservice:us-east-2:999999999999:store/abc:111111111111:finance/document.txt",
        False,
    ),
    (
        "StringLike",
        "arn:aws:someservice:*:111111111111:finance/*",
        "arn:aws:someservice:us-east-2:999999999999:store/abc:111111111111:finance/document.txt",
        True,
    ),
    ("ArnLike", "arn:aws:s3:::bucket/*", "arn:aws:s3:::bucket/a/b", True),
    ("ArnLike", "arn:aws:s3:::Bucket/*", "arn:aws:s3:::bucket/a", False),  # case-sensitive
    ("ArnLike", "arn:aws:iam::111111111111:role/?", "arn:aws:iam::111111111111:role/a", True),
    ("ArnNotEquals", "arn:aws:sns:*:111111111111:topic", "arn:aws:sns:us-east-1:222222222222:topic", True),
    ("ArnNotLike", "arn:aws:sns:*:111111111111:topic", "arn:aws:sns:us-east-1:111111111111:topic", False),
]


@pytest.mark.parametrize(("operator", "values", "context_value", "expected"), CASES)
def test_operator(operator: str, values: Any, context_value: str, expected: bool) -> None:
    assert holds(operator, K, values, context_value) is expected


POSITIVE = [
    "StringEquals",
    "StringEqualsIgnoreCase",
    "StringLike",
    "NumericEquals",
    "NumericLessThan",
    "DateEquals",
    "DateGreaterThan",
    "Bool",
    "BinaryEquals",
    "IpAddress",
    "ArnEquals",
    "ArnLike",
]
NEGATED = [
    "StringNotEquals",
    "StringNotEqualsIgnoreCase",
    "StringNotLike",
    "NumericNotEquals",
    "DateNotEquals",
    "NotIpAddress",
    "ArnNotEquals",
    "ArnNotLike",
]
VALUE_FOR = {
    "String": "x",
    "Numeric": "1",
    "Date": "2020-01-01T00:00:00Z",
    "Bool": "true",
    "Binary": "eA==",
    "IpAddress": "10.0.0.0/8",
    "NotIpAddress": "10.0.0.0/8",
    "Arn": "arn:aws:s3:::b",
}


def sample_value(operator: str) -> str:
    return next(value for prefix, value in VALUE_FOR.items() if operator.startswith(prefix))


@pytest.mark.parametrize("operator", POSITIVE)
def test_missing_key_makes_positive_operators_false(operator: str) -> None:
    assert holds(operator, K, sample_value(operator)) is False


@pytest.mark.parametrize("operator", NEGATED)
def test_missing_key_makes_negated_operators_true(operator: str) -> None:
    assert holds(operator, K, sample_value(operator)) is True


@pytest.mark.parametrize("operator", POSITIVE + NEGATED)
def test_if_exists_makes_a_missing_key_true(operator: str) -> None:
    assert holds(operator + "IfExists", K, sample_value(operator)) is True


@pytest.mark.parametrize(("operator", "values", "context_value", "expected"), CASES)
def test_if_exists_evaluates_a_present_key_normally(
    operator: str, values: Any, context_value: str, expected: bool
) -> None:
    assert holds(operator + "IfExists", K, values, context_value) is expected


def test_if_exists_examples_from_the_user_guide() -> None:
    types = ["t1.*", "t2.*", "m3.*"]
    assert holds("StringLikeIfExists", "ec2:InstanceType", types) is True
    assert holds("StringLikeIfExists", "ec2:InstanceType", types, "t2.micro") is True
    assert holds("StringLikeIfExists", "ec2:InstanceType", types, "m5.large") is False
    assert holds("StringLike", "ec2:InstanceType", types) is False


@pytest.mark.parametrize(
    ("values", "present", "expected"),
    [
        ("true", False, True),
        ("true", True, False),
        ("false", True, True),
        ("false", False, False),
        (True, False, True),
        (["true", "false"], True, True),
    ],
)
def test_null(values: Any, present: bool, expected: bool) -> None:
    context_value: Any = "2024-01-01T00:00:00Z" if present else MISSING
    assert holds("Null", "aws:TokenIssueTime", values, context_value) is expected


def test_null_treats_an_empty_list_as_absent() -> None:
    assert holds("Null", "aws:TagKeys", "true", []) is True


# --- set operators -----------------------------------------------------------------------------

ALLOWED_ATTRIBUTES = ["PostDateTime", "Message", "Tags"]
SET_CASES = [
    # ForAllValues: every request value must match some policy value; vacuous truth when absent
    ("ForAllValues:StringEquals", ["PostDateTime", "Message"], True),
    ("ForAllValues:StringEquals", ["PostDateTime", "UserName"], False),
    ("ForAllValues:StringEquals", MISSING, True),
    ("ForAllValues:StringEquals", [], True),
    # ForAnyValue: at least one request value must match; false when absent
    ("ForAnyValue:StringEquals", ["UserName", "Message"], True),
    ("ForAnyValue:StringEquals", ["UserName"], False),
    ("ForAnyValue:StringEquals", MISSING, False),
    ("ForAnyValue:StringEquals", [], False),
    # negated: ForAllValues -> no request value matches any policy value
    ("ForAllValues:StringNotEquals", ["UserName", "ID"], True),
    ("ForAllValues:StringNotEquals", ["UserName", "Message"], False),
    ("ForAllValues:StringNotEquals", MISSING, True),
    # negated: ForAnyValue -> some request value matches none of the policy values
    ("ForAnyValue:StringNotEquals", ["UserName", "Message"], True),
    ("ForAnyValue:StringNotEquals", ["Message", "Tags"], False),
    ("ForAnyValue:StringNotEquals", MISSING, False),
    ("ForAnyValue:StringNotEquals", [], False),
    # IfExists on a set operator
    ("ForAnyValue:StringEqualsIfExists", MISSING, True),
    ("ForAnyValue:StringEqualsIfExists", ["UserName"], False),
    ("ForAllValues:StringEqualsIfExists", ["UserName"], False),
    # other base operators
    ("ForAnyValue:StringLike", ["Post*"], False),  # the wildcard is in the request, not the policy
    ("ForAllValues:StringLike", ["Message", "Tags"], True),
    ("ForAllValues:StringEqualsIgnoreCase", ["message", "TAGS"], True),
]


@pytest.mark.parametrize(("operator", "context_value", "expected"), SET_CASES)
def test_set_operators(operator: str, context_value: Any, expected: bool) -> None:
    assert holds(operator, "dynamodb:Attributes", ALLOWED_ATTRIBUTES, context_value) is expected


def test_for_any_value_like() -> None:
    assert holds("ForAnyValue:StringLike", "aws:TagKeys", ["env*", "team"], ["owner", "environment"]) is True
    assert holds("ForAnyValue:StringLike", "aws:TagKeys", ["env*", "team"], ["owner"]) is False
    assert holds("ForAllValues:StringLike", "aws:TagKeys", ["env*", "team"], ["env", "team"]) is True
    assert holds("ForAnyValue:NumericGreaterThan", "s3:sizes", "10", ["1", "20"]) is True
    assert holds("ForAllValues:NumericGreaterThan", "s3:sizes", "10", ["1", "20"]) is False
    assert holds("ForAnyValue:IpAddress", "aws:SourceIps", "10.0.0.0/8", ["192.0.2.1", "10.1.1.1"]) is True


def test_unqualified_operator_on_a_multivalued_key_matches_any_value() -> None:
    assert holds("StringEquals", "aws:TagKeys", "env", ["team", "env"]) is True
    assert holds("StringEquals", "aws:TagKeys", "env", ["team", "owner"]) is False
    assert holds("StringNotEquals", "aws:TagKeys", "env", ["team", "env"]) is False
    assert holds("StringNotEquals", "aws:TagKeys", "env", ["team", "owner"]) is True


# --- combining conditions ----------------------------------------------------------------------


def test_keys_and_operators_are_anded_values_ored() -> None:
    condition = {
        "StringEquals": {"aws:PrincipalTag/department": ["finance", "hr"], "aws:SourceVpc": "vpc-1"},
        "IpAddress": {"aws:SourceIp": "10.0.0.0/8"},
    }
    good = {"aws:PrincipalTag/department": "hr", "aws:SourceVpc": "vpc-1", "aws:SourceIp": "10.1.2.3"}
    assert holds_all(condition, good)
    assert not holds_all(condition, {**good, "aws:SourceIp": "192.0.2.1"})
    assert not holds_all(condition, {**good, "aws:PrincipalTag/department": "it"})
    assert not holds_all(condition, {k: v for k, v in good.items() if k != "aws:SourceVpc"})


def test_empty_condition_block_always_holds() -> None:
    assert holds_all({}, {})
    assert holds_all({"StringEquals": {}}, {})


def test_condition_keys_are_case_insensitive() -> None:
    assert holds("StringEquals", "AWS:SourceVpc", "vpc-1", MISSING) is False
    parsed = policy(allow("s3:GetObject", "*", Condition={"StringEquals": {"AWS:sourcevpc": "vpc-1"}}))
    assert decide(request(context={"aws:SourceVPC": "vpc-1"}), [parsed]).allowed
    assert not decide(request(context={"aws:SourceVPC": "VPC-1"}), [parsed]).allowed  # values are not


def test_operator_names_and_qualifiers_are_case_insensitive() -> None:
    assert holds("forAnyValue:stringequals", "aws:TagKeys", "a", ["a"]) is True
    assert holds("stringLIKEifexists", "aws:TagKeys", "a*") is True


def test_context_values_may_be_bools_and_numbers() -> None:
    assert holds("Bool", "aws:SecureTransport", "true", True) is True
    assert holds("NumericEquals", "s3:max-keys", "10", 10) is True


# --- keys derived from the principal and policy variables in values ----------------------------


def test_principal_keys_come_from_the_principal() -> None:
    bob = user("bob", tags={"Team": "blue"})
    assert holds("StringEquals", "aws:username", "bob", principal=bob) is True
    assert holds("StringEquals", "aws:PrincipalArn", "arn:aws:iam::111111111111:user/bob", principal=bob)
    assert holds("StringEquals", "aws:PrincipalAccount", "111111111111", principal=bob)
    assert holds("StringEquals", "aws:PrincipalType", "User", principal=bob)
    assert holds("StringEquals", "aws:PrincipalTag/team", "blue", principal=bob)  # tag keys: any case
    assert holds("StringEquals", "aws:PrincipalTag/Other", "blue", principal=bob) is False
    assert holds("Null", "aws:PrincipalTag/Other", "true", principal=bob) is True


def test_variable_in_condition_value() -> None:
    bob = user("bob")
    assert holds("StringLike", "s3:prefix", "home/${aws:username}/*", "home/bob/x", principal=bob)
    assert not holds("StringLike", "s3:prefix", "home/${aws:username}/*", "home/alice/x", principal=bob)
    assert holds("StringEquals", "s3:prefix", "${aws:username}", "bob", principal=bob)
    assert holds("StringEqualsIgnoreCase", "s3:prefix", "${aws:username}", "BOB", principal=bob)
    assert holds(
        "ArnLike",
        "aws:SourceArn",
        "arn:aws:sns:*:111111111111:${aws:username}",
        "arn:aws:sns:us-east-1:111111111111:bob",
        principal=bob,
    )
    assert holds(
        "Bool", "aws:SecureTransport", "${aws:MultiFactorAuthPresent, 'true'}", "true", principal=bob
    )


def test_variable_values_are_literal_not_wildcards() -> None:
    star = user("bob", tags={"team": "*"})
    assert not holds("StringLike", "s3:prefix", "${aws:PrincipalTag/team}", "anything", principal=star)
    assert holds("StringLike", "s3:prefix", "${aws:PrincipalTag/team}", "*", principal=star)


def test_special_character_variables() -> None:
    assert holds("StringEquals", "s3:prefix", "a${*}b${?}c${$}", "a*b?c$")
    assert holds("StringLike", "s3:prefix", "a${*}", "a*")
    assert not holds("StringLike", "s3:prefix", "a${*}", "ab")


def test_unresolved_variable_matches_nothing_and_negations_hold() -> None:
    bob = user("bob")
    assert not holds("StringEquals", "s3:prefix", "${aws:PrincipalTag/team}", "x", principal=bob)
    assert holds("StringNotEquals", "s3:prefix", "${aws:PrincipalTag/team}", "x", principal=bob)
    assert holds("StringNotLike", "s3:prefix", ["${aws:PrincipalTag/team}", "y*"], "x", principal=bob)
    assert not holds("StringNotLike", "s3:prefix", ["${aws:PrincipalTag/team}", "x*"], "x", principal=bob)


def test_variable_default_value() -> None:
    bob = user("bob")
    assert holds(
        "StringEquals", "s3:prefix", "${aws:PrincipalTag/team, 'company-wide'}", "company-wide", principal=bob
    )
    tagged = user("bob", tags={"team": "yellow"})
    assert holds(
        "StringEquals", "s3:prefix", "${aws:PrincipalTag/team, 'company-wide'}", "yellow", principal=tagged
    )


def test_variables_are_literal_before_version_2012() -> None:
    bob = user("bob")
    assert not holds("StringEquals", "s3:prefix", "${aws:username}", "bob", principal=bob, version=None)
    assert holds(
        "StringEquals", "s3:prefix", "${aws:username}", "${aws:username}", principal=bob, version=None
    )
    assert holds(
        "StringEquals", "s3:prefix", "${aws:username}", "${aws:username}", principal=bob, version="2008-10-17"
    )


def test_variables_are_not_substituted_for_numeric_operators() -> None:
    assert not holds("NumericEquals", "s3:max-keys", "${aws:username}", "1")


def test_multivalued_keys_cannot_be_variables() -> None:
    parsed = policy(allow("s3:GetObject", "*", Condition={"StringEquals": {"s3:prefix": "${aws:TagKeys}"}}))
    assert not decide(request(context={"aws:TagKeys": ["a", "b"], "s3:prefix": "a"}), [parsed]).allowed
    assert decide(request(context={"aws:TagKeys": ["a"], "s3:prefix": "a"}), [parsed]).allowed


# --- value parsers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2020-01-01T00:00:00Z", 1577836800.0),
        ("2020-01-01T00:00:00.5Z", 1577836800.5),
        ("2020-01-01T00:00Z", 1577836800.0),
        ("2020-01-01T00:00:00", 1577836800.0),
        ("2020-01-01T02:00:00+02:00", 1577836800.0),
        ("2020-01-01T00:00:00-0130", 1577842200.0),
        ("2020-01-01", 1577836800.0),
        ("2020-01", 1577836800.0),
        ("2020", 1577836800.0),
        ("20200101T000000Z", 1577836800.0),
        ("1577836800", 1577836800.0),
        ("1577836800.25", 1577836800.25),
        ("2020-13-01", None),
        ("2020-01-01T25:00:00Z", None),
        ("2020-01-01T00:00:00+25:00", None),
        ("yesterday", None),
        ("", None),
    ],
)
def test_parse_date(text: str, expected: float | None) -> None:
    assert parse_date(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10", 10.0),
        ("-1.5", -1.5),
        (".5", 0.5),
        ("1e3", 1000.0),
        (" 7 ", 7.0),
        ("1_000", None),
        ("nan", None),
        ("inf", None),
        ("0x10", None),
        ("", None),
    ],
)
def test_parse_number(text: str, expected: float | None) -> None:
    assert parse_number(text) == expected
