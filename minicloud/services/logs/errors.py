"""CloudWatch Logs' error codes (JSON protocol, HTTP 400 as the botocore model declares them)."""

from __future__ import annotations

from minicloud.aws.errors import ClientError


class AccessDeniedException(ClientError):
    code = "AccessDeniedException"


class InvalidParameterException(ClientError):
    code = "InvalidParameterException"


class ResourceAlreadyExistsException(ClientError):
    code = "ResourceAlreadyExistsException"


class ResourceNotFoundException(ClientError):
    code = "ResourceNotFoundException"
