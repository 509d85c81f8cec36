"""S3 behaviours found through the ceph/s3-tests compatibility run (compat/s3tests), each checked
here with boto3 or raw HTTP against a real ``minicloud up`` so our suite never needs s3-tests."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.aws import code, status
from tests.support.server import MinicloudServer


def _name(prefix: str = "compat") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def s3(server: MinicloudServer) -> Any:
    return server.client("s3")


@pytest.fixture
def s3v2(server: MinicloudServer) -> Any:
    """A client signing with S3's legacy SigV2 (botocore's ``s3`` signer)."""
    return server.client("s3", signature_version="s3")


@pytest.fixture
def bucket(s3: Any) -> str:
    name = _name()
    s3.create_bucket(Bucket=name)
    return name


def _with_headers(client: Any, operation: str, headers: dict[str, str]) -> None:
    """Set headers before the request is signed (as a client sending them would)."""
    def update(**kw: Any) -> None:
        kw["params"]["headers"].update(headers)
    client.meta.events.register(f"before-call.s3.{operation}", update)


# -- SigV2 ------------------------------------------------------------------------------------------

def test_sigv2_bucket_requests_signed_with_trailing_slash(s3v2: Any) -> None:
    """botocore signs a path-style bucket as ``/bucket/``: CreateBucket and ListObjects verify."""
    name = _name()
    s3v2.create_bucket(Bucket=name)
    assert s3v2.list_objects(Bucket=name)["Name"] == name
    s3v2.delete_bucket(Bucket=name)


@pytest.mark.parametrize("value", ["Bad Date", "", "Tue, 07 Jul 1950 21:53:04 GMT"])
def test_sigv2_invalid_amz_date_is_access_denied(s3v2: Any, bucket: str, value: str) -> None:
    _with_headers(s3v2, "PutObject", {"x-amz-date": value})
    with pytest.raises(ClientError) as err:
        s3v2.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert (status(err), code(err)) == (403, "AccessDenied")


def test_sigv2_old_amz_date_is_skewed(s3v2: Any, bucket: str) -> None:
    _with_headers(s3v2, "PutObject", {"x-amz-date": "Tue, 07 Jul 2010 21:53:04 GMT"})
    with pytest.raises(ClientError) as err:
        s3v2.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert (status(err), code(err)) == (403, "RequestTimeTooSkewed")


