"""The response serializer contract shared by every protocol."""

from __future__ import annotations

import base64
import hashlib
import logging
from typing import Any

from botocore.model import OperationModel, ServiceModel

from minicloud.aws.errors import InternalFailure, ServiceError, error_code
from minicloud.aws.protocol.encoders import XmlWriters, escape
from minicloud.aws.request import AwsResponse

log = logging.getLogger("minicloud.aws.protocol")

XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'


class ResponseSerializer:
    """Turns a provider's result (a dict keyed by output member names) or a ``ServiceError`` into
    the bytes, status and headers of the service's protocol."""

    protocol: str = ""

    def __init__(self, service_model: ServiceModel, protocol: str) -> None:
        self.service_model = service_model
        self.protocol = protocol
        self._error_shapes: dict[str, Any] | None = None

    def serialize_result(self, operation_model: OperationModel, result: dict[str, Any] | None,
                         request_id: str) -> AwsResponse:
        try:
            return self._result(operation_model, result or {}, request_id)
        except (ValueError, TypeError, AttributeError, KeyError, OverflowError):
            log.exception("the result of %s does not fit its output shape", operation_model.name)
            error = InternalFailure("We encountered an internal error. Please try again.")
            return self.serialize_error(error, operation_model, request_id)

    def serialize_error(self, error: ServiceError, operation_model: OperationModel | None,
                        request_id: str) -> AwsResponse:
        try:
            return self._error(error, operation_model, request_id)
        except (ValueError, TypeError, AttributeError, KeyError, OverflowError):
            log.exception("cannot render error %r with fields %r", error, error.fields)
            saved, error.fields = error.fields, {}
            try:
                return self._error(error, operation_model, request_id)
            finally:
                error.fields = saved

    def error_shape(self, code: str) -> Any:
        """The modeled error shape for ``code`` (by shape name or its query ``error.code``)."""
        if self._error_shapes is None:
            found: dict[str, Any] = {}
            for shape in self.service_model.error_shapes:
                found.setdefault(shape.name, shape)
                query_code = (shape.metadata.get("error") or {}).get("code")
                if query_code:
                    found.setdefault(str(query_code), shape)
            self._error_shapes = found
        return self._error_shapes.get(code)

    def _result(self, operation: OperationModel, result: dict[str, Any], request_id: str) -> AwsResponse:
        raise NotImplementedError

    def _error(self, error: ServiceError, operation: OperationModel | None,
               request_id: str) -> AwsResponse:
        raise NotImplementedError


def error_fields_xml(serializer: ResponseSerializer, writers: XmlWriters, error: ServiceError) -> str:
    """An error's extra fields as XML elements: through its modeled shape when the service has
    one, else as text."""
    if not error.fields:
        return ""
    shape = serializer.error_shape(error_code(error))
    parts: list[str] = []
    for key, value in error.fields.items():
        if value is None or key in ("Code", "Message", "Type", "RequestId", "HostId"):
            continue
        member = shape.members.get(key) if shape is not None else None
        if member is not None:
            writers.writer(member, writers.member_tag(member, key))(parts, value)
        else:
            parts.append(f"<{key}>{escape(str(value))}</{key}>")
    return "".join(parts)


def host_id(request_id: str) -> str:
    """S3's ``x-amz-id-2``: an opaque token derived from the request id."""
    return base64.b64encode(hashlib.sha256(request_id.encode("utf-8")).digest()).decode("ascii")
