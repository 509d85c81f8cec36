"""Request parser for the rest-json and rest-xml protocols (Lambda, S3, ...).

Members bound to ``uri`` come from the route's path labels, ``querystring`` from the query
(a map member takes every query key nobody else claims), ``header`` / ``headers`` from the
headers, and the rest from the body: a ``payload`` member takes the whole body (raw bytes for a
blob, text for a string, a JSON/XML document for a structure), otherwise the body's document
holds the remaining members.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote
from xml.etree import ElementTree

import orjson
from botocore.model import OperationModel, ServiceModel

from minicloud.aws.errors import ServiceError
from minicloud.aws.protocol.decoders import (
    Decoder,
    FieldError,
    JsonDecoders,
    TextDecoder,
    XmlDecoders,
    camel,
    text_decoder,
)
from minicloud.aws.protocol.parser_base import RequestParser
from minicloud.aws.protocol.routing import Route, Router, parse_query
from minicloud.aws.protocol.wire_errors import malformed_body, malformed_value
from minicloud.aws.request import AwsRequest, Headers

# Query keys of SigV4 presigned URLs and SDK routing hints: never operation input.
_RESERVED_QUERY = frozenset({
    "x-id", "X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
    "X-Amz-SignedHeaders", "X-Amz-Signature", "X-Amz-Security-Token", "AWSAccessKeyId",
    "Signature", "Expires",
})


@dataclass(slots=True)
class _Plan:
    labels: dict[str, tuple[str, TextDecoder, str]] = field(default_factory=dict)
    query: list[tuple[str, str, TextDecoder, bool, str]] = field(default_factory=list)
    query_map: tuple[str, TextDecoder, bool] | None = None
    claimed_query: frozenset[str] = frozenset()
    headers: list[tuple[str, str, TextDecoder, str]] = field(default_factory=list)
    # wire name -> (place in ``headers``, member, decoder, path) of the members it binds
    header_index: dict[str, list[tuple[int, str, TextDecoder, str]]] = field(default_factory=dict)
    header_maps: list[tuple[str, str]] = field(default_factory=list)
    payload: tuple[str, str, Decoder | None] | None = None
    body: Decoder | None = None


def _header_decoder(shape: Any) -> TextDecoder:
    if shape.type_name == "list":
        item = text_decoder(shape.member)
        split = split_http_dates if shape.member.type_name == "timestamp" else split_header_list
        return lambda text: [item(part) for part in split(text)]
    if shape.type_name == "string" and shape.serialization.get("jsonvalue"):
        return lambda text: orjson.loads(base64.b64decode(text, validate=True))
    return text_decoder(shape)


_WEEKDAY_RE = re.compile(r"[A-Za-z]{3}\Z")


def split_http_dates(text: str) -> list[str]:
    """A header list of timestamps: HTTP-dates have a comma of their own (``Sun, 29 Nov 2026...``)."""
    parts = [part.strip() for part in text.split(",")]
    out: list[str] = []
    i = 0
    while i < len(parts):
        if _WEEKDAY_RE.match(parts[i]) and i + 1 < len(parts):
            out.append(f"{parts[i]}, {parts[i + 1]}")
            i += 2
        else:
            out.append(parts[i])
            i += 1
    return out


def split_header_list(text: str) -> list[str]:
    """``a, "b,c", "d\\"e"`` -> ``["a", "b,c", 'd"e']`` (RFC 7230 lists with quoted strings)."""
    items: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    was_quoted = False
    for ch in text:
        if escaped:
            current.append(ch)
            escaped = False
        elif quoted:
            if ch == "\\":
                escaped = True
            elif ch == '"':
                quoted = False
            else:
                current.append(ch)
        elif ch == '"':
            if not "".join(current).strip():
                current = []  # whitespace before an opening quote is not part of the item
            quoted = was_quoted = True
        elif ch == ",":
            value = "".join(current)
            items.append(value if was_quoted else value.strip())
            current, was_quoted = [], False
        else:
            if not (was_quoted and ch in " \t"):
                current.append(ch)
    value = "".join(current)
    items.append(value if was_quoted else value.strip())
    return items


class RestParser(RequestParser):
    def __init__(self, service_model: ServiceModel, protocol: str) -> None:
        super().__init__(service_model, protocol)
        self.router = Router(service_model)
        self._xml = protocol == "rest-xml"
        self._bodies: JsonDecoders | XmlDecoders = XmlDecoders() if self._xml else JsonDecoders()
        self._plans: dict[str, _Plan] = {}
        self._streaming: dict[str, str] = {}
        self._streaming_methods: set[str] = set()
        # The last match streaming_payload made: (headers, method, path, query, parsed query, route, labels).
        self._matched: tuple[Headers, str, str, str, dict[str, list[str]], Route, tuple[str, ...]] | None = None
        for name in service_model.operation_names:
            op = service_model.operation_model(name)
            if op.has_streaming_input and op.input_shape is not None:
                self._streaming[name] = str(op.input_shape.serialization["payload"])
                self._streaming_methods.add(str(op.http.get("method", "POST")).upper())

    def streaming_payload(self, request: AwsRequest) -> str | None:
        """The input member that takes the body as a stream when the request addresses an
        operation whose payload is a streaming blob (S3 PutObject, UploadPart), else None."""
        if request.method not in self._streaming_methods:  # a GET never streams a payload in
            return None
        try:
            query = parse_query(request.query)
            route, labels = self.router.match(request.method, request.path, query, request.headers)
        except (ServiceError, ValueError):
            return None  # parse() answers it
        # parse() of this request (next, once it is authenticated) takes the match from here.
        self._matched = (request.headers, request.method, request.path, request.query, query, route, labels)
        return self._streaming.get(route.operation.name)

    def _match(self, request: AwsRequest) -> tuple[dict[str, list[str]], Route, tuple[str, ...]]:
        """The parsed query and the route of ``request``: the ones ``streaming_payload`` just found
        for it, if it did (the same headers object, method, path and query), else found now."""
        matched, self._matched = self._matched, None
        if (matched is not None and matched[0] is request.headers and matched[1] == request.method
                and matched[2] == request.path and matched[3] == request.query):
            return matched[4], matched[5], matched[6]
        try:
            query = parse_query(request.query)
        except ValueError as exc:
            raise malformed_value(self.protocol, f"The query string is not valid: {exc}") from None
        route, raw_labels = self.router.match(request.method, request.path, query, request.headers)
        return query, route, raw_labels

    def _parse(self, request: AwsRequest) -> tuple[OperationModel, dict[str, Any]]:
        query, route, raw_labels = self._match(request)
        operation = route.operation
        plan = self._plans.get(operation.name)
        if plan is None:
            plan = self._plans[operation.name] = self._build_plan(operation, route.literal_keys)
        params: dict[str, Any] = {}
        for label, raw in zip(route.labels, raw_labels, strict=True):
            bound = plan.labels.get(label)
            if bound is not None:
                text = unquote(raw, errors="strict") if "%" in raw else raw  # (most labels have no escapes)
                params[bound[0]] = _decode_field(bound[1], text, bound[2])
        if query:
            self._read_query(plan, query, params)
        if plan.headers or plan.header_maps:
            self._read_headers(plan, request, params)
        if plan.payload is not None:
            self._read_payload(plan.payload, request.body, params)
        elif plan.body is not None and request.body:
            params.update(plan.body(self._document(request.body)))
        return operation, params

    def _read_query(self, plan: _Plan, query: dict[str, list[str]], params: dict[str, Any]) -> None:
        for name, key, decoder, is_list, path in plan.query:
            found = query.get(key)
            if found is None:
                continue
            if is_list:
                params[name] = [_decode_field(decoder, v, path) for v in found]
            else:
                params[name] = _decode_field(decoder, found[0], path)
        if plan.query_map is not None:
            name, decoder, is_list = plan.query_map
            rest = {key: ([decoder(v) for v in found] if is_list else decoder(found[0]))
                    for key, found in query.items()
                    if key not in plan.claimed_query and key not in _RESERVED_QUERY}
            if rest:
                params[name] = rest

    def _read_headers(self, plan: _Plan, request: AwsRequest, params: dict[str, Any]) -> None:
        # A request carries a handful of headers, an operation declares dozens (PutObject 40): look
        # each of the request's up, the first value of a name counting, decoded in the model's order.
        headers = request.headers
        index = plan.header_index
        hits: list[tuple[int, str, TextDecoder, str, str]] = []
        seen: set[str] | None = set() if headers.repeats() else None
        for key, text in headers.iter_items():
            bound = index.get(key)
            if bound is not None:
                if seen is not None:
                    if key in seen:
                        continue
                    seen.add(key)
                for place, name, decoder, path in bound:
                    hits.append((place, name, decoder, path, text))
        if len(hits) > 1:
            hits.sort(key=_first)
        for _, name, decoder, path, text in hits:
            params[name] = _decode_field(decoder, text, path)
        for name, prefix in plan.header_maps:
            found = {key[len(prefix):]: value for key, value in headers.iter_items() if key.startswith(prefix)}
            if found:
                params[name] = found

    def _read_payload(self, payload: tuple[str, str, Decoder | None], body: bytes,
                      params: dict[str, Any]) -> None:
        name, kind, decoder = payload
        if not body:
            return
        if kind == "blob":
            params[name] = body
        elif kind == "string":
            params[name] = body.decode("utf-8")
        elif decoder is not None:
            try:
                params[name] = decoder(self._document(body))
            except ValueError as exc:
                raise FieldError.wrap(exc, camel(name)) from None

    def _document(self, body: bytes) -> Any:
        if self._xml:
            if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
                raise malformed_body("rest-xml", "DTDs are not accepted")
            try:
                return ElementTree.fromstring(body)
            except ElementTree.ParseError:
                raise malformed_body("rest-xml", "bad XML") from None
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise malformed_body(self.protocol, f"The body is not valid JSON: {exc}") from None

    def _build_plan(self, operation: OperationModel, literal_keys: frozenset[str]) -> _Plan:
        plan = _Plan()
        shape = operation.input_shape
        if shape is None:
            return plan
        claimed = set(literal_keys)
        body_members = False
        for name, member in shape.members.items():
            ser = member.serialization
            location = ser.get("location")
            wire = str(ser.get("name", name))
            if location == "uri":
                plan.labels[wire] = (name, text_decoder(member), camel(name))
            elif location == "querystring":
                if member.type_name == "map":
                    values_are_lists = member.value.type_name == "list"
                    item = member.value.member if values_are_lists else member.value
                    plan.query_map = (name, text_decoder(item), values_are_lists)
                elif member.type_name == "list":
                    plan.query.append((name, wire, text_decoder(member.member), True, camel(name)))
                    claimed.add(wire)
                else:
                    plan.query.append((name, wire, text_decoder(member), False, camel(name)))
                    claimed.add(wire)
            elif location == "header":
                entry = (name, wire.lower(), _header_decoder(member), camel(name))
                plan.header_index.setdefault(entry[1], []).append((len(plan.headers), name, entry[2], entry[3]))
                plan.headers.append(entry)
            elif location == "headers":
                plan.header_maps.append((name, wire.lower()))
            elif location is None:
                body_members = True
        plan.claimed_query = frozenset(claimed)
        payload = shape.serialization.get("payload")
        if payload is not None:
            member = shape.members[payload]
            kind = member.type_name
            decoder = None if kind in ("blob", "string") else self._bodies.decoder(member)
            plan.payload = (payload, kind, decoder)
        elif body_members:
            plan.body = self._bodies.structure(shape, body_only=True)
        return plan


def _first(hit: tuple[int, str, TextDecoder, str, str]) -> int:
    return hit[0]


def _decode_field(decoder: TextDecoder, text: str, path: str) -> Any:
    try:
        return decoder(text)
    except ValueError as exc:
        raise FieldError.wrap(exc, path) from None
