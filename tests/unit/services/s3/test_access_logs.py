"""Server access logs, requester pays and transfer acceleration: the pure parts (record format, log
object keys, configuration checks, who may receive logs, who pays)."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from minicloud.aws.context import RequestContext
from minicloud.aws.request import AwsRequest, Headers
from minicloud.iam.authorizer import Authorizer
from minicloud.iam.identity import ANONYMOUS, Principal, PrincipalKind
from minicloud.services.s3.accelerate import check_status
from minicloud.services.s3.access_log_format import Access, log_key, log_time, operation_name
from minicloud.services.s3.access_logs import (
    AccessLogBuffer,
    Record,
    Source,
    _batches,
    copy_source,
    logging_service_may_write,
    undeliverable,
)
from minicloud.services.s3.acl import LOG_DELIVERY
from minicloud.services.s3.bucket_logging import check_grant, check_key_format, check_target
from minicloud.services.s3.errors import (
    AccessControlListNotSupported,
    AccessDenied,
    CrossLocationLoggingProhibitted,
    InvalidRequest,
    InvalidTargetBucketForLogging,
    MalformedXML,
    UnresolvableGrantByEmailAddress,
)
from minicloud.services.s3.payer import CHARGED, REQUESTER_PAYS, check_requester_pays
from minicloud.services.s3.store import Bucket

NOW = datetime(2026, 2, 6, 0, 0, 38, tzinfo=UTC)
OWNER, OTHER = "111111111111", "222222222222"
SOURCE_BUCKET = Bucket(name="src", account_id=OWNER, region="us-east-1", created_at=NOW, versioning=None,
                       policy=None, tags=None, cors=None)
TARGET = replace(SOURCE_BUCKET, name="logs")
SOURCE = Source("src", OWNER, "us-east-1", json.dumps({"TargetBucket": "logs", "TargetPrefix": "p/"}))
FIELDS = re.compile(r'\[[^\]]*\]|"(?:[^"\\]|\\.)*"|\S+')


def policy(statement: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "logging.s3.amazonaws.com"}, "Action": "s3:PutObject",
        "Resource": "arn:aws:s3:::logs/*", **statement}]})


def test_operation_names_are_s3s() -> None:
    assert operation_name("PutObject", "PUT") == "REST.PUT.OBJECT"
    assert operation_name("GetBucketVersioning", "GET") == "REST.GET.VERSIONING"
    assert operation_name("GetBucketLogging", "GET") == "REST.GET.LOGGING_STATUS"
    assert operation_name("ListObjectsV2", "GET") == "REST.GET.BUCKET"
    assert operation_name("CopyObject", "PUT") == "REST.COPY.OBJECT"
    assert operation_name("UploadPartCopy", "PUT") == "REST.COPY.PART"
    assert operation_name("DeleteObjects", "POST") == "REST.POST.MULTI_OBJECT_DELETE"
    assert operation_name("GetBucketPolicyStatus", "GET") == "REST.GET.POLICY_STATUS"  # (not in the table)


def test_a_record_is_one_line_of_the_documented_fields() -> None:
    access = Access(bucket_owner="79a5", bucket="src", time=NOW, remote_ip="192.0.2.3", requester=None,
                    request_id="3E57", operation="REST.GET.OBJECT", key="photos/a b.jpg",
                    request_uri='GET /src/photos/a%20b.jpg?x-user="me" HTTP/1.1', status=404,
                    error_code="NoSuchKey", bytes_sent=0, object_size=None, total_ms=7, turnaround_ms=3,
                    referer=None, user_agent="curl/8.0\nforged", version_id=None, host_id="s9lz=",
                    signature_version=None, auth_type=None, host="src.s3.localhost", acl_required=True)
    line = access.line()
    assert line.endswith("\n") and line.count("\n") == 1
    fields = FIELDS.findall(line)
    assert fields == [
        "79a5", "src", "[06/Feb/2026:00:00:38 +0000]", "192.0.2.3", "-", "3E57", "REST.GET.OBJECT",
        "photos/a%20b.jpg", '"GET /src/photos/a%20b.jpg?x-user=\\"me\\" HTTP/1.1"', "404", "NoSuchKey", "-", "-",
        "7", "3", '"-"', '"curl/8.0\\nforged"', "-", "s9lz=", "-", "-", "-", "src.s3.localhost", "-", "-", "Yes"]
    assert log_time(datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)) == "[31/Dec/2026:23:59:59 +0000]"


def test_log_object_keys() -> None:
    when = datetime(2026, 2, 6, 13, 5, 9, tzinfo=UTC)
    assert log_key("logs/", None, OWNER, "us-east-1", "src", when, "ABC") == "logs/2026-02-06-13-05-09-ABC"
    assert log_key("", {"SimplePrefix": {}}, OWNER, "us-east-1", "src", when, "ABC") == "2026-02-06-13-05-09-ABC"
    event = {"PartitionedPrefix": {"PartitionDateSource": "EventTime"}}
    assert (log_key("p/", event, OWNER, "us-east-1", "src", when, "ABC")
            == f"p/{OWNER}/us-east-1/src/2026/02/06/2026-02-06-00-00-00-ABC")
    assert (log_key("p/", {"PartitionedPrefix": {}}, OWNER, "us-east-1", "src", when, "ABC")
            == f"p/{OWNER}/us-east-1/src/2026/02/06/2026-02-06-00-00-00-ABC")  # EventTime is the default
    delivery = {"PartitionedPrefix": {"PartitionDateSource": "DeliveryTime"}}
    assert (log_key("p/", delivery, OWNER, "us-east-1", "src", when, "ABC")
            == f"p/{OWNER}/us-east-1/src/2026/02/06/2026-02-06-13-05-09-ABC")


def test_event_time_batches_are_per_day() -> None:
    late, early = Record(NOW - timedelta(minutes=1), "a\n"), Record(NOW, "b\n")
    assert _batches([late, early], NOW, by_day=False) == [(NOW, [late, early])]
    days = _batches([late, early], NOW, by_day=True)
    assert [(when.day, [r.line for r in batch]) for when, batch in days] == [(5, ["a\n"]), (6, ["b\n"])]


def test_buffer_keeps_at_most_its_limit() -> None:
    buffer = AccessLogBuffer(limit=2)
    for line in ("a", "b", "c"):
        buffer.add(SOURCE, Record(NOW, line))
    assert len(buffer) == 2 and buffer.dropped == 1
    assert [r.line for r in buffer.take()[SOURCE]] == ["a", "b"]
    assert len(buffer) == 0 and buffer.take() == {}


def test_key_formats_and_grants_are_checked() -> None:
    assert check_key_format(None) is None
    assert check_key_format({"SimplePrefix": {}}) == {"SimplePrefix": {}}
    assert check_key_format({"PartitionedPrefix": {"PartitionDateSource": "DeliveryTime"}}) == {
        "PartitionedPrefix": {"PartitionDateSource": "DeliveryTime"}}
    for bad in ({}, {"SimplePrefix": {}, "PartitionedPrefix": {}}, {"PartitionedPrefix": {"PartitionDateSource": "x"}}):
        with pytest.raises(MalformedXML):
            check_key_format(bad)
    accounts = {f"email:{'a@example.com'}": OTHER}
    grant = check_grant({"Grantee": {"Type": "AmazonCustomerByEmail", "EmailAddress": "A@example.com"},
                         "Permission": "READ"}, accounts)
    assert grant["Grantee"]["Type"] == "CanonicalUser" and grant["Permission"] == "READ"
    with pytest.raises(UnresolvableGrantByEmailAddress):
        check_grant({"Grantee": {"Type": "AmazonCustomerByEmail", "EmailAddress": "b@example.com"},
                     "Permission": "READ"}, accounts)
    for bad_grant in ({"Grantee": {"Type": "CanonicalUser", "ID": "x"}, "Permission": "READ_ACP"},
                      {"Grantee": {"Type": "Nobody"}, "Permission": "READ"}):
        with pytest.raises(MalformedXML):
            check_grant(bad_grant, accounts)


def test_the_target_must_exist_and_be_the_owners_in_the_same_region() -> None:
    with pytest.raises(InvalidTargetBucketForLogging) as missing:
        check_target(SOURCE_BUCKET, None, "logs", [])
    assert missing.value.message == "The target bucket for logging does not exist"
    with pytest.raises(InvalidTargetBucketForLogging):
        check_target(SOURCE_BUCKET, replace(TARGET, account_id=OTHER), "logs", [])
    with pytest.raises(CrossLocationLoggingProhibitted) as elsewhere:
        check_target(SOURCE_BUCKET, replace(TARGET, region="eu-west-1"), "logs", [])
    assert elsewhere.value.status == 403
    enforced = replace(TARGET, ownership=json.dumps({"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}))
    grants = [{"Grantee": {"Type": "Group", "URI": LOG_DELIVERY}, "Permission": "READ"}]
    with pytest.raises(AccessControlListNotSupported):
        check_target(SOURCE_BUCKET, enforced, "logs", grants)
    assert check_target(SOURCE_BUCKET, enforced, "logs", []) is enforced


def test_who_may_receive_logs() -> None:
    assert not logging_service_may_write(TARGET, "p/k", SOURCE)  # no policy, the default ACL
    assert logging_service_may_write(replace(TARGET, policy=policy({})), "p/k", SOURCE)
    conditioned = policy({"Condition": {"ArnLike": {"aws:SourceArn": "arn:aws:s3:::other"}}})
    assert not logging_service_may_write(replace(TARGET, policy=conditioned), "p/k", SOURCE)
    account = policy({"Condition": {"StringEquals": {"aws:SourceAccount": OWNER}}})
    assert logging_service_may_write(replace(TARGET, policy=account), "p/k", SOURCE)
    denied = json.loads(policy({}))
    denied["Statement"].append({"Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
                                "Resource": "arn:aws:s3:::logs/p/*"})
    granted = json.dumps([{"Grantee": {"Type": "Group", "URI": LOG_DELIVERY}, "Permission": "WRITE"}])
    assert not logging_service_may_write(replace(TARGET, policy=json.dumps(denied), acl=granted), "p/k", SOURCE)
    assert logging_service_may_write(replace(TARGET, acl=granted), "p/k", SOURCE)
    enforced = json.dumps({"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})
    assert not logging_service_may_write(replace(TARGET, acl=granted, ownership=enforced), "p/k", SOURCE)


def test_targets_that_never_receive_logs() -> None:
    assert undeliverable(TARGET, SOURCE) is None
    assert undeliverable(None, SOURCE) is not None
    assert undeliverable(replace(TARGET, object_lock=json.dumps({"enabled": True})), SOURCE) is not None
    assert undeliverable(replace(TARGET, request_payment=REQUESTER_PAYS), SOURCE) is not None
    kms = [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]
    assert undeliverable(replace(TARGET, encryption=json.dumps(kms)), SOURCE) is not None
    aes = [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
    assert undeliverable(replace(TARGET, encryption=json.dumps(aes)), SOURCE) is None


def test_copy_sources() -> None:
    assert copy_source({"CopySource": "/src/a%20b.txt?versionId=v1"}) == ("src", "a b.txt", "v1")
    assert copy_source({"CopySource": "src/k"}) == ("src", "k", None)
    assert copy_source({}) is None


def context(principal: Principal, headers: dict[str, str] | None = None, query: str = "") -> RequestContext:
    request = AwsRequest("GET", "/src/k", query, Headers(list((headers or {}).items())))
    return RequestContext("id", "s3", "GetObject", "us-east-1", principal, request, NOW, Authorizer(), AccessDenied)


def test_requester_pays() -> None:
    paying = replace(SOURCE_BUCKET, request_payment=REQUESTER_PAYS)
    other = Principal(PrincipalKind.ROOT, OTHER, f"arn:aws:iam::{OTHER}:root", OTHER)
    with pytest.raises(AccessDenied):
        check_requester_pays(context(other), paying)
    with pytest.raises(AccessDenied):
        check_requester_pays(context(ANONYMOUS, {"x-amz-request-payer": "requester"}), paying)
    ctx = context(other, {"x-amz-request-payer": "requester"})
    check_requester_pays(ctx, paying)
    assert ctx.extra[CHARGED]
    presigned = context(other, query="X-Amz-Signature=s&x-amz-request-payer=requester")
    check_requester_pays(presigned, paying)
    assert presigned.extra[CHARGED]
    unpaid = context(other)
    check_requester_pays(unpaid, SOURCE_BUCKET)  # the owner pays: nothing asked
    assert CHARGED not in unpaid.extra


def test_acceleration_states() -> None:
    assert check_status("photos", {"Status": "Enabled"}) == "Enabled"
    with pytest.raises(MalformedXML):
        check_status("photos", {"Status": "On"})
    with pytest.raises(InvalidRequest):
        check_status("my.photos", {"Status": "Suspended"})
