"""AWS Signature Version 4 verification: the public API (implemented in ``minicloud.aws.auth``).

    auth = parse_auth(request)                    # None for an anonymous request
    verify(request, auth, secret, now)            # raises AuthFailure
    decoder = ChunkedPayloadDecoder.for_request(request, auth, secret)   # aws-chunked S3 bodies
    error = auth_error(failure, protocol, service)                       # -> ServiceError
"""

from minicloud.aws.auth.canonical import canonical_request
from minicloud.aws.auth.chunked import ChunkedPayloadDecoder
from minicloud.aws.auth.errors import auth_error
from minicloud.aws.auth.failures import AuthFailure, AuthFailureKind
from minicloud.aws.auth.sigv4 import (
    ALGORITHM,
    EMPTY_SHA256,
    MAX_PRESIGNED_EXPIRES,
    MAX_SKEW,
    STREAMING_PAYLOAD,
    STREAMING_PAYLOAD_TRAILER,
    STREAMING_UNSIGNED_PAYLOAD_TRAILER,
    UNSIGNED_PAYLOAD,
    SigningContext,
    SigV4Auth,
    check_payload_hash,
    expired_token,
    invalid_token,
    parse_auth,
    signing_key,
    streaming_context,
    unknown_key,
    verify,
)

__all__ = [
    "ALGORITHM",
    "EMPTY_SHA256",
    "MAX_PRESIGNED_EXPIRES",
    "MAX_SKEW",
    "STREAMING_PAYLOAD",
    "STREAMING_PAYLOAD_TRAILER",
    "STREAMING_UNSIGNED_PAYLOAD_TRAILER",
    "UNSIGNED_PAYLOAD",
    "AuthFailure",
    "AuthFailureKind",
    "ChunkedPayloadDecoder",
    "SigV4Auth",
    "SigningContext",
    "auth_error",
    "canonical_request",
    "check_payload_hash",
    "expired_token",
    "invalid_token",
    "parse_auth",
    "signing_key",
    "streaming_context",
    "unknown_key",
    "verify",
]
