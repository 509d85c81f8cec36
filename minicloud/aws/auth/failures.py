"""Why a request failed authentication, independent of the protocol that will report it.

``AuthFailure`` is raised by the verifier (and by the caller for facts only it knows: an unknown
access key, a bad or expired session token). ``auth_error`` in ``auth.errors`` turns it into the
exact error each protocol family answers with.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping


class AuthFailureKind(enum.Enum):
    MISSING_AUTH = "missing-auth"              # no signature at all where one is required
    MALFORMED = "malformed"                    # incomplete or unparsable Authorization / X-Amz-*
    UNSUPPORTED_AUTH = "unsupported-auth"      # SigV2, SigV4a, an unknown algorithm
    BAD_SCOPE = "bad-scope"                    # credential scope: date, region, service, terminator
    UNKNOWN_KEY = "unknown-key"                # the access key does not exist (raised by the caller)
    BAD_SIGNATURE = "bad-signature"            # request, chunk or trailer signature differs
    SKEWED = "skewed"                          # request time more than 15 minutes from now
    EXPIRED = "expired"                        # presigned URL past X-Amz-Date + X-Amz-Expires
    NOT_YET_VALID = "not-yet-valid"            # presigned URL dated in the future
    UNSIGNED_HEADERS = "unsigned-headers"      # S3: x-amz-* headers present but not signed
    INVALID_CONTENT_SHA = "invalid-content-sha"  # S3: x-amz-content-sha256 missing or not a value
    CONTENT_SHA_MISMATCH = "content-sha-mismatch"  # x-amz-content-sha256 is not the body's hash
    INVALID_TOKEN = "invalid-token"            # session token unknown/malformed (raised by the caller)
    EXPIRED_TOKEN = "expired-token"            # session token expired (raised by the caller)
    MISSING_CONTENT_LENGTH = "missing-content-length"  # aws-chunked without x-amz-decoded-content-length
    INCOMPLETE_BODY = "incomplete-body"        # aws-chunked body truncated or of the wrong length
    MALFORMED_BODY = "malformed-body"          # aws-chunked framing or trailers are invalid


class AuthFailure(Exception):
    """A request that does not authenticate.

    ``message`` is the text query/JSON services answer with; ``details`` carries the facts some
    protocols render as extra fields (S3's StringToSign, RequestTime, ...); ``presigned`` says
    whether the signature came in the query string (S3 words those errors differently).
    """

    def __init__(self, kind: AuthFailureKind, message: str, *, presigned: bool = False,
                 details: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.presigned = presigned
        self.details: dict[str, str] = dict(details or {})

    def __repr__(self) -> str:
        return f"AuthFailure({self.kind.name}, {self.message!r})"
