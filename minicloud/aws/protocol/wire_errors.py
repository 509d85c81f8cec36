"""Errors the protocol layer itself answers (malformed input, unknown routes), per protocol.

The common codes live in ``minicloud.aws.errors``; the few that only the wire layer raises
(S3's MalformedXML and InvalidArgument, REST routing failures) are declared here.
"""

from __future__ import annotations

from minicloud.aws.errors import (
    ClientError,
    InvalidParameterValue,
    MalformedQueryString,
    SerializationException,
    ServiceError,
    ValidationError,
)

MALFORMED_XML = "The XML you provided was not well-formed or did not validate against our published schema"


class MalformedXML(ClientError):
    """S3's answer to a document it cannot read, or one that lacks an element its schema requires."""

    code = "MalformedXML"

    def __init__(self, message: str = MALFORMED_XML, **fields: object) -> None:
        super().__init__(message, **fields)


class MissingRequestBodyError(ClientError):
    """S3's answer to a request whose XML document is missing altogether."""

    code = "MissingRequestBodyError"

    def __init__(self, message: str = "Request Body is empty", **fields: object) -> None:
        super().__init__(message, **fields)


class InvalidArgument(ClientError):
    code = "InvalidArgument"


class MethodNotAllowed(ClientError):
    code = "MethodNotAllowed"
    status = 405


class UnknownRoute(ClientError):
    """No operation of a REST service matches the method and path."""

    code = "UnknownOperationException"
    status = 404


class InvalidRequest(ClientError):
    code = "InvalidRequest"


def malformed_value(protocol: str, message: str) -> ServiceError:
    """A value that cannot be read as its modeled type (bad number, timestamp, base64...)."""
    if protocol == "query":
        return ValidationError(message)
    if protocol == "ec2":
        return InvalidParameterValue(message)
    if protocol == "rest-xml":
        return InvalidArgument(message)
    return SerializationException(message)


def malformed_body(protocol: str, message: str) -> ServiceError:
    """A body that cannot be decoded at all (bad JSON, XML, CBOR or form encoding)."""
    if protocol in ("query", "ec2"):
        return MalformedQueryString(message)
    if protocol == "rest-xml":
        return MalformedXML()
    return SerializationException(message)
