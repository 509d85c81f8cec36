"""Lambda's error codes with the HTTP statuses AWS answers them with (rest-json: the code travels in
``x-amzn-ErrorType`` and the body's ``Type``/``Message``)."""

from __future__ import annotations

from minicloud.aws.errors import ClientError, ServiceError


class AccessDeniedException(ClientError):
    code = "AccessDeniedException"
    status = 403


class InvalidParameterValueException(ClientError):
    code = "InvalidParameterValueException"


class InvalidRequestContentException(ClientError):
    code = "InvalidRequestContentException"


class ResourceNotFoundException(ClientError):
    code = "ResourceNotFoundException"
    status = 404


class ResourceConflictException(ClientError):
    code = "ResourceConflictException"
    status = 409


class PreconditionFailedException(ClientError):
    code = "PreconditionFailedException"
    status = 412


class RequestEntityTooLargeException(ClientError):
    """Named RequestTooLargeException in the botocore model; AWS sends this code."""

    code = "RequestEntityTooLargeException"
    status = 413


class TooManyRequestsException(ClientError):
    code = "TooManyRequestsException"
    status = 429


class CodeStorageExceededException(ClientError):
    code = "CodeStorageExceededException"


class ResourceNotReadyException(ServiceError):
    code = "ResourceNotReadyException"
    status = 502
    sender_fault = False


class ServiceException(ServiceError):
    code = "ServiceException"
    status = 500
