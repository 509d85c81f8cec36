"""Browser-based uploads: an HTML form POSTed to the bucket (multipart/form-data), its policy
document signed with SigV4 (or the older SigV2 form), checked field by field as S3 does, then
stored as a PutObject would be. The form is buffered (up to ``MAX_FORM_BYTES``)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode
from xml.etree import ElementTree

from minicloud.aws.context import RequestContext
from minicloud.aws.payload import RequestPayload
from minicloud.aws.protocol.rest_serializers import RESULT_HEADERS, RESULT_STATUS
from minicloud.services.s3.checksums import ALGORITHMS, MEMBER
from minicloud.services.s3.errors import (
    AccessDenied,
    EntityTooLarge,
    EntityTooSmall,
    InvalidAccessKeyId,
    InvalidArgument,
    InvalidPolicyDocument,
    MalformedPOSTRequest,
    MalformedXML,
    SignatureDoesNotMatch,
)
from minicloud.services.s3.objects import ObjectOperations

MAX_FORM_BYTES = 64 * 1024 * 1024
_NOT_CHECKED = frozenset({"policy", "x-amz-signature", "signature", "awsaccesskeyid", "file"})
_CONTENT_FIELDS = {"content-type": "ContentType", "cache-control": "CacheControl",
                   "content-disposition": "ContentDisposition", "content-encoding": "ContentEncoding",
                   "expires": "Expires", "x-amz-storage-class": "StorageClass", "acl": "ACL",
                   "x-amz-server-side-encryption": "ServerSideEncryption",
                   "x-amz-server-side-encryption-aws-kms-key-id": "SSEKMSKeyId",
                   "x-amz-server-side-encryption-context": "SSEKMSEncryptionContext",
                   "x-amz-server-side-encryption-customer-algorithm": "SSECustomerAlgorithm",
                   "x-amz-server-side-encryption-customer-key": "SSECustomerKey",
                   "x-amz-server-side-encryption-customer-key-md5": "SSECustomerKeyMD5",
                   "x-amz-website-redirect-location": "WebsiteRedirectLocation",
                   **{f"x-amz-checksum-{name.lower()}": MEMBER[name] for name in ALGORITHMS}}
_DISPOSITION = re.compile(r'(\w+)="([^"]*)"')
_EXPIRATION = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z")  # ISO 8601 in UTC, as S3 requires


class Form:
    """A multipart/form-data body: its fields (names lower-cased) and its one file."""

    def __init__(self, body: bytes, content_type: str) -> None:
        match = re.search(r'boundary="?([^";]+)"?', content_type)
        if not content_type.lower().startswith("multipart/form-data") or match is None:
            raise MalformedPOSTRequest("The body of your POST request is not well-formed multipart/form-data.")
        self.fields: dict[str, str] = {}
        self.file: bytes | None = None
        self.filename = ""
        self.file_type: str | None = None
        delimiter = b"--" + match.group(1).encode("latin-1")
        for chunk in body.split(delimiter)[1:]:
            if chunk.startswith(b"--"):
                break
            head, sep, content = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
            if not sep:
                raise MalformedPOSTRequest("The body of your POST request is not well-formed multipart/form-data.")
            content = content.removesuffix(b"\r\n")
            headers = {k.strip().lower(): v.strip() for k, _, v in
                       (line.partition(":") for line in head.decode("utf-8", "replace").split("\r\n"))}
            params = dict(_DISPOSITION.findall(headers.get("content-disposition", "")))
            name = params.get("name", "").lower()
            if name == "file":
                if self.file is not None:
                    raise InvalidArgument("POST requires exactly one file upload per request.", ArgumentName="file")
                self.file, self.filename = content, params.get("filename", "")
                self.file_type = headers.get("content-type")
            elif name:
                try:
                    self.fields[name] = content.decode("utf-8")
                except UnicodeDecodeError:
                    raise MalformedPOSTRequest("The body of your POST request is not well-formed "
                                               "multipart/form-data.") from None
        if self.file is None:
            raise InvalidArgument("POST requires exactly one file upload per request.", ArgumentName="file",
                                  ArgumentValue="0")


def _signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = f"AWS4{secret}".encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def _policy_failed(condition: Any) -> AccessDenied:
    return AccessDenied(f"Invalid according to Policy: Policy Condition failed: {json.dumps(condition)}")


def check_policy(policy: dict[str, Any], fields: dict[str, str], bucket: str, size: int, now: datetime) -> None:
    """The policy's expiration and conditions against the form, as S3 checks them."""
    if not isinstance(policy, dict):
        raise InvalidPolicyDocument("Invalid Policy: Invalid JSON.")
    text = str(policy.get("expiration", ""))
    try:
        if not _EXPIRATION.fullmatch(text):
            raise ValueError(text)
        expires = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidPolicyDocument("Invalid Policy: Invalid 'expiration' value.") from None
    if expires.tzinfo is None:
        expires = expires.replace(tzinfo=UTC)
    if expires <= now:
        raise AccessDenied("Invalid according to Policy: Policy expired.")
    values = {**fields, "bucket": bucket}
    covered = {"bucket"}
    conditions = policy.get("conditions")
    if not isinstance(conditions, list):
        raise InvalidPolicyDocument("Invalid Policy: Invalid 'conditions' value.")
    for condition in conditions:
        if isinstance(condition, dict) and len(condition) == 1:
            (name, expected), = condition.items()
            name = str(name).lower().removeprefix("$")
            covered.add(name)
            if values.get(name) != str(expected):
                raise _policy_failed(["eq", f"${name}", expected])
        elif isinstance(condition, list) and len(condition) == 3:
            operator = str(condition[0]).lower()
            if operator == "content-length-range":
                low, high = _length_range(condition)
                if not low <= size <= high:
                    if size > high:
                        raise EntityTooLarge("Your proposed upload exceeds the maximum allowed size",
                                             MaxSizeAllowed=str(high), ProposedSize=str(size))
                    raise EntityTooSmall("Your proposed upload is smaller than the minimum allowed size",
                                         MinSizeAllowed=str(low), ProposedSize=str(size))
                continue
            name = str(condition[1]).lower().removeprefix("$")
            covered.add(name)
            value = values.get(name, "")
            if operator == "eq" and value != str(condition[2]):
                raise _policy_failed(condition)
            if operator == "starts-with" and not value.startswith(str(condition[2])):
                raise _policy_failed(condition)
            if operator not in ("eq", "starts-with"):
                raise InvalidPolicyDocument(f"Invalid Policy: Invalid Condition: {json.dumps(condition)}")
        else:
            raise InvalidPolicyDocument("Invalid Policy: Invalid Simple-Condition: value must be a string.")
    extra = [n for n in fields if n not in covered and n not in _NOT_CHECKED
             and not n.startswith(("x-ignore-", "x-amz-checksum-"))]
    if extra:
        raise AccessDenied(f"Invalid according to Policy: Extra input fields: {extra[0]}")


def _length_range(condition: list[Any]) -> tuple[int, int]:
    """The bounds of a ``content-length-range`` condition: whole numbers (JSON numbers or digit strings)."""
    bounds = []
    for bound in condition[1:]:
        text = str(bound)
        if isinstance(bound, bool) or not isinstance(bound, int | str) or not (text.isascii() and text.isdigit()):
            raise InvalidPolicyDocument(f"Invalid Policy: Invalid 'content-length-range' condition: "
                                        f"{json.dumps(condition)}")
        bounds.append(int(bound))
    return bounds[0], bounds[1]


def _tagging_query(document: str) -> str:
    """The ``tagging`` field (a Tagging XML document) as the x-amz-tagging query string."""
    try:
        if "<!" in document:  # no DTDs or entities
            raise ElementTree.ParseError("DTDs are not accepted")
        root = ElementTree.fromstring(document)
    except ElementTree.ParseError:
        raise MalformedXML() from None
    pairs = [(tag.findtext("{*}Key") or "", tag.findtext("{*}Value") or "") for tag in root.iter()
             if tag.tag.rsplit("}", 1)[-1] == "Tag"]
    return urlencode(pairs)


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


class PostOperations(ObjectOperations):
    async def post_object(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        payload = params.get("Body")
        body = bytearray()
        if isinstance(payload, bytes | bytearray):
            body += payload
        elif isinstance(payload, RequestPayload):
            async for chunk in payload:
                body += chunk
                if len(body) > MAX_FORM_BYTES:
                    raise EntityTooLarge("Your proposed upload exceeds the maximum allowed size",
                                         MaxSizeAllowed=str(MAX_FORM_BYTES))
        form = Form(bytes(body), str(params.get("ContentType") or ""))
        fields, data = form.fields, form.file or b""
        if not fields.get("key"):
            raise InvalidArgument("Bucket POST must contain a field named 'key'.  If it is specified, please check "
                                  "the order of the fields.", ArgumentName="key", ArgumentValue="")
        fields["key"] = key = fields["key"].replace("${filename}", form.filename)
        await self._authenticate_form(ctx, fields, params["Bucket"], len(data))
        put: dict[str, Any] = {"Bucket": params["Bucket"], "Key": key,
                               "Body": RequestPayload(_one(data), length=len(data))}
        for name, member in _CONTENT_FIELDS.items():
            if fields.get(name):
                put[member] = fields[name]
        if "ContentType" not in put and form.file_type:
            put["ContentType"] = form.file_type
        if "Expires" in put:
            put.pop("Expires")
        put["Metadata"] = {n.removeprefix("x-amz-meta-"): v for n, v in fields.items() if n.startswith("x-amz-meta-")}
        if fields.get("tagging"):
            put["Tagging"] = _tagging_query(fields["tagging"])
        stored = await self.store_object(ctx, put, "s3:ObjectCreated:Post")
        return self._post_response(params["Bucket"], key, stored, fields)

    async def _authenticate_form(self, ctx: RequestContext, fields: dict[str, str], bucket: str, size: int) -> None:
        """A signed policy makes the request its signer's; without one it stays anonymous."""
        encoded = fields.get("policy")
        if encoded is None:
            return
        try:
            policy = json.loads(base64.b64decode(encoded, validate=True))
        except (binascii.Error, ValueError):
            raise InvalidPolicyDocument("Invalid Policy: Invalid JSON.") from None
        if fields.get("x-amz-algorithm"):
            credential = fields.get("x-amz-credential", "")
            parts = credential.split("/")
            if fields["x-amz-algorithm"] != "AWS4-HMAC-SHA256" or len(parts) != 5:
                raise InvalidArgument("Invalid credential or algorithm", ArgumentName="x-amz-credential",
                                      ArgumentValue=credential)
            access_key, date, region, service = parts[:4]
            found = await self.runtime.credentials.resolve(access_key)
            if found is None or not found.active:
                raise InvalidAccessKeyId("The AWS Access Key Id you provided does not exist in our records.",
                                         AWSAccessKeyId=access_key)
            expected = hmac.new(_signing_key(found.secret_access_key, date, region, service), encoded.encode(),
                                hashlib.sha256).hexdigest()
            given = fields.get("x-amz-signature", "")
            if not given:
                raise InvalidArgument("Bucket POST must contain a field named 'X-Amz-Signature'.  If it is "
                                      "specified, please check the order of the fields.",
                                      ArgumentName="X-Amz-Signature", ArgumentValue="")
        else:
            access_key = fields.get("awsaccesskeyid", "")
            found = await self.runtime.credentials.resolve(access_key)
            if found is None or not found.active:
                raise InvalidAccessKeyId("The AWS Access Key Id you provided does not exist in our records.",
                                         AWSAccessKeyId=access_key)
            expected = base64.b64encode(hmac.new(found.secret_access_key.encode(), encoded.encode(),
                                                 hashlib.sha1).digest()).decode()
            given = fields.get("signature", "")
            if not given:
                raise InvalidArgument("Bucket POST must contain a field named 'Signature'.  If it is specified, "
                                      "please check the order of the fields.", ArgumentName="Signature",
                                      ArgumentValue="")
        if not hmac.compare_digest(expected.encode(), given.encode()):
            raise SignatureDoesNotMatch("The request signature we calculated does not match the signature you "
                                        "provided. Check your key and signing method.")
        if found.session_token is not None and fields.get("x-amz-security-token") != found.session_token:
            raise AccessDenied("Invalid according to Policy: missing or wrong x-amz-security-token.")
        check_policy(policy, fields, bucket, size, ctx.now)
        ctx.principal = found.principal

    def _post_response(self, bucket: str, key: str, stored: dict[str, Any], fields: dict[str, str]) -> dict[str, Any]:
        etag = str(stored["ETag"])
        location = f"/{bucket}/{key}"
        headers = [("ETag", etag), ("Location", location)]
        redirect = fields.get("success_action_redirect") or fields.get("redirect")
        if redirect:
            query = urlencode({"bucket": bucket, "key": key, "etag": etag})
            target = redirect + ("&" if "?" in redirect else "?") + query
            return {RESULT_STATUS: 303, RESULT_HEADERS: [("Location", target), ("ETag", etag)]}
        status = fields.get("success_action_status")
        if status == "201":
            return {RESULT_STATUS: 201, RESULT_HEADERS: headers[:1], "Location": location, "Bucket": bucket,
                    "Key": key, "ETag": etag}
        return {RESULT_STATUS: 200 if status == "200" else 204, RESULT_HEADERS: headers}
