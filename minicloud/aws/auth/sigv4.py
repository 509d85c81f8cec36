"""AWS Signature Version 4, server side: parse the signature of a request and verify it.

    parse_auth(request)                      -> SigV4Auth | None   (None: anonymous)
    verify(request, auth, secret, now)       -> None or raises AuthFailure

S3's legacy SigV2 goes through the same two calls (``version=2``, see ``auth.sigv2``).
The canonical request (module ``auth.canonical``) is built the way AWS specifies it and botocore
implements it; its payload hash is ``x-amz-content-sha256`` when the request carries it (a hex
digest, UNSIGNED-PAYLOAD or a STREAMING-* constant), otherwise the SHA-256 of the body. A valid
request costs one HMAC: variant encodings are tried only after the canonical form failed.

Checks, in AWS's order: credential scope, request time (15 minutes of skew; S3 presigned URLs
until X-Amz-Date + X-Amz-Expires, at most 7 days), S3's header rules (every x-amz-* header signed,
x-amz-content-sha256 present and valid), the signature, then the body against a hex
x-amz-content-sha256.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import unquote

from minicloud.aws.auth import sigv2
from minicloud.aws.auth.canonical import (
    canonical_request,
    presigned_params,
    remember,
    variant_canonicals,
    without_signature,
)
from minicloud.aws.auth.failures import AuthFailure, AuthFailureKind
from minicloud.aws.request import AwsRequest

ALGORITHM = "AWS4-HMAC-SHA256"
TERMINATOR = "aws4_request"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
STREAMING_PAYLOAD = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_PAYLOAD_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
STREAMING_UNSIGNED_PAYLOAD_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
STREAMING_PAYLOADS = frozenset({STREAMING_PAYLOAD, STREAMING_PAYLOAD_TRAILER,
                                STREAMING_UNSIGNED_PAYLOAD_TRAILER})
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
MAX_SKEW = timedelta(minutes=15)
MAX_SKEW_SECONDS = MAX_SKEW.total_seconds()
MAX_PRESIGNED_EXPIRES = 604800  # seven days, the longest a SigV4 signing key is valid

_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_CREDENTIAL_FORMAT = '"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request"'
_S3_CONTENT_SHA_VALUES = (
    "UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, "
    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER, STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD, "
    "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER or a valid sha256 value."
)
X_AMZ_EXPIRES_TOO_LONG = ("X-Amz-Expires must be less than a week (in seconds); that is, the given "
                          "X-Amz-Expires must be less than 604800 seconds")
SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your AWS "
    "Secret Access Key and signing method. Consult the service documentation for details."
)


@dataclass(slots=True)  # not frozen: a frozen dataclass sets each of its fields through object.__setattr__
class SigV4Auth:
    """The signature a request carries, as parsed; nothing in it is verified yet.

    ``payload_hash`` is what the canonical request uses for the payload: the
    ``x-amz-content-sha256`` value (or, presigned, ``X-Amz-Content-Sha256`` / UNSIGNED-PAYLOAD for
    S3); ``None`` means the SHA-256 of the body.

    ``version`` 2 is S3's legacy SigV2 (see ``auth.sigv2``): no scope, so ``region`` is empty (the
    caller uses its default region), and for a presigned URL ``date`` is its expiry.
    """

    access_key_id: str
    date: datetime
    scope_date: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str
    session_token: str | None
    presigned: bool
    expires_seconds: int | None
    payload_hash: str | None
    timestamp: str = ""            # the request time as it is signed: YYYYMMDDTHHMMSSZ
    terminator: str = TERMINATOR
    version: int = 4

    @property
    def scope(self) -> str:
        return f"{self.scope_date}/{self.region}/{self.service}/{self.terminator}"


@dataclass(frozen=True, slots=True)
class SigningContext:
    """What chunk and trailer signatures of a streaming upload are chained from."""

    key: bytes
    timestamp: str
    scope: str
    seed_signature: str


# -- parsing ---------------------------------------------------------------------------------------

def parse_auth(request: AwsRequest) -> SigV4Auth | None:
    """The signature of ``request`` (header or presigned query), or None if it has none.

    A failure carries ``details["service"]`` whenever the credential scope names one, so the caller
    can answer in the addressed service's protocol even though the signature did not parse.
    """
    try:
        return _parse(request)
    except AuthFailure as failure:
        if "service" not in failure.details:
            found = _SCOPE_SERVICE.search(request.headers.get("authorization") or unquote(request.query))
            if found:
                failure.details["service"] = found.group(1)
        raise


_SCOPE_SERVICE = re.compile(r"Credential=[^/,&\s]+/\d{8}/[^/,&\s]+/([^/,&\s]+)/")


def _parse(request: AwsRequest) -> SigV4Auth | None:
    headers = request.headers
    header = headers.get("authorization")
    presigned = "X-Amz-" in request.query and _has_presign_params(request.query)
    if header is not None:
        wanted = {name: value for name in _AUTH_HEADERS if (value := headers.get(name)) is not None}
        if presigned:
            raise AuthFailure(AuthFailureKind.MALFORMED, "Only one auth mechanism allowed; only the "
                              "X-Amz-Algorithm query parameter or the Authorization header should be "
                              "specified")
        if header.startswith("AWS "):
            return _parse_sigv2_header(header, wanted, request)  # S3's legacy SigV2
        return _parse_header(header, wanted)
    if presigned:
        return _parse_presigned(request)
    if "Signature=" in request.query and "AWSAccessKeyId=" in request.query:
        return _parse_sigv2_query(request)  # S3's legacy SigV2
    return None


def _parse_sigv2_header(header: str, headers: dict[str, str], request: AwsRequest) -> SigV4Auth:
    access_key, signature = sigv2.parse_header(header)
    date = sigv2.request_date(request)
    return SigV4Auth(access_key_id=access_key, date=date, scope_date="", region="", service="s3",
                     signed_headers=(), signature=signature, presigned=False, expires_seconds=None,
                     session_token=headers.get("x-amz-security-token"), timestamp=_timestamp(date),
                     payload_hash=headers.get("x-amz-content-sha256"), version=2)


def _parse_sigv2_query(request: AwsRequest) -> SigV4Auth:
    access_key, signature, expires, token = sigv2.parse_query(request)
    return SigV4Auth(access_key_id=access_key, date=expires, scope_date="", region="", service="s3",
                     signed_headers=(), signature=signature, presigned=True, expires_seconds=None,
                     session_token=token, timestamp=_timestamp(expires), payload_hash=None, version=2)


_AUTH_HEADERS = frozenset({"authorization", "x-amz-date", "date", "x-amz-security-token",
                           "x-amz-content-sha256"})


_PRESIGN_PARAMS = ("X-Amz-Algorithm=", "X-Amz-Credential=", "X-Amz-Signature=")


def _has_presign_params(query: str) -> bool:
    """Whether a parameter of ``query`` starts with one of ``_PRESIGN_PARAMS`` (at its start or
    after an ``&``: no split of the query needed)."""
    return query.startswith(_PRESIGN_PARAMS) or any("&" + name in query for name in _PRESIGN_PARAMS)


# Authorization headers without their signature, parsed: a client's calls differ only in the signature
# until the day (or its keys) change (bounded, as canonical's memos).
_parsed_headers: dict[str, dict[str, str]] = {}
_SIGNATURE_FIELD = ", Signature="


def _header_fields(header: str) -> dict[str, str]:
    """The ``name=value`` fields of an Authorization header (its algorithm checked)."""
    cut = header.rfind(_SIGNATURE_FIELD)
    if cut > 0 and "," not in header[cut + len(_SIGNATURE_FIELD):]:
        prefix = header[:cut]
        known = _parsed_headers.get(prefix)
        if known is None:
            known = _split_fields(prefix, header)
            remember(_parsed_headers, prefix, known)
        return {**known, "Signature": header[cut + len(_SIGNATURE_FIELD):].strip()}
    return _split_fields(header, header)


def _split_fields(text: str, header: str) -> dict[str, str]:
    algorithm, _, rest = text.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise AuthFailure(AuthFailureKind.UNSUPPORTED_AUTH, "Unsupported Authorization Type")
    fields: dict[str, str] = {}
    for part in rest.split(","):
        name, eq, value = part.strip().partition("=")
        if eq:
            fields[name.strip()] = value.strip()
        elif name:
            raise AuthFailure(AuthFailureKind.MALFORMED, f"'{part.strip()}' not a valid key=value pair "
                              f"(missing equal-sign) in Authorization header: '{header}'.")
    return fields


def _parse_header(header: str, headers: dict[str, str]) -> SigV4Auth:
    fields = _header_fields(header)
    date_value = headers.get("x-amz-date") or headers.get("date")
    missing = [f"Authorization header requires '{n}' parameter."
               for n in ("Credential", "Signature", "SignedHeaders") if not fields.get(n)]
    if date_value is None:
        missing.append("Authorization header requires existence of either a 'X-Amz-Date' or a "
                       "'Date' header.")
    if missing:
        raise AuthFailure(AuthFailureKind.MALFORMED, " ".join([*missing, f"Authorization={header}"]))
    access_key, scope = _parse_credential(fields["Credential"], presigned=False)
    assert date_value is not None
    date, timestamp = _parse_date(date_value, presigned=False, service=scope[2])
    return SigV4Auth(
        access_key_id=access_key, date=date, scope_date=scope[0], region=scope[1], service=scope[2],
        terminator=scope[3], signed_headers=tuple(fields["SignedHeaders"].split(";")),
        signature=_ascii(fields["Signature"], presigned=False), presigned=False,
        session_token=headers.get("x-amz-security-token"), expires_seconds=None,
        payload_hash=headers.get("x-amz-content-sha256"), timestamp=timestamp,
    )


@dataclass(frozen=True, slots=True)
class _Presigned:
    """What a presigned query says besides its signature, as parsed (and checked) from it."""

    access_key_id: str
    date: datetime
    timestamp: str
    scope: tuple[str, str, str, str]
    signed_headers: tuple[str, ...]
    session_token: str | None
    expires_seconds: int | None
    payload_hash: str | None

    def auth(self, signature: str) -> SigV4Auth:
        scope = self.scope
        return SigV4Auth(
            access_key_id=self.access_key_id, date=self.date, scope_date=scope[0], region=scope[1],
            service=scope[2], terminator=scope[3], signed_headers=self.signed_headers,
            signature=_ascii(signature, presigned=True), presigned=True, session_token=self.session_token,
            expires_seconds=self.expires_seconds, payload_hash=self.payload_hash, timestamp=self.timestamp,
        )


# Presigned queries without their signature, parsed: a pure function of that text (a client's URLs
# differ only in the signature until its date, expiry or key changes). Only queries that parsed, and
# whose one signature parameter is spelled plainly, are kept (bounded, as canonical's memos).
_parsed_presigned: dict[str, _Presigned] = {}


def _parse_presigned(request: AwsRequest) -> SigV4Auth:
    """``_parse_presigned_query``, its work done once per query without the signature."""
    rest, signatures = without_signature(request.query)
    known = _parsed_presigned.get(rest)
    if known is not None and signatures:
        signature = unquote(signatures[0])
        if signature:  # (else the slow path names what is missing)
            return known.auth(signature)
    auth = _parse_presigned_query(request.query)
    if signatures and "X-Amz-Signature" not in presigned_params(rest):
        remember(_parsed_presigned, rest, _Presigned(
            access_key_id=auth.access_key_id, date=auth.date, timestamp=auth.timestamp,
            scope=(auth.scope_date, auth.region, auth.service, auth.terminator),
            signed_headers=auth.signed_headers, session_token=auth.session_token,
            expires_seconds=auth.expires_seconds, payload_hash=auth.payload_hash))
    return auth


def _parse_presigned_query(query: str) -> SigV4Auth:
    params = presigned_params(query)
    required = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature", "X-Amz-Date",
                "X-Amz-SignedHeaders")
    missing = [name for name in required if not params.get(name)]
    if missing:
        raise AuthFailure(AuthFailureKind.MALFORMED,
                          f"AWS query-string parameters must include '{missing[0]}'. Re-examine the "
                          "query-string parameters.", presigned=True, details={"missing": missing[0]})
    if params["X-Amz-Algorithm"] != ALGORITHM:
        raise AuthFailure(AuthFailureKind.UNSUPPORTED_AUTH,
                          'X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"', presigned=True)
    access_key, scope = _parse_credential(params["X-Amz-Credential"], presigned=True)
    service = scope[2]
    date, timestamp = _parse_date(params["X-Amz-Date"], presigned=True, service=service)
    expires: int | None = None
    if "X-Amz-Expires" in params:
        raw = params["X-Amz-Expires"]
        if not raw.isascii() or not raw.isdigit():
            raise AuthFailure(AuthFailureKind.MALFORMED, "X-Amz-Expires should be a number",
                              presigned=True, details={"service": service})
        expires = int(raw)
    payload = params.get("X-Amz-Content-Sha256") or (UNSIGNED_PAYLOAD if service == "s3" else None)
    return SigV4Auth(
        access_key_id=access_key, date=date, scope_date=scope[0], region=scope[1], service=service,
        terminator=scope[3], signed_headers=tuple(params["X-Amz-SignedHeaders"].split(";")),
        signature=_ascii(params["X-Amz-Signature"], presigned=True), presigned=True,
        session_token=params.get("X-Amz-Security-Token"), expires_seconds=expires,
        payload_hash=payload, timestamp=timestamp,
    )


def _parse_credential(value: str, *, presigned: bool) -> tuple[str, tuple[str, str, str, str]]:
    parts = value.rsplit("/", 4)
    if len(parts) != 5 or not all(parts):
        raise AuthFailure(AuthFailureKind.MALFORMED, "the Credential is mal-formed; expecting "
                          f"{_CREDENTIAL_FORMAT}.", presigned=presigned)
    return parts[0], (parts[1], parts[2], parts[3], parts[4])


@functools.lru_cache(maxsize=1024)
def _amz_date(v: str) -> datetime | None:
    """``20261129T051000Z`` as a time (None if it is not one); requests signed in the same second share it."""
    if len(v) == 16 and v[8] == "T" and v[15] == "Z" and v[:8].isdigit() and v[9:15].isdigit():
        try:
            return datetime(int(v[0:4]), int(v[4:6]), int(v[6:8]), int(v[9:11]), int(v[11:13]),
                            int(v[13:15]), tzinfo=UTC)
        except ValueError:
            return None
    return None


def _parse_date(value: str, *, presigned: bool, service: str) -> tuple[datetime, str]:
    """X-Amz-Date (``20261129T051000Z``), or an HTTP Date header; and the time as it is signed."""
    v = value.strip()
    date = _amz_date(v)
    if date is not None:
        return date, v
    if len(v) == 16 and v[8] == "T" and v[15] == "Z" and v[:8].isdigit() and v[9:15].isdigit():
        pass  # an X-Amz-Date that is not a time (month 13): refused below
    elif not presigned:
        try:
            parsed = parsedate_to_datetime(v)
        except (TypeError, ValueError):
            parsed = None
        if parsed is not None:
            date = parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
            return date, _timestamp(date)
    what = "X-Amz-Date" if presigned else "X-Amz-Date or Date header"
    raise AuthFailure(AuthFailureKind.MALFORMED, f"Invalid {what}: '{value}'. It must be in ISO8601 "
                      "basic format (yyyyMMdd'T'HHmmss'Z').", presigned=presigned,
                      details={"service": service})


def _ascii(signature: str, *, presigned: bool) -> str:
    if not signature.isascii():
        raise AuthFailure(AuthFailureKind.MALFORMED, "The signature is not hexadecimal.",
                          presigned=presigned)
    return signature


def _timestamp(date: datetime) -> str:
    return (f"{date.year:04d}{date.month:02d}{date.day:02d}T"
            f"{date.hour:02d}{date.minute:02d}{date.second:02d}Z")


# -- verification ----------------------------------------------------------------------------------

def hmac_sha256(key: bytes, message: bytes) -> bytes:
    """HMAC-SHA256 that keeps the GIL: ``hmac.digest`` (OpenSSL's one-shot HMAC) releases it for
    every call, however short the message, and on a busy server the event loop then often waits for
    another thread to hand it back; an HMAC object releases it only for messages over 2 KiB."""
    return hmac.new(key, message, "sha256").digest()


@functools.lru_cache(maxsize=4096)
def signing_key(secret_access_key: str, date: str, region: str, service: str) -> bytes:
    """kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")."""
    key = hmac_sha256(("AWS4" + secret_access_key).encode(), date.encode())
    for part in (region, service, TERMINATOR):
        key = hmac_sha256(key, part.encode())
    return key


def verify(request: AwsRequest, auth: SigV4Auth, secret_access_key: str, now: datetime, *,
           service: str | None = None, regions: frozenset[str] | set[str] | None = None,
           check_payload: bool = True) -> None:
    """Raise ``AuthFailure`` unless ``auth`` is a valid signature of ``request`` at ``now``.

    ``service``/``regions``, when given, are what the credential scope must name. With
    ``check_payload=False`` a hex ``x-amz-content-sha256`` is not compared with ``request.body``
    (the caller streams the body and calls ``check_payload_hash`` itself).
    """
    if auth.version == 2:
        _verify_sigv2(request, auth, secret_access_key, now, service, check_payload)
        return
    _check_scope(auth, service, regions)
    _check_time(auth, now)
    s3 = auth.service == "s3"
    declared = auth.payload_hash
    signed = _lower_names(auth.signed_headers)
    if s3:
        _check_s3_headers(request, auth, signed)
    elif declared is not None and not _HEX64.fullmatch(declared):
        raise AuthFailure(AuthFailureKind.INVALID_CONTENT_SHA,
                          f"x-amz-content-sha256 must be a SHA-256 hex digest for {auth.service}.",
                          presigned=auth.presigned)
    if "host" not in signed:
        raise AuthFailure(AuthFailureKind.MALFORMED, "'Host' or ':authority' must be a 'SignedHeader' "
                          "in the AWS Authorization.", presigned=auth.presigned)
    payload = declared if declared is not None else hashlib.sha256(request.body).hexdigest()
    key = signing_key(secret_access_key, auth.scope_date, auth.region, auth.service)
    signed_headers, presigned = auth.signed_headers, auth.presigned
    canonical = canonical_request(request, s3=s3, presigned=presigned, signed_headers=signed_headers,
                                  payload_hash=payload)
    prefix = f"{ALGORITHM}\n{auth.timestamp}\n{auth.scope}\n"
    if not _matches(key, prefix + _hash(canonical), auth.signature) and not any(
            _matches(key, prefix + _hash(other), auth.signature)
            for other in variant_canonicals(request, s3=s3, presigned=presigned, primary=canonical,
                                            signed_headers=signed_headers, payload_hash=payload)):
        raise AuthFailure(AuthFailureKind.BAD_SIGNATURE, SIGNATURE_MISMATCH, presigned=presigned,
                          details={"access_key_id": auth.access_key_id, "signature_provided": auth.signature,
                                   "string_to_sign": prefix + _hash(canonical),
                                   "canonical_request": canonical})
    if check_payload and declared is not None and _HEX64.fullmatch(declared):
        check_payload_hash(auth, hashlib.sha256(request.body).hexdigest())


def _verify_sigv2(request: AwsRequest, auth: SigV4Auth, secret_access_key: str, now: datetime,
                  service: str | None, check_payload: bool) -> None:
    if service is not None and service != "s3":
        raise AuthFailure(AuthFailureKind.UNSUPPORTED_AUTH, f"{service} does not accept Signature "
                          "Version 2.", presigned=auth.presigned)
    if auth.presigned:
        if now > auth.date:
            raise AuthFailure(AuthFailureKind.EXPIRED, "Request has expired", presigned=True,
                              details={"expires_at": _iso(auth.date), "server_time": _timestamp(now)})
    elif abs(now - auth.date) > MAX_SKEW:
        raise AuthFailure(AuthFailureKind.SKEWED, "The difference between the request time and the "
                          "current time is too large.", details=_time_details(auth, now))
    sigv2.verify(request, auth.access_key_id, auth.signature, secret_access_key, presigned=auth.presigned)
    declared = auth.payload_hash
    if check_payload and declared is not None and _HEX64.fullmatch(declared):
        check_payload_hash(auth, hashlib.sha256(request.body).hexdigest())


def check_payload_hash(auth: SigV4Auth, computed: str) -> None:
    """Raise CONTENT_SHA_MISMATCH unless the body's SHA-256 is the hex digest the client signed."""
    declared = auth.payload_hash or ""
    if _HEX64.fullmatch(declared) and declared.lower() != computed:
        raise AuthFailure(AuthFailureKind.CONTENT_SHA_MISMATCH, "The provided 'x-amz-content-sha256' "
                          "header does not match what was computed.", presigned=auth.presigned,
                          details={"client_sha256": declared, "computed_sha256": computed})


def unknown_key(auth: SigV4Auth) -> AuthFailure:
    """For the caller to raise when ``auth.access_key_id`` is not a known, active key."""
    return AuthFailure(AuthFailureKind.UNKNOWN_KEY, "The security token included in the request is "
                       "invalid.", presigned=auth.presigned, details={"access_key_id": auth.access_key_id})


def invalid_token(auth: SigV4Auth) -> AuthFailure:
    """For the caller to raise when the session token is missing, unknown or not the key's."""
    return AuthFailure(AuthFailureKind.INVALID_TOKEN, "The security token included in the request is "
                       "invalid.", presigned=auth.presigned,
                       details={"token": auth.session_token} if auth.session_token else None)


def expired_token(auth: SigV4Auth) -> AuthFailure:
    """For the caller to raise when the session token's credentials have expired."""
    return AuthFailure(AuthFailureKind.EXPIRED_TOKEN, "The security token included in the request is "
                       "expired", presigned=auth.presigned,
                       details={"token": auth.session_token} if auth.session_token else None)


def streaming_context(auth: SigV4Auth, secret_access_key: str) -> SigningContext:
    """Chunk signatures are chained from the (verified) request signature, the seed."""
    key = signing_key(secret_access_key, auth.scope_date, auth.region, auth.service)
    return SigningContext(key=key, timestamp=auth.timestamp, scope=auth.scope,
                          seed_signature=auth.signature)


def _matches(key: bytes, string_to_sign: str, provided: str) -> bool:
    expected = hmac_sha256(key, string_to_sign.encode()).hex()
    return hmac.compare_digest(expected, provided)


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _check_scope(auth: SigV4Auth, service: str | None, regions: frozenset[str] | set[str] | None) -> None:
    def fail(reason: str, message: str, **details: str) -> AuthFailure:
        return AuthFailure(AuthFailureKind.BAD_SCOPE, message, presigned=auth.presigned,
                           details={"reason": reason, "region": auth.region, "service": auth.service,
                                    **details})

    if auth.terminator != TERMINATOR:
        raise fail("terminator", "Credential should be scoped with a valid terminator: "
                   f"'{TERMINATOR}', not '{auth.terminator}'.")
    if auth.scope_date != auth.timestamp[:8]:
        raise fail("date", "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of "
                   f"date from HTTP: '{auth.scope_date}' != '{auth.timestamp[:8]}', from "
                   f"'{auth.timestamp}'.")
    if service is not None and auth.service != service:
        raise fail("service", f"Credential should be scoped to correct service: '{service}'.",
                   expected=service)
    if regions is not None and auth.region not in regions:
        expected = {"expected": next(iter(regions))} if len(regions) == 1 else {}
        raise fail("region", "Credential should be scoped to a valid region.", **expected)


def _check_time(auth: SigV4Auth, now: datetime) -> None:
    if auth.presigned and auth.service == "s3":
        expires = auth.expires_seconds
        if expires is None:
            raise AuthFailure(AuthFailureKind.MALFORMED, "AWS query-string parameters must include "
                              "'X-Amz-Expires'. Re-examine the query-string parameters.", presigned=True,
                              details={"missing": "X-Amz-Expires"})
        if expires > MAX_PRESIGNED_EXPIRES:
            raise AuthFailure(AuthFailureKind.MALFORMED, X_AMZ_EXPIRES_TOO_LONG, presigned=True)
        elapsed = (now - auth.date).total_seconds()
        if elapsed < -MAX_SKEW_SECONDS:
            raise AuthFailure(AuthFailureKind.NOT_YET_VALID, "Request is not yet valid", presigned=True,
                              details=_time_details(auth, now))
        if elapsed > expires:
            raise AuthFailure(AuthFailureKind.EXPIRED, "Request has expired", presigned=True,
                              details=_time_details(auth, now))
        return
    if auth.expires_seconds is not None and auth.expires_seconds > MAX_PRESIGNED_EXPIRES:
        raise AuthFailure(AuthFailureKind.MALFORMED, X_AMZ_EXPIRES_TOO_LONG, presigned=True)
    # Outside S3, a presigned request is valid as long as a signed header one is: AWS ignores
    # X-Amz-Expires there (STS presigned URLs live 15 minutes whatever they say).
    if auth.date < now - MAX_SKEW:
        raise AuthFailure(AuthFailureKind.SKEWED, f"Signature expired: {auth.timestamp} is now earlier "
                          f"than {_timestamp(now - MAX_SKEW)} ({_timestamp(now)} - 15 min.)",
                          presigned=auth.presigned, details=_time_details(auth, now))
    if auth.date > now + MAX_SKEW:
        raise AuthFailure(AuthFailureKind.SKEWED, f"Signature not yet current: {auth.timestamp} is still "
                          f"later than {_timestamp(now + MAX_SKEW)} ({_timestamp(now)} + 15 min.)",
                          presigned=auth.presigned, details=_time_details(auth, now))


def _time_details(auth: SigV4Auth, now: datetime) -> dict[str, str]:
    details = {"request_time": auth.timestamp, "server_time": _timestamp(now)}
    if auth.expires_seconds is not None:
        details.update(expires=str(auth.expires_seconds),
                       expires_at=_iso(auth.date + timedelta(seconds=auth.expires_seconds)))
    return details


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@functools.lru_cache(maxsize=256)
def _lower_names(signed_headers: tuple[str, ...]) -> frozenset[str]:
    return frozenset(h.lower() for h in signed_headers)


def _check_s3_headers(request: AwsRequest, auth: SigV4Auth, signed: frozenset[str]) -> None:
    """What S3 adds to SigV4: every x-amz-* header is signed; the payload hash is always declared."""
    unsigned = sorted({name for name, _ in request.headers.iter_items() if name[:6] == "x-amz-" and name not in signed})
    if unsigned:
        raise AuthFailure(AuthFailureKind.UNSIGNED_HEADERS, "There were headers present in the request "
                          "which were not signed", presigned=auth.presigned,
                          details={"headers_not_signed": ",".join(unsigned)})
    declared = auth.payload_hash
    if declared is None:
        raise AuthFailure(AuthFailureKind.INVALID_CONTENT_SHA, "Missing required header for this "
                          "request: x-amz-content-sha256", details={"missing": "x-amz-content-sha256"})
    if declared != UNSIGNED_PAYLOAD and declared not in STREAMING_PAYLOADS \
            and not _HEX64.fullmatch(declared):
        raise AuthFailure(AuthFailureKind.INVALID_CONTENT_SHA,
                          f"x-amz-content-sha256 must be {_S3_CONTENT_SHA_VALUES}",
                          presigned=auth.presigned, details={"value": declared})
    if auth.presigned and declared in STREAMING_PAYLOADS:
        raise AuthFailure(AuthFailureKind.INVALID_CONTENT_SHA, "Streaming payloads cannot be presigned.",
                          presigned=True, details={"value": declared})
