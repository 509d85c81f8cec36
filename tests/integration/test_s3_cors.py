"""S3 CORS against a real ``minicloud up``: the configuration through boto3, browsers' preflight
OPTIONS requests (unsigned, as a browser sends them) and the Access-Control-* headers on actual
requests that carry an Origin."""

from __future__ import annotations

import urllib.error
import urllib.request
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.aws import code
from tests.support.server import MinicloudServer


@pytest.fixture
def s3(server: MinicloudServer) -> Any:
    return server.client("s3")


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"cors-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


RULES = [
    {"ID": "app", "AllowedOrigins": ["https://app.example.com"], "AllowedMethods": ["GET", "PUT"],
     "AllowedHeaders": ["content-type", "x-amz-*"], "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 600},
    {"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]},
]


def request(url: str, method: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()


def test_configuration(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as err:
        s3.get_bucket_cors(Bucket=bucket)
    assert code(err) == "NoSuchCORSConfiguration"
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": RULES})
    got = s3.get_bucket_cors(Bucket=bucket)["CORSRules"]
    assert got[0]["AllowedOrigins"] == ["https://app.example.com"] and got[0]["MaxAgeSeconds"] == 600
    for bad in ([{"AllowedOrigins": ["*"], "AllowedMethods": ["PATCH"]}],
                [{"AllowedOrigins": ["https://*.*.example.com"], "AllowedMethods": ["GET"]}]):
        with pytest.raises(ClientError) as err:
            s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": bad})
        assert code(err) == "InvalidRequest"
    s3.delete_bucket_cors(Bucket=bucket)
    with pytest.raises(ClientError) as err:
        s3.get_bucket_cors(Bucket=bucket)
    assert code(err) == "NoSuchCORSConfiguration"


def test_preflight(server: MinicloudServer, s3: Any, bucket: str) -> None:
    url = f"{server.endpoint}/{bucket}/some/key.txt"
    status, _, body = request(url, "OPTIONS", {"Origin": "https://app.example.com",
                                               "Access-Control-Request-Method": "PUT"})
    assert status == 403 and b"CORSResponse" in body  # no configuration yet
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": RULES})
    status, headers, _ = request(url, "OPTIONS", {
        "Origin": "https://app.example.com", "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "Content-Type, X-Amz-Meta-Colour"})
    assert status == 200
    assert headers["access-control-allow-origin"] == "https://app.example.com"
    assert headers["access-control-allow-methods"] == "GET, PUT"
    assert headers["access-control-allow-headers"] == "Content-Type, X-Amz-Meta-Colour"
    assert headers["access-control-max-age"] == "600" and headers["access-control-expose-headers"] == "ETag"
    assert headers["access-control-allow-credentials"] == "true"
    status, headers, _ = request(url, "OPTIONS", {"Origin": "https://other.example.org",
                                                  "Access-Control-Request-Method": "GET"})
    assert status == 200 and headers["access-control-allow-origin"] == "*"
    status, _, body = request(url, "OPTIONS", {"Origin": "https://other.example.org",
                                               "Access-Control-Request-Method": "PUT"})
    assert status == 403 and b"CORSResponse" in body
    status, _, body = request(url, "OPTIONS", {"Origin": "https://app.example.com",
                                               "Access-Control-Request-Method": "PUT",
                                               "Access-Control-Request-Headers": "authorization-extra"})
    assert status == 403
    status, _, body = request(url, "OPTIONS", {"Access-Control-Request-Method": "GET"})
    assert status == 400 and b"BadRequest" in body
    status, _, _ = request(f"{server.endpoint}/{bucket}", "OPTIONS", {"Origin": "https://app.example.com",
                                                                      "Access-Control-Request-Method": "GET"})
    assert status == 200


def test_actual_requests_carry_cors_headers(server: MinicloudServer, s3: Any, bucket: str) -> None:
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": RULES})
    s3.put_object(Bucket=bucket, Key="k", Body=b"hello")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"})
    status, headers, body = request(url, "GET", {"Origin": "https://app.example.com"})
    assert status == 200 and body == b"hello"
    assert headers["access-control-allow-origin"] == "https://app.example.com"
    assert headers["access-control-expose-headers"] == "ETag"
    status, headers, _ = request(url, "GET", {})
    assert "access-control-allow-origin" not in headers


def test_preflight_to_a_presigned_url(server: MinicloudServer, s3: Any, bucket: str) -> None:
    """A browser sends the preflight to the presigned URL itself: its signature (for GET) is ignored."""
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"})
    status, _, body = request(url, "OPTIONS", {})
    assert status == 400 and b"BadRequest" in body
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": RULES})
    status, headers, _ = request(url, "OPTIONS", {"Origin": "https://app.example.com",
                                                  "Access-Control-Request-Method": "GET"})
    assert status == 200 and headers["access-control-allow-origin"] == "https://app.example.com"
