"""Error responses: every protocol's format, read back by botocore into the right Code, Message,
HTTP status and request id; and the exact bytes of the formats AWS documents."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minicloud.aws.errors import (
    AccessDenied,
    DynamicServiceError,
    InternalFailure,
    ServiceError,
    ValidationError,
    error_code,
    error_status,
)
from minicloud.aws.protocol.models import load_service_model
from minicloud.aws.protocol.serializers import create_serializer
from minicloud.aws.request import AwsResponse
from tests.unit.aws.protocol.roundtrip import SERVICES, protocols_of
from tests.unit.aws.protocol.wire import client_parse

CASES = [(service, protocol) for service in SERVICES for protocol in protocols_of(service)]


def _modeled_errors(service: str) -> list[DynamicServiceError]:
    model = load_service_model(service)
    errors = []
    for shape in model.error_shapes:
        meta = shape.metadata.get("error") or {}
        code = str(meta.get("code", shape.name))
        status = int(meta.get("httpStatusCode", 400))
        errors.append(DynamicServiceError(code, status, f"{code} happened",
                                          sender_fault=bool(meta.get("senderFault", True))))
    return errors


def _parse_error(response: AwsResponse, protocol: str) -> dict[str, Any]:
    parsed = client_parse(response, None, protocol, shape=None)
    return parsed


@pytest.mark.parametrize(("service", "protocol"), CASES)
def test_errors_parse_in_botocore(service: str, protocol: str) -> None:
    serializer = create_serializer(load_service_model(service), protocol)
    errors: list[ServiceError] = [ValidationError("bad <value> & 'quotes' é 😀"),
                                  AccessDenied("User: arn:aws:iam::1:user/x is not authorized"),
                                  InternalFailure("oops"), *_modeled_errors(service)]
    for error in errors:
        response = serializer.serialize_error(error, None, "req-7")
        assert response.status == error_status(error)
        headers = dict(response.headers)
        assert headers["x-amzn-RequestId"] == "req-7"
        parsed = _parse_error(response, protocol)
        assert parsed["Error"]["Code"] == error_code(error)
        assert parsed["Error"]["Message"] == error.message
        assert parsed["ResponseMetadata"]["RequestId"] == "req-7"
        assert parsed["ResponseMetadata"]["HTTPStatusCode"] == error_status(error)


@settings(max_examples=200, deadline=None, database=None)
@given(message=st.text(), code=st.from_regex(r"[A-Z][A-Za-z.]{0,30}", fullmatch=True),
       case=st.sampled_from(CASES))
def test_any_message_survives_every_protocol(message: str, code: str, case: tuple[str, str]) -> None:
    service, protocol = case
    if protocol in ("query", "ec2", "rest-xml"):
        # XML 1.0 cannot carry these at all; they are replaced by U+FFFD (see encoders.escape)
        message = "".join(c if c in "\t\n\r" or (ord(c) >= 0x20 and c not in "\ufffe\uffff"
                                                  and not 0xD800 <= ord(c) <= 0xDFFF) else "\ufffd"
                          for c in message)
    else:
        message = "".join(c for c in message if not 0xD800 <= ord(c) <= 0xDFFF)
    error = DynamicServiceError(code, 409, message)
    response = create_serializer(load_service_model(service), protocol).serialize_error(error, None, "r")
    parsed = _parse_error(response, protocol)
    assert parsed["Error"]["Code"] == code
    assert (parsed["Error"]["Message"] or "") == message  # botocore reads <Message/> as None


def test_query_error_format() -> None:
    serializer = create_serializer(load_service_model("iam"))
    response = serializer.serialize_error(DynamicServiceError("NoSuchEntity", 404, "The user with name bob "
                                                              "cannot be found."), None, "rid-1")
    assert response.status == 404
    assert response.body == (
        b'<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>Sender</Type>'
        b"<Code>NoSuchEntity</Code><Message>The user with name bob cannot be found.</Message></Error>"
        b"<RequestId>rid-1</RequestId></ErrorResponse>")
    assert ("Content-Type", "text/xml") in response.headers
    server = serializer.serialize_error(InternalFailure("x"), None, "rid-1")
    assert b"<Type>Receiver</Type>" in server.body


def test_ec2_error_format() -> None:
    serializer = create_serializer(load_service_model("ec2"))
    response = serializer.serialize_error(
        DynamicServiceError("InvalidInstanceID.NotFound", 400, "The instance ID 'i-1' does not exist"),
        None, "rid-2")
    assert response.body == (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>'
        b"<Code>InvalidInstanceID.NotFound</Code><Message>The instance ID &apos;i-1&apos; does not exist"
        b"</Message></Error></Errors><RequestID>rid-2</RequestID></Response>".replace(b"&apos;", b"'"))


def test_json_error_format() -> None:
    serializer = create_serializer(load_service_model("logs"))
    response = serializer.serialize_error(
        DynamicServiceError("ResourceNotFoundException", 400, "The specified log group does not exist."),
        None, "rid-3")
    assert response.body == (b'{"__type":"ResourceNotFoundException","message":"The specified log group '
                             b'does not exist."}')
    headers = dict(response.headers)
    assert headers["x-amzn-ErrorType"] == "ResourceNotFoundException"
    assert headers["Content-Type"] == "application/x-amz-json-1.1"


def test_rest_xml_error_format_with_extra_fields_and_head() -> None:
    model = load_service_model("s3")
    serializer = create_serializer(model)
    error = DynamicServiceError("NoSuchBucket", 404, "The specified bucket does not exist",
                                BucketName="my-bucket")
    response = serializer.serialize_error(error, model.operation_model("ListObjects"), "rid-4")
    assert response.body.startswith(
        b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchBucket</Code>'
        b"<Message>The specified bucket does not exist</Message><BucketName>my-bucket</BucketName>"
        b"<RequestId>rid-4</RequestId><HostId>")
    headers = dict(response.headers)
    assert headers["x-amz-request-id"] == "rid-4"
    assert headers["x-amz-id-2"]
    parsed = client_parse(response, None, "rest-xml", shape=None)
    assert parsed["Error"] == {"Code": "NoSuchBucket", "Message": "The specified bucket does not exist",
                               "BucketName": "my-bucket"}
    head = serializer.serialize_error(error, model.operation_model("HeadBucket"), "rid-4")
    assert head.status == 404 and head.body == b""


def test_query_compatible_json_errors_carry_the_query_code() -> None:
    model = load_service_model("cloudwatch")
    error = DynamicServiceError("ResourceNotFound", 404, "no such alarm")
    for protocol in ("json", "smithy-rpc-v2-cbor"):
        response = create_serializer(model, protocol).serialize_error(error, None, "rid-5")
        assert ("x-amzn-query-error", "ResourceNotFound;Sender") in response.headers
        parsed = client_parse(response, None, protocol, shape=None)
        assert parsed["Error"]["Code"] == "ResourceNotFound"


def test_error_with_unrenderable_field_still_renders() -> None:
    class Weird:
        def __str__(self) -> str:
            raise ValueError("no")

    serializer = create_serializer(load_service_model("s3"))
    response = serializer.serialize_error(DynamicServiceError("X", 400, "m", Thing=Weird()), None, "r")
    assert response.status == 400 and b"<Code>X</Code>" in response.body
