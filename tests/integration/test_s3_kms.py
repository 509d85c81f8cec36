"""S3 SSE-KMS through boto3 and the AWS CLI against a real ``minicloud up``: objects sealed with a
data key from KMS (by key id, ARN, alias, or the account's aws/s3 key), bucket default
encryption with aws:kms, multipart uploads, copies, a disabled key, an unknown key, and callers
without KMS permissions."""

from __future__ import annotations

import base64
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.aws import code, status
from tests.support.server import Keys, MinicloudServer

MiB = 1024 * 1024


@pytest.fixture
def s3(server: MinicloudServer) -> Any:
    return server.client("s3")


@pytest.fixture
def kms(server: MinicloudServer) -> Any:
    return server.client("kms")


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"kms-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture
def key(kms: Any) -> dict[str, Any]:
    return dict(kms.create_key(Description="s3 objects")["KeyMetadata"])


def on_disk(server: MinicloudServer, needle: bytes) -> bool:
    return any(needle in p.read_bytes() for p in (server.data_dir / "s3").rglob("*")
               if p.is_file() and "ingest" not in p.parts)


def test_put_get_head_with_a_named_key(server: MinicloudServer, s3: Any, kms: Any, bucket: str,
                                       key: dict[str, Any]) -> None:
    alias = f"alias/s3-{uuid.uuid4().hex[:8]}"
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    marker = f"kms-marker-{uuid.uuid4().hex}".encode()
    body = marker + os.urandom(200 * 1024) + marker
    for name, key_id in (("by-id", key["KeyId"]), ("by-arn", key["Arn"]), ("by-alias", alias)):
        put = s3.put_object(Bucket=bucket, Key=name, Body=body, ServerSideEncryption="aws:kms", SSEKMSKeyId=key_id)
        assert put["ServerSideEncryption"] == "aws:kms" and put["SSEKMSKeyId"] == key["Arn"]
        got = s3.get_object(Bucket=bucket, Key=name)
        assert got["Body"].read() == body
        assert got["ServerSideEncryption"] == "aws:kms" and got["SSEKMSKeyId"] == key["Arn"]
        head = s3.head_object(Bucket=bucket, Key=name)
        assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"] == key["Arn"]
    assert not on_disk(server, marker)
    ranged = s3.get_object(Bucket=bucket, Key="by-alias", Range="bytes=65530-131080")["Body"].read()
    assert ranged == body[65530:131081]


def test_aws_managed_key_and_encryption_context(s3: Any, kms: Any, bucket: str) -> None:
    put = s3.put_object(Bucket=bucket, Key="managed", Body=b"m", ServerSideEncryption="aws:kms")
    managed = kms.describe_key(KeyId="alias/aws/s3")["KeyMetadata"]
    assert put["SSEKMSKeyId"] == managed["Arn"] and managed["KeyManager"] == "AWS"
    assert s3.get_object(Bucket=bucket, Key="managed")["Body"].read() == b"m"
    with pytest.raises(ClientError) as err:  # an AWS managed key is for the services that own it
        kms.disable_key(KeyId=managed["KeyId"])
    assert code(err) == "AccessDeniedException"
    context = base64.b64encode(json.dumps({"project": "x"}).encode()).decode()
    put = s3.put_object(Bucket=bucket, Key="ctx", Body=b"c", ServerSideEncryption="aws:kms",
                        SSEKMSEncryptionContext=context)
    assert json.loads(base64.b64decode(put["SSEKMSEncryptionContext"])) == {"project": "x"}
    assert s3.get_object(Bucket=bucket, Key="ctx")["Body"].read() == b"c"
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket=bucket, Key="bad", Body=b"c", ServerSideEncryption="aws:kms",
                      SSEKMSEncryptionContext="not base64 json")
    assert code(err) == "InvalidArgument"


def test_bucket_default_encryption_with_kms(s3: Any, bucket: str, key: dict[str, Any]) -> None:
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key["KeyId"]},
        "BucketKeyEnabled": True}]})
    rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key["KeyId"]}
    assert rule["BucketKeyEnabled"] is True
    put = s3.put_object(Bucket=bucket, Key="d", Body=b"default")
    assert put["ServerSideEncryption"] == "aws:kms" and put["SSEKMSKeyId"] == key["Arn"]
    assert put["BucketKeyEnabled"] is True
    got = s3.get_object(Bucket=bucket, Key="d")
    assert got["Body"].read() == b"default" and got["SSEKMSKeyId"] == key["Arn"]
    explicit = s3.put_object(Bucket=bucket, Key="s3", Body=b"x", ServerSideEncryption="AES256")
    assert explicit["ServerSideEncryption"] == "AES256"


def test_multipart_upload(s3: Any, bucket: str, key: dict[str, Any]) -> None:
    created = s3.create_multipart_upload(Bucket=bucket, Key="big", ServerSideEncryption="aws:kms",
                                         SSEKMSKeyId=key["Arn"])
    assert created["ServerSideEncryption"] == "aws:kms" and created["SSEKMSKeyId"] == key["Arn"]
    parts_data = [os.urandom(5 * MiB), os.urandom(1234)]
    parts = []
    for number, data in enumerate(parts_data, start=1):
        up = s3.upload_part(Bucket=bucket, Key="big", UploadId=created["UploadId"], PartNumber=number, Body=data)
        assert up["ServerSideEncryption"] == "aws:kms" and up["SSEKMSKeyId"] == key["Arn"]
        parts.append({"PartNumber": number, "ETag": up["ETag"]})
    done = s3.complete_multipart_upload(Bucket=bucket, Key="big", UploadId=created["UploadId"],
                                        MultipartUpload={"Parts": parts})
    assert done["ServerSideEncryption"] == "aws:kms" and done["SSEKMSKeyId"] == key["Arn"]
    whole = b"".join(parts_data)
    got = s3.get_object(Bucket=bucket, Key="big")
    assert got["Body"].read() == whole and got["SSEKMSKeyId"] == key["Arn"]
    start = 5 * MiB - 10
    assert s3.get_object(Bucket=bucket, Key="big", Range=f"bytes={start}-{start + 99}")["Body"].read() == \
        whole[start:start + 100]


def test_copies_between_encryptions(s3: Any, kms: Any, bucket: str, key: dict[str, Any]) -> None:
    other = kms.create_key()["KeyMetadata"]
    s3.put_object(Bucket=bucket, Key="plain", Body=b"source bytes")
    copied = s3.copy_object(Bucket=bucket, Key="to-kms", CopySource={"Bucket": bucket, "Key": "plain"},
                            ServerSideEncryption="aws:kms", SSEKMSKeyId=key["Arn"])
    assert copied["ServerSideEncryption"] == "aws:kms" and copied["SSEKMSKeyId"] == key["Arn"]
    recopied = s3.copy_object(Bucket=bucket, Key="to-other", CopySource={"Bucket": bucket, "Key": "to-kms"},
                              ServerSideEncryption="aws:kms", SSEKMSKeyId=other["KeyId"])
    assert recopied["SSEKMSKeyId"] == other["Arn"]
    back = s3.copy_object(Bucket=bucket, Key="to-s3", CopySource={"Bucket": bucket, "Key": "to-other"})
    assert back["ServerSideEncryption"] == "AES256"
    for name, expected in (("to-kms", key["Arn"]), ("to-other", other["Arn"]), ("to-s3", None)):
        got = s3.get_object(Bucket=bucket, Key=name)
        assert got["Body"].read() == b"source bytes" and got.get("SSEKMSKeyId") == expected


def test_disabled_and_deleted_keys_refuse_reads(s3: Any, kms: Any, bucket: str, key: dict[str, Any]) -> None:
    s3.put_object(Bucket=bucket, Key="o", Body=b"guarded", ServerSideEncryption="aws:kms", SSEKMSKeyId=key["KeyId"])
    kms.disable_key(KeyId=key["KeyId"])
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="o")
    assert code(err) == "KMS.DisabledException" and status(err) == 400
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket=bucket, Key="n", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId=key["KeyId"])
    assert code(err) == "KMS.DisabledException"
    assert s3.head_object(Bucket=bucket, Key="o")["SSEKMSKeyId"] == key["Arn"]  # HEAD does not call KMS
    kms.enable_key(KeyId=key["KeyId"])
    assert s3.get_object(Bucket=bucket, Key="o")["Body"].read() == b"guarded"
    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="o")
    assert code(err) == "KMS.KMSInvalidStateException" and status(err) == 400


def test_unknown_key_and_misused_headers(s3: Any, bucket: str, key: dict[str, Any]) -> None:
    for wrong in ("no-such-key", str(uuid.uuid4()), "alias/no-such-alias"):
        with pytest.raises(ClientError) as err:
            s3.put_object(Bucket=bucket, Key="k", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId=wrong)
        assert code(err) == "KMS.NotFoundException" and status(err) == 400, wrong
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket=bucket, Key="k", Body=b"x", SSEKMSKeyId=key["KeyId"])
    assert code(err) == "InvalidArgument"
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket=bucket, Key="k", Body=b"x", ServerSideEncryption="AES256", SSEKMSKeyId=key["KeyId"])
    assert code(err) == "InvalidArgument"
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket=bucket, Key="k", Body=b"x", ServerSideEncryption="aws:kms:dsse")
    assert code(err) == "NotImplemented"


def test_callers_need_kms_permissions(server: MinicloudServer, s3: Any, bucket: str, key: dict[str, Any]) -> None:
    s3.put_object(Bucket=bucket, Key="secret", Body=b"s", ServerSideEncryption="aws:kms", SSEKMSKeyId=key["KeyId"])
    iam = server.client("iam")
    name = f"s3-only-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="s3", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
    made = iam.create_access_key(UserName=name)["AccessKey"]
    user = server.client("s3", Keys(made["AccessKeyId"], made["SecretAccessKey"]))
    with pytest.raises(ClientError) as err:
        user.get_object(Bucket=bucket, Key="secret")
    assert code(err) == "AccessDenied" and status(err) == 403
    with pytest.raises(ClientError) as err:
        user.put_object(Bucket=bucket, Key="new", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId=key["Arn"])
    assert code(err) == "AccessDenied"
    user.put_object(Bucket=bucket, Key="sse-s3", Body=b"fine")  # SSE-S3 needs no KMS permission
    iam.put_user_policy(UserName=name, PolicyName="kms", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                                                "Resource": key["Arn"]}]}))
    for _ in range(40):  # the evaluator caches a principal's policies for a few seconds
        try:
            assert user.get_object(Bucket=bucket, Key="secret")["Body"].read() == b"s"
            break
        except ClientError:
            time.sleep(0.5)
    else:
        pytest.fail("kms:Decrypt granted but the GET is still refused")


def test_aws_cli(server: MinicloudServer, bucket: str, key: dict[str, Any], tmp_path: Path) -> None:
    source = tmp_path / "f.txt"
    source.write_bytes(b"through the cli\n")
    server.aws("s3", "cp", str(source), f"s3://{bucket}/cli.txt", "--sse", "aws:kms", "--sse-kms-key-id", key["Arn"])
    head = server.aws_json("s3api", "head-object", "--bucket", bucket, "--key", "cli.txt")
    assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"] == key["Arn"]
    server.aws("s3", "cp", f"s3://{bucket}/cli.txt", str(tmp_path / "back.txt"))
    assert (tmp_path / "back.txt").read_bytes() == b"through the cli\n"
