"""AWS STS error codes (query protocol)."""

from __future__ import annotations

from minicloud.aws.errors import ClientError


class MalformedPolicyDocumentError(ClientError):
    code = "MalformedPolicyDocument"


class PackedPolicyTooLarge(ClientError):
    code = "PackedPolicyTooLarge"


class InvalidAuthorizationMessageException(ClientError):
    code = "InvalidAuthorizationMessageException"
