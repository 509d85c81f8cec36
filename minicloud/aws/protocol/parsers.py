"""Request parsers, one per AWS wire protocol, driven by botocore's service models.

    create_parser(model) -> RequestParser        parse(request) -> (OperationModel, params)
      QueryParser      query, ec2    ``Action`` + dotted keys from the form body / query string
      JsonParser       json          ``X-Amz-Target: <targetPrefix>.<Op>`` + JSON body
      CborParser       rpc-v2-cbor   ``/service/<svc>/operation/<Op>`` + CBOR body
      RestParser       rest-json, rest-xml   routed by method, path, query and headers
      MultiProtocolParser            a service that speaks several (CloudWatch): picks per request

Every parser builds its per-operation plans on first use and caches them; ``parse`` raises only
``ServiceError`` subclasses.
"""

from __future__ import annotations

import functools
from typing import Any

import orjson
from botocore.model import OperationModel, ServiceModel

from minicloud.aws.errors import InvalidAction, MissingAction, UnknownOperation
from minicloud.aws.forms import parse_form
from minicloud.aws.protocol import cbor
from minicloud.aws.protocol.decoders import Decoder, JsonDecoders, QueryDecoders, build_query_tree
from minicloud.aws.protocol.models import service_protocols
from minicloud.aws.protocol.parser_base import RequestParser, current_protocol
from minicloud.aws.protocol.rest_parsers import RestParser
from minicloud.aws.protocol.wire_errors import malformed_body
from minicloud.aws.request import AwsRequest

__all__ = ["RequestParser", "create_parser", "current_protocol", "detect_protocol", "note_request_protocol"]

_FORM = "application/x-www-form-urlencoded"


class QueryParser(RequestParser):
    """The query and ec2 protocols: ``Action=Op&Version=...&Foo.member.1=...``."""

    def __init__(self, service_model: ServiceModel, protocol: str = "query") -> None:
        super().__init__(service_model, protocol)
        self._decoders = QueryDecoders(ec2=protocol == "ec2")
        self._plans: dict[str, Decoder | None] = {}
        self._version = str(service_model.api_version)

    def _pairs(self, request: AwsRequest) -> list[tuple[str, str]]:
        try:
            pairs = parse_form(request.query)
            body = request.body
            if body and (_FORM in (request.headers.get("content-type") or "")
                         or request.method.upper() == "POST"):
                pairs += parse_form(body.decode("utf-8"))
        except ValueError as exc:
            raise malformed_body(self.protocol, f"The query string is malformed: {exc}") from None
        return pairs

    def _parse(self, request: AwsRequest) -> tuple[OperationModel, dict[str, Any]]:
        tree = build_query_tree(self._pairs(request))
        action = tree.get("Action")
        version = tree.get("Version")
        if not action or not isinstance(action, str):
            raise MissingAction("Missing Action")
        operation = self._operations.get(action)
        if operation is None or (self.protocol == "query" and isinstance(version, str)
                                 and version != self._version):
            shown = version if isinstance(version, str) and version else "NO_VERSION_SPECIFIED"
            raise InvalidAction(f"Could not find operation {action} for version {shown}")
        if action not in self._plans:
            shape = operation.input_shape
            self._plans[action] = self._decoders.decoder(shape) if shape is not None else None
        decoder = self._plans[action]
        if decoder is None:
            return operation, {}
        return operation, decoder(tree) or {}


class JsonParser(RequestParser):
    """The json protocol: ``X-Amz-Target: <targetPrefix>.<Operation>`` and a JSON object body."""

    protocol = "json"

    def __init__(self, service_model: ServiceModel, protocol: str = "json") -> None:
        super().__init__(service_model, protocol)
        self._prefix = str(service_model.metadata.get("targetPrefix", "")) + "."
        self._decoders = JsonDecoders()
        self._plans: dict[str, Decoder | None] = {}

    def _operation(self, name: str) -> tuple[OperationModel, Decoder | None]:
        operation = self._operations.get(name)
        if operation is None:
            raise UnknownOperation(f"The operation {name} is not recognized by "
                                   f"{self.service_model.service_id}.")
        if name not in self._plans:
            shape = operation.input_shape
            self._plans[name] = self._decoders.decoder(shape) if shape is not None else None
        return operation, self._plans[name]

    def _parse(self, request: AwsRequest) -> tuple[OperationModel, dict[str, Any]]:
        target = request.headers.get("x-amz-target") or ""
        if not target.startswith(self._prefix):
            raise UnknownOperation(f"The target {target!r} is not an operation of "
                                   f"{self.service_model.service_id}." if target else
                                   "The request has no X-Amz-Target header.")
        operation, decoder = self._operation(target[len(self._prefix):])
        document = self._document(request.body)
        if decoder is None:
            return operation, {}
        params: dict[str, Any] = decoder(document)
        return operation, params

    def _document(self, body: bytes) -> dict[str, Any]:
        if not body or body.isspace():
            return {}
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise malformed_body(self.protocol, f"The body is not valid JSON: {exc}") from None
        if type(document) is not dict:
            raise malformed_body(self.protocol, "Start of structure or map found where not expected.")
        return document


class CborParser(JsonParser):
    """smithy-rpc-v2-cbor: ``POST /service/<ServiceName>/operation/<Operation>`` with a CBOR body."""

    def __init__(self, service_model: ServiceModel, protocol: str = "smithy-rpc-v2-cbor") -> None:
        super().__init__(service_model, protocol)

    def _parse(self, request: AwsRequest) -> tuple[OperationModel, dict[str, Any]]:
        parts = request.path.split("/")
        if len(parts) < 5 or parts[-2] != "operation" or parts[-4] != "service":
            raise UnknownOperation(f"{request.path} is not an rpc-v2 operation path.")
        operation, decoder = self._operation(parts[-1])
        document: Any = {}
        if request.body:
            try:
                document = cbor.decode(request.body)
            except ValueError as exc:
                raise malformed_body(self.protocol, f"The body is not valid CBOR: {exc}") from None
            if type(document) is not dict:
                raise malformed_body(self.protocol, "The body is not a CBOR map.")
        if decoder is None:
            return operation, {}
        params: dict[str, Any] = decoder(document)
        return operation, params


class MultiProtocolParser(RequestParser):
    """A service with several protocols: each request is parsed in the protocol it was sent in."""

    def __init__(self, service_model: ServiceModel) -> None:
        self.service_model = service_model
        self.protocol = service_model.protocol
        self._parsers = {p: _create(service_model, p) for p in service_protocols(service_model)}

    def parse(self, request: AwsRequest) -> tuple[OperationModel, dict[str, Any]]:
        return self._parsers[detect_protocol(self.service_model, request)].parse(request)


def detect_protocol(service_model: ServiceModel, request: AwsRequest) -> str:
    """The protocol a request to ``service_model`` was sent in (its only one, for most services)."""
    protocols = service_protocols(service_model)
    if len(protocols) == 1:
        return protocols[0]
    headers = request.headers
    if "smithy-rpc-v2-cbor" in protocols and (headers.get("smithy-protocol") == "rpc-v2-cbor"
                                              or request.path.startswith("/service/")):
        return "smithy-rpc-v2-cbor"
    if "json" in protocols and "x-amz-target" in headers:
        return "json"
    for candidate in ("query", "ec2"):
        if candidate in protocols:
            return candidate
    return protocols[0]


def note_request_protocol(service_model: ServiceModel, request: AwsRequest) -> str:
    """Record the protocol of ``request`` before parsing it, so that an error raised earlier (an
    authentication failure) is answered in that protocol by a multi-protocol serializer."""
    protocol = detect_protocol(service_model, request)
    current_protocol.set(protocol)
    return protocol


def _create(service_model: ServiceModel, protocol: str) -> RequestParser:
    if protocol in ("query", "ec2"):
        return QueryParser(service_model, protocol)
    if protocol == "json":
        return JsonParser(service_model)
    if protocol in ("rest-json", "rest-xml"):
        return RestParser(service_model, protocol)
    if protocol == "smithy-rpc-v2-cbor":
        return CborParser(service_model)
    raise ValueError(f"unsupported protocol {protocol!r}")


@functools.cache
def _cached(service_model: ServiceModel, protocol: str | None) -> RequestParser:
    if protocol is None:
        if len(service_protocols(service_model)) > 1:
            return MultiProtocolParser(service_model)
        protocol = service_model.protocol
    return _create(service_model, protocol)


def create_parser(service_model: ServiceModel, protocol: str | None = None) -> RequestParser:
    """The parser for ``service_model`` (cached). Without ``protocol``, a service that speaks
    several protocols gets a parser that detects each request's protocol (``detect_protocol``)."""
    return _cached(service_model, protocol)
