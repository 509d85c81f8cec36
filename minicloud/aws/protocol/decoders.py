"""Per-shape decoders: wire values (query-string trees, JSON/CBOR values, XML elements, header and
path text) to the typed Python values a provider receives.

A decoder is built once per shape and cached by its factory (one factory per service and
protocol); recursive shapes resolve through a forwarding slot. Decoders raise ``ValueError``
(``FieldError`` once a location is known); the parsers turn those into the protocol's error.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Any
from xml.etree.ElementTree import Element

from minicloud.aws.protocol import values

Decoder = Callable[[Any], Any]
TextDecoder = Callable[[str], Any]


class FieldError(ValueError):
    """A bad value, with the member path where it was found (built inside out)."""

    def __init__(self, message: str, path: list[str]) -> None:
        super().__init__(message)
        self.message = message
        self.path = path

    @classmethod
    def wrap(cls, exc: ValueError, key: str) -> FieldError:
        if isinstance(exc, FieldError):
            exc.path.append(key)
            return exc
        return cls(str(exc), [key])

    @property
    def location(self) -> str:
        return ".".join(reversed(self.path))


def camel(name: str) -> str:
    """AWS's member path spelling in error messages: ``UserName`` -> ``userName``."""
    return name[:1].lower() + name[1:]


def _index_items(node: dict[str, Any]) -> list[tuple[int, Any]]:
    items = [(int(k), v) for k, v in node.items() if 0 < len(k) < 10 and k.isascii() and k.isdigit()]
    items.sort(key=lambda item: item[0])
    return items


def text_decoder(shape: Any) -> TextDecoder:
    """Text (a path label, query value, header, XML text or query-protocol value) -> typed value."""
    t = shape.type_name
    if t in ("string", "character"):
        return str
    if t in values.INT_RANGES:
        return partial(values.parse_int, type_name=t)
    if t in ("float", "double", "bigdecimal"):
        return values.parse_float
    if t == "boolean":
        return values.parse_bool
    if t == "blob":
        return values.parse_blob
    if t == "timestamp":
        return values.parse_timestamp
    if t == "biginteger":
        return partial(values.parse_int, type_name="biginteger")
    raise TypeError(f"{t} shapes have no text form")


class _Factory:
    def __init__(self) -> None:
        self._cache: dict[tuple[str, str, bool], Decoder] = {}

    def decoder(self, shape: Any) -> Decoder:
        key = (shape.name, shape.type_name, bool(shape.serialization.get("flattened")))
        found = self._cache.get(key)
        if found is not None:
            return found
        slot: list[Decoder] = []
        self._cache[key] = lambda node: slot[0](node)
        built = self._build(shape)
        slot.append(built)
        self._cache[key] = built
        return built

    def _build(self, shape: Any) -> Decoder:
        raise NotImplementedError


# -- query and ec2: a tree of dicts built from the dotted keys of the form -------------------------

def build_query_tree(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """``[("Tags.member.1.Key", "k")]`` -> ``{"Tags": {"member": {"1": {"Key": "k"}}}}``.

    A key that is both a value and a prefix keeps its value under ``""``."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        node = root
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                child = node[part] = {"": child}
            node = child
        last = parts[-1]
        existing = node.get(last)
        if isinstance(existing, dict):
            existing[""] = value
        else:
            node[last] = value
    return root


class QueryDecoders(_Factory):
    """Decoders over ``build_query_tree`` output, for the query and ec2 protocols."""

    def __init__(self, ec2: bool) -> None:
        super().__init__()
        self.ec2 = ec2

    def serialized_name(self, shape: Any, default: str) -> str:
        ser = shape.serialization
        if self.ec2:
            if "queryName" in ser:
                return str(ser["queryName"])
            if "name" in ser:
                name = str(ser["name"])
                return name[:1].upper() + name[1:]
            return default
        return str(ser.get("name", default))

    def member_wire_names(self, shape: Any, name: str) -> list[str]:
        wire = self.serialized_name(shape, name)
        if (not self.ec2 and shape.type_name == "list" and shape.serialization.get("flattened")
                and shape.member.serialization.get("name")):
            # botocore replaces the last key segment of a non-empty flattened list by the name
            # of its member; an empty one is sent under the list's own name.
            return [str(shape.member.serialization["name"]), wire]
        return [wire]

    def _build(self, shape: Any) -> Decoder:
        t = shape.type_name
        if t == "structure":
            return self._structure(shape)
        if t == "list":
            return self._list(shape)
        if t == "map":
            return self._map(shape)
        return _leaf(text_decoder(shape))

    def _structure(self, shape: Any) -> Decoder:
        members: dict[str, tuple[str, Decoder, str]] = {}
        for name, member in shape.members.items():
            entry = (name, self.decoder(member), camel(name))
            for wire in self.member_wire_names(member, name):
                members.setdefault(wire, entry)

        def decode(node: Any) -> dict[str, Any] | None:
            if not isinstance(node, dict):
                if node == "":
                    return {}
                raise ValueError("Start of structure or map found where not expected.")
            out: dict[str, Any] = {}
            for key, child in node.items():
                entry = members.get(key)
                if entry is None:
                    continue
                try:
                    value = entry[1](child)
                except ValueError as exc:
                    raise FieldError.wrap(exc, entry[2]) from None
                if value is not None:
                    out[entry[0]] = value
            return out

        return decode

    def _list(self, shape: Any) -> Decoder:
        item = self.decoder(shape.member)
        wrapper: str | None = None
        if not self.ec2 and not shape.serialization.get("flattened"):
            wrapper = str(shape.member.serialization.get("name", "member"))

        def decode(node: Any) -> list[Any]:
            if not isinstance(node, dict):
                if node == "":
                    return []
                raise ValueError("Expected a list.")
            if wrapper is not None:
                node = node.get(wrapper)
                if node is None:
                    return []
                if not isinstance(node, dict):
                    raise ValueError("Expected a list.")
            out = []
            for index, child in _index_items(node):
                try:
                    value = item(child)
                except ValueError as exc:
                    raise FieldError.wrap(exc, f"{index}.member") from None
                if value is not None:
                    out.append(value)
            return out

        return decode

    def _map(self, shape: Any) -> Decoder:
        key_dec = self.decoder(shape.key)
        value_dec = self.decoder(shape.value)
        key_name = self.serialized_name(shape.key, "key")
        value_name = self.serialized_name(shape.value, "value")
        wrapper = None if shape.serialization.get("flattened") else "entry"

        def decode(node: Any) -> dict[str, Any]:
            if not isinstance(node, dict):
                if node == "":
                    return {}
                raise ValueError("Expected a map.")
            if wrapper is not None:
                node = node.get(wrapper)
                if node is None:
                    return {}
                if not isinstance(node, dict):
                    raise ValueError("Expected a map.")
            out: dict[str, Any] = {}
            for index, entry in _index_items(node):
                if not isinstance(entry, dict):
                    raise FieldError(f"Map entry {index} has no key.", [f"{index}"])
                key = key_dec(entry.get(key_name, ""))
                try:
                    value = value_dec(entry.get(value_name, ""))
                except ValueError as exc:
                    raise FieldError.wrap(exc, str(key)) from None
                if key is not None and value is not None:
                    out[key] = value
            return out

        return decode


def _leaf(scalar: TextDecoder) -> Decoder:
    def decode(node: Any) -> Any:
        if isinstance(node, dict):
            node = node.get("")
            if node is None:
                return None
            if not isinstance(node, str):
                raise ValueError("Expected a value, found a structure.")
        return scalar(node)

    return decode


# -- JSON (json, rest-json bodies) and CBOR values ---------------------------------------------------

_TOKENS = {str: "STRING_VALUE", int: "NUMBER_VALUE", float: "NUMBER_VALUE", bool: "BOOLEAN_VALUE",
           list: "START_ARRAY", dict: "START_OBJECT", bytes: "BYTE_STRING"}


def _mismatch(value: Any, target: str) -> ValueError:
    token = _TOKENS.get(type(value), type(value).__name__)
    return ValueError(f"{token} can not be converted to {target}")


def _json_string(value: Any) -> str:
    if type(value) is str:
        return value
    raise _mismatch(value, "String")


def _json_int(type_name: str, value: Any) -> int:
    if type(value) is not int:
        if type(value) is float and value.is_integer():
            value = int(value)
        else:
            raise _mismatch(value, "Integer" if type_name == "integer" else "Long")
    values.check_int_range(value, type_name)
    return int(value)


def _json_float(value: Any) -> float:
    if type(value) is float or type(value) is int:
        return float(value)
    if type(value) is str:
        return values.parse_float(value)
    raise _mismatch(value, "Double")


def _json_bool(value: Any) -> bool:
    if type(value) is bool:
        return value
    raise _mismatch(value, "Boolean")


def _json_blob(value: Any) -> bytes:
    if type(value) is str:
        return values.parse_blob(value)
    if type(value) is bytes:
        return value
    raise _mismatch(value, "Blob")


def _json_timestamp(value: Any) -> datetime:
    if type(value) is int or type(value) is float:
        return values.epoch_to_datetime(value)
    if type(value) is str:
        return values.parse_timestamp(value)
    if isinstance(value, datetime):
        return value
    raise _mismatch(value, "Date")


class JsonDecoders(_Factory):
    """Decoders over parsed JSON (or CBOR) documents."""

    def _build(self, shape: Any) -> Decoder:
        t = shape.type_name
        if t == "structure":
            if shape.is_document_type:
                return _identity
            return self.structure(shape)
        if t == "list":
            return self._list(shape)
        if t == "map":
            return self._map(shape)
        if t in ("string", "character"):
            return _json_string
        if t in values.INT_RANGES:
            return partial(_json_int, t)
        if t in ("float", "double", "bigdecimal"):
            return _json_float
        if t == "boolean":
            return _json_bool
        if t == "blob":
            return _json_blob
        if t == "timestamp":
            return _json_timestamp
        return _identity

    def structure(self, shape: Any, body_only: bool = False) -> Decoder:
        """A structure decoder; ``body_only`` skips members bound to the URI, query or headers."""
        members: dict[str, tuple[str, Decoder, str]] = {}
        for name, member in shape.members.items():
            if body_only and "location" in member.serialization:
                continue
            wire = str(member.serialization.get("name", name))
            members[wire] = (name, self.decoder(member), camel(name))

        def decode(node: Any) -> dict[str, Any]:
            if type(node) is not dict:
                raise _mismatch(node, "Structure")
            out: dict[str, Any] = {}
            for key, child in node.items():
                entry = members.get(key)
                if entry is None or child is None:
                    continue
                try:
                    out[entry[0]] = entry[1](child)
                except ValueError as exc:
                    raise FieldError.wrap(exc, entry[2]) from None
            return out

        return decode

    def _list(self, shape: Any) -> Decoder:
        item = self.decoder(shape.member)

        def decode(node: Any) -> list[Any]:
            if type(node) is not list:
                raise _mismatch(node, "List")
            out = []
            for index, child in enumerate(node, 1):
                if child is None:
                    continue
                try:
                    out.append(item(child))
                except ValueError as exc:
                    raise FieldError.wrap(exc, f"{index}.member") from None
            return out

        return decode

    def _map(self, shape: Any) -> Decoder:
        value_dec = self.decoder(shape.value)

        def decode(node: Any) -> dict[str, Any]:
            if type(node) is not dict:
                raise _mismatch(node, "Map")
            out: dict[str, Any] = {}
            for key, child in node.items():
                if child is None:
                    continue
                if type(key) is not str:
                    raise _mismatch(key, "String")
                try:
                    out[key] = value_dec(child)
                except ValueError as exc:
                    raise FieldError.wrap(exc, key) from None
            return out

        return decode


def _identity(value: Any) -> Any:
    return value


# -- XML (rest-xml bodies) -----------------------------------------------------------------------------

def local_name(tag: str) -> str:
    return tag.rsplit("}", 1)[1] if tag[:1] == "{" else tag


class XmlDecoders(_Factory):
    """Decoders over ``xml.etree`` elements. Flattened collections receive a list of elements."""

    def _build(self, shape: Any) -> Decoder:
        t = shape.type_name
        flattened = bool(shape.serialization.get("flattened"))
        if t == "structure":
            return self.structure(shape)
        if t == "list":
            item = self.decoder(shape.member)
            if flattened:
                return lambda elements: [item(e) for e in elements]
            return lambda element: [item(e) for e in element]
        if t == "map":
            return self._map(shape, flattened)
        scalar = text_decoder(shape)
        return lambda element: scalar(element.text or "")

    def member_key(self, member: Any, name: str) -> str:
        ser = member.serialization
        if member.type_name == "list" and ser.get("flattened") and member.member.serialization.get("name"):
            return str(member.member.serialization["name"])
        return str(ser.get("name", name))

    def structure(self, shape: Any, body_only: bool = False) -> Decoder:
        members: dict[str, tuple[str, Decoder, str, bool]] = {}
        attributes: list[tuple[str, str, TextDecoder]] = []
        for name, member in shape.members.items():
            ser = member.serialization
            if body_only and "location" in ser:
                continue
            if ser.get("xmlAttribute"):
                attributes.append((name, str(ser.get("name", name)).rsplit(":", 1)[-1],
                                   text_decoder(member)))
                continue
            flat = member.type_name in ("list", "map") and bool(ser.get("flattened"))
            members[self.member_key(member, name)] = (name, self.decoder(member), camel(name), flat)

        def decode(element: Element) -> dict[str, Any]:
            out: dict[str, Any] = {}
            for name, local, scalar in attributes:
                for attr, text in element.attrib.items():
                    if local_name(attr) == local:
                        out[name] = scalar(text)
            flats: dict[str, tuple[tuple[str, Decoder, str, bool], list[Element]]] = {}
            for child in element:
                entry = members.get(local_name(child.tag))
                if entry is None:
                    continue
                if entry[3]:
                    flats.setdefault(entry[0], (entry, []))[1].append(child)
                    continue
                try:
                    out[entry[0]] = entry[1](child)
                except ValueError as exc:
                    raise FieldError.wrap(exc, entry[2]) from None
            for entry, elements in flats.values():
                try:
                    out[entry[0]] = entry[1](elements)
                except ValueError as exc:
                    raise FieldError.wrap(exc, entry[2]) from None
            return out

        return decode

    def _map(self, shape: Any, flattened: bool) -> Decoder:
        key_dec = self.decoder(shape.key)
        value_dec = self.decoder(shape.value)
        key_name = str(shape.key.serialization.get("name", "key"))
        value_name = str(shape.value.serialization.get("name", "value"))

        def entries(entry_elements: list[Element] | Element) -> dict[str, Any]:
            out: dict[str, Any] = {}
            for entry in entry_elements:
                key = value = None
                for part in entry:
                    tag = local_name(part.tag)
                    if tag == key_name:
                        key = key_dec(part)
                    elif tag == value_name:
                        value = value_dec(part)
                if key is not None and value is not None:
                    out[key] = value
            return out

        return entries
