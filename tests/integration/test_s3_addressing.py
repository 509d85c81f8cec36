"""Virtual-hosted-style addressing (boto3 with addressing_style=virtual, curl with a Host header)
and browser POST uploads (boto3's generate_presigned_post, sent by curl as a browser would)
against a real ``minicloud up``."""

from __future__ import annotations

import base64
import json
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.support.server import MinicloudServer


@pytest.fixture
def s3(server: MinicloudServer) -> Any:
    return server.client("s3")


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"addr-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


def virtual_client(server: MinicloudServer, domain: str) -> Any:
    """boto3 addressing buckets as <bucket>.<domain>, its connections sent to 127.0.0.1."""
    assert server.root is not None
    client = boto3.session.Session().client(
        "s3", endpoint_url=f"http://{domain}:{server.port}", region_name="us-east-1",
        aws_access_key_id=server.root.access_key_id, aws_secret_access_key=server.root.secret_access_key,
        config=Config(s3={"addressing_style": "virtual"}, retries={"max_attempts": 1}))

    def to_loopback(request: Any, **_: Any) -> None:
        parts = urlsplit(request.url)
        assert parts.hostname and parts.hostname.endswith(domain)  # the bucket really is in the host
        request.headers["Host"] = parts.netloc
        request.url = urlunsplit(parts._replace(netloc=f"127.0.0.1:{server.port}"))
    client.meta.events.register("before-send.s3", to_loopback)
    return client


@pytest.mark.parametrize("domain", ["s3.minicloud.test", "localhost"])
def test_virtual_hosted_style(server: MinicloudServer, s3: Any, domain: str) -> None:
    client = virtual_client(server, domain)
    name = f"vh-{uuid.uuid4().hex[:10]}"
    client.create_bucket(Bucket=name)
    client.put_object(Bucket=name, Key="dir/a b+c.txt", Body=b"virtual")
    assert client.get_object(Bucket=name, Key="dir/a b+c.txt")["Body"].read() == b"virtual"
    assert [o["Key"] for o in client.list_objects_v2(Bucket=name)["Contents"]] == ["dir/a b+c.txt"]
    assert s3.get_object(Bucket=name, Key="dir/a b+c.txt")["Body"].read() == b"virtual"  # the same bucket
    with pytest.raises(ClientError) as err:
        client.get_object(Bucket=name, Key="missing")
    assert err.value.response["Error"]["Code"] == "NoSuchKey"
    client.delete_object(Bucket=name, Key="dir/a b+c.txt")
    client.delete_bucket(Bucket=name)


def test_virtual_hosted_presigned_url_with_curl(server: MinicloudServer, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k.txt", Body=b"presigned")
    client = virtual_client(server, "s3.minicloud.test")
    url = client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k.txt"})
    parts = urlsplit(url)
    local = urlunsplit(parts._replace(netloc=f"127.0.0.1:{server.port}"))
    out = subprocess.run(["curl", "-sf", "-H", f"Host: {parts.netloc}", local], capture_output=True, timeout=30)
    assert out.returncode == 0 and out.stdout == b"presigned"


def post_form(url: str, fields: dict[str, str], file: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    args = ["curl", "-s", "-o", "-", "-w", "\n%{http_code}", "-D", "-"]
    for name, value in fields.items():
        args += ["--form-string", f"{name}={value}"]
    args += ["-F", f"file=@{file}", *extra, url]
    return subprocess.run(args, capture_output=True, text=True, timeout=30)


def status_of(result: subprocess.CompletedProcess[str]) -> int:
    return int(result.stdout.strip().rsplit("\n", 1)[-1])


def test_browser_post_upload(server: MinicloudServer, s3: Any, bucket: str, tmp_path: Path) -> None:
    upload = tmp_path / "photo.jpg"
    upload.write_bytes(b"\xff\xd8 a picture \r\n--not-a-boundary\r\n")
    post = s3.generate_presigned_post(
        Bucket=bucket, Key="uploads/${filename}",
        Fields={"success_action_status": "201", "Content-Type": "image/jpeg", "x-amz-meta-owner": "ann"},
        Conditions=[{"success_action_status": "201"}, ["starts-with", "$Content-Type", "image/"],
                    {"x-amz-meta-owner": "ann"}, ["content-length-range", 1, 1024]])
    result = post_form(post["url"], post["fields"], upload)
    assert status_of(result) == 201, result.stdout
    assert "<Key>uploads/photo.jpg</Key>" in result.stdout and f"<Bucket>{bucket}</Bucket>" in result.stdout
    got = s3.get_object(Bucket=bucket, Key="uploads/photo.jpg")
    assert got["Body"].read() == upload.read_bytes()
    assert got["ContentType"] == "image/jpeg" and got["Metadata"] == {"owner": "ann"}


def test_browser_post_redirect_and_refusals(server: MinicloudServer, s3: Any, bucket: str, tmp_path: Path) -> None:
    upload = tmp_path / "f.txt"
    upload.write_bytes(b"data")
    post = s3.generate_presigned_post(
        Bucket=bucket, Key="r.txt", Fields={"success_action_redirect": "http://app.example/done"},
        Conditions=[{"success_action_redirect": "http://app.example/done"}])
    result = post_form(post["url"], post["fields"], upload)
    assert status_of(result) == 303
    assert "location: http://app.example/done?bucket=" in result.stdout.lower()
    assert s3.get_object(Bucket=bucket, Key="r.txt")["Body"].read() == b"data"
    # a field the policy does not cover
    plain = s3.generate_presigned_post(Bucket=bucket, Key="x.txt")
    refused = post_form(plain["url"], {**plain["fields"], "x-amz-meta-sneaky": "1"}, upload)
    assert status_of(refused) == 403 and "Extra input fields" in refused.stdout
    # a tampered key breaks the policy's condition on it
    tampered = post_form(plain["url"], {**plain["fields"], "key": "other.txt"}, upload)
    assert status_of(tampered) == 403 and "Policy Condition failed" in tampered.stdout
    # a tampered policy breaks the signature
    policy = json.loads(base64.b64decode(plain["fields"]["policy"]))
    policy["expiration"] = (datetime.now(UTC) + timedelta(days=9)).strftime("%Y-%m-%dT%H:%M:%SZ")
    forged = {**plain["fields"], "policy": base64.b64encode(json.dumps(policy).encode()).decode()}
    result = post_form(plain["url"], forged, upload)
    assert status_of(result) == 403 and "SignatureDoesNotMatch" in result.stdout
    expired = s3.generate_presigned_post(Bucket=bucket, Key="e.txt", ExpiresIn=-10)
    result = post_form(expired["url"], expired["fields"], upload)
    assert status_of(result) == 403 and "Policy expired" in result.stdout
    too_big = s3.generate_presigned_post(Bucket=bucket, Key="b.txt", Conditions=[["content-length-range", 0, 2]])
    assert status_of(post_form(too_big["url"], too_big["fields"], upload)) == 400
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="b.txt")
    # unsigned: anonymous, refused on a private bucket
    anonymous = post_form(f"{server.endpoint}/{bucket}", {"key": "anon.txt"}, upload)
    assert status_of(anonymous) == 403
