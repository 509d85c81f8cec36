"""Parsing and validation: what IAM accepts, what it refuses and with which sentence."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minicloud.aws.errors import ClientError
from minicloud.iam.policy import MalformedPolicyDocument, PolicyKind, parse_policy, policy_size

from .helpers import allow, doc

IDENTITY = PolicyKind.IDENTITY
RESOURCE = PolicyKind.RESOURCE
TRUST = PolicyKind.TRUST
SESSION = PolicyKind.SESSION
BOUNDARY = PolicyKind.BOUNDARY

SYNTAX = "Syntax errors in policy."
PREFACE = "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc."
LEGACY = "The policy failed legacy parsing"

TRUST_OK: dict[str, Any] = {
    "Effect": "Allow",
    "Principal": {"AWS": "111111111111"},
    "Action": "sts:AssumeRole",
}
PUBLIC: dict[str, Any] = {"Principal": "*"}


def stmt_doc(**statement: Any) -> str:
    return doc(statement)


def bad(text: str, kind: PolicyKind, message: str) -> tuple[str, PolicyKind, str]:
    return (text, kind, message)


BAD_POLICIES = [
    # JSON and top level
    bad("not json", IDENTITY, SYNTAX),
    bad("not json", TRUST, "This policy contains invalid Json"),
    bad("", RESOURCE, SYNTAX),
    bad("[]", IDENTITY, SYNTAX),
    bad('"text"', IDENTITY, SYNTAX),
    bad('{"Version": "2012-10-17"}', IDENTITY, SYNTAX),
    bad('{"Version": "2012-10-17", "Statement": [], "Extra": 1}', IDENTITY, SYNTAX),
    bad('{"Version": "2012-10-18", "Statement": []}', IDENTITY, SYNTAX),
    bad('{"Version": 2012, "Statement": []}', IDENTITY, SYNTAX),
    bad('{"Id": 5, "Statement": []}', RESOURCE, SYNTAX),
    bad('{"Id": null, "Statement": []}', RESOURCE, SYNTAX),
    bad('{"Version": null, "Statement": []}', IDENTITY, SYNTAX),
    bad(
        '{"Statement": [{"Sid": null, "Effect": "Allow", "Action": "*", "Resource": "*"}]}', IDENTITY, SYNTAX
    ),
    bad(
        '{"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": null}]}',
        IDENTITY,
        SYNTAX,
    ),
    bad('{"Statement": [], "Statement": []}', IDENTITY, SYNTAX),
    bad(
        '{"Statement": [{"Effect": "Allow", "Effect": "Deny", "Action": "*", "Resource": "*"}]}',
        IDENTITY,
        SYNTAX,
    ),
    bad(
        '{"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*",'
        ' "Condition": {"NumericEquals": {"s3:max-keys": NaN}}}]}',
        IDENTITY,
        SYNTAX,
    ),
    bad('{"Statement": ["s3:*"]}', IDENTITY, SYNTAX),
    bad('{"Statement": "s3:*"}', IDENTITY, SYNTAX),
    bad("[" * 100_000, IDENTITY, SYNTAX),
    # statement elements
    bad(stmt_doc(Effect="Allow", Action="*", Resources="*"), IDENTITY, SYNTAX),
    bad(stmt_doc(Effect="Allow", Action="*", NotAction="s3:*", Resource="*"), IDENTITY, SYNTAX),
    bad(stmt_doc(Effect="Allow", Action="*", Resource="*", NotResource="*"), IDENTITY, SYNTAX),
    bad(
        stmt_doc(Effect="Allow", Principal="*", NotPrincipal="*", Action="*", Resource="*"), RESOURCE, SYNTAX
    ),
    bad(stmt_doc(Action="*", Resource="*"), IDENTITY, "Missing required field Effect"),
    bad(stmt_doc(Effect="Permit", Action="*", Resource="*"), IDENTITY, "Invalid effect: Permit"),
    bad(stmt_doc(Effect=1, Action="*", Resource="*"), IDENTITY, SYNTAX),
    bad(stmt_doc(Sid=5, Effect="Allow", Action="*", Resource="*"), IDENTITY, SYNTAX),
    # Principal where it does not belong, or missing where it must be
    bad(
        stmt_doc(Effect="Allow", Principal="*", Action="*", Resource="*"),
        IDENTITY,
        "Policy document should not specify a principal.",
    ),
    bad(
        stmt_doc(Effect="Deny", NotPrincipal={"AWS": "111111111111"}, Action="*", Resource="*"),
        SESSION,
        "Policy document should not specify a principal.",
    ),
    bad(
        stmt_doc(Effect="Allow", Principal={"AWS": "*"}, Action="*", Resource="*"),
        BOUNDARY,
        "Policy document should not specify a principal.",
    ),
    bad(stmt_doc(Effect="Allow", Action="sts:AssumeRole"), TRUST, "Missing required field Principal"),
    bad(
        stmt_doc(Effect="Allow", Action="s3:GetObject", Resource="*"),
        RESOURCE,
        "Missing required field Principal",
    ),
    # Action
    bad(stmt_doc(Effect="Allow", Resource="*"), IDENTITY, "Policy statement must contain actions."),
    bad(
        stmt_doc(Effect="Allow", Action=[], Resource="*"), IDENTITY, "Policy statement must contain actions."
    ),
    bad(stmt_doc(Effect="Allow", Action=5, Resource="*"), IDENTITY, SYNTAX),
    bad(stmt_doc(Effect="Allow", Action=["s3:GetObject", 5], Resource="*"), IDENTITY, SYNTAX),
    bad(stmt_doc(Effect="Allow", Action={"s3": "GetObject"}, Resource="*"), IDENTITY, SYNTAX),
    bad(stmt_doc(Effect="Allow", Action="GetObject", Resource="*"), IDENTITY, PREFACE),
    bad(stmt_doc(Effect="Allow", Action=":GetObject", Resource="*"), IDENTITY, PREFACE),
    bad(
        stmt_doc(Effect="Allow", Action="s3:Get:Object", Resource="*"),
        IDENTITY,
        "Actions/Condition can contain only one colon.",
    ),
    bad(
        stmt_doc(Effect="Allow", Action="*:Untag*", Resource="*"),
        IDENTITY,
        "Action vendors (e.g., aws, ec2, etc.) must not contain wildcards",
    ),
    bad(stmt_doc(Effect="Allow", Action="s 3:GetObject", Resource="*"), IDENTITY, "Vendor s 3 is not valid"),
    # Resource
    bad(stmt_doc(Effect="Allow", Action="s3:*"), IDENTITY, "Policy statement must contain resources."),
    bad(
        stmt_doc(Effect="Allow", Action="s3:*", Resource=[]),
        IDENTITY,
        "Policy statement must contain resources.",
    ),
    bad(stmt_doc(Effect="Allow", Action="s3:*", Resource=None), IDENTITY, SYNTAX),
    bad(
        stmt_doc(Effect="Allow", Action="s3:*", Resource="my-bucket"),
        IDENTITY,
        'Resource my-bucket must be in ARN format or "*".',
    ),
    bad(
        stmt_doc(Effect="Allow", Action="s3:*", Resource=""),
        IDENTITY,
        'Resource  must be in ARN format or "*".',
    ),
    bad(stmt_doc(Effect="Allow", Action="s3:*", Resource="arn:aws:s3"), IDENTITY, LEGACY),
    bad(stmt_doc(Effect="Allow", Action="iam:*", Resource="arn:aws:iam:79...34:user/dan"), IDENTITY, LEGACY),
    bad(
        stmt_doc(Effect="Allow", Action="sts:AssumeRole", Resource="arn:aws:iam::xxx:role/bastion"),
        IDENTITY,
        LEGACY,
    ),
    bad(
        stmt_doc(Effect="Allow", Action="s3:*", Resource="arn:${ARN_PARTITION}:s3:::b"),
        IDENTITY,
        'Partition "${ARN_PARTITION}" is not valid for resource "arn:${ARN_PARTITION}:s3:::b".',
    ),
    bad(
        stmt_doc(Effect="Allow", Action="s3:*", Resource="arn:aws::us-east-1:111111111111:x"),
        IDENTITY,
        "Resource vendor must be fully qualified and cannot contain regexes.",
    ),
    bad(
        stmt_doc(Effect="Allow", Action="s3:*", Resource="arn:aws:s*:::bucket"),
        IDENTITY,
        "Resource vendor must be fully qualified and cannot contain regexes.",
    ),
    bad(
        stmt_doc(Effect="Allow", Action="iam:*", Resource="arn:aws:iam:us-east-1:111111111111:user/x"),
        IDENTITY,
        "IAM resource arn:aws:iam:us-east-1:111111111111:user/x cannot contain region information.",
    ),
    # Condition
    bad(
        stmt_doc(Effect="Allow", Action="*", Resource="*", Condition={"StringEqualz": {"aws:username": "a"}}),
        IDENTITY,
        "Invalid Condition type : StringEqualz.",
    ),
    bad(
        stmt_doc(
            Effect="Allow", Action="*", Resource="*", Condition={"NullIfExists": {"aws:username": "true"}}
        ),
        IDENTITY,
        "Invalid Condition type : NullIfExists.",
    ),
    bad(
        stmt_doc(
            Effect="Allow", Action="*", Resource="*", Condition={"ForSomeValues:StringLike": {"a:b": "x"}}
        ),
        IDENTITY,
        "Invalid Condition type : ForSomeValues:StringLike.",
    ),
    bad(
        stmt_doc(Effect="Allow", Action="*", Resource="*", Condition={"StringEquals": {"prefix": "home/"}}),
        IDENTITY,
        PREFACE,
    ),
    bad(stmt_doc(Effect="Allow", Action="*", Resource="*", Condition=["StringEquals"]), IDENTITY, SYNTAX),
    bad(
        stmt_doc(Effect="Allow", Action="*", Resource="*", Condition={"StringEquals": "aws:username"}),
        IDENTITY,
        SYNTAX,
    ),
    bad(
        stmt_doc(
            Effect="Allow", Action="*", Resource="*", Condition={"StringEquals": {"aws:username": {"a": 1}}}
        ),
        IDENTITY,
        SYNTAX,
    ),
    bad(
        stmt_doc(
            Effect="Allow", Action="*", Resource="*", Condition={"StringEquals": {"aws:username": None}}
        ),
        IDENTITY,
        SYNTAX,
    ),
    bad(
        stmt_doc(
            Effect="Allow", Action="*", Resource="*", Condition={"StringEquals": {"aws:username": [["a"]]}}
        ),
        IDENTITY,
        SYNTAX,
    ),
    # Sid
    bad(
        doc(allow(Sid="Same"), allow(Sid="Same")),
        IDENTITY,
        "Statement IDs (SID) in a single policy must be unique.",
    ),
    bad(
        doc(allow(Sid="my-sid")),
        IDENTITY,
        "Statement IDs (SID) must be alpha-numeric. Check that your input satisfies the regular expression "
        "[0-9A-Za-z]*",
    ),
    # trust policies
    bad(doc({**TRUST_OK, "Resource": "*"}), TRUST, "Has prohibited field Resource"),
    bad(doc({**TRUST_OK, "NotResource": "*"}), TRUST, "Has prohibited field NotResource"),
    bad(
        doc({"Effect": "Deny", "NotPrincipal": {"AWS": "111111111111"}, "Action": "sts:AssumeRole"}),
        TRUST,
        "Has prohibited field NotPrincipal",
    ),
    bad(
        doc({**TRUST_OK, "Action": "s3:GetObject"}),
        TRUST,
        "AssumeRole policy may only specify STS AssumeRole actions.",
    ),
    bad(
        doc({**TRUST_OK, "Sid": "a b"}),
        TRUST,
        "Statement IDs (SID) must be alpha-numeric. Check that your input satisfies the regular expression "
        "[0-9A-Za-z]*",
    ),
    # principals
    bad(
        doc({**TRUST_OK, "Principal": "arn:aws:iam::111111111111:root"}), TRUST, "Invalid principal in policy"
    ),
    bad(doc({**TRUST_OK, "Principal": {}}), TRUST, "Invalid principal in policy"),
    bad(doc({**TRUST_OK, "Principal": {"Group": "x"}}), TRUST, "Invalid principal in policy"),
    bad(doc({**TRUST_OK, "Principal": {"AWS": []}}), TRUST, "Invalid principal in policy"),
    bad(doc({**TRUST_OK, "Principal": {"AWS": 5}}), TRUST, SYNTAX),
    bad(
        doc({**TRUST_OK, "Principal": {"AWS": "arn:aws:iam::111111111111:user/*"}}),
        TRUST,
        'Invalid principal in policy: "AWS":"arn:aws:iam::111111111111:user/*"',
    ),
    bad(doc({**TRUST_OK, "Principal": {"AWS": "bob"}}), TRUST, 'Invalid principal in policy: "AWS":"bob"'),
    bad(
        doc({**TRUST_OK, "Principal": {"AWS": "11111111111"}}),
        TRUST,
        'Invalid principal in policy: "AWS":"11111111111"',
    ),
    bad(
        doc({**TRUST_OK, "Principal": {"AWS": "arn:aws:iam::111111111111:group/admins"}}),
        TRUST,
        'Invalid principal in policy: "AWS":"arn:aws:iam::111111111111:group/admins"',
    ),
    bad(doc({**TRUST_OK, "Principal": {"Service": ""}}), TRUST, 'Invalid principal in policy: "Service":""'),
    bad(
        doc({**TRUST_OK, "Principal": {"Service": "*.amazonaws.com"}}),
        TRUST,
        'Invalid principal in policy: "Service":"*.amazonaws.com"',
    ),
]


@pytest.mark.parametrize(("text", "kind", "message"), BAD_POLICIES)
def test_rejected_with_aws_message(text: str, kind: PolicyKind, message: str) -> None:
    with pytest.raises(MalformedPolicyDocument) as raised:
        parse_policy(text, kind)
    assert raised.value.message == message
    assert raised.value.code == "MalformedPolicyDocument"
    assert raised.value.status == 400
    assert isinstance(raised.value, ClientError)


def test_non_string_document_is_a_syntax_error() -> None:
    with pytest.raises(MalformedPolicyDocument, match="Syntax errors"):
        parse_policy(b'{"Statement": []}', IDENTITY)  # type: ignore[arg-type]


GOOD_POLICIES = [
    (doc(allow("s3:GetObject", "arn:aws:s3:::b/*")), IDENTITY),
    ('{"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}}', IDENTITY),  # object, no Version
    (doc(allow(), version="2008-10-17"), IDENTITY),
    ('{"Version": "2012-10-17", "Id": "my policy", "Statement": []}', IDENTITY),
    (doc({"Effect": "allow", "Action": "*", "Resource": "*"}), IDENTITY),
    (
        doc(
            allow(
                ["s3:*", "iam:Get*User?", "ec2:Describe*"],
                ["arn:aws:s3:::b", "arn:aws:s3:::b/${aws:username}/*"],
            )
        ),
        IDENTITY,
    ),
    (doc(allow("iam:GetPolicy", "arn:aws:iam::aws:policy/ReadOnlyAccess")), IDENTITY),
    (doc(allow("ec2:RunInstances", "arn:aws:ec2:us-east-1::image/ami-12345678")), IDENTITY),
    (doc(allow("sts:AssumeRole", "arn:aws:iam::*:role/x")), IDENTITY),
    (doc(allow("iam:*", "arn:aws:iam::${aws:PrincipalAccount}:user/x")), IDENTITY),
    (
        doc(
            allow(
                "*",
                "*",
                Condition={
                    "StringEquals": {
                        "aws:PrincipalTag/team": ["a", "b"],
                        "aws:ResourceTag/aws:cloudformation:stack-name": "x",
                    },
                    "StringEqualsIfExists": {"ec2:InstanceType": "t3.micro"},
                    "ForAnyValue:StringLike": {"aws:TagKeys": "env*"},
                    "ForAllValues:StringEquals": {"aws:TagKeys": ["env", "team"]},
                    "NumericLessThanEquals": {"s3:max-keys": 10},
                    "DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"},
                    "Bool": {"aws:SecureTransport": True},
                    "IpAddress": {"aws:SourceIp": ["203.0.113.0/24", "2001:DB8:1234:5678::/64"]},
                    "ArnLike": {"aws:SourceArn": "arn:aws:sns:*:111111111111:topic"},
                    "BinaryEquals": {"aws:Key": "QmluYXJ5VmFsdWVJbkJhc2U2NA=="},
                    "Null": {"aws:TokenIssueTime": "true"},
                    "stringequals": {"aws:username": "bob"},
                },
            )
        ),
        IDENTITY,
    ),
    (doc(allow(Sid="A1"), allow(Sid="B2"), allow(Sid="")), IDENTITY),
    (doc({**TRUST_OK, "Principal": {"Service": ["ec2.amazonaws.com", "lambda.amazonaws.com"]}}), TRUST),
    (
        doc(
            {
                **TRUST_OK,
                "Principal": {"Federated": "cognito-identity.amazonaws.com"},
                "Action": ["sts:AssumeRoleWithWebIdentity", "sts:TagSession"],
            }
        ),
        TRUST,
    ),
    (
        doc(
            {
                **TRUST_OK,
                "Principal": {
                    "AWS": [
                        "arn:aws:iam::111111111111:root",
                        "AIDAJQABLZS4A3QDU576Q",
                        "arn:aws:sts::111111111111:assumed-role/r/s",
                    ]
                },
            }
        ),
        TRUST,
    ),
    (doc({**PUBLIC, "Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}), RESOURCE),
    (
        doc(
            {
                "Principal": {
                    "CanonicalUser": "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"
                },
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": "arn:aws:s3:::b/*",
            }
        ),
        RESOURCE,
    ),
    (
        doc(
            {
                "Sid": "Public Read-Only",
                "Principal": {"AWS": "*"},
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": "arn:aws:s3:::b/*",
            },
            {
                "Sid": "Public Read-Only",
                "NotPrincipal": {"AWS": "111111111111"},
                "Effect": "Deny",
                "Action": "s3:DeleteObject",
                "Resource": "arn:aws:s3:::b/*",
            },
        ),
        RESOURCE,
    ),
    (doc(allow("s3:GetObject", "arn:aws:s3:::b/*")), SESSION),
    (doc(allow("s3:*", "*")), BOUNDARY),
]


@pytest.mark.parametrize(("text", "kind"), GOOD_POLICIES)
def test_accepted(text: str, kind: PolicyKind) -> None:
    parsed = parse_policy(text, kind)
    assert parsed.kind is kind
    assert parsed.size == policy_size(text)


def test_policy_object_exposes_its_parts() -> None:
    text = json.dumps(
        {
            "Version": "2012-10-17",
            "Id": "P1",
            "Statement": [
                {"Sid": "One", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"},
                {"Effect": "Deny", "NotAction": "s3:*", "NotResource": "arn:aws:s3:::b"},
            ],
        }
    )
    parsed = parse_policy(text, IDENTITY)
    assert parsed.version == "2012-10-17"
    assert parsed.id == "P1"
    assert [s.sid for s in parsed.statements] == ["One", None]
    assert [s.allow for s in parsed.statements] == [True, False]
    assert parsed.statements[1].not_action and parsed.statements[1].not_resource
    assert parsed.statements[0].vendors == frozenset({"s3"})
    assert parsed.statements[1].vendors is None


def test_missing_version_is_legacy() -> None:
    assert parse_policy('{"Statement": []}', IDENTITY).version is None


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ('{ "a" : 1 }', 7),
        ('{\n\t"Version": "2012-10-17"\r\n}', 24),
        ("", 0),
        ('"a b"', 4),  # white space inside strings does not count either
    ],
)
def test_policy_size_ignores_white_space(text: str, size: int) -> None:
    assert policy_size(text) == size


def test_policy_size_is_the_same_for_pretty_and_compact_json() -> None:
    body = {"Version": "2012-10-17", "Statement": [allow("s3:GetObject", "arn:aws:s3:::b/*")]}
    assert policy_size(json.dumps(body, indent=4)) == policy_size(json.dumps(body, separators=(",", ":")))


# --- property tests: parsing never fails any other way ----------------------------------------

JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
JSON = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
POLICY_WORDS = st.sampled_from(
    [
        "*",
        "s3:GetObject",
        "s3:*",
        "iam:List*",
        "GetObject",
        "a:b:c",
        "arn:aws:s3:::b/*",
        "arn:aws:s3",
        "arn:aws:iam::1:x",
        "arn:aws:iam::111111111111:root",
        "111111111111",
        "${aws:username}",
        "${aws:x, 'y'}",
        "${",
        "Allow",
        "Deny",
        "2012-10-17",
        "2008-10-17",
        "aws:SourceIp",
        "10.0.0.0/8",
        "true",
        "",
        "sts:AssumeRole",
        "lambda.amazonaws.com",
    ]
)
VALUES = POLICY_WORDS | st.lists(POLICY_WORDS, max_size=3) | JSON
CONDITIONS = st.dictionaries(
    st.sampled_from(
        [
            "StringEquals",
            "StringLike",
            "ForAnyValue:StringNotLike",
            "NumericLessThan",
            "Bool",
            "IpAddress",
            "Null",
            "ArnLikeIfExists",
            "DateLessThan",
            "Nope",
        ]
    ),
    st.dictionaries(
        st.sampled_from(["aws:SourceIp", "aws:username", "nokey", "s3:prefix"]), VALUES, max_size=2
    ),
    max_size=3,
)
STATEMENT_KEYS = st.sampled_from(
    [
        "Sid",
        "Effect",
        "Principal",
        "NotPrincipal",
        "Action",
        "NotAction",
        "Resource",
        "NotResource",
        "Condition",
        "Other",
    ]
)
PRINCIPALS = st.just("*") | st.dictionaries(
    st.sampled_from(["AWS", "Service", "Federated", "Bad"]), VALUES, max_size=2
)
STATEMENTS = st.dictionaries(STATEMENT_KEYS, VALUES | CONDITIONS | PRINCIPALS, max_size=7)
DOCUMENTS = st.dictionaries(
    st.sampled_from(["Version", "Id", "Statement"]),
    VALUES | STATEMENTS | st.lists(STATEMENTS, max_size=3),
    max_size=3,
)


def parses_or_refuses(text: str) -> None:
    for kind in PolicyKind:
        try:
            parse_policy(text, kind)
        except MalformedPolicyDocument as error:
            assert error.message


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_any_text_parses_or_is_refused(text: str) -> None:
    parses_or_refuses(text)


@settings(max_examples=300, deadline=None)
@given(JSON)
def test_any_json_parses_or_is_refused(value: object) -> None:
    parses_or_refuses(json.dumps(value))


@settings(max_examples=400, deadline=None)
@given(DOCUMENTS)
def test_any_policy_shaped_json_parses_or_is_refused(value: object) -> None:
    parses_or_refuses(json.dumps(value))
