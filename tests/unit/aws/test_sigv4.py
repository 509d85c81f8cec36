"""SigV4 verification against requests signed by botocore itself.

Requests come out of real boto3 clients (serializer, checksums, signer) captured at ``before-send``
and never sent, or out of botocore's signer classes applied to hand-made requests; presigned URLs
come from ``generate_presigned_url``. What verifies here verifies for the AWS CLI and boto3.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import boto3
import botocore.auth
import botocore.awsrequest
import botocore.config
import botocore.credentials
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minicloud.aws import sigv4
from minicloud.aws.request import AwsRequest, Headers
from minicloud.aws.sigv4 import AuthFailure, AuthFailureKind

KEY_ID = "AKIDMINICLOUDTEST01"
SECRET = "mIn1/cloud+Secret/Key/For/Tests/0123456789"
TOKEN = "FwoGZXIvYXdzEXAMPLESESSIONTOKEN//////////wEaDP"
ENDPOINT = "http://127.0.0.1:4566"
K = AuthFailureKind


# -- capturing what botocore sends --------------------------------------------------------------------

class _Captured(Exception):
    def __init__(self, request: Any) -> None:
        super().__init__("captured")
        self.request = request


def to_aws_request(prepared: Any, raw_headers: Any = None) -> AwsRequest:
    """The request as our server would receive it from the wire (Host added by the HTTP client).

    ``raw_headers``: the unprepared request's headers, which keep repeated names (preparing
    botocore requests folds them into a dict).
    """
    parts = urlsplit(prepared.url)
    headers = Headers()
    for name, value in (raw_headers or prepared.headers).items():
        headers.add(name, value.decode() if isinstance(value, bytes) else value)
    if "host" not in headers:
        headers.add("Host", parts.netloc)
    body = prepared.body
    if body is None:
        data = b""
    elif isinstance(body, bytes | bytearray):
        data = bytes(body)
    elif isinstance(body, str):
        data = body.encode()
    else:
        data = body.read()
    return AwsRequest(method=prepared.method, path=parts.path or "/", query=parts.query, headers=headers,
                      body=data)


def client(service: str, *, endpoint: str = ENDPOINT, region: str = "us-east-1",
           token: str | None = None, **config: Any) -> Any:
    if service == "s3":  # boto3 presigns S3 with SigV2 in us-east-1 unless told otherwise
        config.setdefault("signature_version", "s3v4")
    session = boto3.session.Session(aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET,
                                    aws_session_token=token, region_name=region)
    made = session.client(service, endpoint_url=endpoint,
                          config=botocore.config.Config(retries={"max_attempts": 1}, **config))

    def capture(request: Any, **_: Any) -> None:
        raise _Captured(request)

    made.meta.events.register("before-send", capture)
    return made


def capture(call: Callable[..., Any], **params: Any) -> AwsRequest:
    """Run one client call up to the wire and return what it would have sent."""
    try:
        call(**params)
    except _Captured as captured:
        return to_aws_request(captured.request)
    raise AssertionError("the call never reached the wire")


def presigned(url: str, method: str = "GET", headers: dict[str, str] | None = None,
              body: bytes = b"") -> AwsRequest:
    parts = urlsplit(url)
    request_headers = Headers([("Host", parts.netloc), *(headers or {}).items()])
    return AwsRequest(method=method, path=parts.path, query=parts.query, headers=request_headers,
                      body=body)


def sign(signer: type[botocore.auth.BaseSigner], method: str, url: str, *, service: str,
         region: str = "us-east-1", headers: list[tuple[str, str]] | None = None, body: bytes = b"",
         token: str | None = None, **signer_args: Any) -> AwsRequest:
    """Sign a hand-made request with one of botocore's signer classes."""
    credentials = botocore.credentials.Credentials(KEY_ID, SECRET, token)
    request = botocore.awsrequest.AWSRequest(method=method, url=url, data=body)
    for name, value in headers or []:
        request.headers[name] = value  # HTTPHeaders appends: repeated names stay repeated
    signer(credentials, service, region, **signer_args).add_auth(request)
    return to_aws_request(request.prepare(), request.headers)


def check(request: AwsRequest, *, secret: str = SECRET, now: datetime | None = None,
          **kwargs: Any) -> sigv4.SigV4Auth:
    auth = sigv4.parse_auth(request)
    assert auth is not None
    sigv4.verify(request, auth, secret, now or auth.date, **kwargs)
    return auth


def refused(request: AwsRequest, kind: AuthFailureKind, *, secret: str = SECRET,
            now: datetime | None = None, **kwargs: Any) -> AuthFailure:
    with pytest.raises(AuthFailure) as caught:
        check(request, secret=secret, now=now, **kwargs)
    assert caught.value.kind is kind, caught.value
    return caught.value


def replace(request: AwsRequest, **changes: Any) -> AwsRequest:
    changes.setdefault("headers", Headers(request.headers.items()))
    return dataclasses.replace(request, **changes)


def with_header(request: AwsRequest, name: str, value: str) -> AwsRequest:
    changed = replace(request)
    changed.headers.set(name, value)
    return changed


# -- header auth, every protocol family ----------------------------------------------------------------

def _requests() -> Iterator[tuple[str, Callable[[], AwsRequest]]]:
    yield "iam-query-post", lambda: capture(client("iam").create_user, UserName="alice+bob@example",
                                            Path="/division/team/")
    yield "sts-query-post", lambda: capture(client("sts").get_caller_identity)
    yield "sts-with-token", lambda: capture(client("sts", token=TOKEN).get_caller_identity)
    yield "logs-json", lambda: capture(client("logs").describe_log_groups, logGroupNamePrefix="/aws/ü ~")
    yield "ecr-json", lambda: capture(client("ecr").describe_repositories, repositoryNames=["a/b"])
    yield "lambda-rest-json-arn-in-path", lambda: capture(
        client("lambda").get_function, FunctionName="arn:aws:lambda:us-east-1:123456789012:function:f",
        Qualifier="$LATEST")
    yield "lambda-rest-json-query", lambda: capture(client("lambda").list_functions, MaxItems=5,
                                                    Marker="a b+c/d%e")
    yield "ec2", lambda: capture(client("ec2").describe_instances,
                                 Filters=[{"Name": "tag:Name", "Values": ["web *", "ü"]}])
    yield "s3-list-v2", lambda: capture(client("s3").list_objects_v2, Bucket="bucket",
                                        Prefix="dir with space/ü+%~", Delimiter="/")
    yield "s3-put-bytes", lambda: capture(client("s3").put_object, Bucket="bucket", Key="k",
                                          Body=b"hello world", Metadata={"Multi": "  a   b  "})
    yield "s3-virtual-host", lambda: capture(
        client("s3", endpoint="http://s3.example.test:4566", s3={"addressing_style": "virtual"})
        .get_object, Bucket="bucket", Key="x y")


@pytest.mark.parametrize(("name", "make"), list(_requests()), ids=[n for n, _ in _requests()])
def test_botocore_client_requests_verify(name: str, make: Callable[[], AwsRequest]) -> None:
    auth = check(make())
    assert auth.access_key_id == KEY_ID and not auth.presigned


def test_parsed_fields() -> None:
    request = capture(client("sts", token=TOKEN, region="eu-west-3").get_caller_identity)
    auth = check(request)
    assert (auth.service, auth.region, auth.session_token) == ("sts", "eu-west-3", TOKEN)
    assert auth.scope_date == auth.timestamp[:8] and auth.date.tzinfo is not None
    assert "host" in auth.signed_headers and auth.payload_hash is None
    assert auth.expires_seconds is None


ODD_KEYS = ["a b", "ünïcødé/ключ/鍵", "a+b", "100%", "~tilde~", "dir//double", "trailing/", "a?b#c",
            "x=y&z", "*'()!$,;:@", "%2F", "..", "./a/../b", " leading and trailing ", "tab\there"]


@pytest.mark.parametrize("key", ODD_KEYS)
def test_s3_odd_keys(key: str) -> None:
    s3 = client("s3")
    check(capture(s3.put_object, Bucket="bucket", Key=key, Body=b"data"))
    check(capture(s3.get_object, Bucket="bucket", Key=key, Range="bytes=0-1"))
    check(capture(s3.list_objects_v2, Bucket="bucket", Prefix=key))
    check(presigned(s3.generate_presigned_url("get_object", Params={"Bucket": "bucket", "Key": key})))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(key=st.text(min_size=1, max_size=40).filter(lambda k: "\x00" not in k),
       prefix=st.text(max_size=20))
def test_s3_any_key_verifies(key: str, prefix: str) -> None:
    s3 = client("s3")
    check(capture(s3.put_object, Bucket="bucket", Key=key, Body=b"x"))
    check(capture(s3.list_objects_v2, Bucket="bucket", Prefix=prefix))


@settings(max_examples=60, deadline=None)
@given(params=st.lists(st.tuples(st.text(min_size=1, max_size=10), st.text(max_size=10)), max_size=5),
       segment=st.text(min_size=1, max_size=15))
def test_non_s3_any_path_and_query(params: list[tuple[str, str]], segment: str) -> None:
    from urllib.parse import quote
    url = f"https://lambda.us-east-1.amazonaws.com/2015-03-31/functions/{quote(segment, safe='')}/x"
    request = botocore.awsrequest.AWSRequest(method="GET", url=url, params=params)
    botocore.auth.SigV4Auth(botocore.credentials.Credentials(KEY_ID, SECRET), "lambda",
                            "us-east-1").add_auth(request)
    check(to_aws_request(request.prepare()))


def test_raw_query_edge_cases_and_repeated_headers() -> None:
    url = "https://bucket.s3.amazonaws.com/dir//a%20b/?b=2&a=1&a=0&empty=&flag&z=%7E&y=%2b"
    headers = [("X-Amz-Meta-Multi", "one"), ("X-Amz-Meta-Multi", "  two   words "),
               ("X-Amz-Content-SHA256", sigv4.EMPTY_SHA256)]
    request = sign(botocore.auth.S3SigV4Auth, "GET", url, service="s3", headers=headers)
    assert request.headers.get_all("x-amz-meta-multi") == ["one", "  two   words "]
    check(request)
    changed = replace(request, headers=Headers(
        [(n, v) for n, v in request.headers.items() if v != "one"] + [("x-amz-meta-multi", "one")]))
    refused(changed, K.BAD_SIGNATURE)  # the order of repeated headers is signed


def test_non_s3_path_normalisation_and_double_encoding() -> None:
    url = "https://execute-api.us-east-1.amazonaws.com/stage/./a/../b//c%2Fd/%C3%BC/"
    request = sign(botocore.auth.SigV4Auth, "GET", url, service="execute-api")
    assert request.path == "/stage/./a/../b//c%2Fd/%C3%BC/"
    check(request)
    refused(replace(request, path="/stage/b/c%2Fd/%C3%BC/x"), K.BAD_SIGNATURE)


def test_date_header_instead_of_x_amz_date() -> None:
    request = sign(botocore.auth.SigV4Auth, "POST", "https://iam.amazonaws.com/", service="iam",
                   headers=[("Date", "Mon, 01 Jan 2001 00:00:00 GMT"),
                            ("Content-Type", "application/x-www-form-urlencoded")],
                   body=b"Action=ListUsers&Version=2010-05-08")
    assert "x-amz-date" not in request.headers and "date" in request.headers
    auth = check(request)
    assert auth.date.year >= 2024  # botocore re-dates it to the signing time


# -- tampering ---------------------------------------------------------------------------------------

TAMPERS: dict[str, Callable[[AwsRequest], AwsRequest]] = {
    "method": lambda r: replace(r, method="PUT"),
    "path": lambda r: replace(r, path=r.path + "x"),
    "query-added": lambda r: replace(r, query=(r.query + "&" if r.query else "") + "extra=1"),
    "body": lambda r: replace(r, body=r.body + b"&Extra=1"),
    "signed-header": lambda r: with_header(r, "content-type", "text/plain"),
    "x-amz-date-second": lambda r: with_header(r, "x-amz-date", _shift(r.headers.get("x-amz-date"), 1)),
    "host": lambda r: with_header(r, "host", "example.com"),
    "signature": lambda r: with_header(r, "authorization", _flip_signature(r.headers.get("authorization"))),
    "region": lambda r: with_header(r, "authorization", (r.headers.get("authorization") or "")
                                    .replace("/us-east-1/", "/us-west-2/")),
}


def _shift(stamp: str | None, seconds: int) -> str:
    assert stamp
    shifted = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ") + timedelta(seconds=seconds)
    return shifted.strftime("%Y%m%dT%H%M%SZ")


def _flip_signature(header: str | None) -> str:
    assert header
    last = header[-1]
    return header[:-1] + ("0" if last != "0" else "1")


@pytest.mark.parametrize("tamper", sorted(TAMPERS))
def test_any_change_to_a_signed_iam_request_is_refused(tamper: str) -> None:
    request = capture(client("iam").create_user, UserName="alice")
    check(request)
    refused(TAMPERS[tamper](request), K.BAD_SIGNATURE)


def test_wrong_secret_is_refused() -> None:
    request = capture(client("iam").list_users)
    failure = refused(request, K.BAD_SIGNATURE, secret=SECRET + "x")
    assert failure.details["canonical_request"].startswith("POST\n/\n\n")
    assert failure.details["string_to_sign"].startswith("AWS4-HMAC-SHA256\n")


def test_s3_body_change_is_a_content_sha_mismatch() -> None:
    request = capture(client("s3").put_object, Bucket="b", Key="k", Body=b"original")
    failure = refused(replace(request, body=b"tampered"), K.CONTENT_SHA_MISMATCH)
    assert failure.details["client_sha256"] != failure.details["computed_sha256"]
    auth = sigv4.parse_auth(request)
    assert auth is not None
    sigv4.verify(request, auth, SECRET, auth.date, check_payload=False)  # the streaming caller's mode


def test_s3_unsigned_x_amz_header_is_refused() -> None:
    request = capture(client("s3").get_object, Bucket="b", Key="k")
    failure = refused(with_header(request, "x-amz-acl", "public-read"), K.UNSIGNED_HEADERS)
    assert failure.details["headers_not_signed"] == "x-amz-acl"


def test_s3_requires_a_valid_content_sha256() -> None:
    request = capture(client("s3").get_object, Bucket="b", Key="k")
    without = replace(request, headers=Headers(
        [(n, v) for n, v in request.headers.items() if n != "x-amz-content-sha256"]))
    assert refused(without, K.INVALID_CONTENT_SHA).details["missing"] == "x-amz-content-sha256"
    refused(with_header(request, "x-amz-content-sha256", "not-a-hash"), K.INVALID_CONTENT_SHA)


def test_scope_checks() -> None:
    request = capture(client("sts", region="eu-west-1").get_caller_identity)
    check(request, service="sts", regions={"eu-west-1", "us-east-1"})
    assert refused(request, K.BAD_SCOPE, service="iam").details["reason"] == "service"
    failure = refused(request, K.BAD_SCOPE, regions={"us-east-1"})
    assert failure.details == {"reason": "region", "region": "eu-west-1", "service": "sts",
                               "expected": "us-east-1"}
    header = request.headers.get("authorization") or ""
    stamp = request.headers.get("x-amz-date") or ""
    other_day = header.replace(f"/{stamp[:8]}/", "/20000101/")
    assert refused(with_header(request, "authorization", other_day), K.BAD_SCOPE).details["reason"] == "date"
    bad_end = header.replace("/aws4_request", "/aws5_request")
    assert refused(with_header(request, "authorization", bad_end), K.BAD_SCOPE).details["reason"] == \
        "terminator"


# -- time ---------------------------------------------------------------------------------------------

def test_clock_skew_of_14_minutes_passes_and_16_is_refused() -> None:
    request = capture(client("iam").list_users)
    auth = sigv4.parse_auth(request)
    assert auth is not None
    for minutes in (-14, 0, 14, 15):
        sigv4.verify(request, auth, SECRET, auth.date + timedelta(minutes=minutes))
    late = refused(request, K.SKEWED, now=auth.date + timedelta(minutes=16))
    assert late.message.startswith(f"Signature expired: {auth.timestamp} is now earlier than ")
    early = refused(request, K.SKEWED, now=auth.date - timedelta(minutes=16))
    assert early.message.startswith(f"Signature not yet current: {auth.timestamp} is still later than ")


def test_skew_message_is_aws_text() -> None:
    request = capture(client("sts").get_caller_identity)
    stamp = "20261129T050000Z"
    header = (request.headers.get("authorization") or "").replace(
        (request.headers.get("x-amz-date") or "")[:8], stamp[:8])
    changed = with_header(with_header(request, "x-amz-date", stamp), "authorization", header)
    failure = refused(changed, K.SKEWED, now=datetime(2026, 11, 29, 5, 25, tzinfo=UTC))
    assert failure.message == ("Signature expired: 20261129T050000Z is now earlier than 20261129T051000Z "
                               "(20261129T052500Z - 15 min.)")


def test_s3_presigned_expiry() -> None:
    s3 = client("s3")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "b", "Key": "a b"}, ExpiresIn=3600)
    request = presigned(url)
    auth = check(request)
    assert auth.presigned and auth.expires_seconds == 3600 and auth.payload_hash == "UNSIGNED-PAYLOAD"
    check(request, now=auth.date + timedelta(seconds=3600))
    check(request, now=auth.date - timedelta(minutes=14))
    failure = refused(request, K.EXPIRED, now=auth.date + timedelta(seconds=3601))
    assert failure.details["expires"] == "3600"
    refused(request, K.NOT_YET_VALID, now=auth.date - timedelta(minutes=16))


def test_s3_presigned_longer_than_a_week_is_refused() -> None:
    s3 = client("s3")
    check(presigned(s3.generate_presigned_url("get_object", Params={"Bucket": "b", "Key": "k"},
                                              ExpiresIn=604800)))
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "b", "Key": "k"}, ExpiresIn=604801)
    failure = refused(presigned(url), K.MALFORMED)
    assert failure.presigned and "604800" in failure.message


def test_s3_presigned_put_with_token_and_odd_key() -> None:
    s3 = client("s3", token=TOKEN)
    url = s3.generate_presigned_url("put_object", Params={"Bucket": "b", "Key": "dir/ü +%/x.bin",
                                                         "ContentType": "text/plain"})
    request = presigned(url, "PUT", {"Content-Type": "text/plain"}, b"any body")
    auth = check(request)
    assert auth.session_token == TOKEN
    refused(replace(request, method="GET"), K.BAD_SIGNATURE)
    refused(replace(request, query=request.query.replace("X-Amz-Expires=3600", "X-Amz-Expires=3601")),
            K.BAD_SIGNATURE)


def test_non_s3_presigned_lives_within_the_skew_window() -> None:
    request = botocore.awsrequest.AWSRequest(
        method="GET", url="https://sts.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15")
    botocore.auth.SigV4QueryAuth(botocore.credentials.Credentials(KEY_ID, SECRET), "sts", "us-east-1",
                                 expires=60).add_auth(request)
    received = to_aws_request(request.prepare())
    auth = check(received)
    assert auth.presigned and auth.expires_seconds == 60 and auth.payload_hash is None
    check(received, now=auth.date + timedelta(minutes=14))  # STS ignores X-Amz-Expires
    refused(received, K.SKEWED, now=auth.date + timedelta(minutes=16))


def test_s3_query_auth_signer() -> None:
    request = botocore.awsrequest.AWSRequest(method="GET",
                                             url="https://s3.amazonaws.com/b/k%20%2B?versionId=1&acl")
    botocore.auth.S3SigV4QueryAuth(botocore.credentials.Credentials(KEY_ID, SECRET), "s3", "us-east-1",
                                   expires=900).add_auth(request)
    check(to_aws_request(request.prepare()))


# -- parsing ---------------------------------------------------------------------------------------------

def test_anonymous_request_has_no_auth() -> None:
    assert sigv4.parse_auth(AwsRequest("GET", "/bucket/key", "versionId=3")) is None


@pytest.mark.parametrize("header", [
    "AWS4-HMAC-SHA256 Credential=AKID/20261129/us-east-1/iam/aws4_request, SignedHeaders=host",
    "AWS4-HMAC-SHA256 SignedHeaders=host, Signature=abc",
    "AWS4-HMAC-SHA256 Credential=AKID/20261129/us-east-1, SignedHeaders=host, Signature=abc",
    "AWS4-HMAC-SHA256 Credential, SignedHeaders=host, Signature=abc",
    "AWS4-HMAC-SHA256 Credential=AKID/20261129/us-east-1/iam/aws4_request, SignedHeaders=host, "
    "Signature=ébc",
])
def test_malformed_authorization_headers(header: str) -> None:
    request = AwsRequest("GET", "/", headers=Headers([("Authorization", header),
                                                       ("X-Amz-Date", "20261129T051000Z")]))
    with pytest.raises(AuthFailure) as caught:
        sigv4.parse_auth(request)
    assert caught.value.kind is K.MALFORMED


def test_missing_date_and_bad_date() -> None:
    header = ("AWS4-HMAC-SHA256 Credential=AKID/20261129/us-east-1/iam/aws4_request, "
              "SignedHeaders=host, Signature=abc")
    with pytest.raises(AuthFailure, match="requires existence of either a 'X-Amz-Date'"):
        sigv4.parse_auth(AwsRequest("GET", "/", headers=Headers([("Authorization", header)])))
    with pytest.raises(AuthFailure) as caught:
        sigv4.parse_auth(AwsRequest("GET", "/", headers=Headers([("Authorization", header),
                                                                  ("X-Amz-Date", "20261329T051000Z")])))
    assert caught.value.kind is K.MALFORMED and caught.value.details["service"] == "iam"


@pytest.mark.parametrize(("headers", "query"), [
    ([("Authorization", "AWS4-ECDSA-P256-SHA256 Credential=AKID/20261129/s3/aws4_request")], ""),
    ([("Authorization", "Bearer abc")], ""),
    ([], "X-Amz-Algorithm=AWS4-ECDSA-P256-SHA256&X-Amz-Credential=a%2Fb%2Fc%2Fd%2Fe&X-Amz-Date=1"
         "&X-Amz-SignedHeaders=host&X-Amz-Signature=abc"),
])
def test_unsupported_schemes(headers: list[tuple[str, str]], query: str) -> None:
    with pytest.raises(AuthFailure) as caught:
        sigv4.parse_auth(AwsRequest("GET", "/b/k", query, headers=Headers(headers)))
    assert caught.value.kind is K.UNSUPPORTED_AUTH


def test_presigned_missing_parameter_and_two_mechanisms() -> None:
    url = client("s3").generate_presigned_url("get_object", Params={"Bucket": "b", "Key": "k"})
    request = presigned(url)
    without_date = "&".join(p for p in request.query.split("&") if not p.startswith("X-Amz-Date="))
    with pytest.raises(AuthFailure) as caught:
        sigv4.parse_auth(replace(request, query=without_date))
    assert caught.value.kind is K.MALFORMED and caught.value.details["missing"] == "X-Amz-Date"
    with pytest.raises(AuthFailure) as caught:
        sigv4.parse_auth(with_header(request, "Authorization", "AWS4-HMAC-SHA256 Credential=x"))
    assert caught.value.kind is K.MALFORMED


def test_host_must_be_signed() -> None:
    request = capture(client("iam").list_users)
    header = (request.headers.get("authorization") or "").replace("host;", "")
    refused(with_header(request, "authorization", header), K.MALFORMED)


def test_non_s3_refuses_unsigned_payloads() -> None:
    request = sign(botocore.auth.SigV4Auth, "POST", "https://iam.amazonaws.com/", service="iam",
                   headers=[("X-Amz-Content-SHA256", "UNSIGNED-PAYLOAD")], body=b"Action=ListUsers")
    refused(request, K.INVALID_CONTENT_SHA)


def test_signing_key_is_cached() -> None:
    sigv4.signing_key.cache_clear()
    request = capture(client("iam").list_users)
    for _ in range(3):
        check(request)
    info = sigv4.signing_key.cache_info()
    assert info.misses == 1 and info.hits == 2


def test_caller_failures_carry_what_s3_renders() -> None:
    auth = check(capture(client("s3", token=TOKEN).get_object, Bucket="b", Key="k"))
    assert sigv4.unknown_key(auth).details == {"access_key_id": KEY_ID}
    assert sigv4.invalid_token(auth).kind is K.INVALID_TOKEN
    assert sigv4.expired_token(auth).details == {"token": TOKEN}


def test_verify_is_fast_with_a_cached_key() -> None:
    """A regression guard, far above the ~10-20 µs measured: a valid request costs one HMAC."""
    import timeit

    request = capture(client("s3").list_objects_v2, Bucket="b", Prefix="dir with space/ü")
    auth = check(request)
    runs = 2000
    best = min(timeit.repeat(lambda: sigv4.verify(request, auth, SECRET, auth.date), number=runs,
                             repeat=5)) / runs
    assert best < 100e-6, f"verify took {best * 1e6:.1f} µs"


@pytest.mark.parametrize(("headers", "query", "service"), [
    ([("Authorization", "AWS4-HMAC-SHA256 Credential=AKID/20261129/us-east-1/lambda/aws4_request, "
                        "SignedHeaders=host")], "", "lambda"),
    ([("Authorization", "AWS4-HMAC-SHA256 Credential=AKID/20261129/us-east-1/ecr/aws4_request, "
                        "SignedHeaders=host, Signature=abc"), ("X-Amz-Date", "2026")], "", "ecr"),
    ([], "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20261129%2Fus-east-1%2Fs3%2F"
         "aws4_request&X-Amz-Signature=abc", "s3"),
    ([("Authorization", "AWS nocolon")], "", "s3"),
])
def test_parse_failures_name_the_addressed_service(headers: list[tuple[str, str]], query: str,
                                                   service: str) -> None:
    with pytest.raises(AuthFailure) as caught:
        sigv4.parse_auth(AwsRequest("GET", "/", query, headers=Headers(headers)))
    assert caught.value.details["service"] == service
