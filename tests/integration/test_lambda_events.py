"""Asynchronous invocations (queued, retried twice), S3-triggered invocations, and function URLs."""

from __future__ import annotations

import json
import os
import shutil
import time
import urllib.request
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from tests.integration import test_lambda as shared
from tests.integration.test_lambda import Lambda

lambda_server = shared.lambda_server  # the session's Lambda server and helper, shared with test_lambda.py
lam = shared.lam

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("runc"), reason="Lambda needs root and runc")


def log_messages(lam: Lambda, name: str, until: Any, timeout: float = 60) -> list[str]:
    group = f"/aws/lambda/{name}"
    deadline = time.monotonic() + timeout
    messages: list[str] = []
    while time.monotonic() < deadline:
        try:
            events = lam.logs.filter_log_events(logGroupName=group)["events"]
        except ClientError:
            events = []
        messages = [e["message"] for e in events]
        if until(messages):
            return messages
        time.sleep(0.3)
    return messages


def test_event_invocation_is_retried_twice_with_the_same_request_id(lam: Lambda) -> None:
    name = lam.create("def handler(e, c):\n    print('attempt for', e['n'])\n    raise RuntimeError('no')\n")
    response = lam.client.invoke(FunctionName=name, InvocationType="Event", Payload=b'{"n": 42}')
    assert response["StatusCode"] == 202 and response["Payload"].read() == b""

    def three_reports(messages: list[str]) -> bool:
        return sum(m.startswith("REPORT") for m in messages) >= 3

    messages = log_messages(lam, name, three_reports)
    starts = [m.split()[2] for m in messages if m.startswith("START")]
    assert len(starts) == 3 and len(set(starts)) == 1  # the first try and two retries, one request id
    assert sum("attempt for 42" in m for m in messages) == 3
    time.sleep(3)  # and no fourth
    assert sum(m.startswith("START") for m in log_messages(lam, name, lambda _m: False, timeout=0.5)) == 3


def test_event_invocation_that_succeeds_runs_once(lam: Lambda) -> None:
    name = lam.create("def handler(e, c):\n    print('ran', e)\n    return 'ok'\n")
    lam.client.invoke(FunctionName=name, InvocationType="Event", Payload=b'{"x": 1}')
    messages = log_messages(lam, name, lambda m: any(x.startswith("REPORT") for x in m))
    assert any("ran {'x': 1}" in m for m in messages)
    time.sleep(2)
    assert sum(m.startswith("START") for m in log_messages(lam, name, lambda _m: False, timeout=0.5)) == 1


S3_HANDLER = """
import json, os, boto3
def handler(event, context):
    s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    for record in event["Records"]:
        bucket = record["s3"]["bucket"]["name"]
        key = record["s3"]["object"]["key"]
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        s3.put_object(Bucket=bucket, Key="processed/" + key.split("/", 1)[1],
                      Body=json.dumps({"event": record["eventName"], "size": len(body)}).encode())
"""


def test_s3_notification_invokes_the_function(lam: Lambda) -> None:
    s3 = lam.server.client("s3")
    bucket = "lambda-trigger-bucket"
    s3.create_bucket(Bucket=bucket)
    name = lam.create(S3_HANDLER, Timeout=30)
    arn = lam.client.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
    lam.client.add_permission(FunctionName=name, StatementId="s3", Action="lambda:InvokeFunction",
                              Principal="s3.amazonaws.com", SourceArn=f"arn:aws:s3:::{bucket}",
                              SourceAccount=lam.server.account_id)
    policy = json.loads(lam.client.get_policy(FunctionName=name)["Policy"])
    assert policy["Statement"][0]["Principal"] == {"Service": "s3.amazonaws.com"}
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
        "LambdaFunctionConfigurations": [{
            "LambdaFunctionArn": arn, "Events": ["s3:ObjectCreated:*"],
            "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "incoming/"}]}}}]})
    s3.put_object(Bucket=bucket, Key="incoming/a.txt", Body=b"hello world")
    s3.put_object(Bucket=bucket, Key="other/b.txt", Body=b"ignored")
    deadline = time.monotonic() + 60
    result = None
    while time.monotonic() < deadline:
        try:
            result = json.loads(s3.get_object(Bucket=bucket, Key="processed/a.txt")["Body"].read())
            break
        except ClientError:
            time.sleep(0.3)
    assert result == {"event": "ObjectCreated:Put", "size": 11}
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert "processed/b.txt" not in keys
    # Without the permission, S3's events are not delivered.
    lam.client.remove_permission(FunctionName=name, StatementId="s3")
    with pytest.raises(ClientError):
        lam.client.get_policy(FunctionName=name)
    s3.put_object(Bucket=bucket, Key="incoming/c.txt", Body=b"x")
    time.sleep(3)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert "processed/c.txt" not in keys


URL_HANDLER = """
import base64, json
def handler(event, context):
    if event["rawPath"] == "/json":
        return {"plain": True, "method": event["requestContext"]["http"]["method"]}
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    return {"statusCode": 201, "headers": {"x-echo": event["headers"].get("x-test", "")},
            "cookies": ["a=1"], "body": json.dumps({"path": event["rawPath"],
            "query": event.get("queryStringParameters"), "body": body, "version": event["version"],
            "cookies": event.get("cookies")})}
"""


def signed(url: str, access_key_id: str, secret: str) -> urllib.request.Request:
    """A GET signed with SigV4 for the lambda service, as an AWS_IAM function URL expects."""
    request = AWSRequest(method="GET", url=url)
    SigV4Auth(Credentials(access_key_id, secret), "lambda", "us-east-1").add_auth(request)
    return urllib.request.Request(url, headers=dict(request.headers.items()))


def test_function_url(lam: Lambda) -> None:
    name = lam.create(URL_HANDLER)
    config = lam.client.create_function_url_config(FunctionName=name, AuthType="NONE")
    url = config["FunctionUrl"]
    lam.client.add_permission(FunctionName=name, StatementId="public-url", Action="lambda:InvokeFunctionUrl",
                              Principal="*", FunctionUrlAuthType="NONE")  # as AWS's console adds it
    assert lam.client.get_function_url_config(FunctionName=name)["FunctionUrl"] == url
    request = urllib.request.Request(url + "items/7?color=red&color=blue", data=b"payload", method="POST",
                                     headers={"x-test": "yes", "Cookie": "c=3", "Content-Type": "text/plain"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 201
        assert response.headers["x-echo"] == "yes" and response.headers["set-cookie"] == "a=1"
        doc = json.loads(response.read())
    assert doc == {"path": "/items/7", "query": {"color": "red,blue"}, "body": "payload", "version": "2.0",
                   "cookies": ["c=3"]}
    with urllib.request.urlopen(url + "json", timeout=30) as response:
        assert response.headers["content-type"] == "application/json"
        assert json.loads(response.read()) == {"plain": True, "method": "GET"}
    with pytest.raises(ClientError) as caught:
        lam.client.create_function_url_config(FunctionName=name, AuthType="NONE")
    assert caught.value.response["Error"]["Code"] == "ResourceConflictException"
    lam.client.update_function_url_config(FunctionName=name, AuthType="AWS_IAM")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url + "json", timeout=30)
    assert refused.value.code == 403
    root = lam.server.root
    assert root is not None
    with urllib.request.urlopen(signed(url + "json", root.access_key_id, root.secret_access_key), timeout=30) as ok:
        assert json.loads(ok.read()) == {"plain": True, "method": "GET"}
    with pytest.raises(urllib.error.HTTPError) as tampered:
        urllib.request.urlopen(signed(url + "json", root.access_key_id, "not-the-secret"), timeout=30)
    assert tampered.value.code == 403
    lam.client.delete_function_url_config(FunctionName=name)
    with pytest.raises(urllib.error.HTTPError) as gone:
        urllib.request.urlopen(url + "json", timeout=30)
    assert gone.value.code == 404
