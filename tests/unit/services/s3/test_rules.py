"""Pure rules of S3 features: CORS matching, lifecycle validation and filters, notification
validation, ACL evaluation, virtual-host addressing, POST policy conditions."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from minicloud.aws.errors import ServiceError
from minicloud.aws.request import AwsRequest, Headers
from minicloud.iam.identity import ANONYMOUS, Principal, PrincipalKind, root_principal
from minicloud.services.s3 import acl, addressing, cors, events, lifecycle, post
from minicloud.services.s3.store import Bucket, ObjectRow

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def bucket(**kw: Any) -> Bucket:
    fields: dict[str, Any] = {"versioning": None, "policy": None, "tags": None, "cors": None, **kw}
    return Bucket("b", "111111111111", "us-east-1", NOW, **fields)


def row(key: str = "k", size: int = 10, tags: list[list[str]] | None = None) -> ObjectRow:
    return ObjectRow(1, "b", key, "null", True, False, size, '"e"', NOW, "STANDARD", "111111111111", "sha256:x",
                     None, None, None, json.dumps(tags) if tags else None)


def code(err: pytest.ExceptionInfo[ServiceError]) -> str:
    return type(err.value).code if hasattr(type(err.value), "code") else ""


def test_cors_matching() -> None:
    rules = [{"AllowedOrigins": ["https://*.example.com"], "AllowedMethods": ["GET"],
              "AllowedHeaders": ["x-amz-*"]}]
    b = bucket(cors=json.dumps(rules))
    assert cors.matching_rule(b, "https://app.example.com", "GET", ["X-Amz-Date"]) is not None
    assert cors.matching_rule(b, "https://app.example.org", "GET", []) is None
    assert cors.matching_rule(b, "https://app.example.com", "PUT", []) is None
    assert cors.matching_rule(b, "https://app.example.com", "GET", ["authorization"]) is None
    with pytest.raises(ServiceError):
        cors.check_rules([{"AllowedOrigins": ["*"], "AllowedMethods": ["PATCH"]}])


def test_lifecycle_filters_and_validation() -> None:
    flt = lifecycle.rule_filter({"Filter": {"And": {"Prefix": "logs/", "Tags": [{"Key": "t", "Value": "1"}],
                                                    "ObjectSizeGreaterThan": 5}}})
    assert lifecycle.matches(flt, row("logs/a", 10, [["t", "1"]]))
    assert not lifecycle.matches(flt, row("logs/a", 10, [["t", "2"]]))
    assert not lifecycle.matches(flt, row("logs/a", 3, [["t", "1"]]))
    assert not lifecycle.matches(flt, row("other", 10, [["t", "1"]]))
    assert lifecycle.matches(lifecycle.rule_filter({"Prefix": ""}), row())
    for bad in ({"Status": "Enabled", "Filter": {}},
                {"Status": "Enabled", "Filter": {}, "Expiration": {"Days": 1, "ExpiredObjectDeleteMarker": True}},
                {"Status": "Enabled", "Filter": {}, "NoncurrentVersionExpiration": {"NoncurrentDays": 0}}):
        with pytest.raises(ServiceError):
            lifecycle.check_rule(bad)
    lifecycle.check_rule({"Status": "Enabled", "Filter": {}, "Expiration": {"Date": datetime(2030, 1, 1)}})


def test_lifecycle_days_round_to_midnight() -> None:
    from minicloud.services.s3.expiry import LifecycleController

    async def release(_: list[str]) -> None:
        return None
    real = LifecycleController(None, release)  # type: ignore[arg-type]
    start = datetime(2026, 1, 1, 15, 30, tzinfo=UTC)
    assert real.due(start, 1) == datetime(2026, 1, 3, tzinfo=UTC)
    fast = LifecycleController(None, release, day_seconds=2.0)  # type: ignore[arg-type]
    assert fast.due(start, 3) == start + timedelta(seconds=6)


def test_notification_validation() -> None:
    arn = "arn:aws:lambda:us-east-1:111111111111:function:f"
    assert events.check_configuration({"LambdaFunctionConfigurations": [
        {"LambdaFunctionArn": arn, "Events": ["s3:ObjectCreated:*"]},
        {"LambdaFunctionArn": arn, "Events": ["s3:ObjectRemoved:*"]}]}, "us-east-1") == [arn, arn]
    overlapping = {"LambdaFunctionConfigurations": [
        {"LambdaFunctionArn": arn, "Events": ["s3:ObjectCreated:*"]},
        {"LambdaFunctionArn": arn, "Events": ["s3:ObjectCreated:Put"],
         "Filter": {"Key": {"FilterRules": [{"Name": "suffix", "Value": ".jpg"}]}}}]}
    with pytest.raises(ServiceError):
        events.check_configuration(overlapping, "us-east-1")
    disjoint = {"LambdaFunctionConfigurations": [
        {"LambdaFunctionArn": arn, "Events": ["s3:ObjectCreated:*"],
         "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "a/"}]}}},
        {"LambdaFunctionArn": arn, "Events": ["s3:ObjectCreated:*"],
         "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "b/"}]}}}]}
    events.check_configuration(disjoint, "us-east-1")
    with pytest.raises(ServiceError):
        events.check_configuration({"LambdaFunctionConfigurations": [
            {"LambdaFunctionArn": arn.replace("us-east-1", "eu-west-1"), "Events": ["s3:ObjectCreated:*"]}]},
            "us-east-1")


def test_acl_evaluation() -> None:
    owner = "111111111111"
    public = acl.canned_grants("public-read", owner, owner)
    assert acl.grants_allow(public, ANONYMOUS, "READ", ignore_public=False)
    assert not acl.grants_allow(public, ANONYMOUS, "READ", ignore_public=True)
    assert not acl.grants_allow(public, ANONYMOUS, "WRITE", ignore_public=False)
    user = Principal(PrincipalKind.USER, owner, f"arn:aws:iam::{owner}:user/u", "AIDA")
    private = acl.canned_grants("private", owner, owner)
    assert acl.grants_allow(private, root_principal(owner), "WRITE", ignore_public=False)
    assert not acl.grants_allow(private, user, "READ", ignore_public=False)  # users need IAM policies
    authenticated = acl.canned_grants("authenticated-read", owner, owner)
    assert acl.grants_allow(authenticated, user, "READ", ignore_public=False)
    assert not acl.grants_allow(authenticated, ANONYMOUS, "READ", ignore_public=False)
    enforced = bucket(ownership=json.dumps({"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}))
    with pytest.raises(ServiceError):
        acl.acl_for_write({"ACL": "public-read"}, enforced, owner)
    assert acl.acl_for_write({"ACL": "bucket-owner-full-control"}, enforced, owner) is None
    policy: dict[str, list[dict[str, Any]]] = {
        "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "*"}]}
    assert acl.is_public_policy(json.dumps(policy))
    policy["Statement"][0]["Condition"] = {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}
    assert not acl.is_public_policy(json.dumps(policy))


@pytest.mark.parametrize(("host", "path", "expected"), [
    ("mybucket.s3.amazonaws.com", "/k", "/mybucket/k"),
    ("my.dotted.bucket.s3.us-east-1.amazonaws.com", "/", "/my.dotted.bucket"),
    ("mybucket.localhost:4566", "/a/b", "/mybucket/a/b"),
    ("127.0.0.1:4566", "/b/k", "/b/k"),
    ("localhost:4566", "/b/k", "/b/k"),
    ("s3.amazonaws.com", "/b/k", "/b/k"),
])
def test_virtual_host_addressing(host: str, path: str, expected: str) -> None:
    request = AwsRequest("GET", path, headers=Headers([("host", host)]))
    addressing.readdress(request)
    assert request.path == expected
    assert request.signed_path == (path if expected != path else None)


def test_post_policy_conditions() -> None:
    policy = {"expiration": "2030-01-01T00:00:00Z",
              "conditions": [{"bucket": "b"}, ["starts-with", "$key", "up/"], ["content-length-range", 1, 10]]}
    post.check_policy(policy, {"key": "up/a"}, "b", 5, NOW)
    for fields, size in (({"key": "down/a"}, 5), ({"key": "up/a"}, 50), ({"key": "up/a", "extra": "1"}, 5)):
        with pytest.raises(ServiceError):
            post.check_policy(policy, fields, "b", size, NOW)
    with pytest.raises(ServiceError):
        post.check_policy({**policy, "expiration": "2020-01-01T00:00:00Z"}, {"key": "up/a"}, "b", 5, NOW)
    form = post.Form(b'--X\r\nContent-Disposition: form-data; name="key"\r\n\r\nk\r\n--X\r\n'
                     b'Content-Disposition: form-data; name="file"; filename="f.txt"\r\n'
                     b'Content-Type: text/plain\r\n\r\nbody\r\n--X--\r\n', "multipart/form-data; boundary=X")
    assert form.fields == {"key": "k"} and form.file == b"body" and form.filename == "f.txt"


@pytest.mark.parametrize("algorithm", ["CRC32", "CRC32C", "CRC64NVME"])
def test_crc_combine(algorithm: str) -> None:
    import os

    from minicloud.services.s3.checksums import Checksums, full_object

    def crc(data: bytes) -> str:
        summer = Checksums({algorithm})
        summer.update(data)
        return summer.values()[algorithm]
    pieces = [os.urandom(n) for n in (1000, 1, 4096, 77)]
    assert full_object(algorithm, [(crc(p), len(p)) for p in pieces]) == crc(b"".join(pieces))
