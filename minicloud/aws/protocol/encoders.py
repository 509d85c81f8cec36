"""Per-shape encoders: a provider's result values -> XML text or JSON/CBOR-ready values.

Built once per shape (and, for XML, per element name) and cached by their factory. XML is
written by appending strings to a list (measurably faster than building an element tree), with
every text and attribute escaped by ``escape``. Encoders raise ``ValueError``/``TypeError`` on
values that cannot take their shape; the serializers report that as an internal failure.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import orjson

from minicloud.aws.protocol import values

Writer = Callable[[list[str], Any], None]
Encoder = Callable[[Any], Any]

# XML 1.0 cannot carry C0 controls (other than tab/newline/CR), U+FFFE/U+FFFF or lone surrogates,
# not even as character references: they become U+FFFD. CR is escaped so that it survives
# end-of-line normalisation; quotes so that the same function serves attributes.
_XML_SPECIAL = re.compile('[&<>"\r\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]')
_XML_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "\r": "&#xD;"}


def _escape_char(m: re.Match[str]) -> str:
    return _XML_ESCAPES.get(m[0], "\ufffd")


def escape(text: str) -> str:
    if _XML_SPECIAL.search(text) is None:
        return text
    return _XML_SPECIAL.sub(_escape_char, text)


def _text_string(value: Any) -> str:
    return escape(value if type(value) is str else str(value))


def _text_int(value: Any) -> str:
    if type(value) is int:
        return str(value)
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not an integer")
    return str(int(value))


def _text_float(value: Any) -> str:
    return str(values.format_float(float(value)))


def _text_bool(value: Any) -> str:
    return "true" if value else "false"


def _text_blob(value: Any) -> str:
    return values.b64(value)


def text_encoder(shape: Any, default_timestamp: str = "iso8601", millis: bool = False,
                 xml: bool = True) -> Callable[[Any], str]:
    """Scalar -> its text form: XML-escaped (``xml``; only strings can need it) for element text
    and attributes, plain for header values."""
    t = shape.type_name
    if t in ("string", "character"):
        return _text_string if xml else _j_string
    if t in values.INT_RANGES or t == "biginteger":
        return _text_int
    if t in ("float", "double", "bigdecimal"):
        return _text_float
    if t == "boolean":
        return _text_bool
    if t == "blob":
        return _text_blob
    if t == "timestamp":
        fmt = shape.serialization.get("timestampFormat", default_timestamp)
        if fmt == "iso8601":
            return lambda v: values.format_iso8601(v, always_millis=millis)
        return lambda v: values.format_timestamp(v, fmt)
    raise TypeError(f"{t} shapes have no text form")


def _xmlns(shape: Any) -> str:
    ns = shape.serialization.get("xmlNamespace")
    if isinstance(ns, dict):
        prefix = ns.get("prefix")
        return f' xmlns{":" + prefix if prefix else ""}="{escape(str(ns.get("uri", "")))}"'
    if isinstance(ns, str):
        return f' xmlns="{escape(ns)}"'
    return ""


class XmlWriters:
    """Writers for the query, ec2 and rest-xml protocols. ``flavor`` picks the list item name
    (ec2 always says ``item``) and the timestamp style (ec2 and S3 always send milliseconds)."""

    def __init__(self, flavor: str) -> None:
        self.flavor = flavor
        self._millis = flavor in ("ec2", "rest-xml")
        self._cache: dict[tuple[Any, ...], Writer] = {}

    def writer(self, shape: Any, tag: str, extra: str = "") -> Writer:
        ser = shape.serialization
        key = (shape.name, shape.type_name, bool(ser.get("flattened")), tag, repr(ser.get("xmlNamespace")),
               ser.get("timestampFormat"), extra)
        found = self._cache.get(key)
        if found is not None:
            return found
        slot: list[Writer] = []
        self._cache[key] = lambda parts, value: slot[0](parts, value)
        built = self._build(shape, tag, extra)
        slot.append(built)
        self._cache[key] = built
        return built

    def member_tag(self, member: Any, name: str) -> str:
        return str(member.serialization.get("name", name))

    def _build(self, shape: Any, tag: str, extra: str) -> Writer:
        t = shape.type_name
        if t == "structure":
            return self._structure(shape, tag, extra)
        if t == "list":
            return self._list(shape, tag, extra)
        if t == "map":
            return self._map(shape, tag, extra)
        open_tag = f"<{tag}{_xmlns(shape)}{extra}>"
        close_tag = f"</{tag}>"
        if t in ("string", "character"):
            def write_string(parts: list[str], value: Any) -> None:
                text = value if type(value) is str else str(value)
                if _XML_SPECIAL.search(text) is not None:
                    text = _XML_SPECIAL.sub(_escape_char, text)
                parts.append(open_tag + text + close_tag)

            return write_string
        text = text_encoder(shape, millis=self._millis)

        def write(parts: list[str], value: Any) -> None:
            parts.append(open_tag + text(value) + close_tag)

        return write

    def members(self, shape: Any, body_only: bool = False
                ) -> tuple[Writer, Callable[[Any], str], Callable[[Any], str] | None]:
        """(children writer, attributes text, element text) for a structure's members."""
        children: list[tuple[str, Writer]] = []
        attributes: list[tuple[str, str, Callable[[Any], str]]] = []
        inner_text: tuple[str, Callable[[Any], str]] | None = None
        for name, member in shape.members.items():
            ser = member.serialization
            if ser.get("location") == "xmlText":  # minicloud's extension: the element's own text
                inner_text = (name, text_encoder(member, millis=self._millis))
                continue
            if body_only and "location" in ser:
                continue
            if ser.get("xmlAttribute"):
                attributes.append((name, str(ser.get("name", name)), text_encoder(member)))
            else:
                children.append((name, self.writer(member, self.member_tag(member, name))))

        def write_children(parts: list[str], value: Any) -> None:
            for name, write in children:
                item = value.get(name)
                if item is not None:
                    write(parts, item)

        def attrs(value: Any) -> str:
            found = [f' {attr}="{enc(value[name])}"' for name, attr, enc in attributes
                     if value.get(name) is not None]
            return "".join(found)

        text_of = None
        if inner_text is not None:
            text_name, text_enc = inner_text

            def text_of(value: Any) -> str:
                item = value.get(text_name)
                return "" if item is None else text_enc(item)

        return write_children, attrs, text_of

    def _structure(self, shape: Any, tag: str, extra: str) -> Writer:
        write_children, attrs, text_of = self.members(shape)
        head = f"<{tag}{_xmlns(shape)}{extra}"
        close_tag = f"</{tag}>"

        if text_of is None and not self.has_attributes(shape):
            open_tag = head + ">"

            def write_plain(parts: list[str], value: Any) -> None:
                if not isinstance(value, dict):
                    raise TypeError(f"{tag}: expected a dict, got {type(value).__name__}")
                parts.append(open_tag)
                write_children(parts, value)
                parts.append(close_tag)

            return write_plain

        def write(parts: list[str], value: Any) -> None:
            if not isinstance(value, dict):
                raise TypeError(f"{tag}: expected a dict, got {type(value).__name__}")
            parts.append(head + attrs(value) + ">")
            if text_of is not None:
                parts.append(text_of(value))
            write_children(parts, value)
            parts.append(close_tag)

        return write

    @staticmethod
    def has_attributes(shape: Any) -> bool:
        return any(m.serialization.get("xmlAttribute") for m in shape.members.values())

    def _list(self, shape: Any, tag: str, extra: str) -> Writer:
        member = shape.member
        member_name = member.serialization.get("name")
        if shape.serialization.get("flattened"):
            item = self.writer(member, str(member_name or tag))

            def write_flat(parts: list[str], value: Any) -> None:
                for x in value:
                    if x is not None:
                        item(parts, x)

            return write_flat
        default = "item" if self.flavor == "ec2" else "member"
        item = self.writer(member, default if self.flavor == "ec2" else str(member_name or default))
        open_tag = f"<{tag}{_xmlns(shape)}{extra}>"
        close_tag = f"</{tag}>"

        def write(parts: list[str], value: Any) -> None:
            parts.append(open_tag)
            for x in value:
                if x is not None:
                    item(parts, x)
            parts.append(close_tag)

        return write

    def _map(self, shape: Any, tag: str, extra: str) -> Writer:
        key_w = self.writer(shape.key, str(shape.key.serialization.get("name", "key")))
        value_w = self.writer(shape.value, str(shape.value.serialization.get("name", "value")))
        flattened = bool(shape.serialization.get("flattened"))
        open_tag = f"<{tag}{_xmlns(shape)}{extra}>"
        close_tag = f"</{tag}>"
        entry_open, entry_close = (open_tag, close_tag) if flattened else ("<entry>", "</entry>")

        def write(parts: list[str], value: Any) -> None:
            if not flattened:
                parts.append(open_tag)
            for k, v in value.items():
                if v is None:
                    continue
                parts.append(entry_open)
                key_w(parts, k)
                value_w(parts, v)
                parts.append(entry_close)
            if not flattened:
                parts.append(close_tag)

        return write


# -- JSON and CBOR --------------------------------------------------------------------------------------

def _j_string(value: Any) -> str:
    return value if type(value) is str else str(value)


def _j_int(value: Any) -> int:
    return value if type(value) is int else int(value)


def _j_float(value: Any) -> float | str:
    return values.format_float(float(value))


def _j_bool(value: Any) -> bool:
    return bool(value)


def _j_identity(value: Any) -> Any:
    return value


class JsonEncoders:
    """Encoders to JSON-ready values (json, rest-json) or CBOR-ready ones (``cbor=True``: blobs
    stay bytes and timestamps datetimes, which the CBOR encoder tags)."""

    def __init__(self, cbor: bool = False) -> None:
        self.cbor = cbor
        self._cache: dict[tuple[Any, ...], Encoder] = {}

    def encoder(self, shape: Any) -> Encoder:
        key = (shape.name, shape.type_name, shape.serialization.get("timestampFormat"))
        found = self._cache.get(key)
        if found is not None:
            return found
        slot: list[Encoder] = []
        self._cache[key] = lambda value: slot[0](value)
        built = self._build(shape)
        slot.append(built)
        self._cache[key] = built
        return built

    def _build(self, shape: Any) -> Encoder:
        t = shape.type_name
        if t == "structure":
            return _j_identity if shape.is_document_type else self.structure(shape)
        if t == "list":
            item = self.encoder(shape.member)
            return lambda value: [item(x) for x in value if x is not None]
        if t == "map":
            item = self.encoder(shape.value)
            return lambda value: {_j_string(k): item(v) for k, v in value.items() if v is not None}
        if t in ("string", "character"):
            return _j_string
        if t in values.INT_RANGES or t == "biginteger":
            return _j_int
        if t in ("float", "double", "bigdecimal"):
            return _j_float
        if t == "boolean":
            return _j_bool
        if t == "blob":
            return _blob_bytes if self.cbor else values.b64
        if t == "timestamp":
            if self.cbor:
                return values.to_datetime
            fmt = shape.serialization.get("timestampFormat", "unixtimestamp")
            if fmt == "unixtimestamp":
                return values.to_epoch
            return lambda value: values.format_timestamp(value, fmt)
        return _j_identity

    def structure(self, shape: Any, body_only: bool = False) -> Encoder:
        members: list[tuple[str, str, Encoder]] = []
        for name, member in shape.members.items():
            if body_only and "location" in member.serialization:
                continue
            wire = str(member.serialization.get("name", name)) if not self.cbor else name
            members.append((name, wire, self.encoder(member)))

        def encode(value: Any) -> dict[str, Any]:
            if not isinstance(value, dict):
                raise TypeError(f"expected a dict, got {type(value).__name__}")
            out: dict[str, Any] = {}
            for name, wire, enc in members:
                item = value.get(name)
                if item is not None:
                    out[wire] = enc(item)
            return out

        return encode


def _blob_bytes(value: Any) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8")
    return bytes(value)


def dump_json(value: Any) -> bytes:
    return orjson.dumps(value)
