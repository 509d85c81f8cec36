"""S3's legacy Signature Version 2 (HMAC-SHA1), still what boto3 and ``aws s3 presign`` use for
presigned URLs in regions that accept it (us-east-1 among them) unless told ``s3v4``.

    Authorization: AWS AKID:base64(HMAC-SHA1(secret, StringToSign))
    ?AWSAccessKeyId=AKID&Expires=<epoch seconds>&Signature=<base64>

    StringToSign = METHOD\\n Content-MD5\\n Content-Type\\n Date-or-Expires\\n
                   x-amz-name:value\\n...  /bucket/key?sub-resources

A SigV2 request is a ``SigV4Auth`` with ``version=2``: service ``s3``, no region (the caller uses
its default region), ``date`` the request time (header) or the expiry time (presigned).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import unquote

from minicloud.aws.auth.canonical import decoded_pairs
from minicloud.aws.auth.failures import AuthFailure, AuthFailureKind
from minicloud.aws.request import AwsRequest

# The sub-resources that are part of the signed resource (S3's list, as botocore signs it).
SUB_RESOURCES = frozenset({
    "accelerate", "acl", "analytics", "cors", "defaultObjectAcl", "delete", "inventory", "lifecycle",
    "location", "logging", "metrics", "notification", "object-lock", "partNumber", "policy",
    "replication", "requestPayment", "response-cache-control", "response-content-disposition",
    "response-content-encoding", "response-content-language", "response-content-type",
    "response-expires", "restore", "select", "select-type", "storageClass", "tagging", "torrent",
    "uploadId", "uploads", "versionId", "versioning", "versions", "website",
})


def parse_header(header: str) -> tuple[str, str]:
    """``AWS AKID:signature`` -> (access key id, signature)."""
    access_key, colon, signature = header.strip()[4:].strip().rpartition(":")
    if not colon or not access_key or not signature:
        raise AuthFailure(AuthFailureKind.MALFORMED, "AWS authorization header is invalid.  Expected "
                          "AwsAccessKeyId:signature", details={"service": "s3"})
    return access_key, signature


def parse_query(request: AwsRequest) -> tuple[str, str, datetime, str | None]:
    """Presigned: (access key id, signature, expiry, session token)."""
    params: dict[str, str] = {}
    for name, value in decoded_pairs(request.query):
        params.setdefault(name, value)
    access_key, signature, expires = (params.get(n) for n in ("AWSAccessKeyId", "Signature", "Expires"))
    if not access_key or not signature or not expires or not expires.isdigit():
        raise AuthFailure(AuthFailureKind.MALFORMED, "Query-string authentication requires the "
                          "Signature, Expires and AWSAccessKeyId parameters", presigned=True,
                          details={"service": "s3"})
    return access_key, signature, datetime.fromtimestamp(int(expires), UTC), \
        params.get("x-amz-security-token")


def request_date(request: AwsRequest) -> datetime:
    """The request time: x-amz-date when present (even empty), else Date.

    S3 answers 403 AccessDenied when neither is a valid date (a date before 1970 included).
    """
    value = request.headers.get("x-amz-date")
    if value is None:
        value = request.headers.get("date")
    try:
        parsed = parsedate_to_datetime(value.strip()) if value else None
    except (TypeError, ValueError):
        parsed = None
    if parsed is None or parsed.year < 1970:
        raise AuthFailure(AuthFailureKind.MISSING_AUTH, "AWS authentication requires a valid Date or "
                          "x-amz-date header", details={"service": "s3", "message": "own"})
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def string_to_sign_candidates(request: AwsRequest, *, presigned: bool) -> list[str]:
    """The StringToSign (path-style, then virtual-hosted: the bucket taken from Host).

    Content-MD5 and Content-Type are the request's headers, even when a presigner also copied them
    into the query string: what was signed is what the upload must carry.
    """
    params = decoded_pairs(request.query) if presigned else []
    amz: dict[str, list[str]] = {}
    for name, value in request.headers.items():
        if name.startswith("x-amz-"):
            amz.setdefault(name, []).append(" ".join(value.split()))
    for name, value in params:
        if name.lower().startswith("x-amz-"):
            amz.setdefault(name.lower(), []).append(value.strip())
    amz_lines = "".join(f"{name}:{','.join(amz[name])}\n" for name in sorted(amz))
    if presigned:
        date_line = next((v for n, v in params if n == "Expires"), "")
    else:
        date_line = "" if "x-amz-date" in amz else (request.headers.get("date") or "").strip()
    md5 = (request.headers.get("content-md5") or "").strip()
    content_type = (request.headers.get("content-type") or "").strip()
    head = f"{request.method.upper()}\n{md5}\n{content_type}\n{date_line}\n{amz_lines}"
    return [head + resource for resource in _resources(request)]


def _resources(request: AwsRequest) -> list[str]:
    subresources = []
    for part in request.query.split("&"):
        name, eq, value = part.partition("=")
        if name in SUB_RESOURCES:
            subresources.append((name, f"{name}={unquote(value)}" if eq else name))
    suffix = "?" + "&".join(text for _, text in sorted(subresources)) if subresources else ""
    path = request.signed_path or request.path or "/"
    resources = [path + suffix]
    if path.count("/") == 1 and len(path) > 1:
        resources.append(f"{path}/{suffix}")  # botocore signs a bucket as /bucket/ (its virtual-host form)
    host = (request.headers.get("host") or "").rsplit(":", 1)[0]
    label = host.split(".", 1)[0]
    if "." in host and not host.replace(".", "").isdigit() and label:
        resources.append(f"/{label}{path}{suffix}")  # virtual-hosted style: the bucket is in Host
    return resources


def verify(request: AwsRequest, access_key_id: str, signature: str, secret_access_key: str, *,
           presigned: bool) -> None:
    key = secret_access_key.encode()
    candidates = string_to_sign_candidates(request, presigned=presigned)
    for string_to_sign in candidates:
        expected = base64.b64encode(hmac.new(key, string_to_sign.encode(), hashlib.sha1).digest()).decode()
        if signature.isascii() and hmac.compare_digest(expected, signature):
            return
    raise AuthFailure(AuthFailureKind.BAD_SIGNATURE, "The request signature we calculated does not match "
                      "the signature you provided. Check your key and signing method.", presigned=presigned,
                      details={"access_key_id": access_key_id, "signature_provided": signature,
                               "string_to_sign": candidates[0]})
