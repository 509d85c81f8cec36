"""KMS's error codes (JSON protocol; HTTP 400 unless the botocore model says otherwise)."""

from __future__ import annotations

from minicloud.aws.errors import ClientError


class AccessDeniedException(ClientError):
    code = "AccessDeniedException"


class NotFoundException(ClientError):
    code = "NotFoundException"


class DisabledException(ClientError):
    code = "DisabledException"


class KMSInvalidStateException(ClientError):
    code = "KMSInvalidStateException"


class InvalidCiphertextException(ClientError):
    code = "InvalidCiphertextException"


class IncorrectKeyException(ClientError):
    code = "IncorrectKeyException"


class InvalidKeyUsageException(ClientError):
    code = "InvalidKeyUsageException"


class AlreadyExistsException(ClientError):
    code = "AlreadyExistsException"


class InvalidAliasNameException(ClientError):
    code = "InvalidAliasNameException"


class InvalidArnException(ClientError):
    code = "InvalidArnException"


class InvalidMarkerException(ClientError):
    code = "InvalidMarkerException"


class MalformedPolicyDocumentException(ClientError):
    code = "MalformedPolicyDocumentException"


class TagException(ClientError):
    code = "TagException"


class DryRunOperationException(ClientError):
    code = "DryRunOperationException"
    status = 412
