"""Response serialization details: exact documents, content types, status codes, headers."""

from __future__ import annotations

from datetime import UTC, datetime

from minicloud.aws.protocol import cbor
from minicloud.aws.protocol.encoders import escape
from minicloud.aws.protocol.models import load_service_model
from minicloud.aws.protocol.parser_base import current_protocol
from minicloud.aws.protocol.serializers import create_serializer
from minicloud.aws.protocol.values import format_iso8601, format_rfc822, to_epoch
from minicloud.aws.request import AwsResponse
from tests.unit.aws.protocol.wire import client_parse

WHEN = datetime(2026, 11, 29, 5, 33, 50, tzinfo=UTC)


def _result(service: str, operation: str, result: dict[str, object],
            protocol: str | None = None) -> AwsResponse:
    model = load_service_model(service)
    return create_serializer(model, protocol).serialize_result(model.operation_model(operation), result, "rid")


def test_query_document() -> None:
    response = _result("sts", "GetCallerIdentity", {"UserId": "AIDA", "Account": "123456789012",
                                                    "Arn": "arn:aws:iam::123456789012:user/a&b"})
    assert response.status == 200
    assert response.body == (
        b'<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
        b"<GetCallerIdentityResult><UserId>AIDA</UserId><Account>123456789012</Account>"
        b"<Arn>arn:aws:iam::123456789012:user/a&amp;b</Arn></GetCallerIdentityResult>"
        b"<ResponseMetadata><RequestId>rid</RequestId></ResponseMetadata></GetCallerIdentityResponse>")
    headers = dict(response.headers)
    assert headers == {"x-amzn-RequestId": "rid", "Content-Type": "text/xml"}


def test_query_lists_timestamps_and_empty_output() -> None:
    response = _result("iam", "ListUsers", {"Users": [{"UserName": "u", "Path": "/", "UserId": "AID",
                                                      "Arn": "arn", "CreateDate": WHEN}],
                                            "IsTruncated": False})
    assert (b"<Users><member><Path>/</Path><UserName>u</UserName><UserId>AID</UserId><Arn>arn</Arn>"
            b"<CreateDate>2026-11-29T05:33:50Z</CreateDate></member></Users><IsTruncated>false</IsTruncated>"
            in response.body)
    empty = _result("iam", "DeleteUser", {})
    assert empty.body == (b'<DeleteUserResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">'
                          b"<ResponseMetadata><RequestId>rid</RequestId></ResponseMetadata>"
                          b"</DeleteUserResponse>")


def test_ec2_document() -> None:
    response = _result("ec2", "DescribeInstances", {"Reservations": [{"ReservationId": "r-1", "Instances": [
        {"InstanceId": "i-1", "LaunchTime": WHEN, "State": {"Code": 16, "Name": "running"}}]}]})
    assert response.body == (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com'
        b'/doc/2016-11-15/"><requestId>rid</requestId><reservationSet><item><reservationId>r-1'
        b"</reservationId><instancesSet><item><instanceId>i-1</instanceId><instanceState><code>16</code>"
        b"<name>running</name></instanceState><launchTime>2026-11-29T05:33:50.000Z</launchTime></item>"
        b"</instancesSet></item></reservationSet></DescribeInstancesResponse>")


def test_json_document_and_content_types() -> None:
    response = _result("logs", "DescribeLogGroups", {"logGroups": [{"logGroupName": "g", "creationTime": 5}]})
    assert response.body == b'{"logGroups":[{"logGroupName":"g","creationTime":5}]}'
    assert ("Content-Type", "application/x-amz-json-1.1") in response.headers
    response = _result("cloudwatch", "GetMetricData", {"MetricDataResults": [
        {"Id": "a", "Timestamps": [WHEN.replace(microsecond=250000)], "Values": [1.5, float("inf")]}]}, "json")
    assert response.body == (b'{"MetricDataResults":[{"Id":"a","Timestamps":[1795930430.25],'
                             b'"Values":[1.5,"Infinity"]}]}')
    assert ("Content-Type", "application/x-amz-json-1.0") in response.headers
    response = _result("kms", "Encrypt", {"CiphertextBlob": b"\x00\xff", "KeyId": "k"})
    assert response.body == b'{"CiphertextBlob":"AP8=","KeyId":"k"}'


def test_cbor_document() -> None:
    response = _result("cloudwatch", "ListMetrics", {"Metrics": [{"Namespace": "n"}]}, "smithy-rpc-v2-cbor")
    assert cbor.decode(response.body) == {"Metrics": [{"Namespace": "n"}]}
    headers = dict(response.headers)
    assert headers["smithy-protocol"] == "rpc-v2-cbor" and headers["Content-Type"] == "application/cbor"


def test_rest_json_status_headers_and_payload() -> None:
    created = _result("lambda", "CreateFunction", {"FunctionName": "f", "Timeout": 3})
    assert created.status == 201 and created.body == b'{"FunctionName":"f","Timeout":3}'
    invoked = _result("lambda", "Invoke", {"StatusCode": 202, "Payload": b'{"ok":1}', "FunctionError":
                                           "Unhandled", "ExecutedVersion": "$LATEST"})
    assert invoked.status == 202 and invoked.body == b'{"ok":1}'
    headers = dict(invoked.headers)
    assert headers["X-Amz-Function-Error"] == "Unhandled"
    assert headers["X-Amz-Executed-Version"] == "$LATEST"
    deleted = _result("lambda", "DeleteAlias", {})
    assert deleted.status == 204 and deleted.body == b""


def test_rest_xml_headers_payloads_and_head() -> None:
    got = _result("s3", "GetObject", {"Body": b"\x00data", "ContentLength": 5, "LastModified": WHEN,
                                      "Metadata": {"color": "blue"}, "ETag": '"e"', "ContentType": "text/x"})
    assert got.body == b"\x00data"
    headers = dict(got.headers)
    assert headers["Last-Modified"] == "Sun, 29 Nov 2026 05:33:50 GMT"
    assert headers["x-amz-meta-color"] == "blue"
    assert headers["Content-Type"] == "text/x"
    assert headers["x-amz-request-id"] == "rid" and headers["x-amz-id-2"]
    head = _result("s3", "HeadObject", {"ContentLength": 5, "ETag": '"e"'})
    assert head.body == b"" and dict(head.headers)["Content-Length"] == "5"
    listed = _result("s3", "ListObjectsV2", {"Name": "b", "KeyCount": 0, "IsTruncated": False})
    assert listed.body == (b'<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="http://s3.'
                           b'amazonaws.com/doc/2006-03-01/"><IsTruncated>false</IsTruncated><Name>b</Name>'
                           b"<KeyCount>0</KeyCount></ListBucketResult>")
    acl = _result("s3", "GetBucketAcl", {"Grants": [{"Grantee": {"ID": "i", "Type": "CanonicalUser"},
                                                     "Permission": "READ"}]})
    assert (b'<Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="CanonicalUser">'
            b"<ID>i</ID></Grantee>" in acl.body)


def test_non_latin1_header_values_are_encoded() -> None:
    got = _result("s3", "HeadObject", {"Metadata": {"name": "żółw\r\n"}})
    assert dict(got.headers)["x-amz-meta-name"] == "=?UTF-8?B?xbzDs8WCdw0K?="


def test_xml_escaping() -> None:
    assert escape("a<b>&\"c\"") == "a&lt;b&gt;&amp;&quot;c&quot;"
    assert escape("line\r\nnext\ttab") == "line&#xD;\nnext\ttab"
    assert escape("nul\x00 bell\x07 \ufffe \ud800 😀") == "nul\ufffd bell\ufffd \ufffd \ufffd 😀"
    response = _result("iam", "GetUser", {"User": {"UserName": "a\rb<", "Path": "/", "UserId": "u",
                                                   "Arn": "a", "CreateDate": WHEN}})
    parsed = client_parse(response, load_service_model("iam").operation_model("GetUser"), "query")
    assert parsed["User"]["UserName"] == "a\rb<"


def test_a_result_that_does_not_fit_is_an_internal_failure() -> None:
    response = _result("iam", "GetUser", {"User": "not a structure"})
    assert response.status == 500
    assert b"<Code>InternalFailure</Code>" in response.body


def test_multi_protocol_serializer_answers_in_the_request_protocol() -> None:
    model = load_service_model("cloudwatch")
    serializer = create_serializer(model)
    operation = model.operation_model("ListMetrics")
    for protocol, marker in (("query", b"<ListMetricsResponse"), ("json", b'{"Metrics"'),
                             ("smithy-rpc-v2-cbor", b"\xa1")):
        token = current_protocol.set(protocol)
        try:
            assert serializer.serialize_result(operation, {"Metrics": []}, "r").body.startswith(marker)
        finally:
            current_protocol.reset(token)


def test_timestamp_formats() -> None:
    assert format_iso8601(WHEN) == "2026-11-29T05:33:50Z"
    assert format_iso8601(WHEN, always_millis=True) == "2026-11-29T05:33:50.000Z"
    assert format_iso8601(WHEN.replace(microsecond=123456)) == "2026-11-29T05:33:50.123Z"
    assert format_iso8601(datetime(2026, 11, 29, 5, 33, 50)) == "2026-11-29T05:33:50Z"  # naive is UTC
    assert format_rfc822(WHEN) == "Sun, 29 Nov 2026 05:33:50 GMT"
    assert to_epoch(WHEN) == 1795930430 and to_epoch(WHEN.replace(microsecond=5000)) == 1795930430.005


def test_rest_headers_content_type_and_header_text() -> None:
    from datetime import timedelta, timezone

    from minicloud.aws.protocol.rest_serializers import RESULT_HEADERS

    def headers(result: dict[str, object]) -> list[tuple[str, str]]:
        return [(k, v) for k, v in _result("s3", "GetObject", result).headers if not k.lower().startswith("x-amz")]

    # No Content-Type member: the payload's default; a member or a provider's extra header: that one alone.
    assert ("Content-Type", "application/octet-stream") in headers({"Body": b"x"})
    assert [v for k, v in headers({"Body": b"x", "ContentType": "text/x"}) if k.lower() == "content-type"] == [
        "text/x"]
    extra = headers({"Body": b"x", RESULT_HEADERS: [("content-type", "a/b")]})
    assert [v for k, v in extra if k.lower() == "content-type"] == ["a/b"]
    # Text that is not printable ASCII is RFC 2047-encoded; numbers and dates are sent as they are.
    got = dict(headers({"Body": b"x", "ContentDisposition": "été", "ContentLength": 4,
                        "LastModified": WHEN.astimezone(timezone(timedelta(hours=-5)))}))
    assert got["Content-Disposition"] == "=?UTF-8?B?w6l0w6k=?="
    assert got["Content-Length"] == "4" and got["Last-Modified"] == "Sun, 29 Nov 2026 05:33:50 GMT"


def test_rfc822_remembered_by_instant() -> None:
    from datetime import timedelta, timezone

    east = WHEN.astimezone(timezone(timedelta(hours=9)))
    for value in (WHEN, east, WHEN.replace(tzinfo=None), east, WHEN + timedelta(seconds=1), WHEN):
        expected = "Sun, 29 Nov 2026 05:33:51 GMT" if value == WHEN + timedelta(seconds=1) else (
            "Sun, 29 Nov 2026 05:33:50 GMT")
        assert format_rfc822(value) == expected
