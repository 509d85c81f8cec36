"""Response serializers, one per AWS wire protocol, driven only by the output shapes.

    create_serializer(model) -> ResponseSerializer
        serialize_result(operation, result, request_id) -> AwsResponse
        serialize_error(error, operation | None, request_id) -> AwsResponse

      QuerySerializer   query: <OpResponse xmlns><OpResult>..</OpResult><ResponseMetadata>
                        ec2:   <OpResponse xmlns><requestId/>..members..</OpResponse>
      JsonSerializer    json (application/x-amz-json-1.x), smithy-rpc-v2-cbor (application/cbor)
      RestSerializer    rest-json and rest-xml: status code, header members, payload or body

A result that cannot take its shape is a provider bug: it is logged and answered as
InternalFailure, never half-written.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from botocore.model import OperationModel, ServiceModel

from minicloud.aws.errors import ServiceError, error_code, error_sender_fault, error_status
from minicloud.aws.protocol import cbor
from minicloud.aws.protocol.encoders import Encoder, JsonEncoders, Writer, XmlWriters, dump_json, escape
from minicloud.aws.protocol.models import service_protocols
from minicloud.aws.protocol.parser_base import current_protocol
from minicloud.aws.protocol.rest_serializers import RestSerializer
from minicloud.aws.protocol.serializer_base import XML_DECLARATION, ResponseSerializer, error_fields_xml
from minicloud.aws.request import AwsResponse

__all__ = ["ResponseSerializer", "create_serializer"]

class QuerySerializer(ResponseSerializer):
    def __init__(self, service_model: ServiceModel, protocol: str = "query") -> None:
        super().__init__(service_model, protocol)
        self.ec2 = protocol == "ec2"
        ns = str(service_model.metadata.get("xmlNamespace", ""))
        if self.ec2 and ns and not ns.endswith("/"):
            ns += "/"
        self._xmlns = f' xmlns="{escape(ns)}"' if ns else ""
        self._writers = XmlWriters(protocol)
        self._plans: dict[str, Writer | None] = {}
        self.content_type = "text/xml;charset=UTF-8" if self.ec2 else "text/xml"

    def _plan(self, operation: OperationModel) -> Writer | None:
        name = operation.name
        if name in self._plans:
            return self._plans[name]
        shape = operation.output_shape
        plan: Writer | None = None
        if shape is not None:
            wrapper = shape.serialization.get("resultWrapper")
            if wrapper and not self.ec2:
                plan = self._writers.writer(shape, str(wrapper))
            else:
                plan = self._writers.members(shape)[0]
        self._plans[name] = plan
        return plan

    def _result(self, operation: OperationModel, result: dict[str, Any], request_id: str) -> AwsResponse:
        plan = self._plan(operation)
        name = operation.name
        rid = escape(request_id)
        parts = [XML_DECLARATION if self.ec2 else "", f"<{name}Response{self._xmlns}>"]
        if self.ec2:
            parts.append(f"<requestId>{rid}</requestId>")
        if plan is not None:
            plan(parts, result)
        if not self.ec2:
            parts.append(f"<ResponseMetadata><RequestId>{rid}</RequestId></ResponseMetadata>")
        parts.append(f"</{name}Response>")
        return AwsResponse(200, self._headers(request_id), "".join(parts).encode("utf-8"))

    def _headers(self, request_id: str) -> list[tuple[str, str]]:
        return [("x-amzn-RequestId", request_id), ("Content-Type", self.content_type)]

    def _error(self, error: ServiceError, operation: OperationModel | None,
               request_id: str) -> AwsResponse:
        code = escape(error_code(error))
        message = escape(error.message)
        rid = escape(request_id)
        extra = self.error_fields_xml(error)
        if self.ec2:
            body = (f"{XML_DECLARATION}<Response><Errors><Error><Code>{code}</Code>"
                    f"<Message>{message}</Message>{extra}</Error></Errors>"
                    f"<RequestID>{rid}</RequestID></Response>")
        else:
            kind = "Sender" if error_sender_fault(error) else "Receiver"
            body = (f"<ErrorResponse{self._xmlns}><Error><Type>{kind}</Type><Code>{code}</Code>"
                    f"<Message>{message}</Message>{extra}</Error><RequestId>{rid}</RequestId>"
                    f"</ErrorResponse>")
        return AwsResponse(error_status(error), self._headers(request_id), body.encode("utf-8"))

    def error_fields_xml(self, error: ServiceError) -> str:
        return error_fields_xml(self, self._writers, error)


class JsonSerializer(ResponseSerializer):
    """The json protocol, and smithy-rpc-v2-cbor (same document model, CBOR bytes)."""

    def __init__(self, service_model: ServiceModel, protocol: str = "json") -> None:
        super().__init__(service_model, protocol)
        self.cbor = protocol == "smithy-rpc-v2-cbor"
        self._encoders = JsonEncoders(cbor=self.cbor)
        self._plans: dict[str, Encoder | None] = {}
        version = service_model.metadata.get("jsonVersion", "1.0")
        self.content_type = "application/cbor" if self.cbor else f"application/x-amz-json-{version}"
        self._dump: Callable[[Any], bytes] = cbor.encode if self.cbor else dump_json

    def _headers(self, request_id: str) -> list[tuple[str, str]]:
        headers = [("x-amzn-RequestId", request_id), ("Content-Type", self.content_type)]
        if self.cbor:
            headers.append(("smithy-protocol", "rpc-v2-cbor"))
        return headers

    def _result(self, operation: OperationModel, result: dict[str, Any], request_id: str) -> AwsResponse:
        name = operation.name
        if name in self._plans:
            plan = self._plans[name]
        else:
            shape = operation.output_shape
            plan = self._plans[name] = self._encoders.encoder(shape) if shape is not None else None
        document = plan(result) if plan is not None else {}
        return AwsResponse(200, self._headers(request_id), self._dump(document))

    def _error(self, error: ServiceError, operation: OperationModel | None,
               request_id: str) -> AwsResponse:
        code = error_code(error)
        shape = self.error_shape(code)
        document: dict[str, Any] = {"__type": shape.name if shape is not None else code,
                                    "message": error.message}
        document.update(self.error_fields_json(error, shape))
        headers = self._headers(request_id)
        headers.append(("x-amzn-ErrorType", code))
        if self.service_model.is_query_compatible:
            kind = "Sender" if error_sender_fault(error) else "Receiver"
            headers.append(("x-amzn-query-error", f"{code};{kind}"))
        return AwsResponse(error_status(error), headers, self._dump(document))

    def error_fields_json(self, error: ServiceError, shape: Any) -> dict[str, Any]:
        if not error.fields:
            return {}
        encode = self._encoders.structure(shape) if shape is not None else None
        modeled = encode(error.fields) if encode is not None else {}
        for key, value in error.fields.items():
            if key not in modeled and value is not None and (shape is None or key not in shape.members):
                modeled[key] = value if isinstance(value, (str, int, float, bool)) else str(value)
        return modeled


class MultiProtocolSerializer(ResponseSerializer):
    """Answers in the protocol the current request was parsed in (see ``parsers.detect_protocol``)."""

    def __init__(self, service_model: ServiceModel) -> None:
        super().__init__(service_model, service_model.protocol)
        self._by_protocol = {p: _create(service_model, p) for p in service_protocols(service_model)}
        self._default = self._by_protocol[service_model.protocol]

    def for_protocol(self, protocol: str | None) -> ResponseSerializer:
        return self._by_protocol.get(protocol or "", self._default)

    def serialize_result(self, operation_model: OperationModel, result: dict[str, Any] | None,
                         request_id: str) -> AwsResponse:
        return self.for_protocol(current_protocol.get()).serialize_result(operation_model, result,
                                                                         request_id)

    def serialize_error(self, error: ServiceError, operation_model: OperationModel | None,
                        request_id: str) -> AwsResponse:
        return self.for_protocol(current_protocol.get()).serialize_error(error, operation_model,
                                                                        request_id)


def _create(service_model: ServiceModel, protocol: str) -> ResponseSerializer:
    if protocol in ("query", "ec2"):
        return QuerySerializer(service_model, protocol)
    if protocol in ("json", "smithy-rpc-v2-cbor"):
        return JsonSerializer(service_model, protocol)
    if protocol in ("rest-json", "rest-xml"):
        return RestSerializer(service_model, protocol)
    raise ValueError(f"unsupported protocol {protocol!r}")


@functools.cache
def _cached(service_model: ServiceModel, protocol: str | None) -> ResponseSerializer:
    if protocol is None:
        if len(service_protocols(service_model)) > 1:
            return MultiProtocolSerializer(service_model)
        protocol = service_model.protocol
    return _create(service_model, protocol)


def create_serializer(service_model: ServiceModel, protocol: str | None = None) -> ResponseSerializer:
    """The serializer for ``service_model`` (cached). Without ``protocol``, a service that speaks
    several protocols answers each request in the protocol its parser detected."""
    return _cached(service_model, protocol)
