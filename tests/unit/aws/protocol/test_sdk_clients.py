"""Real boto3 clients (every handler and customization of the SDK in the path: S3's checksums and
GetBucketLocation parsing, the CBOR CloudWatch client...) talking to our parser and serializer
through botocore's ``before-send`` hook instead of a socket."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.config import Config
from botocore.exceptions import ClientError

from minicloud.aws.errors import DynamicServiceError, ServiceError
from minicloud.aws.protocol.models import load_service_model
from minicloud.aws.protocol.parsers import create_parser
from minicloud.aws.protocol.serializers import create_serializer
from minicloud.aws.protocol.validate import validate
from minicloud.aws.request import AwsRequest, Headers

WHEN = datetime(2026, 11, 29, 5, 33, 50, tzinfo=UTC)


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = io.BytesIO(body)

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body.read()

    def read(self, *args: Any, **_: Any) -> bytes:
        return self._body.read(*args)


class FakeCloud:
    """Parses what the client sends, answers with a canned result (or error) per operation."""

    def __init__(self, service: str) -> None:
        self.model = load_service_model(service)
        self.parser = create_parser(self.model)
        self.serializer = create_serializer(self.model)
        self.results: dict[str, dict[str, Any] | ServiceError] = {}
        self.seen: list[tuple[str, dict[str, Any]]] = []

    def send(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        url = urlsplit(request.url)
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        elif not isinstance(body, bytes):
            body = body.read()
        headers = Headers((k, v.decode() if isinstance(v, bytes) else v) for k, v in request.headers.items())
        aws_request = AwsRequest(request.method, url.path or "/", url.query, headers, body)
        operation = None
        try:
            operation, params = self.parser.parse(aws_request)
            validate(operation, params, self.model.protocol)
            self.seen.append((operation.name, params))
            outcome = self.results.get(operation.name, {})
            if isinstance(outcome, ServiceError):
                raise outcome
            response = self.serializer.serialize_result(operation, outcome, "req-1")
        except ServiceError as error:
            response = self.serializer.serialize_error(error, operation, "req-1")
        return AWSResponse(request.url, response.status, dict(response.headers), _Raw(response.body))


def _client(service: str) -> tuple[Any, FakeCloud]:
    cloud = FakeCloud(service)
    client = boto3.client(service, region_name="us-east-1", endpoint_url="http://127.0.0.1:4566",
                          aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret",
                          config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}))
    client.meta.events.register("before-send", cloud.send)
    return client, cloud


def test_iam() -> None:
    client, cloud = _client("iam")
    cloud.results["ListUsers"] = {"Users": [{"UserName": "bob", "Path": "/", "UserId": "AIDA1",
                                             "Arn": "arn:aws:iam::123456789012:user/bob", "CreateDate": WHEN}],
                                  "IsTruncated": False}
    users = client.list_users(PathPrefix="/")["Users"]
    assert users[0]["UserName"] == "bob" and users[0]["CreateDate"] == WHEN
    client.create_user(UserName="alice", Tags=[{"Key": "team", "Value": "a b"}])
    assert cloud.seen[-1] == ("CreateUser", {"UserName": "alice", "Tags": [{"Key": "team", "Value": "a b"}]})
    with pytest.raises(ClientError) as info:
        client.create_user(UserName="not valid!")
    assert info.value.response["Error"]["Code"] == "ValidationError"
    assert "at 'userName' failed to satisfy constraint" in info.value.response["Error"]["Message"]
    cloud.results["GetUser"] = DynamicServiceError("NoSuchEntity", 404, "The user with name x cannot be found.")
    with pytest.raises(client.exceptions.NoSuchEntityException):
        client.get_user(UserName="x")


def test_sts() -> None:
    client, cloud = _client("sts")
    cloud.results["GetCallerIdentity"] = {"UserId": "AIDA1", "Account": "123456789012", "Arn": "arn:x"}
    assert client.get_caller_identity()["Account"] == "123456789012"


def test_s3() -> None:
    client, cloud = _client("s3")
    client.put_object(Bucket="b", Key="dir/a b+c.txt", Body=b"hello", Metadata={"color": "red"})
    name, params = cloud.seen[-1]
    assert name == "PutObject" and params["Key"] == "dir/a b+c.txt" and params["Body"] == b"hello"
    assert params["Metadata"] == {"color": "red"}
    cloud.results["GetObject"] = {"Body": b"data", "ContentLength": 4, "ETag": '"e"', "LastModified": WHEN,
                                  "Metadata": {"color": "red"}}
    got = client.get_object(Bucket="b", Key="dir/a b+c.txt")
    assert got["Body"].read() == b"data" and got["Metadata"] == {"color": "red"}
    cloud.results["ListObjectsV2"] = {"Name": "b", "KeyCount": 1, "IsTruncated": False,
                                      "Contents": [{"Key": "k", "Size": 1, "LastModified": WHEN}]}
    assert [o["Key"] for o in client.list_objects_v2(Bucket="b")["Contents"]] == ["k"]
    cloud.results["GetBucketLocation"] = {"LocationConstraint": "eu-west-1"}
    assert client.get_bucket_location(Bucket="b")["LocationConstraint"] == "eu-west-1"
    client.put_bucket_tagging(Bucket="b", Tagging={"TagSet": [{"Key": "k", "Value": "v"}]})
    assert cloud.seen[-1] == ("PutBucketTagging", {"Bucket": "b", "Tagging": {"TagSet": [{"Key": "k",
                                                                                         "Value": "v"}]},
                                                   **{k: v for k, v in cloud.seen[-1][1].items()
                                                      if k not in ("Bucket", "Tagging")}})
    client.copy_object(Bucket="b", Key="k2", CopySource={"Bucket": "b", "Key": "k"})
    assert cloud.seen[-1][0] == "CopyObject"
    cloud.results["HeadObject"] = DynamicServiceError("NoSuchKey", 404, "The specified key does not exist.")
    with pytest.raises(ClientError) as info:
        client.head_object(Bucket="b", Key="missing")
    assert info.value.response["Error"]["Code"] == "404"  # HEAD: no body, as with AWS
    cloud.results["GetObject"] = DynamicServiceError("NoSuchKey", 404, "The specified key does not exist.",
                                                     Key="missing")
    with pytest.raises(client.exceptions.NoSuchKey):
        client.get_object(Bucket="b", Key="missing")


def test_ec2() -> None:
    client, cloud = _client("ec2")
    cloud.results["DescribeInstances"] = {"Reservations": [{"ReservationId": "r-1", "Instances": [
        {"InstanceId": "i-1", "LaunchTime": WHEN, "State": {"Code": 16, "Name": "running"},
         "Tags": [{"Key": "Name", "Value": "web"}]}]}]}
    reservations = client.describe_instances(Filters=[{"Name": "tag:Name", "Values": ["web"]}])["Reservations"]
    assert reservations[0]["Instances"][0]["State"]["Name"] == "running"
    assert cloud.seen[-1] == ("DescribeInstances", {"Filters": [{"Name": "tag:Name", "Values": ["web"]}]})
    cloud.results["TerminateInstances"] = DynamicServiceError("InvalidInstanceID.NotFound", 400, "nope")
    with pytest.raises(ClientError) as info:
        client.terminate_instances(InstanceIds=["i-2"])
    assert info.value.response["Error"]["Code"] == "InvalidInstanceID.NotFound"


def test_logs_and_lambda() -> None:
    client, cloud = _client("logs")
    client.put_log_events(logGroupName="g", logStreamName="s", logEvents=[{"timestamp": 1, "message": "m"}])
    assert cloud.seen[-1][0] == "PutLogEvents"
    client, cloud = _client("lambda")
    cloud.results["Invoke"] = {"StatusCode": 200, "Payload": b'{"ok": true}', "ExecutedVersion": "$LATEST"}
    response = client.invoke(FunctionName="f", Payload=b'{"x": 1}')
    assert response["Payload"].read() == b'{"ok": true}' and response["StatusCode"] == 200
    assert cloud.seen[-1] == ("Invoke", {"FunctionName": "f", "Payload": b'{"x": 1}'})


def test_cloudwatch_over_cbor() -> None:
    client, cloud = _client("cloudwatch")
    client.put_metric_data(Namespace="app", MetricData=[{"MetricName": "m", "Value": 1.5, "Timestamp": WHEN}])
    assert cloud.seen[-1] == ("PutMetricData", {"Namespace": "app", "MetricData": [
        {"MetricName": "m", "Value": 1.5, "Timestamp": WHEN}]})
    cloud.results["DescribeAlarms"] = DynamicServiceError("InvalidNextToken", 400, "bad token")
    with pytest.raises(client.exceptions.InvalidNextToken):
        client.describe_alarms(NextToken="x")
