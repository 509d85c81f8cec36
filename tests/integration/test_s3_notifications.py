"""S3 notification configuration through boto3 against a real ``minicloud up``: stored and
validated as S3 does, and the event messages for Lambda destinations written to
``s3_event_outbox`` (the delivery contract with the Lambda service) as objects change."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.aws import code
from tests.support.server import MinicloudServer


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MinicloudServer]:
    """A server of this module's own whose controllers do not run: the Lambda service's drain
    would otherwise take the outbox rows these tests read."""
    srv = MinicloudServer(Path(tmp_path_factory.mktemp("notifications")),
                          env={"MINICLOUD_CONTROLLERS": "false", "MINICLOUD_ENGINE": "false"})
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def s3(server: MinicloudServer) -> Any:
    return server.client("s3")


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"note-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


def function_arn(server: MinicloudServer, name: str) -> str:
    return f"arn:aws:lambda:us-east-1:{server.account_id}:function:{name}"


def outbox(server: MinicloudServer, bucket: str) -> list[dict[str, Any]]:
    with sqlite3.connect(server.data_dir / "metadata.sqlite3") as conn:
        rows = conn.execute("SELECT account_id, region, function_arn, bucket, event_json, created_at "
                            "FROM s3_event_outbox WHERE bucket = ? ORDER BY id", (bucket,)).fetchall()
    return [{"account_id": r[0], "region": r[1], "function_arn": r[2], "bucket": r[3],
             "event": json.loads(r[4]), "created_at": r[5]} for r in rows]


def test_configuration_round_trip(server: MinicloudServer, s3: Any, bucket: str) -> None:
    assert "LambdaFunctionConfigurations" not in s3.get_bucket_notification_configuration(Bucket=bucket)
    config = {"LambdaFunctionConfigurations": [{
        "Id": "images", "LambdaFunctionArn": function_arn(server, "thumbs"), "Events": ["s3:ObjectCreated:*"],
        "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "img/"},
                                           {"Name": "suffix", "Value": ".jpg"}]}}}]}
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=config,
                                             SkipDestinationValidation=True)
    got = s3.get_bucket_notification_configuration(Bucket=bucket)["LambdaFunctionConfigurations"]
    assert got[0]["Id"] == "images" and got[0]["Events"] == ["s3:ObjectCreated:*"]
    assert got[0]["Filter"]["Key"]["FilterRules"] == [{"Name": "prefix", "Value": "img/"},
                                                      {"Name": "suffix", "Value": ".jpg"}]
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={})
    assert "LambdaFunctionConfigurations" not in s3.get_bucket_notification_configuration(Bucket=bucket)


@pytest.mark.parametrize("config", [
    {"LambdaFunctionConfigurations": [{"LambdaFunctionArn": "arn:aws:lambda:us-east-1:000000000000:function:f",
                                       "Events": ["s3:ObjectExploded:*"]}]},
    {"LambdaFunctionConfigurations": [{"LambdaFunctionArn": "not-an-arn", "Events": ["s3:ObjectCreated:*"]}]},
    {"LambdaFunctionConfigurations": [{"LambdaFunctionArn": "arn:aws:lambda:us-east-1:000000000000:function:f",
                                       "Events": ["s3:ObjectCreated:*"],
                                       "Filter": {"Key": {"FilterRules": [{"Name": "middle", "Value": "x"}]}}}]},
    {"LambdaFunctionConfigurations": [
        {"LambdaFunctionArn": "arn:aws:lambda:us-east-1:000000000000:function:f", "Events": ["s3:ObjectCreated:*"],
         "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "a/"}]}}},
        {"LambdaFunctionArn": "arn:aws:lambda:us-east-1:000000000000:function:g", "Events": ["s3:ObjectCreated:Put"],
         "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "a/b"}]}}}]},
])
def test_invalid_configurations(s3: Any, bucket: str, config: dict[str, Any]) -> None:
    with pytest.raises(ClientError) as err:
        s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=config)
    assert code(err) == "InvalidArgument"


def test_missing_function_refused_when_lambda_keeps_functions(server: MinicloudServer, s3: Any, bucket: str) -> None:
    with sqlite3.connect(server.data_dir / "metadata.sqlite3") as conn:
        lambda_present = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'lambda_functions'").fetchone()
    config = {"LambdaFunctionConfigurations": [{"LambdaFunctionArn": function_arn(server, "no-such-function"),
                                                "Events": ["s3:ObjectCreated:*"]}]}
    if lambda_present:
        with pytest.raises(ClientError) as err:
            s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=config)
        assert code(err) == "InvalidArgument"
        assert "Unable to validate" in err.value.response["Error"]["Message"]
    else:  # no Lambda service to ask: accepted, as the configuration alone is valid
        s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=config)
        assert s3.get_bucket_notification_configuration(Bucket=bucket)["LambdaFunctionConfigurations"]


def test_events_written_to_the_outbox(server: MinicloudServer, s3: Any, bucket: str) -> None:
    arn = function_arn(server, "on-upload")
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
        "LambdaFunctionConfigurations": [
            {"Id": "created", "LambdaFunctionArn": arn, "Events": ["s3:ObjectCreated:*"],
             "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "in/"}]}}},
            {"Id": "removed", "LambdaFunctionArn": arn, "Events": ["s3:ObjectRemoved:*"]}]},
        SkipDestinationValidation=True)
    put = s3.put_object(Bucket=bucket, Key="in/a photo.jpg", Body=b"hello")
    s3.put_object(Bucket=bucket, Key="out/ignored", Body=b"x")
    s3.copy_object(Bucket=bucket, Key="in/copy", CopySource={"Bucket": bucket, "Key": "in/a photo.jpg"})
    upload = s3.create_multipart_upload(Bucket=bucket, Key="in/mp")
    etag = s3.upload_part(Bucket=bucket, Key="in/mp", UploadId=upload["UploadId"], PartNumber=1, Body=b"p")["ETag"]
    s3.complete_multipart_upload(Bucket=bucket, Key="in/mp", UploadId=upload["UploadId"],
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    s3.delete_object(Bucket=bucket, Key="in/copy")
    s3.delete_object(Bucket=bucket, Key="in/a photo.jpg", VersionId=put["VersionId"])
    rows = outbox(server, bucket)
    names = [row["event"]["Records"][0]["eventName"] for row in rows]
    assert names == ["ObjectCreated:Put", "ObjectCreated:Copy", "ObjectCreated:CompleteMultipartUpload",
                     "ObjectRemoved:DeleteMarkerCreated", "ObjectRemoved:Delete"]
    first = rows[0]
    assert first["function_arn"] == arn and first["account_id"] == server.account_id
    assert first["region"] == "us-east-1" and first["bucket"] == bucket and first["created_at"]
    record = first["event"]["Records"][0]
    assert record["eventVersion"] == "2.1" and record["eventSource"] == "aws:s3"
    assert record["awsRegion"] == "us-east-1" and record["eventTime"].endswith("Z")
    assert record["requestParameters"]["sourceIPAddress"] == "127.0.0.1"
    assert record["responseElements"]["x-amz-request-id"] and record["responseElements"]["x-amz-id-2"]
    s3_part = record["s3"]
    assert s3_part["s3SchemaVersion"] == "1.0" and s3_part["configurationId"] == "created"
    assert s3_part["bucket"]["name"] == bucket and s3_part["bucket"]["arn"] == f"arn:aws:s3:::{bucket}"
    assert s3_part["bucket"]["ownerIdentity"]["principalId"]
    obj = s3_part["object"]
    assert obj["key"] == "in/a+photo.jpg" and obj["size"] == 5
    assert obj["eTag"] == put["ETag"].strip('"') and obj["versionId"] == put["VersionId"]
    assert obj["sequencer"]
    removed = rows[-1]["event"]["Records"][0]["s3"]
    assert removed["configurationId"] == "removed" and removed["object"]["versionId"] == put["VersionId"]


def test_failed_write_records_no_event(server: MinicloudServer, s3: Any, bucket: str) -> None:
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
        "LambdaFunctionConfigurations": [{"LambdaFunctionArn": function_arn(server, "f"),
                                          "Events": ["s3:ObjectCreated:Put"]}]}, SkipDestinationValidation=True)
    s3.put_object(Bucket=bucket, Key="k", Body=b"1")
    with pytest.raises(ClientError):
        s3.put_object(Bucket=bucket, Key="k", Body=b"2", IfNoneMatch="*")
    assert len(outbox(server, bucket)) == 1
