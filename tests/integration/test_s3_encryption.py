"""S3 encryption at rest through boto3 against a real ``minicloud up``: SSE-S3 by default (the bytes
on disk are not the plaintext), bucket default encryption, ranges over 64 KiB frames, SSE-C with
the customer's key (refused without it or with another), copies and multipart uploads."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
import uuid
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.aws import code, status
from tests.support.server import MinicloudServer

MiB = 1024 * 1024


@pytest.fixture
def s3(server: MinicloudServer) -> Any:
    return server.client("s3")


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"enc-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


def blob_files(server: MinicloudServer) -> list[Path]:
    return [p for p in (server.data_dir / "s3").rglob("*") if p.is_file() and not p.name.startswith(".")
            and "ingest" not in p.parts and p.name != "master.key"]


def contains_on_disk(server: MinicloudServer, needle: bytes) -> bool:
    """Whether any stored blob holds ``needle`` (the server is shared: other tests' blobs may be
    deleted between the listing and the read)."""
    for path in blob_files(server):
        try:
            if needle in path.read_bytes():
                return True
        except FileNotFoundError:
            continue
    return False


def test_objects_are_encrypted_at_rest_by_default(server: MinicloudServer, s3: Any, bucket: str) -> None:
    marker = f"plaintext-marker-{uuid.uuid4().hex}".encode()
    small = marker * 100
    large = marker + os.urandom(3 * MiB) + marker  # streamed through an ingest
    put = s3.put_object(Bucket=bucket, Key="small", Body=small)
    assert put["ServerSideEncryption"] == "AES256"
    assert put["ETag"] == f'"{hashlib.md5(small).hexdigest()}"'
    s3.put_object(Bucket=bucket, Key="large", Body=large)
    assert not contains_on_disk(server, marker)
    got = s3.get_object(Bucket=bucket, Key="small")
    assert got["Body"].read() == small and got["ServerSideEncryption"] == "AES256"
    assert s3.get_object(Bucket=bucket, Key="large")["Body"].read() == large
    assert s3.head_object(Bucket=bucket, Key="large")["ServerSideEncryption"] == "AES256"
    key_file = server.data_dir / "s3" / "master.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600 and key_file.stat().st_size == 32


def test_ranges_across_frames(s3: Any, bucket: str) -> None:
    body = os.urandom(300 * 1024 + 17)
    s3.put_object(Bucket=bucket, Key="r", Body=body)
    frame = 64 * 1024
    for first, last in [(0, 0), (frame - 1, frame), (frame, 3 * frame + 5), (len(body) - 10, len(body) - 1),
                        (5, len(body) - 1)]:
        got = s3.get_object(Bucket=bucket, Key="r", Range=f"bytes={first}-{last}")
        assert got["Body"].read() == body[first:last + 1], (first, last)
    assert s3.get_object(Bucket=bucket, Key="r", Range="bytes=-100")["Body"].read() == body[-100:]


def test_empty_and_frame_sized_objects(s3: Any, bucket: str) -> None:
    for size in (0, 1, 64 * 1024, 128 * 1024, 64 * 1024 + 1):
        body = os.urandom(size)
        s3.put_object(Bucket=bucket, Key=f"s{size}", Body=body)
        assert s3.get_object(Bucket=bucket, Key=f"s{size}")["Body"].read() == body


def test_bucket_encryption_configuration(s3: Any, bucket: str) -> None:
    default = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert default[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}, "BucketKeyEnabled": True}]})
    rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["BucketKeyEnabled"] is True
    with pytest.raises(ClientError) as err:
        s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [
            {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256", "KMSMasterKeyID": "k"}}]})
    assert code(err) == "InvalidArgument"
    with pytest.raises(ClientError) as err:
        s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [
            {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms:dsse"}}]})
    assert code(err) == "NotImplemented"
    s3.delete_bucket_encryption(Bucket=bucket)
    assert s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"] == default
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket=bucket, Key="k", Body=b"x", ServerSideEncryption="bogus")
    assert code(err) == "InvalidArgument"


def customer_key() -> dict[str, str]:
    key = os.urandom(32)
    return {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": base64.b64encode(key).decode(),
            "SSECustomerKeyMD5": base64.b64encode(hashlib.md5(key).digest()).decode()}


def test_sse_c(server: MinicloudServer, s3: Any, bucket: str) -> None:
    key, other = customer_key(), customer_key()
    marker = f"customer-secret-{uuid.uuid4().hex}".encode()
    body = marker + os.urandom(200 * 1024)
    put = s3.put_object(Bucket=bucket, Key="c", Body=body, **key)
    assert put["SSECustomerAlgorithm"] == "AES256" and put["SSECustomerKeyMD5"] == key["SSECustomerKeyMD5"]
    assert "ServerSideEncryption" not in put
    assert not contains_on_disk(server, marker)
    assert not contains_on_disk(server, base64.b64decode(key["SSECustomerKey"]))
    got = s3.get_object(Bucket=bucket, Key="c", **key)
    assert got["Body"].read() == body and got["SSECustomerKeyMD5"] == key["SSECustomerKeyMD5"]
    assert s3.get_object(Bucket=bucket, Key="c", Range="bytes=70000-70009", **key)["Body"].read() == \
        body[70000:70010]
    assert s3.head_object(Bucket=bucket, Key="c", **key)["ContentLength"] == len(body)
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="c")
    assert code(err) == "InvalidRequest" and status(err) == 400
    with pytest.raises(ClientError) as err:
        s3.head_object(Bucket=bucket, Key="c")
    assert status(err) == 400
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="c", **other)
    assert code(err) == "AccessDenied" and status(err) == 403
    # copy: the source's key opens it, the destination is sealed as asked
    with pytest.raises(ClientError) as err:
        s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "c"})
    assert code(err) == "InvalidRequest"
    copied = s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "c"},
                            CopySourceSSECustomerAlgorithm="AES256",
                            CopySourceSSECustomerKey=key["SSECustomerKey"],
                            CopySourceSSECustomerKeyMD5=key["SSECustomerKeyMD5"])
    assert copied["ServerSideEncryption"] == "AES256"
    assert s3.get_object(Bucket=bucket, Key="copy")["Body"].read() == body
    s3.copy_object(Bucket=bucket, Key="copy2", CopySource={"Bucket": bucket, "Key": "copy"}, **other)
    assert s3.get_object(Bucket=bucket, Key="copy2", **other)["Body"].read() == body


def test_sse_c_bad_keys(s3: Any, bucket: str) -> None:
    key = customer_key()
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket=bucket, Key="k", Body=b"x", SSECustomerAlgorithm="AES256",
                      SSECustomerKey=key["SSECustomerKey"], SSECustomerKeyMD5="AAAAAAAAAAAAAAAAAAAAAA==")
    assert code(err) == "InvalidArgument"
    short = base64.b64encode(b"0" * 16).decode()
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket=bucket, Key="k", Body=b"x", SSECustomerAlgorithm="AES256", SSECustomerKey=short,
                      SSECustomerKeyMD5=base64.b64encode(hashlib.md5(b"0" * 16).digest()).decode())
    assert code(err) == "InvalidArgument"
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket=bucket, Key="k", Body=b"x", **{**key, "SSECustomerAlgorithm": "AES128"})
    assert code(err) == "InvalidEncryptionAlgorithmError"


def test_sse_c_multipart(s3: Any, bucket: str) -> None:
    key = customer_key()
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp", **key)
    assert upload["SSECustomerKeyMD5"] == key["SSECustomerKeyMD5"]
    parts = [os.urandom(5 * MiB), os.urandom(123_456)]
    with pytest.raises(ClientError) as err:
        s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload["UploadId"], PartNumber=1, Body=parts[0])
    assert code(err) == "InvalidRequest"
    etags = [s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload["UploadId"], PartNumber=n, Body=data,
                            **key)["ETag"] for n, data in enumerate(parts, start=1)]
    s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload["UploadId"], MultipartUpload={
        "Parts": [{"PartNumber": n, "ETag": e} for n, e in enumerate(etags, start=1)]})
    whole = b"".join(parts)
    assert s3.get_object(Bucket=bucket, Key="mp", **key)["Body"].read() == whole
    first = 5 * MiB - 3
    got = s3.get_object(Bucket=bucket, Key="mp", Range=f"bytes={first}-{first + 9}", **key)["Body"].read()
    assert got == whole[first:first + 10]
    assert s3.get_object(Bucket=bucket, Key="mp", PartNumber=2, **key)["Body"].read() == parts[1]


def test_corrupt_frame_is_served_from_another_replica(server: MinicloudServer, s3: Any, bucket: str) -> None:
    body = os.urandom(2 * MiB)
    s3.put_object(Bucket=bucket, Key="rot", Body=body)
    first_zone = server.data_dir / "s3" / "us-east-1a" / "sha256"
    victim = max((p for p in first_zone.rglob("*") if p.is_file()), key=lambda p: p.stat().st_mtime_ns)
    assert hashlib.sha256(victim.read_bytes()).hexdigest() == victim.name  # named by its sealed bytes
    data = bytearray(victim.read_bytes())
    data[1000000] ^= 0xFF  # inside the frame the range below reads
    victim.chmod(0o600)
    victim.write_bytes(bytes(data))
    got = s3.get_object(Bucket=bucket, Key="rot", Range="bytes=999000-999099")["Body"].read()
    assert got == body[999000:999100]
    assert hashlib.sha256(victim.read_bytes()).hexdigest() == victim.name  # repaired from a good replica
    assert s3.get_object(Bucket=bucket, Key="rot")["Body"].read() == body


@pytest.mark.parametrize("algorithm", ["CRC32", "CRC32C", "CRC64NVME"])
def test_multipart_full_object_checksum(s3: Any, bucket: str, algorithm: str) -> None:
    """Parts' CRCs combined into the whole object's (ChecksumType FULL_OBJECT), on sealed parts."""
    from minicloud.services.s3.checksums import Checksums

    def crc(data: bytes) -> str:
        summer = Checksums({algorithm})
        summer.update(data)
        return summer.values()[algorithm]
    member = f"Checksum{algorithm}"
    parts = [os.urandom(5 * MiB), os.urandom(12345)]
    upload = s3.create_multipart_upload(Bucket=bucket, Key="full", ChecksumAlgorithm=algorithm,
                                        ChecksumType="FULL_OBJECT")
    assert upload["ChecksumType"] == "FULL_OBJECT"
    etags = [s3.upload_part(Bucket=bucket, Key="full", UploadId=upload["UploadId"], PartNumber=n, Body=data,
                            ChecksumAlgorithm=algorithm, **{member: crc(data)})["ETag"]
             for n, data in enumerate(parts, start=1)]
    whole = crc(b"".join(parts))
    done = s3.complete_multipart_upload(Bucket=bucket, Key="full", UploadId=upload["UploadId"], **{member: whole},
                                        MultipartUpload={"Parts": [
                                            {"PartNumber": n, "ETag": e, member: crc(d)}
                                            for n, (e, d) in enumerate(zip(etags, parts, strict=True), start=1)]})
    assert done[member] == whole and done["ChecksumType"] == "FULL_OBJECT"
    head = s3.head_object(Bucket=bucket, Key="full", ChecksumMode="ENABLED")
    assert head[member] == whole and head["ChecksumType"] == "FULL_OBJECT"


def test_part_checksums_kept_after_completion(s3: Any, bucket: str) -> None:
    from minicloud.services.s3.checksums import Checksums

    def sha(data: bytes) -> str:
        summer = Checksums({"SHA256"})
        summer.update(data)
        return summer.values()["SHA256"]
    parts = [os.urandom(5 * MiB), os.urandom(1000)]
    upload = s3.create_multipart_upload(Bucket=bucket, Key="p", ChecksumAlgorithm="SHA256")
    done = [s3.upload_part(Bucket=bucket, Key="p", UploadId=upload["UploadId"], PartNumber=n, Body=data,
                           ChecksumAlgorithm="SHA256") for n, data in enumerate(parts, start=1)]
    listed = [{"PartNumber": n, "ETag": d["ETag"], "ChecksumSHA256": d["ChecksumSHA256"]}
              for n, d in enumerate(done, start=1)]
    with pytest.raises(ClientError) as err:
        s3.complete_multipart_upload(Bucket=bucket, Key="p", UploadId=upload["UploadId"],
                                     ChecksumSHA256=sha(b"wrong"), MultipartUpload={"Parts": listed})
    assert code(err) == "BadDigest"
    s3.complete_multipart_upload(Bucket=bucket, Key="p", UploadId=upload["UploadId"], MultipartUpload={"Parts": listed})
    second = s3.get_object(Bucket=bucket, Key="p", PartNumber=2)
    assert second["Body"].read() == parts[1] and second["ChecksumSHA256"] == sha(parts[1])
    attributes = s3.get_object_attributes(Bucket=bucket, Key="p", ObjectAttributes=["ObjectParts"])
    assert [p["ChecksumSHA256"] for p in attributes["ObjectParts"]["Parts"]] == [sha(p) for p in parts]
