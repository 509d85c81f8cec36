"""S3's legacy SigV2: what boto3 and ``aws s3 presign`` produce for presigned URLs in us-east-1
(minicloud's default region) unless configured for s3v4, and botocore's HmacV1 header signer."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from typing import Any

import boto3
import botocore.auth
import botocore.awsrequest
import botocore.credentials
import pytest

from minicloud.aws import sigv4
from minicloud.aws.errors import error_code
from minicloud.aws.request import AwsRequest
from minicloud.aws.sigv4 import AuthFailureKind, auth_error
from tests.unit.aws.test_sigv4 import (
    ENDPOINT,
    KEY_ID,
    ODD_KEYS,
    SECRET,
    TOKEN,
    check,
    presigned,
    refused,
    replace,
    to_aws_request,
    with_header,
)

K = AuthFailureKind


def default_s3(token: str | None = None) -> Any:
    """An S3 client exactly as boto3 makes it by default: no signature_version configured."""
    session = boto3.session.Session(aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET,
                                    aws_session_token=token, region_name="us-east-1")
    return session.client("s3", endpoint_url=ENDPOINT)


def auth_of(request: AwsRequest) -> sigv4.SigV4Auth:
    auth = sigv4.parse_auth(request)
    assert auth is not None
    return auth


def presign(method: str, token: str | None = None, expires: int = 3600, **params: str) -> str:
    url: str = default_s3(token).generate_presigned_url(method, Params=params, ExpiresIn=expires)
    assert "AWSAccessKeyId=" in url and "Signature=" in url, url
    return url


@pytest.mark.parametrize("key", ODD_KEYS)
def test_default_boto3_presigned_get(key: str) -> None:
    auth = check(presigned(presign("get_object", Bucket="bucket", Key=key)))
    assert (auth.version, auth.service, auth.region, auth.presigned) == (2, "s3", "", True)
    assert auth.access_key_id == KEY_ID


def test_presigned_with_sub_resources_and_response_overrides() -> None:
    url = presign("get_object", Bucket="b", Key="k", VersionId="3/L4kqtJl+cGq",
                  ResponseContentType="text/plain; charset=utf-8",
                  ResponseContentDisposition='attachment; filename="a b.txt"')
    request = presigned(url)
    check(request)
    refused(replace(request, query=request.query.replace("versionId=", "versionId=x")), K.BAD_SIGNATURE)


def test_presigned_put_with_content_type_and_token() -> None:
    url = presign("put_object", token=TOKEN, Bucket="b", Key="up/ü.bin", ContentType="image/png")
    auth = check(presigned(url, "PUT", {"Content-Type": "image/png"}, b"body"))
    assert auth.session_token == TOKEN
    refused(presigned(url, "PUT", {}, b"body"), K.BAD_SIGNATURE)  # the signed type must be sent
    refused(presigned(url, "PUT", {"Content-Type": "text/html"}, b"body"), K.BAD_SIGNATURE)
    refused(presigned(url.replace("up/", "down/"), "PUT"), K.BAD_SIGNATURE)


def test_presigned_expiry() -> None:
    request = presigned(presign("get_object", expires=60, Bucket="b", Key="k"))
    auth = check(request, now=auth_of(request).date - timedelta(seconds=1))
    check(request, now=auth.date)
    failure = refused(request, K.EXPIRED, now=auth.date + timedelta(seconds=1))
    error = auth_error(failure, "rest-xml", "s3")
    assert (error_code(error), error.message) == ("AccessDenied", "Request has expired")
    assert set(error.fields) == {"Expires", "ServerTime"}


def test_wrong_secret() -> None:
    request = presigned(presign("get_object", Bucket="b", Key="k"))
    failure = refused(request, K.BAD_SIGNATURE, secret="other", now=auth_of(request).date)
    error = auth_error(failure, "rest-xml", "s3")
    assert error.fields["StringToSign"].startswith("GET\n\n\n")
    assert error.fields["AWSAccessKeyId"] == KEY_ID


def test_aws_cli_presign() -> None:
    env = {**os.environ, "AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET,
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": os.devnull,
           "AWS_SHARED_CREDENTIALS_FILE": os.devnull}
    aws = os.path.join(os.path.dirname(sys.executable), "aws")
    url = subprocess.run([aws, "s3", "presign", "s3://bucket/dir/ü a+b.txt", "--endpoint-url", ENDPOINT],
                         env=env, capture_output=True, text=True, check=True, timeout=120).stdout.strip()
    assert "Signature=" in url
    check(presigned(url), now=auth_of(presigned(url)).date - timedelta(minutes=30))


# -- header auth (botocore's HmacV1Auth) -----------------------------------------------------------

def sign_v1(method: str, url: str, headers: list[tuple[str, str]] | None = None, body: bytes = b"",
            auth_path: str | None = None, token: str | None = None) -> AwsRequest:
    request = botocore.awsrequest.AWSRequest(method=method, url=url, data=body, auth_path=auth_path)
    for name, value in headers or []:
        request.headers[name] = value
    botocore.auth.HmacV1Auth(botocore.credentials.Credentials(KEY_ID, SECRET, token)).add_auth(request)
    return to_aws_request(request.prepare(), request.headers)


def test_header_auth_path_style() -> None:
    request = sign_v1("PUT", f"{ENDPOINT}/bucket/a%20b%2Bc?acl&foo=bar",
                      [("Content-Type", "text/plain"), ("Content-MD5", "1B2M2Y8AsgTpgAmY7PhCfg=="),
                       ("x-amz-meta-Multi", "one"), ("X-Amz-Meta-Multi", " two "),
                       ("x-amz-acl", "private")], b"", token=TOKEN)
    auth = check(request)
    assert (auth.version, auth.presigned, auth.session_token) == (2, False, TOKEN)
    for tampered in (with_header(request, "x-amz-acl", "public-read"),
                     with_header(request, "content-type", "text/html"),
                     replace(request, query="acl&policy"), replace(request, method="POST")):
        refused(tampered, K.BAD_SIGNATURE)
    check(replace(request, query="acl&foo=other"))  # not a sub-resource: not signed, as in S3


def test_header_auth_virtual_hosted() -> None:
    request = sign_v1("GET", "http://bucket.s3.example.test:4566/key?uploads", auth_path="/bucket/key")
    check(request)


def test_header_auth_skew() -> None:
    request = sign_v1("GET", f"{ENDPOINT}/bucket/key")
    auth = check(request)
    check(request, now=auth.date + timedelta(minutes=15))
    failure = refused(request, K.SKEWED, now=auth.date + timedelta(minutes=16))
    assert error_code(auth_error(failure, "rest-xml", "s3")) == "RequestTimeTooSkewed"


def test_sigv2_only_for_s3_and_malformed() -> None:
    request = sign_v1("GET", f"{ENDPOINT}/bucket/key")
    refused(request, K.UNSUPPORTED_AUTH, service="iam")
    for header in ("AWS ", "AWS nocolon", "AWS :sig"):
        broken = with_header(request, "authorization", header)
        with pytest.raises(sigv4.AuthFailure) as caught:
            sigv4.parse_auth(broken)
        assert caught.value.kind is K.MALFORMED
    no_expires = AwsRequest("GET", "/b/k", "AWSAccessKeyId=A&Signature=abc")
    with pytest.raises(sigv4.AuthFailure):
        sigv4.parse_auth(no_expires)
