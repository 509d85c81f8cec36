"""Server-side input validation against the model's constraints, answered the way AWS does.

Checked: required members, length (strings in characters, blobs in bytes, lists and maps in
entries), value ranges, patterns (whole value, Java semantics) and, for the services listed in
``model_patches.json`` ``_settings.validate_enums``, enums (most AWS services do not reject
unknown enum values; they answer their own errors). Messages are AWS's:

    1 validation error detected: Value null at 'userName' failed to satisfy constraint: Member
    must not be null
    2 validation errors detected: Value 'x y' at 'roleName' failed to satisfy constraint: ...; ...

as ``ValidationError`` (query: IAM, STS...), ``ValidationException`` (json, rest-json, CBOR) or
S3's ``InvalidArgument`` (but an XML document that is missing, or lacks a required element, is
S3's ``MissingRequestBodyError`` or ``MalformedXML``); EC2 answers the first problem only, as ``MissingParameter`` ("The
request must contain the parameter GroupDescription") or ``InvalidParameterValue``. A sensitive
member's value is never echoed ("Value at 'password' failed ...").
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.model import OperationModel, ServiceModel

from minicloud.aws.errors import (
    InvalidParameterValue,
    MissingParameter,
    ServiceError,
    ValidationError,
    ValidationException,
)
from minicloud.aws.protocol.decoders import camel
from minicloud.aws.protocol.models import service_protocols, settings
from minicloud.aws.protocol.parser_base import current_protocol
from minicloud.aws.protocol.patterns import compile_pattern
from minicloud.aws.protocol.wire_errors import InvalidArgument, MalformedXML, MissingRequestBodyError

Path = tuple[tuple[str, str], ...]  # (AWS message name, wire name) per level


@dataclass(slots=True)
class Problem:
    path: Path
    value: Any
    constraint: str
    sensitive: bool = False

    def aws_path(self) -> str:
        return ".".join(name for name, _ in self.path)

    def wire_path(self) -> str:
        return ".".join(wire for _, wire in self.path)

    def message(self) -> str:
        if self.value is None:
            shown = " null"
        elif self.sensitive:
            shown = ""
        else:
            shown = f" '{_java_string(self.value)}'"
        return f"Value{shown} at '{self.aws_path()}' failed to satisfy constraint: {self.constraint}"


def _java_string(value: Any) -> str:
    """How AWS (Java) prints a value: lists as ``[a, b]``, maps as ``{k=v}``, booleans lowercase."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_java_string(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_java_string(v)}" for k, v in value.items()) + "}"
    if isinstance(value, bytes):
        return f"java.nio.HeapByteBuffer[pos=0 lim={len(value)} cap={len(value)}]"
    return str(value)


Check = Callable[[Any, Path, list[Problem]], None]


def _noop(value: Any, path: Path, problems: list[Problem]) -> None:
    return None


class _Checks:
    """Per-shape checks for one service, built once and cached. Shapes without constraints
    (anywhere below them) get no check at all."""

    def __init__(self, service_model: ServiceModel, ec2: bool) -> None:
        self.ec2 = ec2
        self.enums = service_model.service_name in set(settings().get("validate_enums", []))
        self._cache: dict[str, Check | None] = {}
        self._building: set[str] = set()

    def check(self, shape: Any) -> Check | None:
        key = shape.name
        if key in self._cache:
            return self._cache[key]
        if key in self._building:  # recursive shape: check lazily through the cache
            return lambda value, path, problems: (self._cache.get(key) or _noop)(value, path, problems)
        self._building.add(key)
        try:
            built = self._build(shape)
        finally:
            self._building.discard(key)
        self._cache[key] = built
        return built

    def wire_name(self, member: Any, name: str) -> str:
        ser = member.serialization
        if self.ec2:
            if "queryName" in ser:
                return str(ser["queryName"])
            if "name" in ser:
                return str(ser["name"])[:1].upper() + str(ser["name"])[1:]
        return name

    def _build(self, shape: Any) -> Check | None:
        t = shape.type_name
        if t == "structure":
            return self._structure(shape)
        if t == "list":
            return self._list(shape)
        if t == "map":
            return self._map(shape)
        return self._scalar(shape)

    def _structure(self, shape: Any) -> Check | None:
        required = set(shape.required_members)
        members: list[tuple[str, Path, Check | None, bool]] = []
        for name, member in shape.members.items():
            sub = self.check(member)
            if sub is not None or name in required:
                segment = ((camel(name), self.wire_name(member, name)),)
                members.append((name, segment, sub, name in required))
        if not members:
            return None

        def check(value: Any, path: Path, problems: list[Problem]) -> None:
            for name, segment, sub, needed in members:
                item = value.get(name)
                if item is None:
                    if needed:
                        problems.append(Problem(path + segment, None, "Member must not be null"))
                elif sub is not None:
                    sub(item, path + segment, problems)

        return check

    def _list(self, shape: Any) -> Check | None:
        own = self._length(shape, "length")
        item = self.check(shape.member)
        if own is None and item is None:
            return None

        def check(value: Any, path: Path, problems: list[Problem]) -> None:
            if own is not None:
                own(value, len(value), path, problems)
            if item is not None:
                for i, x in enumerate(value, 1):
                    item(x, (*path, (f"{i}.member", str(i))), problems)

        return check

    def _map(self, shape: Any) -> Check | None:
        own = self._length(shape, "length")
        key_check = self.check(shape.key)
        value_check = self.check(shape.value)
        if own is None and key_check is None and value_check is None:
            return None

        def check(value: Any, path: Path, problems: list[Problem]) -> None:
            if own is not None:
                own(value, len(value), path, problems)
            for label, sub, items in (("Map keys", key_check, value.keys()),
                                      ("Map value", value_check, value.values())):
                if sub is None:
                    continue
                found: list[Problem] = []
                for item in items:
                    sub(item, path, found)
                if found:
                    inner = ", ".join(dict.fromkeys(p.constraint for p in found))
                    problems.append(Problem(path, value, f"{label} must satisfy constraint: [{inner}]",
                                            sensitive=True))

        return check

    def _length(self, shape: Any, kind: str) -> Callable[[Any, int, Path, list[Problem]], None] | None:
        low = shape.metadata.get("min")
        high = shape.metadata.get("max")
        if low is None and high is None:
            return None
        sensitive = bool(shape.metadata.get("sensitive"))

        def check(value: Any, size: int, path: Path, problems: list[Problem]) -> None:
            if high is not None and size > high:
                problems.append(Problem(path, value, f"Member must have {kind} less than or equal to {high}",
                                        sensitive))
            if low is not None and size < low:
                problems.append(Problem(path, value,
                                        f"Member must have {kind} greater than or equal to {low}",
                                        sensitive))

        return check

    def _scalar(self, shape: Any) -> Check | None:
        t = shape.type_name
        if t in ("integer", "long", "short", "byte", "float", "double"):
            value_range = self._length(shape, "value")
            if value_range is None:
                return None
            return lambda value, path, problems: value_range(value, value, path, problems)
        if t == "blob":
            size = self._length(shape, "length")
            if size is None:
                return None
            return lambda value, path, problems: size(value, len(value), path, problems)
        if t != "string":
            return None
        return self._string(shape)

    def _string(self, shape: Any) -> Check | None:
        size = self._length(shape, "length")
        raw = shape.metadata.get("pattern")
        pattern = compile_pattern(raw) if raw else None
        enum = list(shape.enum) if self.enums and shape.enum else None
        allowed = frozenset(enum or ())
        if size is None and pattern is None and enum is None:
            return None
        sensitive = bool(shape.metadata.get("sensitive"))
        pattern_text = f"Member must satisfy regular expression pattern: {raw}"
        enum_text = f"Member must satisfy enum value set: [{', '.join(enum or ())}]"

        def check(value: Any, path: Path, problems: list[Problem]) -> None:
            if size is not None:
                size(value, len(value), path, problems)
            if pattern is not None and pattern.fullmatch(value) is None:
                problems.append(Problem(path, value, pattern_text, sensitive))
            if enum is not None and value not in allowed:
                problems.append(Problem(path, value, enum_text, sensitive))

        return check


@functools.cache
def _checks(service_model: ServiceModel, ec2: bool) -> _Checks:
    return _Checks(service_model, ec2)


def problems(operation_model: OperationModel, params: dict[str, Any], protocol: str) -> list[Problem]:
    """Every constraint ``params`` break (empty when valid)."""
    shape = operation_model.input_shape
    if shape is None:
        return []
    check = _checks(operation_model.service_model, protocol == "ec2").check(shape)
    found: list[Problem] = []
    if check is not None:
        check(params, (), found)
    return found


def validate(operation_model: OperationModel, params: dict[str, Any], protocol: str) -> None:
    """Raise the protocol's validation error when ``params`` break the model's constraints."""
    found = problems(operation_model, params, protocol)
    if found:
        protocol = _protocol(operation_model.service_model, protocol)
        if protocol == "rest-xml":
            _check_document(operation_model, found)
        raise error_for(found, protocol)


def _check_document(operation_model: OperationModel, found: list[Problem]) -> None:
    """S3 checks a request's XML document against its schema before anything else: a document
    that is missing altogether is ``MissingRequestBodyError``, one that lacks an element the schema
    requires ``MalformedXML`` (not the validation message other protocols give)."""
    shape = operation_model.input_shape
    payload = shape.serialization.get("payload")
    document = shape.members.get(payload) if payload else None
    if document is None or document.type_name != "structure":
        return
    top = camel(payload)
    missing = [p for p in found if p.value is None and p.path and p.path[0][0] == top]
    if any(len(p.path) == 1 for p in missing):
        raise MissingRequestBodyError()
    if missing:
        raise MalformedXML()


def _protocol(service_model: ServiceModel, protocol: str) -> str:
    """A multi-protocol service (CloudWatch) answers in the protocol the request came in."""
    wire = current_protocol.get()
    if wire is not None and wire != protocol and wire in service_protocols(service_model):
        return wire
    return protocol


def error_for(found: list[Problem], protocol: str) -> ServiceError:
    if protocol == "ec2":
        first = found[0]
        if first.value is None:
            return MissingParameter(f"The request must contain the parameter {first.wire_path()}")
        shown = "" if first.sensitive else f"({_java_string(first.value)}) "
        return InvalidParameterValue(f"Value {shown}for parameter {first.wire_path()} is invalid. "
                                     f"{first.constraint}.")
    count = len(found)
    message = (f"{count} validation error{'s' if count > 1 else ''} detected: "
               + "; ".join(p.message() for p in found))
    if protocol == "query":
        return ValidationError(message)
    if protocol == "rest-xml":
        return InvalidArgument(message)
    return ValidationException(message)
