"""Response serializer for rest-json and rest-xml: status from ``http.responseCode`` (or a
``statusCode`` member), header and header-map members, then a payload member (raw bytes for a
blob or string, a document for a structure) or the remaining members as the body document.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from botocore.model import OperationModel, ServiceModel

from minicloud.aws.errors import ServiceError, error_code, error_status
from minicloud.aws.protocol.encoders import (
    JsonEncoders,
    XmlWriters,
    dump_json,
    escape,
    text_encoder,
)
from minicloud.aws.protocol.serializer_base import (
    XML_DECLARATION,
    ResponseSerializer,
    error_fields_xml,
    host_id,
)
from minicloud.aws.request import AwsResponse

Body = Callable[[Any], bytes]

# Result keys a provider may add beside the output members: the HTTP status when it depends on
# the request (S3's 206 for a range), and headers the model does not declare (CORS).
RESULT_STATUS = "@status"
RESULT_HEADERS = "@headers"


@dataclass(frozen=True, slots=True)
class _HeaderMember:
    """A header member of an output shape, as the plan sends it."""

    place: int  # its place in the model's order (headers are sent in that order)
    name: str
    wire: str
    encode: Callable[[Any], str]
    plain: bool  # its text is always printable ASCII (numbers, times): sent as encoded
    content_type: bool  # sent as Content-Type


def _place(member: _HeaderMember) -> int:
    return member.place


@dataclass(slots=True)
class _Plan:
    status: int = 200
    no_body: bool = False
    headers: dict[str, _HeaderMember] = field(default_factory=dict)  # member name -> how it is sent
    header_maps: list[tuple[str, str]] = field(default_factory=list)
    status_member: str | None = None
    payload: tuple[str, str, Body | None] | None = None
    body: Body | None = None


# Header members whose text form is always printable ASCII (digits, signs, "true", RFC 822 and ISO
# dates): ``header_value`` would return it unchanged.
_PLAIN_TEXT_TYPES = frozenset({"integer", "long", "short", "byte", "boolean", "timestamp"})


def header_value(text: str) -> str:
    """A header-safe value: anything but printable ASCII is sent RFC 2047-encoded, as S3 does."""
    if text.isascii() and text.isprintable():
        return text
    return "=?UTF-8?B?" + base64.b64encode(text.encode("utf-8")).decode("ascii") + "?="


def _quote_list_item(text: str) -> str:
    if '"' in text or "," in text:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text


def _header_encoder(shape: Any) -> Callable[[Any], str]:
    if shape.type_name == "list":
        item = _header_encoder(shape.member)
        if shape.member.type_name == "timestamp":  # HTTP-dates are listed as they are
            return lambda value: ", ".join(item(v) for v in value if v is not None)
        return lambda value: ", ".join(_quote_list_item(item(v)) for v in value if v is not None)
    if shape.type_name == "string" and shape.serialization.get("jsonvalue"):
        return lambda value: base64.b64encode(orjson.dumps(value)).decode("ascii")
    return text_encoder(shape, default_timestamp="rfc822", xml=False)


class RestSerializer(ResponseSerializer):
    def __init__(self, service_model: ServiceModel, protocol: str) -> None:
        super().__init__(service_model, protocol)
        self.xml = protocol == "rest-xml"
        self._writers = XmlWriters("rest-xml")
        self._encoders = JsonEncoders()
        ns = service_model.metadata.get("xmlNamespace")
        self._xmlns = f' xmlns="{escape(str(ns))}"' if ns else ""
        self.content_type = "application/xml" if self.xml else "application/json"
        self._plans: dict[str, _Plan] = {}

    def _headers(self, request_id: str) -> list[tuple[str, str]]:
        headers = [("x-amzn-RequestId", request_id)]
        if self.xml:
            headers += [("x-amz-request-id", request_id), ("x-amz-id-2", host_id(request_id))]
        return headers

    def _result(self, operation: OperationModel, result: dict[str, Any], request_id: str) -> AwsResponse:
        plan = self._plans.get(operation.name)
        if plan is None:
            plan = self._plans[operation.name] = self._plan(operation)
        headers = self._headers(request_id)
        # The members the result has, in the model's order (GetObject declares 44 header members; a
        # result holds a handful).
        members = plan.headers
        present = [member for name in result if (member := members.get(name)) is not None]
        if len(present) > 1:
            present.sort(key=_place)
        typed = False  # a Content-Type among the headers already
        for member in present:
            value = result[member.name]
            if value is not None:
                text = member.encode(value)
                headers.append((member.wire, text if member.plain else header_value(text)))
                typed = typed or member.content_type
        for name, prefix in plan.header_maps:
            for key, value in (result.get(name) or {}).items():
                if value is not None:
                    headers.append((prefix + key, header_value(str(value))))
                    typed = typed or (prefix + key).lower() == "content-type"
        status = plan.status
        if plan.status_member is not None and result.get(plan.status_member) is not None:
            status = int(result[plan.status_member])
            if not 200 <= status <= 299:
                raise ValueError(f"{plan.status_member}={status} is not a success status")
        if RESULT_STATUS in result:
            status = int(result[RESULT_STATUS])
        if RESULT_HEADERS in result:
            extra = result[RESULT_HEADERS]
            headers.extend(extra)
            typed = typed or any(k.lower() == "content-type" for k, _ in extra)
        body = b""
        stream = None
        content_type: str | None = self.content_type
        if plan.payload is not None:
            name, kind, document = plan.payload
            value = result.get(name)
            if kind in ("blob", "string"):
                content_type = "application/octet-stream" if kind == "blob" else "text/plain"
                if isinstance(value, str):
                    body = value.encode("utf-8")
                elif isinstance(value, (bytes, bytearray, memoryview)):
                    body = bytes(value)
                elif value is not None:  # a streaming blob: an async iterator of bytes
                    stream = value
            elif value is not None and document is not None:
                body = document(value)
            else:
                content_type = None
        elif plan.body is not None:
            body = plan.body(result)
        else:
            content_type = None
        if plan.no_body or status in (204, 304):
            body = b""
            stream = None  # a stream is an async generator that opens nothing before it is iterated
        if content_type is not None and not typed:
            headers.append(("Content-Type", content_type))
        return AwsResponse(status, headers, body, stream)

    def _plan(self, operation: OperationModel) -> _Plan:
        http = operation.http
        plan = _Plan(status=int(http.get("responseCode", 200)),
                     no_body=str(http.get("method", "")).upper() == "HEAD")
        shape = operation.output_shape
        if shape is None:
            return plan
        has_body = False
        for name, member in shape.members.items():
            ser = member.serialization
            location = ser.get("location")
            wire = str(ser.get("name", name))
            if location == "header":
                plan.headers[name] = _HeaderMember(
                    place=len(plan.headers), name=name, wire=wire, encode=_header_encoder(member),
                    plain=member.type_name in _PLAIN_TEXT_TYPES, content_type=wire.lower() == "content-type")
            elif location == "headers":
                plan.header_maps.append((name, wire))
            elif location == "statusCode":
                plan.status_member = name
            elif location is None or location == "xmlText":
                has_body = True
        payload = shape.serialization.get("payload")
        if payload is not None:
            member = shape.members[payload]
            kind = member.type_name
            document = None
            if kind not in ("blob", "string"):
                document = self._document(member, str(member.serialization.get("name", payload)))
            plan.payload = (payload, kind, document)
        elif has_body:
            plan.body = self._body(operation, shape)
        return plan

    def _document(self, shape: Any, tag: str) -> Body:
        if not self.xml:
            encode = self._encoders.encoder(shape)
            return lambda value: dump_json(encode(value))
        extra = "" if shape.serialization.get("xmlNamespace") else self._xmlns
        write = self._writers.writer(shape, tag, extra)

        def xml_body(value: Any) -> bytes:
            parts = [XML_DECLARATION]
            write(parts, value)
            return "".join(parts).encode("utf-8")

        return xml_body

    def _body(self, operation: OperationModel, shape: Any) -> Body:
        if not self.xml:
            encode = self._encoders.structure(shape, body_only=True)
            return lambda value: dump_json(encode(value))
        children, attrs, text_of = self._writers.members(shape, body_only=True)
        root = str(shape.serialization.get("name") or f"{operation.name}Result")
        ns = shape.serialization.get("xmlNamespace")
        head = f"{XML_DECLARATION}<{root}" + (f' xmlns="{escape(str(ns))}"' if isinstance(ns, str)
                                               else self._xmlns)

        def xml_body(value: Any) -> bytes:
            parts = [head, attrs(value), ">"]
            if text_of is not None:
                parts.append(text_of(value))
            children(parts, value)
            parts.append(f"</{root}>")
            return "".join(parts).encode("utf-8")

        return xml_body

    def _error(self, error: ServiceError, operation: OperationModel | None,
               request_id: str) -> AwsResponse:
        code = error_code(error)
        headers = [*self._headers(request_id), *error.headers]
        head = operation is not None and str(operation.http.get("method", "")).upper() == "HEAD"
        if self.xml:
            body = (f"{XML_DECLARATION}<Error><Code>{escape(code)}</Code>"
                    f"<Message>{escape(error.message)}</Message>"
                    f"{error_fields_xml(self, self._writers, error)}"
                    f"<RequestId>{escape(request_id)}</RequestId>"
                    f"<HostId>{host_id(request_id)}</HostId></Error>").encode()
        else:
            headers.append(("x-amzn-ErrorType", code))
            document: dict[str, Any] = {"__type": code, "message": error.message}
            for key, value in error.fields.items():
                if value is not None:
                    document[key] = value if isinstance(value, (str, int, float, bool)) else str(value)
            body = dump_json(document)
        if head or error_status(error) == 304:  # S3's NotModified has no body
            body = b""
        else:
            headers.append(("Content-Type", self.content_type))
        return AwsResponse(error_status(error), headers, body)
