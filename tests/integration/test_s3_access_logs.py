"""Server access logs delivered for real by a ``minicloud up`` that flushes every second
(MINICLOUD_S3_ACCESS_LOG_SECONDS=1) and has one S3 worker: log objects appear in the target bucket,
named as S3 names them, and their records parse back into S3's fields."""

from __future__ import annotations

import http.client
import json
import re
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.test_s3 import other_account
from tests.support.aws import new_bucket
from tests.support.polling import eventually
from tests.support.processes import s3_workers, serving_pid
from tests.support.server import MinicloudServer

FIELD_NAMES = ("bucket_owner", "bucket", "time", "remote_ip", "requester", "request_id", "operation", "key",
               "request_uri", "status", "error_code", "bytes_sent", "object_size", "total_time", "turn_around_time",
               "referer", "user_agent", "version_id", "host_id", "signature_version", "cipher_suite", "auth_type",
               "host_header", "tls_version", "access_point_arn", "acl_required")
FIELDS = re.compile(r'\[[^\]]*\]|"(?:[^"\\]|\\.)*"|\S+')
SIMPLE_KEY = re.compile(r"\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}-[0-9A-F]{16}")


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MinicloudServer]:
    server = MinicloudServer(Path(tmp_path_factory.mktemp("access-logs")), env={
        "MINICLOUD_S3_ACCESS_LOG_SECONDS": "1", "MINICLOUD_S3_WORKERS": "1", "MINICLOUD_ENGINE": "false",
        "MINICLOUD_REGIONS": "us-east-1=us-east-1a,us-east-1b,us-east-1c;eu-west-1=eu-west-1a"})
    server.start()
    yield server
    server.stop()


@pytest.fixture
def s3(srv: MinicloudServer) -> Any:
    return srv.client("s3")


def allow_log_delivery(s3: Any, target: str, source: str | None = None) -> None:
    """The bucket policy S3's documentation gives a target bucket for server access logs."""
    statement: dict[str, Any] = {"Effect": "Allow", "Principal": {"Service": "logging.s3.amazonaws.com"},
                                 "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{target}/*"}
    if source is not None:
        statement["Condition"] = {"ArnLike": {"aws:SourceArn": f"arn:aws:s3:::{source}"}}
    s3.put_bucket_policy(Bucket=target, Policy=json.dumps({"Version": "2012-10-17", "Statement": [statement]}))




def log_objects(s3: Any, target: str, prefix: str = "") -> dict[str, str]:
    listed = s3.list_objects_v2(Bucket=target, Prefix=prefix).get("Contents", [])
    return {o["Key"]: s3.get_object(Bucket=target, Key=o["Key"])["Body"].read().decode() for o in listed}


def all_records(objects: dict[str, str]) -> list[dict[str, str]]:
    found = []
    for text in objects.values():
        for line in text.splitlines():
            values = FIELDS.findall(line)
            assert len(values) >= len(FIELD_NAMES), line  # (S3 may add fields at the end)
            found.append(dict(zip(FIELD_NAMES, values, strict=False)))
    return found


def records(objects: dict[str, str]) -> dict[str, dict[str, str]]:
    """The records of the log objects by request id (a copy's: its PUT half's)."""
    return {r["request_id"]: r for r in all_records(objects) if r["operation"] != "REST.COPY.OBJECT_GET"}


def delivered(s3: Any, target: str, request_ids: list[str], prefix: str = "") -> dict[str, dict[str, str]]:
    """The records of ``request_ids``, once all of them are in ``target``."""
    def check() -> dict[str, dict[str, str]] | None:
        found = records(log_objects(s3, target, prefix))
        return found if all(r in found for r in request_ids) else None
    result: dict[str, dict[str, str]] = eventually(check)
    return result


def rid(answer: dict[str, Any]) -> str:
    return str(answer["ResponseMetadata"]["RequestId"])


def failed_rid(call: Callable[[], Any]) -> tuple[str, str]:
    with pytest.raises(ClientError) as err:
        call()
    return str(err.value.response["ResponseMetadata"]["RequestId"]), str(err.value.response["Error"]["Code"])


def test_records_are_delivered_as_s3_writes_them(srv: MinicloudServer, s3: Any) -> None:
    source, target = new_bucket(s3, "logged"), new_bucket(s3, "logs")
    allow_log_delivery(s3, target, source)
    srv.aws("s3api", "put-bucket-logging", "--bucket", source, "--bucket-logging-status", json.dumps(
        {"LoggingEnabled": {"TargetBucket": target, "TargetPrefix": "logs/"}}))
    assert srv.aws_json("s3api", "get-bucket-logging", "--bucket", source) == {
        "LoggingEnabled": {"TargetBucket": target, "TargetPrefix": "logs/"}}
    body = b"hello, access logs"
    put = s3.put_object(Bucket=source, Key="dir/a b.txt", Body=body)
    get = s3.get_object(Bucket=source, Key="dir/a b.txt")
    assert get["Body"].read() == body
    ranged = s3.get_object(Bucket=source, Key="dir/a b.txt", Range="bytes=0-4")
    assert ranged["Body"].read() == body[:5]
    head = s3.head_object(Bucket=source, Key="dir/a b.txt")
    missing, error = failed_rid(lambda: s3.get_object(Bucket=source, Key="nothing"))
    assert error == "NoSuchKey"
    listing = s3.list_objects_v2(Bucket=source, Prefix="dir/")
    copy = s3.copy_object(Bucket=source, Key="copy", CopySource={"Bucket": source, "Key": "dir/a b.txt"})
    versioning = s3.get_bucket_versioning(Bucket=source)
    s3.put_object(Bucket=target, Key="not-logged", Body=b"x")  # (the target's own requests are not logged)

    ids = [rid(a) for a in (put, get, ranged, head, listing, copy, versioning)] + [missing]
    found = delivered(s3, target, ids, "logs/")
    owner = s3.get_bucket_acl(Bucket=source)["Owner"]["ID"]
    for record in found.values():
        assert record["bucket_owner"] == owner and record["bucket"] == source
        assert record["requester"] == owner  # the account's root: its canonical user id
        stamp = datetime.strptime(record["time"], "[%d/%b/%Y:%H:%M:%S %z]")
        assert abs(datetime.now(UTC) - stamp) < timedelta(minutes=5)
        assert record["remote_ip"] == "127.0.0.1" and record["host_header"] == f"127.0.0.1:{srv.port}"
        assert (record["signature_version"], record["auth_type"]) == ("SigV4", "AuthHeader")
        assert record["user_agent"].startswith(('"Boto3/', '"aws-cli/')) and record["referer"] == '"-"'
        assert (record["cipher_suite"], record["tls_version"], record["access_point_arn"]) == ("-", "-", "-")
        assert record["acl_required"] == "-" and record["host_id"] != "-"
        assert int(record["total_time"]) >= 0 and int(record["turn_around_time"]) >= 0
    assert {r["request_id"]: r["operation"] for r in found.values() if r["request_id"] in ids} == {
        ids[0]: "REST.PUT.OBJECT", ids[1]: "REST.GET.OBJECT", ids[2]: "REST.GET.OBJECT", ids[3]: "REST.HEAD.OBJECT",
        ids[4]: "REST.GET.BUCKET", ids[5]: "REST.COPY.OBJECT", ids[6]: "REST.GET.VERSIONING",
        ids[7]: "REST.GET.OBJECT"}
    written = found[ids[0]]
    assert (written["key"], written["status"], written["error_code"]) == ("dir/a%20b.txt", "200", "-")
    assert written["request_uri"] == f'"PUT /{source}/dir/a%20b.txt HTTP/1.1"'
    assert (written["bytes_sent"], written["object_size"]) == ("-", str(len(body)))
    read = found[ids[1]]
    assert (read["bytes_sent"], read["object_size"], read["version_id"]) == (str(len(body)), str(len(body)), "-")
    assert (found[ids[2]]["status"], found[ids[2]]["bytes_sent"], found[ids[2]]["object_size"]) == (
        "206", "5", str(len(body)))
    assert (found[ids[3]]["bytes_sent"], found[ids[3]]["object_size"]) == ("-", str(len(body)))
    assert (found[missing]["status"], found[missing]["error_code"], found[missing]["key"]) == ("404", "NoSuchKey",
                                                                                               "nothing")
    assert int(found[missing]["bytes_sent"]) > 0  # the error document
    assert found[ids[4]]["key"] == "-" and found[ids[4]]["request_uri"].startswith(f'"GET /{source}?list-type=2')
    assert found[ids[6]]["request_uri"] == f'"GET /{source}?versioning HTTP/1.1"'
    # The AWS CLI's get-bucket-logging came after the configuration: it is in the log too (delivered
    # by the S3 worker when its connection, opened with a read, went there).
    eventually(lambda: any(r["operation"] == "REST.GET.LOGGING_STATUS" and r["user_agent"].startswith('"aws-cli/')
                           for r in records(log_objects(s3, target, "logs/")).values()))
    # A copy is two records: its PUT, and its GET of the source (both this bucket's here).
    copy_get = [r for r in all_records(log_objects(s3, target, "logs/")) if r["operation"] == "REST.COPY.OBJECT_GET"]
    assert [(r["request_id"], r["key"]) for r in copy_get] == [(ids[5], "dir/a%20b.txt")]

    keys = list(log_objects(s3, target, "logs/"))
    assert keys and all(SIMPLE_KEY.fullmatch(k.removeprefix("logs/")) for k in keys)
    log_object = s3.head_object(Bucket=target, Key=keys[0])  # stored as objects are: encrypted, text
    assert log_object["ServerSideEncryption"] == "AES256" and log_object["ContentType"] == "text/plain"
    assert all(r["bucket"] == source for r in records(log_objects(s3, target, "logs/")).values())


def test_partitioned_keys_anonymous_and_presigned_requests(srv: MinicloudServer, s3: Any) -> None:
    source, target = new_bucket(s3, "parted"), new_bucket(s3, "plogs")
    allow_log_delivery(s3, target)
    s3.put_bucket_logging(Bucket=source, BucketLoggingStatus={"LoggingEnabled": {
        "TargetBucket": target, "TargetPrefix": "p/",
        "TargetObjectKeyFormat": {"PartitionedPrefix": {"PartitionDateSource": "EventTime"}}}})
    s3.put_object(Bucket=source, Key="public", Body=b"for all", ACL="public-read")
    v4 = srv.client("s3", signature_version="s3v4")
    url = v4.generate_presigned_url("get_object", Params={"Bucket": source, "Key": "public"})
    with urllib.request.urlopen(url, timeout=10) as response:
        presigned = response.headers["x-amz-request-id"]
    v2 = srv.client("s3", signature_version="s3")
    with urllib.request.urlopen(v2.generate_presigned_url("get_object", Params={"Bucket": source, "Key": "public"}),
                                timeout=10) as response:
        legacy = response.headers["x-amz-request-id"]
    # (x- parameters: ignored by S3, but logged as part of the request URI)
    with urllib.request.urlopen(f"{srv.endpoint}/{source}/public?x-user=johndoe", timeout=10) as response:
        anonymous = response.headers["x-amz-request-id"]
    try:
        urllib.request.urlopen(f"{srv.endpoint}/{source}", timeout=10)
        raise AssertionError("an anonymous listing was allowed")
    except urllib.error.HTTPError as denied:
        assert denied.code == 403
        refused = denied.headers["x-amz-request-id"]

    found = delivered(s3, target, [presigned, legacy, anonymous, refused], "p/")
    assert (found[presigned]["auth_type"], found[presigned]["signature_version"]) == ("QueryString", "SigV4")
    assert (found[legacy]["auth_type"], found[legacy]["signature_version"]) == ("QueryString", "SigV2")
    assert found[anonymous]["request_uri"] == f'"GET /{source}/public?x-user=johndoe HTTP/1.1"'
    assert found[anonymous]["requester"] == "-" and found[anonymous]["signature_version"] == "-"
    assert found[anonymous]["auth_type"] == "-"
    assert found[anonymous]["acl_required"] == "Yes"  # (the object's public-read grant allowed it)
    assert (found[refused]["operation"], found[refused]["status"], found[refused]["error_code"]) == (
        "REST.GET.BUCKET", "403", "AccessDenied")
    account = s3.get_bucket_acl(Bucket=source)["Owner"]["DisplayName"]
    day = datetime.strptime(found[anonymous]["time"], "[%d/%b/%Y:%H:%M:%S %z]")
    pattern = re.compile(rf"p/{account}/us-east-1/{source}/{day:%Y/%m/%d}/{day:%Y-%m-%d}-00-00-00-[0-9A-F]{{16}}")
    keys = list(log_objects(s3, target))
    assert keys and all(pattern.fullmatch(k) for k in keys), keys


def test_records_from_the_s3_worker_are_delivered(srv: MinicloudServer, s3: Any) -> None:
    """Connections that open with a signed read go to the worker as often as to the server: each
    process delivers the records of the requests it served."""
    source, target = new_bucket(s3, "spread"), new_bucket(s3, "slogs")
    allow_log_delivery(s3, target, source)
    s3.put_bucket_logging(Bucket=source, BucketLoggingStatus={"LoggingEnabled": {
        "TargetBucket": target, "TargetPrefix": ""}})
    s3.put_object(Bucket=source, Key="k", Body=b"spread")
    workers = s3_workers(srv)
    assert len(workers) == 1 and srv.process is not None
    served: dict[int | None, list[str]] = {}
    for _ in range(8):
        parts = urllib.parse.urlsplit(s3.generate_presigned_url("get_object", Params={"Bucket": source, "Key": "k"}))
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
        conn.request("GET", f"{parts.path}?{parts.query}")
        response = conn.getresponse()
        assert (response.status, response.read()) == (200, b"spread")
        served.setdefault(serving_pid(srv, conn), []).append(str(response.headers["x-amz-request-id"]))
        conn.close()
    assert set(served) == {srv.process.pid, workers[0]}
    found = delivered(s3, target, [r for ids in served.values() for r in ids])
    assert {found[r]["operation"] for ids in served.values() for r in ids} == {"REST.GET.OBJECT"}


def test_logs_go_only_where_the_logging_service_may_write(s3: Any) -> None:
    """A target whose policy and ACL do not let logging.s3.amazonaws.com write receives nothing;
    its ACL's log-delivery grant (or a policy) lets the next records in."""
    closed_source, closed = new_bucket(s3, "closed-src"), new_bucket(s3, "closed")
    open_source, opened = new_bucket(s3, "open-src"), new_bucket(s3, "opened")
    allow_log_delivery(s3, opened, open_source)
    for source, target in ((closed_source, closed), (open_source, opened)):
        s3.put_bucket_logging(Bucket=source, BucketLoggingStatus={"LoggingEnabled": {
            "TargetBucket": target, "TargetPrefix": "l/"}})
    # (This client's connection opened with a write: its requests are all the server's, one buffer.)
    lost = rid(s3.put_object(Bucket=closed_source, Key="k", Body=b"x"))
    seen = rid(s3.put_object(Bucket=open_source, Key="k", Body=b"x"))
    delivered(s3, opened, [seen])  # the same delivery pass took the closed one's records first
    assert s3.list_objects_v2(Bucket=closed).get("KeyCount") == 0
    s3.put_bucket_acl(Bucket=closed, ACL="log-delivery-write")
    later = rid(s3.put_object(Bucket=closed_source, Key="k2", Body=b"x"))
    found = delivered(s3, closed, [later])
    assert lost not in found


def test_logging_configuration_across_regions(srv: MinicloudServer, s3: Any) -> None:
    source = new_bucket(s3, "here")
    elsewhere = f"there-{uuid.uuid4().hex[:10]}"
    srv.client("s3", region="eu-west-1").create_bucket(
        Bucket=elsewhere, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    with pytest.raises(ClientError) as err:
        s3.put_bucket_logging(Bucket=source, BucketLoggingStatus={"LoggingEnabled": {
            "TargetBucket": elsewhere, "TargetPrefix": "l/"}})
    assert err.value.response["Error"]["Code"] == "CrossLocationLoggingProhibitted"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert err.value.response["Error"]["TargetBucketLocation"] == "eu-west-1"
    with pytest.raises(ClientError) as err:
        s3.put_bucket_logging(Bucket=source, BucketLoggingStatus={"LoggingEnabled": {
            "TargetBucket": new_bucket(other_account(srv), "theirs"), "TargetPrefix": "l/"}})
    assert err.value.response["Error"]["Code"] == "InvalidTargetBucketForLogging"


def test_a_clean_stop_delivers_what_is_buffered(tmp_path: Path) -> None:
    """With an hour between deliveries, the records of a stopping server are delivered at its stop."""
    server = MinicloudServer(tmp_path / "data", env={"MINICLOUD_S3_ACCESS_LOG_SECONDS": "3600",
                                                      "MINICLOUD_ENGINE": "false"})
    try:
        server.start()
        s3 = server.client("s3")
        source, target = new_bucket(s3, "stopping"), new_bucket(s3, "stoplogs")
        allow_log_delivery(s3, target, source)
        s3.put_bucket_logging(Bucket=source, BucketLoggingStatus={"LoggingEnabled": {
            "TargetBucket": target, "TargetPrefix": ""}})
        request = rid(s3.put_object(Bucket=source, Key="k", Body=b"x"))
        assert s3.list_objects_v2(Bucket=target).get("KeyCount") == 0
        assert server.stop() == 0
        server.start()
        s3 = server.client("s3")
        found = records(log_objects(s3, target))
        assert found[request]["operation"] == "REST.PUT.OBJECT"
    finally:
        server.stop()


def test_website_endpoint_requests_are_logged(srv: MinicloudServer, s3: Any) -> None:
    """Requests to a bucket's website endpoint are records too: anonymous, WEBSITE.<method>.OBJECT
    of the object read (the index document for "/"), with the answer's status and error code."""
    site, target = new_bucket(s3, "site"), new_bucket(s3, "sitelogs")
    allow_log_delivery(s3, target)
    s3.put_bucket_logging(Bucket=site, BucketLoggingStatus={"LoggingEnabled": {"TargetBucket": target,
                                                                               "TargetPrefix": "web/"}})
    s3.put_public_access_block(Bucket=site, PublicAccessBlockConfiguration={
        "BlockPublicAcls": False, "IgnorePublicAcls": False, "BlockPublicPolicy": False,
        "RestrictPublicBuckets": False})
    s3.put_bucket_policy(Bucket=site, Policy=json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{site}/*"}]}))
    s3.put_bucket_website(Bucket=site, WebsiteConfiguration={"IndexDocument": {"Suffix": "index.html"},
                                                             "ErrorDocument": {"Key": "error.html"}})
    s3.put_object(Bucket=site, Key="index.html", Body=b"<h1>home</h1>", ContentType="text/html")
    s3.put_object(Bucket=site, Key="error.html", Body=b"<h1>oops</h1>", ContentType="text/html")

    def visit(method: str, path: str) -> tuple[int, str]:
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
        try:
            conn.request(method, path, headers={"Host": f"{site}.s3-website-us-east-1.localhost:{srv.port}",
                                                "User-Agent": "website-visitor/1.0"})
            response = conn.getresponse()
            response.read()
            return response.status, str(response.headers["x-amz-request-id"])
        finally:
            conn.close()

    (home_status, home), (missing_status, missing), (head_status, head) = (
        visit("GET", "/"), visit("GET", "/nope.html"), visit("HEAD", "/index.html"))
    assert (home_status, missing_status, head_status) == (200, 403, 200)  # (no s3:ListBucket: 403, as S3)
    found = delivered(s3, target, [home, missing, head], "web/")
    assert (found[home]["operation"], found[home]["key"], found[home]["status"]) == (
        "WEBSITE.GET.OBJECT", "index.html", "200")
    assert found[home]["request_uri"] == '"GET / HTTP/1.1"' and found[home]["bytes_sent"] == "13"
    assert found[home]["requester"] == "-" and found[home]["auth_type"] == "-"
    assert found[home]["user_agent"] == '"website-visitor/1.0"'
    assert (found[missing]["operation"], found[missing]["key"], found[missing]["status"],
            found[missing]["error_code"]) == ("WEBSITE.GET.OBJECT", "nope.html", "403", "AccessDenied")
    assert (found[head]["operation"], found[head]["status"], found[head]["bytes_sent"]) == (
        "WEBSITE.HEAD.OBJECT", "200", "-")
