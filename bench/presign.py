"""Pre-signed AWS requests: the bytes boto3 would send, signed up front so the load generator only replays.

1. A template per (endpoint, operation) is taken from a real boto3 client: the request its own
   serializer built and its own signer signed, captured at ``before-send`` and never sent.
2. ``presign`` re-signs that template N times with botocore's ``SigV4Auth`` (only the signing time
   is chosen by us, so that requests in one pool differ: the times are spread over the last
   ``spread_s`` seconds, well inside SigV4's 15-minute skew window), gives each its own
   ``amz-sdk-invocation-id`` (boto3 adds it after signing, as here), and frames it as HTTP/1.1
   exactly as ``http.client`` does: request line, Host, Accept-Encoding, the headers in boto3's
   order, Content-Length last.

A pool is signed with the current time right before each phase that uses it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

# Headers boto3 adds after signing (so never signed) or that the signer itself writes.
_UNSIGNED_LATE = {"amz-sdk-invocation-id", "amz-sdk-request", "content-length"}
_SIGNER_WRITES = {"authorization", "x-amz-date", "x-amz-security-token"}


@dataclass(frozen=True)
class Operation:
    service: str                 # boto3 client name: "sts", "iam"
    name: str                    # API name: "GetCallerIdentity"
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.name

    @property
    def method(self) -> str:
        """The boto3 client method name (GetCallerIdentity -> get_caller_identity)."""
        out = []
        for i, ch in enumerate(self.name):
            if ch.isupper() and i and not self.name[i - 1].isupper():
                out.append("_")
            out.append(ch.lower())
        return "".join(out)


@dataclass(frozen=True)
class Template:
    method: str
    url: str
    headers: tuple[tuple[str, str], ...]  # in boto3's order, as sent
    body: bytes
    service: str   # SigV4 signing name from the credential scope
    region: str    # SigV4 region from the credential scope
    signed_headers: str


class _Captured(Exception):
    def __init__(self, request: Any) -> None:
        super().__init__("captured")
        self.request = request


def capture_template(endpoint: str, op: Operation, access_key_id: str, secret_access_key: str,
                     region: str = "us-east-1", session_token: str | None = None) -> Template:
    """The request a boto3 client would send for ``op`` (built and signed by boto3; not sent)."""
    session = boto3.session.Session(aws_access_key_id=access_key_id, aws_secret_access_key=secret_access_key,
                                    aws_session_token=session_token, region_name=region)
    client = session.client(op.service, endpoint_url=endpoint, config=Config(retries={"max_attempts": 1}))

    def capture(request: Any, **_: Any) -> None:
        raise _Captured(request)

    client.meta.events.register_first("before-send", capture)
    try:
        getattr(client, op.method)(**dict(op.params))
    except _Captured as c:
        prepared = c.request
    else:  # pragma: no cover - the hook always fires
        raise RuntimeError("boto3 sent nothing")
    headers = tuple((str(k), v.decode() if isinstance(v, bytes) else str(v))
                    for k, v in prepared.headers.items())
    auth = dict((k.lower(), v) for k, v in headers)["authorization"]
    # AWS4-HMAC-SHA256 Credential=AK/20260101/us-east-1/sts/aws4_request, SignedHeaders=..., Signature=...
    parts = dict(p.strip().split("=", 1) for p in auth.split(" ", 1)[1].split(","))
    _, _, scope_region, scope_service, _ = parts["Credential"].rsplit("/", 4)
    body = prepared.body or b""
    if isinstance(body, str):
        body = body.encode()
    elif not isinstance(body, bytes):
        body = body.read()
    return Template(prepared.method, prepared.url, headers, body, scope_service, scope_region,
                    parts["SignedHeaders"])


class _FixedTimeSigV4Auth(SigV4Auth):  # type: ignore[misc]
    """botocore's SigV4Auth with the signing time chosen by the caller (``add_auth`` minus the clock)."""

    def __init__(self, credentials: Credentials, service_name: str, region_name: str, when: datetime) -> None:
        super().__init__(credentials, service_name, region_name)
        self._when = when

    def add_auth(self, request: AWSRequest) -> None:
        request.context["timestamp"] = self._when.strftime(SIGV4_TIMESTAMP)
        self._modify_request_before_signing(request)
        canonical_request = self.canonical_request(request)
        string_to_sign = self.string_to_sign(request, canonical_request)
        signature = self.signature(string_to_sign, request)
        self._inject_signature_to_request(request, signature)


def _frame(template: Template, values: Mapping[str, str]) -> bytes:
    """HTTP/1.1 bytes as http.client frames them (urllib3 under botocore)."""
    parts = urlsplit(template.url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    lines = [f"{template.method} {target} HTTP/1.1", f"Host: {parts.netloc}", "Accept-Encoding: identity"]
    content_length: str | None = None
    for name, value in template.headers:
        lname = name.lower()
        if lname == "content-length":
            content_length = value
            continue
        lines.append(f"{name}: {values.get(lname, value)}")
    if template.body or content_length is not None or template.method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(template.body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + template.body


def presign(template: Template, access_key_id: str, secret_access_key: str, count: int,
            session_token: str | None = None, now: datetime | None = None,
            spread_s: int = 240) -> list[bytes]:
    """``count`` signed copies of ``template``, signed at times spread over the ``spread_s`` s before now."""
    credentials = Credentials(access_key_id, secret_access_key, session_token)
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    skip = _UNSIGNED_LATE | _SIGNER_WRITES
    signing_headers = [(k, v) for k, v in template.headers if k.lower() not in skip]
    out: list[bytes] = []
    for i in range(count):
        when = now - timedelta(seconds=i % max(1, spread_s))
        request = AWSRequest(method=template.method, url=template.url, headers=dict(signing_headers),
                             data=template.body)
        _FixedTimeSigV4Auth(credentials, template.service, template.region, when).add_auth(request)
        signed = {k.lower(): str(v) for k, v in request.headers.items()}
        if i == 0:
            got = signed["authorization"].split("SignedHeaders=", 1)[1].split(",", 1)[0]
            if got != template.signed_headers:
                raise RuntimeError(f"re-signing changed SignedHeaders: {got} != {template.signed_headers}")
        signed["amz-sdk-invocation-id"] = str(uuid.uuid4())
        out.append(_frame(template, signed))
    return out


def tamper_signature(request: bytes) -> bytes:
    """The same request with the last hex digit of its signature changed (must be rejected with 403)."""
    marker = b"Signature="
    at = request.index(marker) + len(marker) + 63
    digit = request[at:at + 1]
    return request[:at] + (b"0" if digit != b"0" else b"1") + request[at + 1:]
