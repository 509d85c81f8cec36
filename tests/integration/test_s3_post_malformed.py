"""Browser-form uploads (POST to a bucket) with malformed input against a real ``minicloud up``
(regression tests of the security review: each answered 500): a field that is not UTF-8 and a
signed policy whose content-length-range bounds are no numbers are 400s with S3's error codes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import urllib.error
import urllib.request
import uuid
from xml.etree import ElementTree

from tests.support.server import MinicloudServer


def _post(server: MinicloudServer, bucket: str, body: bytes) -> tuple[int, str]:
    request = urllib.request.Request(f"{server.endpoint}/{bucket}", data=body, method="POST",
                                     headers={"content-type": "multipart/form-data; boundary=X"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, ""
    except urllib.error.HTTPError as err:
        return err.code, ElementTree.fromstring(err.read()).findtext("Code") or ""


def _field(name: str, value: bytes) -> bytes:
    return b'--X\r\nContent-Disposition: form-data; name="' + name.encode() + b'"\r\n\r\n' + value + b"\r\n"


FILE = b'--X\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\nhi\r\n--X--\r\n'


def test_malformed_post_uploads_are_client_errors(server: MinicloudServer) -> None:
    bucket = f"post-{uuid.uuid4().hex[:8]}"
    server.client("s3").create_bucket(Bucket=bucket)
    assert _post(server, bucket, _field("key", b"\xff") + FILE) == (400, "MalformedPOSTRequest")

    root = server.root
    assert root is not None
    policy = base64.b64encode(json.dumps({"expiration": "2030-01-01T00:00:00Z", "conditions": [
        {"bucket": bucket}, ["starts-with", "$key", ""], ["content-length-range", "a", "10"]]}).encode())
    signature = base64.b64encode(hmac.new(root.secret_access_key.encode(), policy, hashlib.sha1).digest())
    signed = (_field("key", b"k") + _field("policy", policy) + _field("AWSAccessKeyId", root.access_key_id.encode())
              + _field("signature", signature))
    assert _post(server, bucket, signed + FILE) == (400, "InvalidPolicyDocument")
    assert _post(server, bucket, signed[:-3] + b"\xc3\xa9\r\n" + FILE) == (403, "SignatureDoesNotMatch")
    assert "Contents" not in server.client("s3").list_objects_v2(Bucket=bucket)
