"""One mapping from an ``AuthFailure`` to the error AWS answers with, per protocol family.

    family      services                                  e.g. a wrong secret key
    query       IAM, STS, RDS, ELBv2, Auto Scaling, ...   SignatureDoesNotMatch            403
    ec2         EC2                                       AuthFailure                      401
    json        awsJson1.0/1.1 (Logs, ECR, DynamoDB...)   InvalidSignatureException        400
    rest-json   Lambda, ...                               InvalidSignatureException        403
    s3          rest-xml S3                               SignatureDoesNotMatch (+fields)  403

Codes, statuses and messages are those of real AWS responses (AWS documentation's common errors
pages, and error bodies quoted in SDK issue trackers); S3's extra fields (StringToSign,
RequestTime, HeadersNotSigned, ...) are the element names S3 returns.
"""

from __future__ import annotations

from collections.abc import Callable

from minicloud.aws.auth.failures import AuthFailure, AuthFailureKind
from minicloud.aws.errors import (
    AccessDenied,
    ClientError,
    ExpiredToken,
    ExpiredTokenException,
    IncompleteSignature,
    InvalidClientTokenId,
    InvalidSignatureException,
    MissingAuthenticationToken,
    RequestExpired,
    ServiceError,
    SignatureDoesNotMatch,
    UnrecognizedClient,
)

K = AuthFailureKind
INVALID_TOKEN_ID = "The security token included in the request is invalid."
EXPIRED_SECURITY_TOKEN = "The security token included in the request is expired"
S3_SIGNATURE_MISMATCH = ("The request signature we calculated does not match the signature you "
                         "provided. Check your key and signing method.")


# -- error codes that errors.py does not declare ---------------------------------------------------

class QueryExpiredToken(ExpiredToken):
    status = 403


class Ec2AuthFailure(ClientError):
    code = "AuthFailure"
    status = 401


class Ec2MissingAuthenticationToken(MissingAuthenticationToken):
    status = 401


class MissingAuthenticationTokenException(ClientError):
    code = "MissingAuthenticationTokenException"
    status = 403


class IncompleteSignatureException(ClientError):
    code = "IncompleteSignatureException"
    status = 403


class JsonUnrecognizedClient(UnrecognizedClient):
    status = 400


class JsonInvalidSignature(InvalidSignatureException):
    status = 400


class JsonMissingAuthenticationToken(MissingAuthenticationTokenException):
    status = 400


class JsonIncompleteSignature(IncompleteSignatureException):
    status = 400


class RestJsonExpiredToken(ExpiredTokenException):
    status = 403


class InvalidAccessKeyId(ClientError):
    code = "InvalidAccessKeyId"
    status = 403


class RequestTimeTooSkewed(ClientError):
    code = "RequestTimeTooSkewed"
    status = 403


class AuthorizationHeaderMalformed(ClientError):
    code = "AuthorizationHeaderMalformed"


class AuthorizationQueryParametersError(ClientError):
    code = "AuthorizationQueryParametersError"


class XAmzContentSHA256Mismatch(ClientError):
    code = "XAmzContentSHA256Mismatch"


class InvalidToken(ClientError):
    code = "InvalidToken"


class InvalidArgument(ClientError):
    code = "InvalidArgument"


class InvalidRequest(ClientError):
    code = "InvalidRequest"


class IncompleteBody(ClientError):
    code = "IncompleteBody"


class MissingContentLength(ClientError):
    code = "MissingContentLength"
    status = 411


# -- the mapping -----------------------------------------------------------------------------------

def auth_error(failure: AuthFailure, protocol: str, service: str) -> ServiceError:
    """The error ``service`` (speaking ``protocol``) answers a request that failed with ``failure``."""
    if failure.kind in _BODY_ERRORS:
        return _BODY_ERRORS[failure.kind](failure)
    if service == "s3":
        return _s3_error(failure)
    if protocol == "ec2":
        return _ec2_error(failure)
    if protocol in ("query", "rest-xml"):
        return _query_error(failure)
    return _json_error(failure, rest=protocol == "rest-json")


def _query_error(failure: AuthFailure) -> ServiceError:
    kind = failure.kind
    if kind is K.MISSING_AUTH:
        return MissingAuthenticationToken("Request is missing Authentication Token")
    if kind in (K.MALFORMED, K.UNSUPPORTED_AUTH):
        return IncompleteSignature(failure.message)
    if kind in (K.UNKNOWN_KEY, K.INVALID_TOKEN):
        return InvalidClientTokenId(INVALID_TOKEN_ID)
    if kind is K.EXPIRED_TOKEN:
        return QueryExpiredToken(EXPIRED_SECURITY_TOKEN)
    return SignatureDoesNotMatch(_signature_message(failure))


def _json_error(failure: AuthFailure, *, rest: bool) -> ServiceError:
    kind = failure.kind
    if kind is K.MISSING_AUTH:
        return (MissingAuthenticationTokenException("Missing Authentication Token") if rest
                else JsonMissingAuthenticationToken("Request is missing Authentication Token"))
    if kind in (K.MALFORMED, K.UNSUPPORTED_AUTH):
        return (IncompleteSignatureException if rest else JsonIncompleteSignature)(failure.message)
    if kind in (K.UNKNOWN_KEY, K.INVALID_TOKEN):
        return (UnrecognizedClient if rest else JsonUnrecognizedClient)(INVALID_TOKEN_ID)
    if kind is K.EXPIRED_TOKEN:
        return (RestJsonExpiredToken if rest else ExpiredTokenException)(EXPIRED_SECURITY_TOKEN)
    return (InvalidSignatureException if rest else JsonInvalidSignature)(_signature_message(failure))


def _ec2_error(failure: AuthFailure) -> ServiceError:
    kind = failure.kind
    if kind is K.MISSING_AUTH:
        return Ec2MissingAuthenticationToken("The request must contain either a valid (registered) AWS "
                                             "access key ID or X.509 certificate.")
    if kind in (K.MALFORMED, K.UNSUPPORTED_AUTH):
        return IncompleteSignature(failure.message)
    if kind in (K.SKEWED, K.EXPIRED, K.NOT_YET_VALID, K.EXPIRED_TOKEN):
        return RequestExpired("Request has expired.")
    if kind is K.BAD_SCOPE:
        return Ec2AuthFailure(failure.message)
    return Ec2AuthFailure("AWS was not able to validate the provided access credentials")


def _signature_message(failure: AuthFailure) -> str:
    """SignatureDoesNotMatch-family text: the failure's own (skew, scope) or AWS's standard one."""
    if failure.kind in (K.SKEWED, K.EXPIRED, K.NOT_YET_VALID, K.BAD_SCOPE, K.INVALID_CONTENT_SHA):
        return failure.message
    return ("The request signature we calculated does not match the signature you provided. Check "
            "your AWS Secret Access Key and signing method. Consult the service documentation for "
            "details.")


# -- S3 --------------------------------------------------------------------------------------------

def _s3_error(failure: AuthFailure) -> ServiceError:
    d = failure.details
    handler = _S3_ERRORS.get(failure.kind)
    if handler is not None:
        return handler(failure)
    if failure.kind is K.MISSING_AUTH:
        return AccessDenied(failure.message if d.get("message") == "own" else "Access Denied")
    if failure.kind is K.UNKNOWN_KEY:
        return InvalidAccessKeyId("The AWS Access Key Id you provided does not exist in our records.",
                                  AWSAccessKeyId=d.get("access_key_id", ""))
    if failure.kind is K.INVALID_TOKEN:
        return InvalidToken("The provided token is malformed or otherwise invalid.",
                            **({"Token-0": d["token"]} if "token" in d else {}))
    if failure.kind is K.EXPIRED_TOKEN:
        return ExpiredToken("The provided token has expired.",
                            **({"Token-0": d["token"]} if "token" in d else {}))
    return AccessDenied("Access Denied")


def _s3_malformed(failure: AuthFailure) -> ServiceError:
    if failure.presigned:
        missing = failure.details.get("missing")
        if missing:
            return AuthorizationQueryParametersError(
                "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, "
                "X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.")
        return AuthorizationQueryParametersError(failure.message)
    return AuthorizationHeaderMalformed(f"The authorization header is malformed; {failure.message}")


def _s3_unsupported(failure: AuthFailure) -> ServiceError:
    if failure.presigned:
        return AuthorizationQueryParametersError(failure.message)
    return InvalidArgument("Unsupported Authorization Type", ArgumentName="Authorization")


def _s3_scope(failure: AuthFailure) -> ServiceError:
    d = failure.details
    reason = d.get("reason")
    if reason == "region" and "expected" in d:
        detail = f"the region '{d['region']}' is wrong; expecting '{d['expected']}'"
        if failure.presigned:
            return AuthorizationQueryParametersError(
                f"Error parsing the X-Amz-Credential parameter; {detail}", Region=d["expected"])
        return AuthorizationHeaderMalformed(f"The authorization header is malformed; {detail}",
                                            Region=d["expected"])
    if reason == "region":
        detail = f"the region '{d.get('region', '')}' is wrong"
    elif reason == "service":
        detail = f'incorrect service "{d.get("service", "")}". This endpoint belongs to "s3".'
    elif reason == "date":
        detail = "Invalid credential date. Date is not the same as X-Amz-Date."
    else:
        detail = f"the Credential is mal-formed; expecting {_CREDENTIAL}."
    if failure.presigned:
        return AuthorizationQueryParametersError(f"Error parsing the X-Amz-Credential parameter; {detail}")
    return AuthorizationHeaderMalformed(f"The authorization header is malformed; {detail}")


_CREDENTIAL = '"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request"'


def _s3_signature(failure: AuthFailure) -> ServiceError:
    d = failure.details
    fields: dict[str, str] = {}
    if "access_key_id" in d:
        fields["AWSAccessKeyId"] = d["access_key_id"]
    if "string_to_sign" in d:
        fields["StringToSign"] = d["string_to_sign"]
    if "signature_provided" in d:
        fields["SignatureProvided"] = d["signature_provided"]
    if "string_to_sign" in d:
        fields["StringToSignBytes"] = _hex_bytes(d["string_to_sign"])
    if "canonical_request" in d:
        fields["CanonicalRequest"] = d["canonical_request"]
        fields["CanonicalRequestBytes"] = _hex_bytes(d["canonical_request"])
    return SignatureDoesNotMatch(S3_SIGNATURE_MISMATCH, **fields)


def _hex_bytes(text: str) -> str:
    return " ".join(f"{b:02x}" for b in text.encode())


def _s3_skewed(failure: AuthFailure) -> ServiceError:
    d = failure.details
    return RequestTimeTooSkewed("The difference between the request time and the current time is too "
                                "large.", RequestTime=d.get("request_time", ""),
                                ServerTime=_iso_basic_to_extended(d.get("server_time", "")),
                                MaxAllowedSkewMilliseconds="900000")


def _s3_expired(failure: AuthFailure) -> ServiceError:
    d = failure.details
    fields = {"X-Amz-Expires": d["expires"]} if "expires" in d else {}
    fields.update(Expires=d.get("expires_at", ""),
                  ServerTime=_iso_basic_to_extended(d.get("server_time", "")))
    message = "Request has expired" if failure.kind is K.EXPIRED else "Request is not yet valid"
    return AccessDenied(message, **fields)


def _s3_unsigned_headers(failure: AuthFailure) -> ServiceError:
    return AccessDenied("There were headers present in the request which were not signed",
                        HeadersNotSigned=failure.details.get("headers_not_signed", ""))


def _s3_content_sha(failure: AuthFailure) -> ServiceError:
    d = failure.details
    if failure.kind is K.CONTENT_SHA_MISMATCH:
        return XAmzContentSHA256Mismatch("The provided 'x-amz-content-sha256' header does not match "
                                         "what was computed.",
                                         ClientComputedContentSHA256=d.get("client_sha256", ""),
                                         S3ComputedContentSHA256=d.get("computed_sha256", ""))
    if "missing" in d:
        return InvalidRequest(failure.message)
    return InvalidArgument(failure.message, ArgumentName="x-amz-content-sha256",
                           ArgumentValue=d.get("value", ""))


def _iso_basic_to_extended(stamp: str) -> str:
    """``20261129T052500Z`` -> ``2026-11-29T05:25:00Z`` (S3's ServerTime element)."""
    if len(stamp) != 16:
        return stamp
    return f"{stamp[0:4]}-{stamp[4:6]}-{stamp[6:8]}T{stamp[9:11]}:{stamp[11:13]}:{stamp[13:15]}Z"


_S3_ERRORS: dict[AuthFailureKind, Callable[[AuthFailure], ServiceError]] = {
    K.MALFORMED: _s3_malformed,
    K.UNSUPPORTED_AUTH: _s3_unsupported,
    K.BAD_SCOPE: _s3_scope,
    K.BAD_SIGNATURE: _s3_signature,
    K.SKEWED: _s3_skewed,
    K.EXPIRED: _s3_expired,
    K.NOT_YET_VALID: _s3_expired,
    K.UNSIGNED_HEADERS: _s3_unsigned_headers,
    K.CONTENT_SHA_MISMATCH: _s3_content_sha,
    K.INVALID_CONTENT_SHA: _s3_content_sha,
}

# The aws-chunked body errors exist only for S3 uploads; they read the same whoever reports them.
_BODY_ERRORS: dict[AuthFailureKind, Callable[[AuthFailure], ServiceError]] = {
    K.MISSING_CONTENT_LENGTH: lambda f: MissingContentLength(
        "You must provide the Content-Length HTTP header."),
    K.INCOMPLETE_BODY: lambda f: IncompleteBody(
        "You did not provide the number of bytes specified by the Content-Length HTTP header."),
    K.MALFORMED_BODY: lambda f: InvalidRequest(f.message),
}
