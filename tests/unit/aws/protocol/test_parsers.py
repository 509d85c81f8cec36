"""Request parsing details the round-trip tests do not pin down: errors for unknown operations
and malformed input, encodings other clients use, and multi-protocol services."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from minicloud.aws.errors import (
    InvalidAction,
    MalformedQueryString,
    MissingAction,
    SerializationException,
    ServiceError,
    UnknownOperation,
    ValidationError,
)
from minicloud.aws.protocol import cbor
from minicloud.aws.protocol.models import load_service_model
from minicloud.aws.protocol.parser_base import current_protocol
from minicloud.aws.protocol.parsers import create_parser, detect_protocol, note_request_protocol
from minicloud.aws.protocol.rest_parsers import split_header_list, split_http_dates
from minicloud.aws.protocol.wire_errors import InvalidArgument, MalformedXML
from minicloud.aws.request import AwsRequest, Headers

FORM = ("content-type", "application/x-www-form-urlencoded; charset=utf-8")


def _query(service: str, body: str, query: str = "") -> tuple[str, dict[str, Any]]:
    parser = create_parser(load_service_model(service))
    operation, params = parser.parse(AwsRequest("POST", "/", query, Headers([FORM]), body.encode()))
    return operation.name, params


def _json(service: str, target: str, body: bytes) -> tuple[str, dict[str, Any]]:
    parser = create_parser(load_service_model(service))
    headers = Headers([("x-amz-target", target), ("content-type", "application/x-amz-json-1.1")])
    operation, params = parser.parse(AwsRequest("POST", "/", "", headers, body))
    return operation.name, params


def test_query_action_and_nested_members() -> None:
    name, params = _query("iam", "Action=CreateUser&Version=2010-05-08&UserName=bob&Tags.member.1.Key=k"
                                 "&Tags.member.1.Value=v%20w&Tags.member.2.Key=k2&Tags.member.2.Value=")
    assert name == "CreateUser"
    assert params == {"UserName": "bob", "Tags": [{"Key": "k", "Value": "v w"}, {"Key": "k2", "Value": ""}]}


def test_query_lists_sort_by_index_and_empty_list() -> None:
    _, params = _query("iam", "Action=CreateOpenIDConnectProvider&Version=2010-05-08&Url=https%3A%2F%2Fx"
                              "&ClientIDList.member.10=c&ClientIDList.member.2=b&ThumbprintList=")
    assert params["ClientIDList"] == ["b", "c"]
    assert params["ThumbprintList"] == []


def test_query_maps_with_entries() -> None:
    name, params = _query("sns", "Action=CreateTopic&Version=2010-03-31&Name=t&Attributes.entry.1.key=Policy"
                                 "&Attributes.entry.1.value=p&Attributes.entry.2.key=DisplayName"
                                 "&Attributes.entry.2.value=")
    assert name == "CreateTopic"
    assert params == {"Name": "t", "Attributes": {"Policy": "p", "DisplayName": ""}}
    parser = create_parser(load_service_model("sqs"), "query")  # a flattened map
    _, params = parser.parse(AwsRequest(
        "POST", "/", "", Headers([FORM]),
        b"Action=SetQueueAttributes&Version=2012-11-05&QueueUrl=q&Attributes.1.key=Policy"
        b"&Attributes.1.value=p&Attributes.2.key=DelaySeconds&Attributes.2.value=5"))
    assert params == {"QueueUrl": "q", "Attributes": {"Policy": "p", "DelaySeconds": "5"}}


def test_query_get_with_query_string() -> None:
    parser = create_parser(load_service_model("sts"))
    operation, params = parser.parse(AwsRequest("GET", "/", "Action=GetCallerIdentity&Version=2011-06-15"))
    assert operation.name == "GetCallerIdentity" and params == {}


def test_query_unknown_action_and_version() -> None:
    with pytest.raises(InvalidAction) as info:
        _query("iam", "Action=ListUserz&Version=2010-05-08")
    assert info.value.message == "Could not find operation ListUserz for version 2010-05-08"
    with pytest.raises(InvalidAction) as info:
        _query("iam", "Action=ListUsers&Version=2011-01-01")
    assert info.value.message == "Could not find operation ListUsers for version 2011-01-01"
    with pytest.raises(InvalidAction) as info:
        _query("iam", "Action=Nope")
    assert info.value.message == "Could not find operation Nope for version NO_VERSION_SPECIFIED"
    with pytest.raises(MissingAction):
        _query("iam", "Version=2010-05-08")


def test_query_malformed_values() -> None:
    with pytest.raises(ValidationError) as info:
        _query("iam", "Action=ListUsers&Version=2010-05-08&MaxItems=ten")
    assert "maxItems" in info.value.message
    with pytest.raises(ValidationError):
        _query("iam", "Action=ListUsers&Version=2010-05-08&MaxItems=1%5F0")  # int("1_0") is Python-only
    with pytest.raises(ValidationError):
        _query("iam", "Action=ListUsers&Version=2010-05-08&MaxItems=99999999999")
    with pytest.raises(MalformedQueryString):
        _query("iam", "Action=ListUsers&Version=2010-05-08&PathPrefix=%FF")


def test_ec2_names_and_lists() -> None:
    parser = create_parser(load_service_model("ec2"))
    body = (b"Action=DescribeInstances&Version=2016-11-15&InstanceId.1=i-1&InstanceId.2=i-2"
            b"&Filter.1.Name=tag%3AName&Filter.1.Value.1=web&DryRun=true")
    operation, params = parser.parse(AwsRequest("POST", "/", "", Headers([FORM]), body))
    assert operation.name == "DescribeInstances"
    assert params == {"InstanceIds": ["i-1", "i-2"], "Filters": [{"Name": "tag:Name", "Values": ["web"]}],
                      "DryRun": True}
    body = b"Action=RunInstances&Version=2016-11-15&ImageId=ami-1&MinCount=1&MaxCount=1&UserData=aGk%3D"
    operation, params = parser.parse(AwsRequest("POST", "/", "", Headers([FORM]), body))
    assert operation.name == "RunInstances"
    assert params["UserData"] == "aGk="  # a string member in the model: passed through as sent


def test_json_target_and_body() -> None:
    name, params = _json("logs", "Logs_20140328.PutLogEvents",
                         b'{"logGroupName":"g","logStreamName":"s","logEvents":[{"timestamp":1,"message":"m"}]}')
    assert name == "PutLogEvents"
    assert params["logEvents"] == [{"timestamp": 1, "message": "m"}]
    assert _json("logs", "Logs_20140328.DescribeLogGroups", b"") == ("DescribeLogGroups", {})


def test_json_errors() -> None:
    with pytest.raises(UnknownOperation):
        _json("logs", "Logs_20140328.Nope", b"{}")
    with pytest.raises(UnknownOperation):
        _json("logs", "Other_1.DescribeLogGroups", b"{}")
    with pytest.raises(SerializationException):
        _json("logs", "Logs_20140328.DescribeLogGroups", b"{nope")
    with pytest.raises(SerializationException):
        _json("logs", "Logs_20140328.DescribeLogGroups", b"[]")
    with pytest.raises(SerializationException) as info:
        _json("logs", "Logs_20140328.DescribeLogGroups", b'{"limit": "ten"}')
    assert info.value.message == "STRING_VALUE can not be converted to Integer (at 'limit')"
    with pytest.raises(SerializationException):
        _json("logs", "Logs_20140328.DescribeLogGroups", b'{"limit": 99999999999}')
    with pytest.raises(SerializationException):
        _json("ecr", "AmazonEC2ContainerRegistry_V20150921.PutImage",
              b'{"repositoryName":"r","imageManifest":"m","imageManifestMediaType":1}')


def test_json_timestamps_and_blobs() -> None:
    _, params = _json("logs", "Logs_20140328.GetLogEvents",
                      b'{"logGroupName":"g","logStreamName":"s","startTime":1700000000000}')
    assert params["startTime"] == 1700000000000  # a long in this model, not a timestamp
    model = load_service_model("kms")
    parser = create_parser(model)
    headers = Headers([("x-amz-target", "TrentService.Encrypt")])
    _, params = parser.parse(AwsRequest("POST", "/", "", headers, b'{"KeyId":"k","Plaintext":"aGk="}'))
    assert params["Plaintext"] == b"hi"
    with pytest.raises(SerializationException):
        parser.parse(AwsRequest("POST", "/", "", headers, b'{"KeyId":"k","Plaintext":"a=b"}'))
    _, params = parser.parse(AwsRequest("POST", "/", "", Headers([("x-amz-target", "TrentService.ListKeys")]),
                                        b"{}"))
    assert params == {}
    model = load_service_model("cloudwatch")
    parser = create_parser(model, "json")
    _, params = parser.parse(AwsRequest(
        "POST", "/", "", Headers([("x-amz-target", "GraniteServiceVersion20100801.GetMetricData")]),
        b'{"MetricDataQueries":[],"StartTime":1700000000.5,"EndTime":"2023-11-14T22:13:20Z"}'))
    assert params["StartTime"] == datetime(2023, 11, 14, 22, 13, 20, 500000, tzinfo=UTC)
    assert params["EndTime"] == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)


def test_rest_headers_query_and_blob_payload() -> None:
    parser = create_parser(load_service_model("s3"))
    headers = Headers([("Content-Length", "5"), ("x-amz-meta-Color", "red"), ("x-amz-meta-size", "L"),
                       ("Content-Type", "text/plain"), ("x-amz-object-lock-retain-until-date",
                                                        "2030-01-01T00:00:00Z"),
                       ("Expires", "Thu, 01 Jan 2026 00:00:00 GMT")])
    operation, params = parser.parse(AwsRequest("PUT", "/b/dir/file.txt", "", headers, b"hello"))
    assert operation.name == "PutObject"
    assert params == {"Bucket": "b", "Key": "dir/file.txt", "Body": b"hello", "ContentLength": 5,
                      "ContentType": "text/plain", "Metadata": {"color": "red", "size": "L"},
                      "ObjectLockRetainUntilDate": datetime(2030, 1, 1, tzinfo=UTC),
                      "Expires": datetime(2026, 1, 1, tzinfo=UTC)}


def test_rest_xml_body_and_malformed_xml() -> None:
    parser = create_parser(load_service_model("s3"))
    body = (b'<Tagging xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><TagSet><Tag><Key>a</Key>'
            b"<Value>1 &amp; 2</Value></Tag><Tag><Key>b</Key><Value/></Tag></TagSet></Tagging>")
    _operation, params = parser.parse(AwsRequest("PUT", "/b", "tagging", Headers(), body))
    assert params == {"Bucket": "b", "Tagging": {"TagSet": [{"Key": "a", "Value": "1 & 2"},
                                                            {"Key": "b", "Value": ""}]}}
    with pytest.raises(MalformedXML):
        parser.parse(AwsRequest("PUT", "/b", "tagging", Headers(), b"<Tagging><TagSet>"))
    doctype = b'<!DOCTYPE x [<!ENTITY a "b">]><Tagging><TagSet/></Tagging>'
    with pytest.raises(MalformedXML):
        parser.parse(AwsRequest("PUT", "/b", "tagging", Headers(), doctype))
    with pytest.raises(InvalidArgument):
        parser.parse(AwsRequest("GET", "/b", "list-type=2&max-keys=many"))


def test_rest_xml_attributes() -> None:
    parser = create_parser(load_service_model("s3"))
    body = (b'<AccessControlPolicy><AccessControlList><Grant><Grantee xmlns:xsi="http://www.w3.org/2001/'
            b'XMLSchema-instance" xsi:type="CanonicalUser"><ID>id1</ID></Grantee><Permission>READ</Permission>'
            b"</Grant></AccessControlList></AccessControlPolicy>")
    _, params = parser.parse(AwsRequest("PUT", "/b", "acl", Headers(), body))
    assert params["AccessControlPolicy"]["Grants"] == [
        {"Grantee": {"ID": "id1", "Type": "CanonicalUser"}, "Permission": "READ"}]


def test_header_lists() -> None:
    assert split_header_list('a, "b,c", "d\\"e" ,f') == ["a", "b,c", 'd"e', "f"]
    assert split_header_list("") == [""]
    assert split_http_dates("Sun, 29 Nov 2026 05:33:50 GMT,Mon, 30 Nov 2026 00:00:00 GMT, 1700000000") == [
        "Sun, 29 Nov 2026 05:33:50 GMT", "Mon, 30 Nov 2026 00:00:00 GMT", "1700000000"]


def test_multi_protocol_service_is_parsed_in_the_protocol_it_was_sent_in() -> None:
    model = load_service_model("cloudwatch")
    parser = create_parser(model)
    query = AwsRequest("POST", "/", "", Headers([FORM]),
                       b"Action=ListMetrics&Version=2010-08-01&Namespace=AWS%2FEC2")
    json_request = AwsRequest("POST", "/", "", Headers([("x-amz-target",
                                                         "GraniteServiceVersion20100801.ListMetrics")]),
                              b'{"Namespace":"AWS/EC2"}')
    cbor_request = AwsRequest("POST", "/service/GraniteServiceVersion20100801/operation/ListMetrics", "",
                              Headers([("smithy-protocol", "rpc-v2-cbor")]),
                              cbor.encode({"Namespace": "AWS/EC2"}))
    for request, protocol in ((query, "query"), (json_request, "json"), (cbor_request, "smithy-rpc-v2-cbor")):
        assert detect_protocol(model, request) == protocol
        operation, params = parser.parse(request)
        assert operation.name == "ListMetrics" and params == {"Namespace": "AWS/EC2"}
        assert current_protocol.get() == protocol


def test_protocol_can_be_noted_before_parsing() -> None:
    model = load_service_model("cloudwatch")
    request = AwsRequest("POST", "/", "", Headers([FORM]), b"Action=ListMetrics&Version=2010-08-01")
    token = current_protocol.set(None)
    try:
        assert note_request_protocol(model, request) == "query"
        assert current_protocol.get() == "query"
    finally:
        current_protocol.reset(token)


def test_cbor_errors() -> None:
    parser = create_parser(load_service_model("cloudwatch"), "smithy-rpc-v2-cbor")
    path = "/service/GraniteServiceVersion20100801/operation/ListMetrics"
    with pytest.raises(SerializationException):
        parser.parse(AwsRequest("POST", path, "", Headers(), b"\xff\x00"))
    with pytest.raises(UnknownOperation):
        parser.parse(AwsRequest("POST", "/service/X/operation/Nope", "", Headers(), b""))
    with pytest.raises(ServiceError):
        parser.parse(AwsRequest("POST", path, "", Headers(), cbor.encode({"Namespace": 5})))


def _s3_put(headers: list[tuple[str, str]], path: str = "/b/k", query: str = "", body: bytes = b"data") -> AwsRequest:
    return AwsRequest("PUT", path, query, Headers(headers), body)


def test_rest_headers_first_value_counts_and_model_order_decides_errors() -> None:
    parser = create_parser(load_service_model("s3"))
    _, params = parser.parse(_s3_put([("x-amz-storage-class", "ONEZONE_IA"), ("content-type", "text/a"),
                                      ("x-amz-meta-one", "1"), ("content-type", "text/b"),
                                      ("x-amz-meta-one", "2"), ("x-amz-meta-two", "b")]))
    assert params["StorageClass"] == "ONEZONE_IA"
    assert params["ContentType"] == "text/a"  # the first of a repeated header
    assert params["Metadata"] == {"one": "2", "two": "b"}
    # Two malformed headers: the one the model declares first is reported, whatever the wire order.
    bad = [("x-amz-object-lock-retain-until-date", "not a date"), ("content-length", "x")]
    errors = []
    for headers in (bad, bad[::-1]):
        with pytest.raises(ServiceError) as caught:
            parser.parse(_s3_put(headers))
        errors.append(caught.value.message)
    assert errors[0] == errors[1] and "contentLength" in errors[0]


def test_streaming_payload_match_is_reused_only_for_its_own_request() -> None:
    parser = create_parser(load_service_model("s3"))
    put = _s3_put([("content-type", "text/plain")])
    assert parser.streaming_payload(put) == "Body"  # type: ignore[attr-defined]
    other = _s3_put([("x-amz-acl", "private")], path="/b", query="acl", body=b"")
    operation, params = parser.parse(other)  # not the request streaming_payload saw: matched anew
    assert operation.name == "PutBucketAcl" and params == {"Bucket": "b", "ACL": "private"}
    operation, params = parser.parse(put)  # its memo was dropped by the parse above: matched anew
    assert operation.name == "PutObject" and params["Key"] == "k"
    assert parser.streaming_payload(put) == "Body"  # type: ignore[attr-defined]
    put.path = "/b/other"  # a request changed after the match (readdressed) is matched again
    operation, params = parser.parse(put)
    assert operation.name == "PutObject" and params["Key"] == "other"
    assert parser.streaming_payload(put) == "Body"  # type: ignore[attr-defined]
    operation, params = parser.parse(put)  # the memo itself
    assert operation.name == "PutObject" and params == {"Bucket": "b", "Key": "other", "ContentType": "text/plain",
                                                        "Body": b"data"}
