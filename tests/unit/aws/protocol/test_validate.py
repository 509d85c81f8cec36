"""Server-side validation: AWS's messages and error codes, per protocol."""

from __future__ import annotations

from typing import Any

import pytest

from minicloud.aws.errors import (
    InvalidParameterValue,
    MissingParameter,
    ServiceError,
    ValidationError,
    ValidationException,
)
from minicloud.aws.protocol.models import load_service_model
from minicloud.aws.protocol.patterns import compile_pattern
from minicloud.aws.protocol.validate import validate
from minicloud.aws.protocol.wire_errors import InvalidArgument, MalformedXML, MissingRequestBodyError


def _error(service: str, operation: str, params: dict[str, Any], protocol: str | None = None) -> ServiceError:
    model = load_service_model(service)
    with pytest.raises(ServiceError) as info:
        validate(model.operation_model(operation), params, protocol or model.protocol)
    return info.value


def _ok(service: str, operation: str, params: dict[str, Any]) -> None:
    model = load_service_model(service)
    validate(model.operation_model(operation), params, model.protocol)


def test_missing_required_member_query() -> None:
    error = _error("iam", "CreateUser", {})
    assert isinstance(error, ValidationError)
    assert error.message == ("1 validation error detected: Value null at 'userName' failed to satisfy "
                             "constraint: Member must not be null")


def test_several_errors_are_counted_and_joined() -> None:
    error = _error("iam", "CreateRole", {"RoleName": "x" * 65})
    assert error.message == (
        "2 validation errors detected: Value 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' "
        "at 'roleName' failed to satisfy constraint: Member must have length less than or equal to 64; "
        "Value null at 'assumeRolePolicyDocument' failed to satisfy constraint: Member must not be null")


def test_pattern_range_and_nested_paths() -> None:
    error = _error("iam", "CreateUser", {"UserName": "a b", "Tags": [{"Key": "k", "Value": "v"},
                                                                     {"Key": "", "Value": "v"}]})
    assert error.message == (
        "3 validation errors detected: Value 'a b' at 'userName' failed to satisfy constraint: Member must "
        "satisfy regular expression pattern: [\\w+=,.@-]+; Value '' at 'tags.2.member.key' failed to "
        "satisfy constraint: Member must have length greater than or equal to 1; Value '' at "
        "'tags.2.member.key' failed to satisfy constraint: Member must satisfy regular expression "
        "pattern: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]+")
    error = _error("iam", "ListUsers", {"MaxItems": 0})
    assert error.message == ("1 validation error detected: Value '0' at 'maxItems' failed to satisfy "
                             "constraint: Member must have value greater than or equal to 1")


def test_sensitive_values_are_not_echoed() -> None:
    error = _error("iam", "CreateLoginProfile", {"UserName": "bob", "Password": ""})
    assert "Value at 'password' failed to satisfy constraint: Member must have length greater than or " \
           "equal to 1" in error.message
    assert "Value ''" not in error.message


def test_json_protocols_answer_validation_exception() -> None:
    error = _error("logs", "CreateLogGroup", {})
    assert isinstance(error, ValidationException)
    assert error.message == ("1 validation error detected: Value null at 'logGroupName' failed to satisfy "
                             "constraint: Member must not be null")
    assert isinstance(_error("lambda", "GetFunction", {"FunctionName": ""}), ValidationException)


def test_map_constraints() -> None:
    error = _error("lambda", "TagResource", {"Resource": "arn:aws:lambda:us-east-1:123456789012:function:f",
                                             "Tags": {"": "v"}})
    assert error.message == ("1 validation error detected: Value at 'tags' failed to satisfy constraint: "
                             "Map keys must satisfy constraint: [Member must have length greater than or "
                             "equal to 1]")


def test_enums_only_where_aws_checks_them() -> None:
    error = _error("iam", "ListPolicies", {"Scope": "Everything"})
    assert error.message == ("1 validation error detected: Value 'Everything' at 'scope' failed to satisfy "
                             "constraint: Member must satisfy enum value set: [All, AWS, Local]")
    _ok("ecr", "DescribeImages", {"repositoryName": "repo", "filter": {"tagStatus": "SOMETIMES"}})
    _ok("ec2", "DescribeInstances", {"Filters": [{"Name": "x", "Values": ["y"]}]})


def test_ec2_answers_the_first_problem_in_its_own_words() -> None:
    error = _error("ec2", "CreateSecurityGroup", {"GroupName": "web"})
    assert isinstance(error, MissingParameter)
    assert error.message == "The request must contain the parameter GroupDescription"
    error = _error("ec2", "AssignPrivateNatGatewayAddress", {"NatGatewayId": "nat-1",
                                                             "PrivateIpAddressCount": 99})
    assert isinstance(error, InvalidParameterValue)
    assert error.message == ("Value (99) for parameter PrivateIpAddressCount is invalid. Member must have "
                             "value less than or equal to 31.")


def test_rest_xml_answers_invalid_argument() -> None:
    model = load_service_model("s3")
    with pytest.raises(InvalidArgument):
        validate(model.operation_model("PutBucketTagging"), {"Tagging": {"TagSet": []}}, "rest-xml")
    with pytest.raises(InvalidArgument):  # (a policy is a JSON text, not an XML document)
        validate(model.operation_model("PutBucketPolicy"), {"Bucket": "b"}, "rest-xml")


@pytest.mark.parametrize(("params", "expected"), [
    ({"Bucket": "b"}, MissingRequestBodyError),
    ({"Bucket": "b", "Tagging": {}}, MalformedXML),
    ({"Bucket": "b", "Tagging": {"TagSet": [{"Key": "k"}]}}, MalformedXML),
])
def test_rest_xml_document_missing_or_incomplete(params: dict[str, object], expected: type[Exception]) -> None:
    """S3 answers an XML document that is missing, or lacks an element its schema requires, as
    MissingRequestBodyError / MalformedXML, not with the validation message."""
    model = load_service_model("s3")
    with pytest.raises(expected) as raised:
        validate(model.operation_model("PutBucketTagging"), params, "rest-xml")
    assert type(raised.value) is expected


def test_valid_input_passes() -> None:
    _ok("iam", "CreateUser", {"UserName": "bob.smith@example", "Path": "/eng/",
                              "Tags": [{"Key": "team", "Value": "héllo wörld"}]})
    _ok("sts", "AssumeRole", {"RoleArn": "arn:aws:iam::123456789012:role/demo", "RoleSessionName": "s1"})


def test_java_patterns_become_python_ones() -> None:
    tag = compile_pattern(r"[\p{L}\p{Z}\p{N}_.:/=+\-@]*")
    assert tag is not None and tag.fullmatch("Ünïcode 123") and not tag.fullmatch("a;b")
    word = compile_pattern(r"[\w+=,.@-]+")
    assert word is not None and word.fullmatch("a_b") and not word.fullmatch("é")  # Java's \w is ASCII
    pairs = compile_pattern(r"[\u0020-\uD7FF\uE000-\uFFFD\uD800\uDC00-\uDBFF\uDFFF\r\n\t]*")
    assert pairs is not None and pairs.fullmatch("emoji 😀\n") and not pairs.fullmatch("\x01")
    dash = compile_pattern(r"[\w-_]*")
    assert dash is not None and dash.fullmatch("a-b_c")
