"""S3 through boto3 against a real ``minicloud up``: buckets, objects, ranges, conditions,
checksums, versions, multipart, listings, policies and anonymous access."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import urllib.error
import urllib.request
import uuid
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from tests.support.aws import code, status
from tests.support.server import Keys, MinicloudServer

MiB = 1024 * 1024


@pytest.fixture
def s3(server: MinicloudServer) -> Any:
    return server.client("s3")


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"test-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


# -- buckets ---------------------------------------------------------------------------------------

def test_bucket_lifecycle(s3: Any) -> None:
    name = f"life-{uuid.uuid4().hex[:8]}"
    assert s3.create_bucket(Bucket=name)["Location"] == f"/{name}"
    assert name in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    s3.head_bucket(Bucket=name)
    assert s3.get_bucket_location(Bucket=name)["LocationConstraint"] is None
    # S3 in us-east-1 answers 200 to its owner re-creating a bucket (legacy); other regions refuse
    assert s3.create_bucket(Bucket=name)["Location"] == f"/{name}"
    s3.put_object(Bucket=name, Key="k", Body=b"x")
    with pytest.raises(ClientError) as err:
        s3.delete_bucket(Bucket=name)
    assert code(err) == "BucketNotEmpty"
    s3.delete_object(Bucket=name, Key="k")
    s3.delete_bucket(Bucket=name)
    with pytest.raises(ClientError) as err:
        s3.head_bucket(Bucket=name)
    assert status(err) == 404
    with pytest.raises(ClientError) as err:
        s3.list_objects_v2(Bucket=name)
    assert code(err) == "NoSuchBucket"


@pytest.mark.parametrize("name", ["ab", "UPPER", "a..b", "192.168.1.1", "-abc", "x" * 64, "bad_name"])
def test_invalid_bucket_names(s3: Any, name: str) -> None:
    with pytest.raises(ClientError) as err:
        s3.create_bucket(Bucket=name)
    assert code(err) == "InvalidBucketName" and status(err) == 400


def test_location_constraints(s3: Any) -> None:
    with pytest.raises(ClientError) as err:
        s3.create_bucket(Bucket=f"loc-{uuid.uuid4().hex[:8]}",
                         CreateBucketConfiguration={"LocationConstraint": "us-east-1"})
    assert code(err) == "InvalidLocationConstraint"
    with pytest.raises(ClientError) as err:
        s3.create_bucket(Bucket=f"loc-{uuid.uuid4().hex[:8]}",
                         CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    assert code(err) in ("InvalidLocationConstraint", "IllegalLocationConstraintException")


def other_account(server: MinicloudServer) -> Any:
    """An S3 client of a second account (through its OrganizationAccountAccessRole)."""
    return server.client("s3", keys=other_account_keys(server))


def other_account_keys(server: MinicloudServer) -> Keys:
    """Session keys of a second account's OrganizationAccountAccessRole (administrator there)."""
    account_id = server.client("organizations").create_account(
        Email=f"s3-{uuid.uuid4().hex[:8]}@example.com", AccountName="other")["CreateAccountStatus"]["AccountId"]
    iam = server.client("iam")
    name = f"admin-{uuid.uuid4().hex[:6]}"
    iam.create_user(UserName=name)
    iam.attach_user_policy(UserName=name, PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    key = iam.create_access_key(UserName=name)["AccessKey"]
    creds = server.client("sts", keys=Keys(key["AccessKeyId"], key["SecretAccessKey"])).assume_role(
        RoleArn=f"arn:aws:iam::{account_id}:role/OrganizationAccountAccessRole",
        RoleSessionName="s3-test")["Credentials"]
    return Keys(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])


def test_bucket_already_exists_across_accounts(server: MinicloudServer, s3: Any, bucket: str) -> None:
    other = other_account(server)
    with pytest.raises(ClientError) as err:
        other.create_bucket(Bucket=bucket)
    assert code(err) == "BucketAlreadyExists"
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    with pytest.raises(ClientError) as err:
        other.get_object(Bucket=bucket, Key="k")
    assert code(err) == "AccessDenied"
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{bucket}/*"}]}))
    assert other.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x"


def test_versioning_and_tagging_config(s3: Any, bucket: str) -> None:
    assert "Status" not in s3.get_bucket_versioning(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    with pytest.raises(ClientError) as err:
        s3.get_bucket_tagging(Bucket=bucket)
    assert code(err) == "NoSuchTagSet"
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "team", "Value": "s3"}]})
    assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == [{"Key": "team", "Value": "s3"}]
    s3.delete_bucket_tagging(Bucket=bucket)
    with pytest.raises(ClientError):
        s3.get_bucket_tagging(Bucket=bucket)


# -- objects ---------------------------------------------------------------------------------------

def test_put_get_head_with_metadata(s3: Any, bucket: str) -> None:
    body = b"hello, minicloud"
    put = s3.put_object(Bucket=bucket, Key="dir/a b+c.txt", Body=body, ContentType="text/plain",
                        Metadata={"Colour": "blue"}, CacheControl="max-age=60", ContentDisposition="inline")
    assert put["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    got = s3.get_object(Bucket=bucket, Key="dir/a b+c.txt")
    assert got["Body"].read() == body
    assert got["ContentType"] == "text/plain" and got["Metadata"] == {"colour": "blue"}
    assert got["CacheControl"] == "max-age=60" and got["ContentDisposition"] == "inline"
    head = s3.head_object(Bucket=bucket, Key="dir/a b+c.txt")
    assert head["ContentLength"] == len(body) and head["ETag"] == put["ETag"]
    over = s3.get_object(Bucket=bucket, Key="dir/a b+c.txt", ResponseContentType="application/x-test",
                         ResponseContentDisposition="attachment")
    assert over["ContentType"] == "application/x-test" and over["ContentDisposition"] == "attachment"


def test_missing_keys(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="nope")
    assert code(err) == "NoSuchKey" and status(err) == 404
    with pytest.raises(ClientError) as err:
        s3.head_object(Bucket=bucket, Key="nope")
    assert status(err) == 404
    s3.delete_object(Bucket=bucket, Key="nope")  # deleting nothing succeeds


def test_key_too_long(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket=bucket, Key="k" * 1025, Body=b"x")
    assert code(err) == "KeyTooLongError"
    s3.put_object(Bucket=bucket, Key="k" * 1024, Body=b"x")


def test_ranges(s3: Any, bucket: str) -> None:
    body = bytes(range(256)) * 40
    s3.put_object(Bucket=bucket, Key="r", Body=body)
    for spec, expected in (("bytes=0-9", body[:10]), ("bytes=100-", body[100:]), ("bytes=-5", body[-5:]),
                           ("bytes=10000-20000", body[10000:])):
        got = s3.get_object(Bucket=bucket, Key="r", Range=spec)
        assert got["Body"].read() == expected, spec
        assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
        assert got["ContentRange"].endswith(f"/{len(body)}")
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="r", Range="bytes=20000-")
    assert code(err) == "InvalidRange" and status(err) == 416


def test_conditional_reads(s3: Any, bucket: str) -> None:
    etag = s3.put_object(Bucket=bucket, Key="c", Body=b"data")["ETag"]
    s3.get_object(Bucket=bucket, Key="c", IfMatch=etag)
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="c", IfMatch='"0000"')
    assert status(err) == 412
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="c", IfNoneMatch=etag)
    assert status(err) == 304
    future = datetime.now(UTC) + timedelta(hours=1)
    past = datetime.now(UTC) - timedelta(hours=1)
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="c", IfModifiedSince=future)
    assert status(err) == 304
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="c", IfUnmodifiedSince=past)
    assert status(err) == 412
    s3.get_object(Bucket=bucket, Key="c", IfModifiedSince=past)


def test_conditional_write(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="once", Body=b"1", IfNoneMatch="*")
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket=bucket, Key="once", Body=b"2", IfNoneMatch="*")
    assert status(err) == 412
    assert s3.get_object(Bucket=bucket, Key="once")["Body"].read() == b"1"


def test_content_md5_and_checksums(s3: Any, bucket: str) -> None:
    body = b"checked bytes"
    good = base64.b64encode(hashlib.md5(body).digest()).decode()
    s3.put_object(Bucket=bucket, Key="m", Body=body, ContentMD5=good)
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket=bucket, Key="m", Body=body, ContentMD5=base64.b64encode(b"0" * 16).decode())
    assert code(err) == "BadDigest"
    assert s3.get_object(Bucket=bucket, Key="m")["Body"].read() == body
    for algorithm in ("CRC32", "SHA1", "SHA256"):  # CRC32C needs botocore[crt] on the client
        put = s3.put_object(Bucket=bucket, Key=f"sum-{algorithm}", Body=body, ChecksumAlgorithm=algorithm)
        got = s3.head_object(Bucket=bucket, Key=f"sum-{algorithm}", ChecksumMode="ENABLED")
        assert got[f"Checksum{algorithm}"] == put[f"Checksum{algorithm}"]
    crc = base64.b64encode(zlib.crc32(body).to_bytes(4, "big")).decode()
    assert s3.head_object(Bucket=bucket, Key="sum-CRC32", ChecksumMode="ENABLED")["ChecksumCRC32"] == crc
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket=bucket, Key="bad-sum", Body=body, ChecksumCRC32=base64.b64encode(b"\0\0\0\0").decode())
    assert code(err) == "BadDigest"


def test_copy_object(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="src", Body=b"copy me", Metadata={"k": "v"}, ContentType="text/x")
    other = f"copy-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=other)
    s3.copy_object(Bucket=other, Key="dst", CopySource={"Bucket": bucket, "Key": "src"})
    got = s3.get_object(Bucket=other, Key="dst")
    assert got["Body"].read() == b"copy me" and got["Metadata"] == {"k": "v"} and got["ContentType"] == "text/x"
    s3.copy_object(Bucket=bucket, Key="src", CopySource={"Bucket": bucket, "Key": "src"},
                   MetadataDirective="REPLACE", Metadata={"new": "1"}, ContentType="text/y")
    head = s3.head_object(Bucket=bucket, Key="src")
    assert head["Metadata"] == {"new": "1"} and head["ContentType"] == "text/y"
    with pytest.raises(ClientError) as err:
        s3.copy_object(Bucket=bucket, Key="src", CopySource={"Bucket": bucket, "Key": "src"})
    assert code(err) == "InvalidRequest"
    with pytest.raises(ClientError) as err:
        s3.copy_object(Bucket=bucket, Key="x", CopySource={"Bucket": bucket, "Key": "missing"})
    assert code(err) == "NoSuchKey"


def test_object_tagging(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="t", Body=b"x", Tagging="a=1&b=2")
    assert sorted(t["Key"] for t in s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"]) == ["a", "b"]
    s3.put_object_tagging(Bucket=bucket, Key="t", Tagging={"TagSet": [{"Key": "c", "Value": "3"}]})
    assert s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"] == [{"Key": "c", "Value": "3"}]
    s3.delete_object_tagging(Bucket=bucket, Key="t")
    assert s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"] == []


def test_delete_objects(s3: Any, bucket: str) -> None:
    for i in range(5):
        s3.put_object(Bucket=bucket, Key=f"d/{i}", Body=b"x")
    result = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": f"d/{i}"} for i in range(3)]})
    assert sorted(d["Key"] for d in result["Deleted"]) == ["d/0", "d/1", "d/2"]
    quiet = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "d/3"}], "Quiet": True})
    assert "Deleted" not in quiet
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["d/4"]
    s3.delete_object(Bucket=bucket, Key="d/4", BypassGovernanceRetention=True)


def test_versions_and_delete_markers(s3: Any, bucket: str) -> None:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    v1 = s3.put_object(Bucket=bucket, Key="v", Body=b"one")["VersionId"]
    v2 = s3.put_object(Bucket=bucket, Key="v", Body=b"two")["VersionId"]
    assert v1 != v2
    assert s3.get_object(Bucket=bucket, Key="v")["Body"].read() == b"two"
    assert s3.get_object(Bucket=bucket, Key="v", VersionId=v1)["Body"].read() == b"one"
    deleted = s3.delete_object(Bucket=bucket, Key="v")
    assert deleted["DeleteMarker"] is True
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="v")
    assert code(err) == "NoSuchKey"
    listing = s3.list_object_versions(Bucket=bucket)
    assert [v["VersionId"] for v in listing["Versions"]] == [v2, v1]
    assert listing["DeleteMarkers"][0]["IsLatest"] is True
    s3.delete_object(Bucket=bucket, Key="v", VersionId=deleted["VersionId"])
    assert s3.get_object(Bucket=bucket, Key="v")["Body"].read() == b"two"
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    s3.put_object(Bucket=bucket, Key="v", Body=b"three")
    versions = s3.list_object_versions(Bucket=bucket)["Versions"]
    assert [v["VersionId"] for v in versions] == ["null", v2, v1]
    for v in versions:
        s3.delete_object(Bucket=bucket, Key="v", VersionId=v["VersionId"])
    assert "Versions" not in s3.list_object_versions(Bucket=bucket)


# -- multipart -------------------------------------------------------------------------------------

def test_multipart_upload(s3: Any, bucket: str) -> None:
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp", ContentType="application/x-mp")["UploadId"]
    parts = [os.urandom(5 * MiB), os.urandom(5 * MiB), b"tail"]
    etags = []
    for number, data in enumerate(parts, 1):
        etags.append(s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload, PartNumber=number, Body=data)["ETag"])
    listed = s3.list_parts(Bucket=bucket, Key="mp", UploadId=upload)["Parts"]
    assert [p["PartNumber"] for p in listed] == [1, 2, 3]
    assert [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=bucket)["Uploads"]] == [upload]
    with pytest.raises(ClientError) as err:
        s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload, MultipartUpload={"Parts": [
            {"PartNumber": 2, "ETag": etags[1]}, {"PartNumber": 1, "ETag": etags[0]}]})
    assert code(err) == "InvalidPartOrder"
    with pytest.raises(ClientError) as err:
        s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload, MultipartUpload={"Parts": [
            {"PartNumber": 1, "ETag": '"00000000000000000000000000000000"'}]})
    assert code(err) == "InvalidPart"
    with pytest.raises(ClientError) as err:
        s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload, MultipartUpload={"Parts": [
            {"PartNumber": 3, "ETag": etags[2]}, {"PartNumber": 4, "ETag": etags[2]}]})
    assert code(err) in ("InvalidPart", "EntityTooSmall")
    done = s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload, MultipartUpload={
        "Parts": [{"PartNumber": i + 1, "ETag": e} for i, e in enumerate(etags)]})
    md5s = b"".join(hashlib.md5(p).digest() for p in parts)
    assert done["ETag"] == f'"{hashlib.md5(md5s).hexdigest()}-3"'
    got = s3.get_object(Bucket=bucket, Key="mp")
    assert got["Body"].read() == b"".join(parts) and got["ContentType"] == "application/x-mp"
    part2 = s3.get_object(Bucket=bucket, Key="mp", PartNumber=2)
    assert part2["Body"].read() == parts[1] and part2["PartsCount"] == 3
    mid = s3.get_object(Bucket=bucket, Key="mp", Range=f"bytes={5 * MiB - 3}-{5 * MiB + 2}")["Body"].read()
    assert mid == (parts[0] + parts[1])[5 * MiB - 3:5 * MiB + 3]
    with pytest.raises(ClientError) as err:
        s3.list_parts(Bucket=bucket, Key="mp", UploadId=upload)
    assert code(err) == "NoSuchUpload"


def test_multipart_too_small_and_abort(s3: Any, bucket: str) -> None:
    upload = s3.create_multipart_upload(Bucket=bucket, Key="small")["UploadId"]
    e1 = s3.upload_part(Bucket=bucket, Key="small", UploadId=upload, PartNumber=1, Body=b"a" * 100)["ETag"]
    e2 = s3.upload_part(Bucket=bucket, Key="small", UploadId=upload, PartNumber=2, Body=b"b")["ETag"]
    with pytest.raises(ClientError) as err:
        s3.complete_multipart_upload(Bucket=bucket, Key="small", UploadId=upload, MultipartUpload={
            "Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
    assert code(err) == "EntityTooSmall"
    s3.abort_multipart_upload(Bucket=bucket, Key="small", UploadId=upload)
    with pytest.raises(ClientError) as err:
        s3.abort_multipart_upload(Bucket=bucket, Key="small", UploadId=upload)
    assert code(err) == "NoSuchUpload"


def test_transfer_manager_threaded_multipart(s3: Any, bucket: str, tmp_path: Any) -> None:
    source = tmp_path / "big.bin"
    data = os.urandom(40 * MiB)
    source.write_bytes(data)
    config = TransferConfig(multipart_threshold=8 * MiB, multipart_chunksize=8 * MiB, max_concurrency=8)
    s3.upload_file(str(source), bucket, "big.bin", Config=config)
    head = s3.head_object(Bucket=bucket, Key="big.bin")
    assert head["ContentLength"] == len(data) and head["ETag"].endswith('-5"')
    target = tmp_path / "back.bin"
    s3.download_file(bucket, "big.bin", str(target), Config=config)
    assert hashlib.sha256(target.read_bytes()).digest() == hashlib.sha256(data).digest()


# -- listing ---------------------------------------------------------------------------------------

def test_listing_v2_delimiter_and_pagination(s3: Any, bucket: str) -> None:
    keys = ["a.txt", "photos/2024/a.jpg", "photos/2024/b.jpg", "photos/2025/c.jpg", "z/one", "z/two", "zz"]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    top = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert [o["Key"] for o in top["Contents"]] == ["a.txt", "zz"]
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["photos/", "z/"]
    assert top["KeyCount"] == 4
    nested = s3.list_objects_v2(Bucket=bucket, Prefix="photos/", Delimiter="/")
    assert [p["Prefix"] for p in nested["CommonPrefixes"]] == ["photos/2024/", "photos/2025/"]
    seen: list[str] = []
    kwargs: dict[str, Any] = {"Bucket": bucket, "MaxKeys": 2}
    while True:
        page = s3.list_objects_v2(**kwargs)
        seen += [o["Key"] for o in page.get("Contents", [])]
        if not page["IsTruncated"]:
            break
        kwargs["ContinuationToken"] = page["NextContinuationToken"]
    assert seen == keys
    paged = [p["Prefix"] for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Delimiter="/", PaginationConfig={"PageSize": 1}) for p in page.get("CommonPrefixes", [])]
    assert paged == ["photos/", "z/"]
    after = s3.list_objects_v2(Bucket=bucket, StartAfter="photos/2025/c.jpg")
    assert [o["Key"] for o in after["Contents"]] == ["z/one", "z/two", "zz"]
    owner = s3.list_objects_v2(Bucket=bucket, FetchOwner=True, MaxKeys=1)["Contents"][0]
    assert "Owner" in owner


def test_listing_v1_and_url_encoding(s3: Any, bucket: str) -> None:
    for key in ("a b", "a+b", "c/d", "c/e"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    v1 = s3.list_objects(Bucket=bucket, Delimiter="/", MaxKeys=2)
    assert v1["IsTruncated"] and [o["Key"] for o in v1["Contents"]] == ["a b", "a+b"]
    rest = s3.list_objects(Bucket=bucket, Delimiter="/", Marker=v1["NextMarker"])
    assert [p["Prefix"] for p in rest["CommonPrefixes"]] == ["c/"]
    encoded = s3.list_objects_v2(Bucket=bucket, EncodingType="url")  # asked for: boto3 leaves it encoded
    assert [o["Key"] for o in encoded["Contents"]] == ["a%20b", "a%2Bb", "c/d", "c/e"]
    decoded = s3.list_objects_v2(Bucket=bucket)  # boto3 asks for url encoding itself and decodes
    assert [o["Key"] for o in decoded["Contents"]] == ["a b", "a+b", "c/d", "c/e"]


# -- policies and anonymous access -----------------------------------------------------------------

def test_public_read_policy_and_anonymous_access(server: MinicloudServer, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="public.txt", Body=b"for everyone")
    url = f"{server.endpoint}/{bucket}/public.txt"
    with pytest.raises(urllib.error.HTTPError) as denied:
        urllib.request.urlopen(url, timeout=5)
    assert denied.value.code == 403 and b"AccessDenied" in denied.value.read()
    policy = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"}]}
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    assert json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"]) == policy
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.read() == b"for everyone"
    with pytest.raises(urllib.error.HTTPError) as denied:
        urllib.request.urlopen(urllib.request.Request(url, data=b"x", method="PUT"), timeout=5)
    assert denied.value.code == 403
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(f"{server.endpoint}/{bucket}/missing", timeout=5)
    assert missing.value.code == 403  # no s3:ListBucket: S3 does not say whether the key exists
    s3.delete_bucket_policy(Bucket=bucket)
    with pytest.raises(ClientError) as err:
        s3.get_bucket_policy(Bucket=bucket)
    assert code(err) == "NoSuchBucketPolicy"


def test_policy_conditions_deny(server: MinicloudServer, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*",
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="k")
    assert code(err) == "AccessDenied"
    ip_policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*",
         "Condition": {"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}]}
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(ip_policy))
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="k")
    assert code(err) == "AccessDenied"
    s3.delete_bucket_policy(Bucket=bucket)
    s3.get_object(Bucket=bucket, Key="k")


def test_malformed_policy(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as err:
        s3.put_bucket_policy(Bucket=bucket, Policy="not json")
    assert code(err) == "MalformedPolicy"
    other = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::other-bucket/*"}]}
    with pytest.raises(ClientError) as err:
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(other))
    assert code(err) == "MalformedPolicy"


def test_iam_user_needs_permission(server: MinicloudServer, s3: Any, bucket: str) -> None:
    iam = server.client("iam")
    name = f"u{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    user = server.client("s3", keys=Keys(key["AccessKeyId"], key["SecretAccessKey"]))
    with pytest.raises(ClientError) as err:
        user.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert code(err) == "AccessDenied"
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*",
                                                 "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]}]}))
    user.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert user.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x"


def test_presigned_urls(server: MinicloudServer, s3: Any, bucket: str) -> None:
    put_url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "pre"}, ExpiresIn=300)
    # urllib would add a Content-Type, which a presigned URL signs (as curl -T sends none)
    request = urllib.request.Request(put_url, data=b"presigned body", method="PUT", headers={"Content-Type": ""})
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200
    get_url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "pre"}, ExpiresIn=300)
    with urllib.request.urlopen(get_url, timeout=5) as response:
        assert response.read() == b"presigned body"
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(get_url.replace("Signature=", "Signature=0"), timeout=5)
    assert err.value.code == 403


# -- multipart copy (UploadPartCopy) ----------------------------------------------------------------

def test_upload_part_copy_with_ranges(s3: Any, bucket: str) -> None:
    data = os.urandom(12 * MiB + 5)
    s3.put_object(Bucket=bucket, Key="source", Body=data)
    upload = s3.create_multipart_upload(Bucket=bucket, Key="assembled")["UploadId"]
    first = s3.upload_part_copy(Bucket=bucket, Key="assembled", UploadId=upload, PartNumber=1,
                                CopySource={"Bucket": bucket, "Key": "source"},
                                CopySourceRange=f"bytes=0-{6 * MiB - 1}")
    second = s3.upload_part_copy(Bucket=bucket, Key="assembled", UploadId=upload, PartNumber=2,
                                 CopySource=f"{bucket}/source", CopySourceRange=f"bytes={6 * MiB}-{len(data) - 1}")
    assert first["CopyPartResult"]["ETag"] == f'"{hashlib.md5(data[:6 * MiB]).hexdigest()}"'
    parts = [{"PartNumber": 1, "ETag": first["CopyPartResult"]["ETag"]},
             {"PartNumber": 2, "ETag": second["CopyPartResult"]["ETag"]}]
    s3.complete_multipart_upload(Bucket=bucket, Key="assembled", UploadId=upload, MultipartUpload={"Parts": parts})
    assert s3.get_object(Bucket=bucket, Key="assembled")["Body"].read() == data


def test_upload_part_copy_refuses_bad_ranges_and_sources(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="small", Body=b"0123456789")
    upload = s3.create_multipart_upload(Bucket=bucket, Key="x")["UploadId"]
    with pytest.raises(ClientError) as err:
        s3.upload_part_copy(Bucket=bucket, Key="x", UploadId=upload, PartNumber=1,
                            CopySource=f"{bucket}/small", CopySourceRange="bytes=5-10")
    assert code(err) == "InvalidRange" and status(err) == 416
    with pytest.raises(ClientError) as err:
        s3.upload_part_copy(Bucket=bucket, Key="x", UploadId=upload, PartNumber=1,
                            CopySource=f"{bucket}/small", CopySourceRange="5-6")
    assert code(err) == "InvalidArgument"
    with pytest.raises(ClientError) as err:
        s3.upload_part_copy(Bucket=bucket, Key="x", UploadId=upload, PartNumber=1, CopySource=f"{bucket}/missing")
    assert code(err) == "NoSuchKey"
    with pytest.raises(ClientError) as err:
        s3.upload_part_copy(Bucket=bucket, Key="x", UploadId="nope", PartNumber=1, CopySource=f"{bucket}/small")
    assert code(err) == "NoSuchUpload"


def test_cli_copies_a_large_object_between_buckets(server: MinicloudServer, s3: Any, bucket: str,
                                                   tmp_path: Any) -> None:
    data = os.urandom(20 * MiB)
    s3.put_object(Bucket=bucket, Key="big", Body=data)
    target = f"copy-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=target)
    # objects over the CLI's 8 MiB threshold are copied part by part with UploadPartCopy
    server.aws("s3", "cp", f"s3://{bucket}/big", f"s3://{target}/big")
    assert s3.get_object(Bucket=target, Key="big")["Body"].read() == data


def test_get_object_attributes(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="plain", Body=b"hello", ChecksumAlgorithm="SHA256")
    attrs = s3.get_object_attributes(Bucket=bucket, Key="plain",
                                     ObjectAttributes=["ETag", "ObjectSize", "StorageClass", "Checksum"])
    assert attrs["ETag"] == hashlib.md5(b"hello").hexdigest()
    assert attrs["ObjectSize"] == 5 and attrs["StorageClass"] == "STANDARD"
    assert attrs["Checksum"]["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(b"hello").digest()).decode()
    upload = s3.create_multipart_upload(Bucket=bucket, Key="multi")["UploadId"]
    chunks = [os.urandom(5 * MiB), os.urandom(5 * MiB), b"tail"]
    parts = [{"PartNumber": n, "ETag": s3.upload_part(Bucket=bucket, Key="multi", UploadId=upload, PartNumber=n,
                                                      Body=chunk)["ETag"]} for n, chunk in enumerate(chunks, 1)]
    s3.complete_multipart_upload(Bucket=bucket, Key="multi", UploadId=upload, MultipartUpload={"Parts": parts})
    page = s3.get_object_attributes(Bucket=bucket, Key="multi", ObjectAttributes=["ObjectParts"], MaxParts=2)
    object_parts = page["ObjectParts"]
    assert object_parts["TotalPartsCount"] == 3 and object_parts["IsTruncated"]
    assert [p["Size"] for p in object_parts["Parts"]] == [5 * MiB, 5 * MiB]
    rest = s3.get_object_attributes(Bucket=bucket, Key="multi", ObjectAttributes=["ObjectParts"],
                                    PartNumberMarker=object_parts["NextPartNumberMarker"])
    assert [p["PartNumber"] for p in rest["ObjectParts"]["Parts"]] == [3]
    with pytest.raises(ClientError) as err:
        s3.get_object_attributes(Bucket=bucket, Key="missing", ObjectAttributes=["ETag"])
    assert code(err) == "NoSuchKey"
