"""Transfer acceleration, requester pays and the logging configuration against a real ``minicloud
up``, driven by boto3, the AWS CLI and signed raw HTTP; and the reads Terraform's aws_s3_bucket
makes of a fresh bucket. (Log delivery itself: test_s3_access_logs.py.)"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import re
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from tests.integration.test_s3 import other_account, other_account_keys
from tests.support.aws import code, status
from tests.support.server import Keys, MinicloudServer


@pytest.fixture
def s3(server: MinicloudServer) -> Any:
    return server.client("s3")


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"cfg-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


def refused(call: Callable[[], Any]) -> pytest.ExceptionInfo[ClientError]:
    with pytest.raises(ClientError) as err:
        call()
    return err


def test_accelerate_configuration(s3: Any, bucket: str) -> None:
    fresh = s3.get_bucket_accelerate_configuration(Bucket=bucket)  # never set: no state, and no error
    assert fresh["ResponseMetadata"]["HTTPStatusCode"] == 200 and "Status" not in fresh
    s3.put_bucket_accelerate_configuration(Bucket=bucket, AccelerateConfiguration={"Status": "Enabled"})
    assert s3.get_bucket_accelerate_configuration(Bucket=bucket)["Status"] == "Enabled"
    s3.put_bucket_accelerate_configuration(Bucket=bucket, AccelerateConfiguration={"Status": "Suspended"})
    assert s3.get_bucket_accelerate_configuration(Bucket=bucket)["Status"] == "Suspended"
    err = refused(lambda: s3.put_bucket_accelerate_configuration(Bucket=bucket,
                                                                 AccelerateConfiguration={"Status": "Fast"}))
    assert (code(err), status(err)) == ("MalformedXML", 400)
    dotted = f"cfg.{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=dotted)
    err = refused(lambda: s3.put_bucket_accelerate_configuration(Bucket=dotted,
                                                                 AccelerateConfiguration={"Status": "Enabled"}))
    assert (code(err), status(err)) == ("InvalidRequest", 400)
    assert "periods" in err.value.response["Error"]["Message"]
    assert "Status" not in s3.get_bucket_accelerate_configuration(Bucket=dotted)
    err = refused(lambda: s3.get_bucket_accelerate_configuration(Bucket=f"missing-{uuid.uuid4().hex[:8]}"))
    assert code(err) == "NoSuchBucket"


def test_request_payment_configuration(s3: Any, bucket: str) -> None:
    assert s3.get_bucket_request_payment(Bucket=bucket)["Payer"] == "BucketOwner"  # the default, when unset
    s3.put_bucket_request_payment(Bucket=bucket, RequestPaymentConfiguration={"Payer": "Requester"})
    assert s3.get_bucket_request_payment(Bucket=bucket)["Payer"] == "Requester"
    err = refused(lambda: s3.put_bucket_request_payment(Bucket=bucket,
                                                        RequestPaymentConfiguration={"Payer": "Everyone"}))
    assert (code(err), status(err)) == ("MalformedXML", 400)
    assert s3.get_bucket_request_payment(Bucket=bucket)["Payer"] == "Requester"
    s3.put_bucket_request_payment(Bucket=bucket, RequestPaymentConfiguration={"Payer": "BucketOwner"})
    assert s3.get_bucket_request_payment(Bucket=bucket)["Payer"] == "BucketOwner"


def test_the_iam_actions_of_the_configurations(server: MinicloudServer, s3: Any, bucket: str) -> None:
    """s3:Get/PutAccelerateConfiguration, s3:Get/PutBucketRequestPayment, s3:Get/PutBucketLogging."""
    iam = server.client("iam")
    name = f"cfg-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=name)
    reads = ["s3:GetAccelerateConfiguration", "s3:GetBucketRequestPayment", "s3:GetBucketLogging"]
    iam.put_user_policy(UserName=name, PolicyName="reads", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": reads, "Resource": "*"}]}))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    user = server.client("s3", keys=Keys(key["AccessKeyId"], key["SecretAccessKey"]))
    user.get_bucket_accelerate_configuration(Bucket=bucket)
    user.get_bucket_request_payment(Bucket=bucket)
    user.get_bucket_logging(Bucket=bucket)
    writes: list[Callable[[], Any]] = [
        lambda: user.put_bucket_accelerate_configuration(Bucket=bucket, AccelerateConfiguration={"Status": "Enabled"}),
        lambda: user.put_bucket_request_payment(Bucket=bucket, RequestPaymentConfiguration={"Payer": "Requester"}),
        lambda: user.put_bucket_logging(Bucket=bucket, BucketLoggingStatus={}),
    ]
    for write in writes:
        assert code(refused(write)) == "AccessDenied"
    iam.put_user_policy(UserName=name, PolicyName="writes", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": f"arn:aws:s3:::{bucket}", "Action": [
            "s3:PutAccelerateConfiguration", "s3:PutBucketRequestPayment", "s3:PutBucketLogging"]}]}))
    for write in writes:
        write()
    assert s3.get_bucket_accelerate_configuration(Bucket=bucket)["Status"] == "Enabled"
    assert s3.get_bucket_request_payment(Bucket=bucket)["Payer"] == "Requester"


def anonymous_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def test_requester_pays_across_accounts(server: MinicloudServer, s3: Any, bucket: str) -> None:
    other = other_account(server)
    other_id = other.list_buckets()["Owner"]["DisplayName"]
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": other_id}, "Action": ["s3:GetObject", "s3:PutObject", "s3:ListBucket"],
         "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]},
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/public"}]}))
    s3.put_object(Bucket=bucket, Key="data", Body=b"dataset")
    s3.put_object(Bucket=bucket, Key="public", Body=b"for all")
    assert other.get_object(Bucket=bucket, Key="data")["Body"].read() == b"dataset"  # the owner pays: no header
    assert anonymous_status(f"{server.endpoint}/{bucket}/public") == 200
    s3.put_bucket_request_payment(Bucket=bucket, RequestPaymentConfiguration={"Payer": "Requester"})

    # Another account's requests must accept the charges...
    for call in (lambda: other.get_object(Bucket=bucket, Key="data"),
                 lambda: other.list_objects_v2(Bucket=bucket),
                 lambda: other.put_object(Bucket=bucket, Key="theirs", Body=b"x")):
        err = refused(call)
        assert (code(err), status(err)) == ("AccessDenied", 403)
    assert status(refused(lambda: other.head_object(Bucket=bucket, Key="data"))) == 403  # (a HEAD has no body)
    # ... and with them, proceed and are told they were charged.
    got = other.get_object(Bucket=bucket, Key="data", RequestPayer="requester")
    assert got["Body"].read() == b"dataset" and got["RequestCharged"] == "requester"
    assert got["ResponseMetadata"]["HTTPHeaders"]["x-amz-request-charged"] == "requester"
    assert other.head_object(Bucket=bucket, Key="data", RequestPayer="requester")["RequestCharged"] == "requester"
    listed = other.list_objects_v2(Bucket=bucket, RequestPayer="requester")
    assert {o["Key"] for o in listed["Contents"]} == {"data", "public"} and listed["RequestCharged"] == "requester"
    assert other.put_object(Bucket=bucket, Key="theirs", Body=b"x", RequestPayer="requester")["RequestCharged"] == \
        "requester"
    # A presigned URL carries the acceptance as a query parameter.
    url = other.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "data",
                                                             "RequestPayer": "requester"})
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == b"dataset" and response.headers["x-amz-request-charged"] == "requester"
    # Without it a policy's allow is not enough either; nor is a public grant for anonymous requests.
    assert anonymous_status(other.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "data"})) \
        == 403
    assert anonymous_status(f"{server.endpoint}/{bucket}/public") == 403
    # The bucket owner's account pays its own requests: no header needed, no charge announced.
    mine = s3.get_object(Bucket=bucket, Key="data")
    assert mine["Body"].read() == b"dataset" and "RequestCharged" not in mine
    # Back to BucketOwner: the other account no longer has to say anything.
    s3.put_bucket_request_payment(Bucket=bucket, RequestPaymentConfiguration={"Payer": "BucketOwner"})
    assert "RequestCharged" not in other.get_object(Bucket=bucket, Key="data")
    assert anonymous_status(f"{server.endpoint}/{bucket}/public") == 200


def test_requester_pays_reaches_the_accounts_users_and_roles(server: MinicloudServer, s3: Any, bucket: str) -> None:
    """An IAM user of the owner's account is in the owner's account: it pays nothing extra."""
    iam = server.client("iam")
    name = f"rp-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="read", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    user = server.client("s3", keys=Keys(key["AccessKeyId"], key["SecretAccessKey"]))
    s3.put_object(Bucket=bucket, Key="k", Body=b"v")
    s3.put_bucket_request_payment(Bucket=bucket, RequestPaymentConfiguration={"Payer": "Requester"})
    got = user.get_object(Bucket=bucket, Key="k")
    assert got["Body"].read() == b"v" and "RequestCharged" not in got


def test_aws_cli(server: MinicloudServer, bucket: str) -> None:
    server.aws("s3api", "put-bucket-accelerate-configuration", "--bucket", bucket,
               "--accelerate-configuration", "Status=Enabled")
    assert server.aws_json("s3api", "get-bucket-accelerate-configuration", "--bucket", bucket) == {"Status": "Enabled"}
    assert server.aws_json("s3api", "get-bucket-request-payment", "--bucket", bucket) == {"Payer": "BucketOwner"}
    server.aws("s3api", "put-bucket-request-payment", "--bucket", bucket,
               "--request-payment-configuration", '{"Payer": "Requester"}')
    assert server.aws_json("s3api", "get-bucket-request-payment", "--bucket", bucket) == {"Payer": "Requester"}
    assert server.aws_json("s3api", "get-bucket-logging", "--bucket", bucket) is None  # an empty status
    failed = server.aws("s3api", "put-bucket-logging", "--bucket", bucket, "--bucket-logging-status", json.dumps(
        {"LoggingEnabled": {"TargetBucket": f"missing-{uuid.uuid4().hex[:8]}", "TargetPrefix": "l/"}}), check=False)
    assert failed.returncode != 0 and "InvalidTargetBucketForLogging" in failed.stderr
    server.aws("s3api", "put-bucket-logging", "--bucket", bucket, "--bucket-logging-status", json.dumps(
        {"LoggingEnabled": {"TargetBucket": bucket, "TargetPrefix": "self/"}}))
    assert server.aws_json("s3api", "get-bucket-logging", "--bucket", bucket) == {
        "LoggingEnabled": {"TargetBucket": bucket, "TargetPrefix": "self/"}}
    server.aws("s3api", "put-bucket-logging", "--bucket", bucket, "--bucket-logging-status", "{}")
    assert server.aws_json("s3api", "get-bucket-logging", "--bucket", bucket) is None


def test_logging_configuration_is_validated(server: MinicloudServer, s3: Any, bucket: str) -> None:
    assert "LoggingEnabled" not in s3.get_bucket_logging(Bucket=bucket)  # unconfigured: an empty status
    target = f"cfg-logs-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=target)

    def put(enabled: dict[str, Any]) -> None:
        s3.put_bucket_logging(Bucket=bucket, BucketLoggingStatus={"LoggingEnabled": enabled})

    missing = f"missing-{uuid.uuid4().hex[:8]}"
    err = refused(lambda: put({"TargetBucket": missing, "TargetPrefix": "l/"}))
    assert (code(err), status(err)) == ("InvalidTargetBucketForLogging", 400)
    assert err.value.response["Error"]["Message"] == "The target bucket for logging does not exist"
    theirs = f"cfg-theirs-{uuid.uuid4().hex[:8]}"
    other_account(server).create_bucket(Bucket=theirs)
    err = refused(lambda: put({"TargetBucket": theirs, "TargetPrefix": "l/"}))
    assert (code(err), status(err)) == ("InvalidTargetBucketForLogging", 400)
    assert "must be the same" in err.value.response["Error"]["Message"]
    both = {"SimplePrefix": {}, "PartitionedPrefix": {"PartitionDateSource": "EventTime"}}
    err = refused(lambda: put({"TargetBucket": target, "TargetPrefix": "l/", "TargetObjectKeyFormat": both}))
    assert code(err) == "MalformedXML"
    enforced = f"cfg-enforced-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=enforced, ObjectOwnership="BucketOwnerEnforced")
    owner_id = s3.get_bucket_acl(Bucket=bucket)["Owner"]["ID"]
    grants = [{"Grantee": {"Type": "CanonicalUser", "ID": owner_id}, "Permission": "READ"}]
    err = refused(lambda: put({"TargetBucket": enforced, "TargetPrefix": "l/", "TargetGrants": grants}))
    assert (code(err), status(err)) == ("AccessControlListNotSupported", 400)
    put({"TargetBucket": enforced, "TargetPrefix": "l/"})  # (without grants it may)
    assert "LoggingEnabled" in s3.get_bucket_logging(Bucket=bucket)

    partitioned = {"PartitionedPrefix": {"PartitionDateSource": "DeliveryTime"}}
    put({"TargetBucket": target, "TargetPrefix": "l/", "TargetGrants": grants, "TargetObjectKeyFormat": partitioned})
    enabled = s3.get_bucket_logging(Bucket=bucket)["LoggingEnabled"]
    assert enabled["TargetBucket"] == target and enabled["TargetPrefix"] == "l/"
    assert enabled["TargetObjectKeyFormat"] == partitioned
    assert [(g["Grantee"]["ID"], g["Permission"]) for g in enabled["TargetGrants"]] == [(owner_id, "READ")]
    s3.put_bucket_logging(Bucket=bucket, BucketLoggingStatus={})  # empty: logging off
    assert "LoggingEnabled" not in s3.get_bucket_logging(Bucket=bucket)


# What Terraform's aws_s3_bucket reads of a bucket, and the errors it takes to mean "not configured".
TERRAFORM_READS: list[tuple[str, set[str]]] = [
    ("head_bucket", set()),
    ("get_bucket_policy", {"NoSuchBucketPolicy"}),
    ("get_bucket_acl", set()),
    ("get_bucket_cors", {"NoSuchCORSConfiguration"}),
    ("get_bucket_website", {"NoSuchWebsiteConfiguration"}),
    ("get_bucket_versioning", set()),
    ("get_bucket_accelerate_configuration", {"MethodNotAllowed", "UnsupportedArgument"}),
    ("get_bucket_request_payment", set()),
    ("get_bucket_logging", set()),
    ("get_bucket_lifecycle_configuration", {"NoSuchLifecycleConfiguration"}),
    ("get_bucket_replication", {"ReplicationConfigurationNotFoundError"}),
    ("get_bucket_encryption", {"ServerSideEncryptionConfigurationNotFoundError"}),
    ("get_object_lock_configuration", {"ObjectLockConfigurationNotFoundError"}),
    ("get_bucket_tagging", {"NoSuchTagSet"}),
]


def test_terraform_reads_of_a_fresh_bucket(s3: Any, bucket: str) -> None:
    answers = {}
    for operation, tolerated in TERRAFORM_READS:
        try:
            getattr(s3, operation)(Bucket=bucket)
            answers[operation] = "ok"
        except ClientError as error:
            answers[operation] = str(error.response["Error"]["Code"])
            assert answers[operation] in tolerated, (operation, answers[operation])
    for operation in ("get_bucket_accelerate_configuration", "get_bucket_request_payment", "get_bucket_logging"):
        assert answers[operation] == "ok"
    assert answers["get_bucket_website"] == "NoSuchWebsiteConfiguration"
    assert answers["get_bucket_replication"] == "ReplicationConfigurationNotFoundError"


def signed_put(server: MinicloudServer, path: str, body: bytes, keys: Keys | None = None) -> tuple[int, str]:
    """A signed PUT with a body of our own (boto3 would not send it): (status, error code or "")."""
    keys = keys or server.root
    assert keys is not None
    url = f"{server.endpoint}{path}"
    md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
    request = AWSRequest(method="PUT", url=url, data=body, headers={"Content-MD5": md5})
    S3SigV4Auth(Credentials(keys.access_key_id, keys.secret_access_key, keys.session_token), "s3",
                "us-east-1").add_auth(request)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("PUT", path, body=body, headers=dict(request.headers.items()))
        response = conn.getresponse()
        answer = response.read().decode(errors="replace")
    finally:
        conn.close()
    found = re.search(r"<Code>([^<]+)</Code>", answer)
    return response.status, found.group(1) if found else ""


NS = 'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'


@pytest.mark.parametrize(("subresource", "body"), [
    ("accelerate", b"<AccelerateConfiguration><Status>Enabled"),
    ("accelerate", f"<AccelerateConfiguration {NS}><Status>Fast</Status></AccelerateConfiguration>".encode()),
    ("accelerate", b"\xff\xfe\x00<"),
    ("requestPayment", f"<RequestPaymentConfiguration {NS}></RequestPaymentConfiguration>".encode()),
    ("requestPayment", f"<RequestPaymentConfiguration {NS}><Payer>You</Payer></RequestPaymentConfiguration>".encode()),
    ("logging", b"<BucketLoggingStatus><LoggingEnabled>"),
    ("logging", f"<BucketLoggingStatus {NS}><LoggingEnabled><TargetBucket>x</TargetBucket></LoggingEnabled>"
                f"</BucketLoggingStatus>".encode()),
    ("logging", f"<BucketLoggingStatus {NS}><LoggingEnabled><TargetPrefix>p</TargetPrefix></LoggingEnabled>"
                f"</BucketLoggingStatus>".encode()),
    ("logging", f"<BucketLoggingStatus {NS}><LoggingEnabled><TargetBucket>x</TargetBucket><TargetPrefix>p"
                f"</TargetPrefix><TargetObjectKeyFormat><PartitionedPrefix><PartitionDateSource>Never"
                f"</PartitionDateSource></PartitionedPrefix></TargetObjectKeyFormat></LoggingEnabled>"
                f"</BucketLoggingStatus>".encode()),
    ("logging", f"<BucketLoggingStatus {NS}><LoggingEnabled><TargetBucket>x</TargetBucket><TargetPrefix>p"
                f"</TargetPrefix><TargetGrants><Grant><Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\""
                f" xsi:type=\"CanonicalUser\"><ID>abc</ID></Grantee><Permission>OWN</Permission></Grant>"
                f"</TargetGrants></LoggingEnabled></BucketLoggingStatus>".encode()),
])
def test_bad_documents_get_s3s_error(server: MinicloudServer, bucket: str, subresource: str, body: bytes) -> None:
    assert signed_put(server, f"/{bucket}?{subresource}", body) == (400, "MalformedXML")


def test_bad_documents_from_another_account(server: MinicloudServer, bucket: str) -> None:
    """Another account is refused before its document is read."""
    keys = other_account_keys(server)
    body = f"<AccelerateConfiguration {NS}><Status>Enabled</Status></AccelerateConfiguration>".encode()
    assert signed_put(server, f"/{bucket}?accelerate", body, keys) == (403, "AccessDenied")
