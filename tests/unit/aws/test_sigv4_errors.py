"""What each authentication failure looks like on the wire, per protocol family."""

from __future__ import annotations

from datetime import timedelta

import pytest

from minicloud.aws import sigv4
from minicloud.aws.errors import ServiceError, error_code, error_status
from minicloud.aws.sigv4 import AuthFailure, AuthFailureKind, auth_error
from tests.unit.aws.test_sigv4 import (
    KEY_ID,
    SECRET,
    TOKEN,
    capture,
    client,
    presigned,
    refused,
    replace,
    with_header,
)

K = AuthFailureKind
FAMILIES = [("query", "iam"), ("query", "sts"), ("rest-xml", "route53"), ("ec2", "ec2"),
            ("json", "logs"), ("rest-json", "lambda"), ("rest-xml", "s3")]

SIGNATURE_TEXT = ("The request signature we calculated does not match the signature you provided. Check "
                  "your AWS Secret Access Key and signing method. Consult the service documentation for "
                  "details.")
EXPECTED: dict[tuple[AuthFailureKind, str], tuple[str, int, str | None]] = {
    (K.MISSING_AUTH, "iam"): ("MissingAuthenticationToken", 403, "Request is missing Authentication Token"),
    (K.MISSING_AUTH, "logs"): ("MissingAuthenticationTokenException", 400, None),
    (K.MISSING_AUTH, "lambda"): ("MissingAuthenticationTokenException", 403, "Missing Authentication Token"),
    (K.MISSING_AUTH, "ec2"): ("MissingAuthenticationToken", 401, None),
    (K.MISSING_AUTH, "s3"): ("AccessDenied", 403, "Access Denied"),
    (K.MALFORMED, "iam"): ("IncompleteSignature", 400, None),
    (K.MALFORMED, "logs"): ("IncompleteSignatureException", 400, None),
    (K.MALFORMED, "lambda"): ("IncompleteSignatureException", 403, None),
    (K.MALFORMED, "s3"): ("AuthorizationHeaderMalformed", 400, None),
    (K.UNSUPPORTED_AUTH, "s3"): ("InvalidArgument", 400, "Unsupported Authorization Type"),
    (K.UNKNOWN_KEY, "iam"): ("InvalidClientTokenId", 403,
                             "The security token included in the request is invalid."),
    (K.UNKNOWN_KEY, "sts"): ("InvalidClientTokenId", 403, None),
    (K.UNKNOWN_KEY, "route53"): ("InvalidClientTokenId", 403, None),
    (K.UNKNOWN_KEY, "logs"): ("UnrecognizedClientException", 400,
                              "The security token included in the request is invalid."),
    (K.UNKNOWN_KEY, "lambda"): ("UnrecognizedClientException", 403, None),
    (K.UNKNOWN_KEY, "ec2"): ("AuthFailure", 401,
                             "AWS was not able to validate the provided access credentials"),
    (K.UNKNOWN_KEY, "s3"): ("InvalidAccessKeyId", 403,
                            "The AWS Access Key Id you provided does not exist in our records."),
    (K.BAD_SIGNATURE, "iam"): ("SignatureDoesNotMatch", 403, SIGNATURE_TEXT),
    (K.BAD_SIGNATURE, "logs"): ("InvalidSignatureException", 400, SIGNATURE_TEXT),
    (K.BAD_SIGNATURE, "lambda"): ("InvalidSignatureException", 403, SIGNATURE_TEXT),
    (K.BAD_SIGNATURE, "ec2"): ("AuthFailure", 401, None),
    (K.BAD_SIGNATURE, "s3"): ("SignatureDoesNotMatch", 403, "The request signature we calculated does not "
                              "match the signature you provided. Check your key and signing method."),
    (K.SKEWED, "iam"): ("SignatureDoesNotMatch", 403, "the failure's"),
    (K.SKEWED, "logs"): ("InvalidSignatureException", 400, "the failure's"),
    (K.SKEWED, "ec2"): ("RequestExpired", 400, "Request has expired."),
    (K.SKEWED, "s3"): ("RequestTimeTooSkewed", 403,
                       "The difference between the request time and the current time is too large."),
    (K.EXPIRED, "s3"): ("AccessDenied", 403, "Request has expired"),
    (K.NOT_YET_VALID, "s3"): ("AccessDenied", 403, "Request is not yet valid"),
    (K.UNSIGNED_HEADERS, "s3"): ("AccessDenied", 403,
                                 "There were headers present in the request which were not signed"),
    (K.CONTENT_SHA_MISMATCH, "s3"): ("XAmzContentSHA256Mismatch", 400,
                                     "The provided 'x-amz-content-sha256' header does not match what was "
                                     "computed."),
    (K.INVALID_CONTENT_SHA, "s3"): ("InvalidArgument", 400, None),
    (K.INVALID_TOKEN, "iam"): ("InvalidClientTokenId", 403, None),
    (K.INVALID_TOKEN, "logs"): ("UnrecognizedClientException", 400, None),
    (K.INVALID_TOKEN, "ec2"): ("AuthFailure", 401, None),
    (K.INVALID_TOKEN, "s3"): ("InvalidToken", 400, "The provided token is malformed or otherwise invalid."),
    (K.EXPIRED_TOKEN, "sts"): ("ExpiredToken", 403, "The security token included in the request is expired"),
    (K.EXPIRED_TOKEN, "logs"): ("ExpiredTokenException", 400, None),
    (K.EXPIRED_TOKEN, "lambda"): ("ExpiredTokenException", 403, None),
    (K.EXPIRED_TOKEN, "ec2"): ("RequestExpired", 400, None),
    (K.EXPIRED_TOKEN, "s3"): ("ExpiredToken", 400, "The provided token has expired."),
    (K.MISSING_CONTENT_LENGTH, "s3"): ("MissingContentLength", 411,
                                       "You must provide the Content-Length HTTP header."),
    (K.INCOMPLETE_BODY, "s3"): ("IncompleteBody", 400, "You did not provide the number of bytes specified by "
                                "the Content-Length HTTP header."),
    (K.MALFORMED_BODY, "s3"): ("InvalidRequest", 400, None),
}


CASES = sorted(EXPECTED.keys(), key=lambda case: (case[0].value, case[1]))


@pytest.mark.parametrize(("kind", "service"), CASES,
                         ids=lambda v: v.name if isinstance(v, AuthFailureKind) else v)
def test_mapping(kind: AuthFailureKind, service: str) -> None:
    protocol = {s: p for p, s in FAMILIES}[service]
    failure = AuthFailure(kind, "the failure's")
    error = auth_error(failure, protocol, service)
    code, status, message = EXPECTED[kind, service]
    assert (error_code(error), error_status(error)) == (code, status)
    if message is not None:
        assert error.message == message


@pytest.mark.parametrize("kind", list(AuthFailureKind), ids=lambda k: k.name)
@pytest.mark.parametrize(("protocol", "service"), FAMILIES)
def test_every_failure_is_a_client_error_everywhere(kind: AuthFailureKind, protocol: str,
                                                    service: str) -> None:
    for presigned_request in (False, True):
        error = auth_error(AuthFailure(kind, "x", presigned=presigned_request), protocol, service)
        assert isinstance(error, ServiceError) and 400 <= error_status(error) < 500
        assert error.message


def test_s3_signature_mismatch_carries_what_s3_returns() -> None:
    request = capture(client("s3").get_object, Bucket="b", Key="k")
    failure = refused(request, K.BAD_SIGNATURE, secret=SECRET + "x")
    error = auth_error(failure, "rest-xml", "s3")
    assert error.fields["AWSAccessKeyId"] == KEY_ID
    assert error.fields["SignatureProvided"] == (request.headers.get("authorization") or "")[-64:]
    assert error.fields["StringToSign"].startswith("AWS4-HMAC-SHA256\n")
    assert error.fields["CanonicalRequest"].startswith("GET\n/b/k\n")
    assert error.fields["StringToSignBytes"].startswith("41 57 53 34")  # "AWS4"
    assert list(error.fields) == ["AWSAccessKeyId", "StringToSign", "SignatureProvided",
                                  "StringToSignBytes", "CanonicalRequest", "CanonicalRequestBytes"]


def test_s3_time_errors_carry_their_times() -> None:
    request = capture(client("s3").get_object, Bucket="b", Key="k")
    auth = sigv4.parse_auth(request)
    assert auth is not None
    skewed = auth_error(refused(request, K.SKEWED, now=auth.date + timedelta(minutes=20)), "rest-xml", "s3")
    assert skewed.fields["RequestTime"] == auth.timestamp
    assert skewed.fields["MaxAllowedSkewMilliseconds"] == "900000"
    assert skewed.fields["ServerTime"].endswith("Z") and "-" in skewed.fields["ServerTime"]

    url = client("s3").generate_presigned_url("get_object", Params={"Bucket": "b", "Key": "k"}, ExpiresIn=60)
    request = presigned(url)
    auth = sigv4.parse_auth(request)
    assert auth is not None
    expired = auth_error(refused(request, K.EXPIRED, now=auth.date + timedelta(seconds=61)), "rest-xml", "s3")
    assert expired.fields["X-Amz-Expires"] == "60"
    assert expired.fields["Expires"] == (auth.date + timedelta(seconds=60)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_s3_scope_errors() -> None:
    request = capture(client("s3", region="eu-west-1").get_object, Bucket="b", Key="k")
    error = auth_error(refused(request, K.BAD_SCOPE, regions={"us-east-1"}), "rest-xml", "s3")
    assert error_code(error) == "AuthorizationHeaderMalformed"
    assert error.message == ("The authorization header is malformed; the region 'eu-west-1' is wrong; "
                             "expecting 'us-east-1'")
    assert error.fields == {"Region": "us-east-1"}
    error = auth_error(refused(request, K.BAD_SCOPE, service="iam"), "query", "iam")
    assert (error_code(error), error.message) == (
        "SignatureDoesNotMatch", "Credential should be scoped to correct service: 'iam'.")
    url = client("s3", region="eu-west-1").generate_presigned_url("get_object",
                                                                  Params={"Bucket": "b", "Key": "k"})
    error = auth_error(refused(presigned(url), K.BAD_SCOPE, regions={"us-east-1"}), "rest-xml", "s3")
    assert error_code(error) == "AuthorizationQueryParametersError"


def test_s3_presigned_too_long_and_missing_parameter() -> None:
    url = client("s3").generate_presigned_url("get_object", Params={"Bucket": "b", "Key": "k"},
                                              ExpiresIn=604801)
    error = auth_error(refused(presigned(url), K.MALFORMED), "rest-xml", "s3")
    assert (error_code(error), error_status(error)) == ("AuthorizationQueryParametersError", 400)
    assert error.message == ("X-Amz-Expires must be less than a week (in seconds); that is, the "
                             "given X-Amz-Expires must be less than 604800 seconds")
    request = presigned(url)
    query = "&".join(p for p in request.query.split("&") if not p.startswith("X-Amz-Credential="))
    with pytest.raises(AuthFailure) as caught:
        sigv4.parse_auth(replace(request, query=query))
    error = auth_error(caught.value, "rest-xml", "s3")
    assert error.message.startswith("Query-string authentication version 4 requires the X-Amz-Algorithm")


def test_s3_header_rules() -> None:
    request = capture(client("s3").put_object, Bucket="b", Key="k", Body=b"body")
    error = auth_error(refused(with_header(request, "x-amz-meta-late", "1"), K.UNSIGNED_HEADERS),
                       "rest-xml", "s3")
    assert error.fields == {"HeadersNotSigned": "x-amz-meta-late"}
    error = auth_error(refused(replace(request, body=b"other"), K.CONTENT_SHA_MISMATCH), "rest-xml", "s3")
    assert set(error.fields) == {"ClientComputedContentSHA256", "S3ComputedContentSHA256"}
    error = auth_error(refused(with_header(request, "x-amz-content-sha256", "nope"), K.INVALID_CONTENT_SHA),
                       "rest-xml", "s3")
    assert error.fields == {"ArgumentName": "x-amz-content-sha256", "ArgumentValue": "nope"}


def test_caller_raised_failures_render_for_s3() -> None:
    auth = sigv4.parse_auth(capture(client("s3", token=TOKEN).get_object, Bucket="b", Key="k"))
    assert auth is not None
    assert auth_error(sigv4.unknown_key(auth), "rest-xml", "s3").fields == {"AWSAccessKeyId": KEY_ID}
    assert auth_error(sigv4.expired_token(auth), "rest-xml", "s3").fields == {"Token-0": TOKEN}
    assert error_code(auth_error(sigv4.invalid_token(auth), "query", "sts")) == "InvalidClientTokenId"
