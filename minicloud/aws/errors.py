"""AWS service errors: one class per AWS error code, rendered once at the edge.

    ServiceError                 any error an AWS API answers with (code, HTTP status, message)
     ├── client errors (sender_fault=True, 4xx): ValidationError, AccessDenied, ...
     └── server errors (sender_fault=False, 5xx): InternalFailure, ServiceUnavailable, NotImplemented

A service declares its own codes as subclasses in its package (e.g. ``services/iam/errors.py``).
``fields`` carries the extra members some protocols render beside Code/Message (S3's BucketName, ...).
The serializer for the request's protocol renders it (XML or JSON body, status, request id header).
"""

from __future__ import annotations

from typing import Any, ClassVar


class ServiceError(Exception):
    code: ClassVar[str] = "InternalFailure"
    status: ClassVar[int] = 500
    sender_fault: ClassVar[bool] = False
    # An access-denied error whose message ends with an encoded authorization failure message
    # (EC2's UnauthorizedOperation: see ``iam.failure_messages``).
    encodes_failure: ClassVar[bool] = False

    def __init__(self, message: str = "", **fields: Any) -> None:
        super().__init__(message)
        self.message = message
        self.fields: dict[str, Any] = fields
        self.headers: list[tuple[str, str]] = []  # extra response headers (S3: x-amz-delete-marker, CORS)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class ClientError(ServiceError):
    status = 400
    sender_fault = True


class DynamicServiceError(ServiceError):
    """An error whose code comes from data (e.g. an error shape of a botocore model)."""

    def __init__(self, code: str, status: int, message: str = "", *, sender_fault: bool = True,
                 **fields: Any) -> None:
        super().__init__(message, **fields)
        self.dynamic_code = code
        self.dynamic_status = status
        self.dynamic_sender_fault = sender_fault


def error_code(error: ServiceError) -> str:
    return error.dynamic_code if isinstance(error, DynamicServiceError) else error.code


def error_status(error: ServiceError) -> int:
    return error.dynamic_status if isinstance(error, DynamicServiceError) else error.status


def error_sender_fault(error: ServiceError) -> bool:
    if isinstance(error, DynamicServiceError):
        return error.dynamic_sender_fault
    return error.sender_fault


# --- errors common to every query/ec2/json service -------------------------------------------

class InternalFailure(ServiceError):
    code = "InternalFailure"
    status = 500


class ServiceUnavailable(ServiceError):
    code = "ServiceUnavailable"
    status = 503


class NotImplementedOperation(ServiceError):
    """An operation or feature minicloud does not implement (yet). Never retried by SDKs."""

    code = "NotImplemented"
    status = 501


class InvalidAction(ClientError):
    code = "InvalidAction"


class UnknownOperation(ClientError):
    code = "UnknownOperationException"


class MissingAction(ClientError):
    code = "MissingAction"


class MissingParameter(ClientError):
    code = "MissingParameter"


class InvalidParameterValue(ClientError):
    code = "InvalidParameterValue"


class InvalidParameterCombination(ClientError):
    code = "InvalidParameterCombination"


class MalformedQueryString(ClientError):
    code = "MalformedQueryString"
    status = 404


class ValidationError(ClientError):
    """Query-protocol services (IAM, STS, ...) answer ``ValidationError``."""

    code = "ValidationError"


class ValidationException(ClientError):
    """JSON-protocol services answer ``ValidationException``."""

    code = "ValidationException"


class SerializationException(ClientError):
    code = "SerializationException"


class AccessDenied(ClientError):
    code = "AccessDenied"
    status = 403


class AccessDeniedException(ClientError):
    code = "AccessDeniedException"
    status = 403


class InvalidClientTokenId(ClientError):
    code = "InvalidClientTokenId"
    status = 403


class UnrecognizedClient(ClientError):
    code = "UnrecognizedClientException"
    status = 403


class SignatureDoesNotMatch(ClientError):
    code = "SignatureDoesNotMatch"
    status = 403


class InvalidSignatureException(ClientError):
    code = "InvalidSignatureException"
    status = 403


class IncompleteSignature(ClientError):
    code = "IncompleteSignature"
    status = 400


class MissingAuthenticationToken(ClientError):
    code = "MissingAuthenticationToken"
    status = 403


class ExpiredToken(ClientError):
    code = "ExpiredToken"
    status = 400


class ExpiredTokenException(ClientError):
    code = "ExpiredTokenException"
    status = 400


class RequestExpired(ClientError):
    code = "RequestExpired"
    status = 400


class RequestEntityTooLarge(ClientError):
    code = "RequestEntityTooLarge"
    status = 413


class Throttling(ClientError):
    code = "Throttling"
    status = 400
