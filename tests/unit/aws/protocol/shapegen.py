"""Values generated from botocore shapes, for the protocol round-trip tests.

``strategy(shape, ctx)`` is a hypothesis strategy; ``sample(shape, ctx)`` one deterministic value
that sets every member (to depth ``MAX_DEPTH``). Both produce only what the wire can carry for
the protocol, direction and location in ``ctx`` (see ``Ctx``): that is where the tests encode
what a protocol legitimately loses (sub-second timestamps in headers, empty collections that
the query protocols never send, characters XML cannot hold...), so results compare with ``==``.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from hypothesis import strategies as st

MAX_DEPTH = 5
_INT_RANGE = {"byte": 7, "short": 15, "integer": 31, "long": 63}
HEADER_ALPHABET = string.ascii_letters + string.digits + "._:/=+-;()!*'"
HEADER_KEY_ALPHABET = string.ascii_lowercase + string.digits + "-"


@dataclass(frozen=True)
class Ctx:
    protocol: str
    direction: str  # "in": client -> our parser; "out": our serializer -> botocore's parser
    location: str | None = None  # header, headers, querystring, uri, uri+, payload, or None (body)
    depth: int = 0
    greedy: frozenset[str] = frozenset()  # the operation's greedy path labels ({Key+})

    @property
    def xml(self) -> bool:
        if self.location not in (None, "payload"):
            return False
        if self.direction == "out":
            return self.protocol in ("query", "ec2", "rest-xml")
        return self.protocol == "rest-xml"

    @property
    def query_input(self) -> bool:
        return self.direction == "in" and self.protocol in ("query", "ec2") and self.location is None

    def deeper(self) -> Ctx:
        return replace(self, depth=self.depth + 1)


def xml_key(member: Any, name: str) -> str:
    """The element name botocore looks a member up by (``_member_key_name``)."""
    ser = member.serialization
    if member.type_name == "list" and ser.get("flattened") and member.member.serialization.get("name"):
        return str(member.member.serialization["name"])
    return str(ser.get("name", name))


def unambiguous_members(shape: Any, ctx: Ctx) -> list[tuple[str, Any]]:
    """Members, minus those whose XML element name another member uses too (S3's deprecated
    NotificationConfiguration has ``Event`` and a flattened ``Events`` of ``Event``)."""
    members = list(shape.members.items())
    if not ctx.xml:
        return members
    keys = [xml_key(member, name) for name, member in members]
    return [(name, member) for (name, member), key in zip(members, keys, strict=True)
            if keys.count(key) == 1]


def skip_member(member: Any) -> bool:
    ser = member.serialization
    if ser.get("eventstream") or (member.type_name == "structure" and member.is_document_type):
        return True
    return bool(member.type_name == "structure" and ser.get("eventstream"))


def _char_ok(ctx: Ctx, c: str) -> bool:
    o = ord(c)
    if 0xD800 <= o <= 0xDFFF:
        return False
    if ctx.xml:
        if o < 0x20 and c not in "\t\n" and not (c == "\r" and ctx.direction == "out"):
            return False
        if o in (0xFFFE, 0xFFFF):
            return False
    return True


def _text(ctx: Ctx, min_size: int = 0) -> st.SearchStrategy[str]:
    if ctx.location in ("header", "headers"):
        return st.text(HEADER_ALPHABET, min_size=min_size, max_size=12)
    alphabet = st.characters(blacklist_categories=("Cs",)).filter(lambda c: _char_ok(ctx, c))
    if ctx.location in ("uri", "uri+"):
        min_size = max(min_size, 1)
    return st.one_of(st.text(string.ascii_letters + string.digits + "-_", min_size=min_size, max_size=10),
                     st.text(alphabet, min_size=min_size, max_size=10))


def _timestamps(shape: Any, ctx: Ctx) -> st.SearchStrategy[datetime]:
    base = st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1),
                        timezones=st.just(UTC))
    if ctx.location == "header" or shape.serialization.get("timestampFormat") == "rfc822":
        return base.map(lambda d: d.replace(microsecond=0))
    if ctx.direction == "out":
        return base.map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000))
    return base


def _ints(shape: Any) -> st.SearchStrategy[int]:
    bits = _INT_RANGE.get(shape.type_name, 63)
    low, high = -(2**bits), 2**bits - 1
    low = max(low, int(shape.metadata.get("min", low)))
    high = min(high, int(shape.metadata.get("max", high)))
    if low > high:
        low, high = high, low
    return st.integers(low, high)


def _list_min(shape: Any, ctx: Ctx) -> int:
    if ctx.protocol == "ec2" and ctx.direction == "in":
        return 1  # the ec2 serializer sends nothing for an empty list
    if ctx.location in ("header", "querystring"):
        return 1
    if (shape.serialization.get("flattened") and ctx.direction == "out") or (
            ctx.xml and shape.serialization.get("flattened")):
        return 1
    return 0


def strategy(shape: Any, ctx: Ctx) -> st.SearchStrategy[Any]:
    return _strategy(shape, ctx)


@cache
def _strategy(shape: Any, ctx: Ctx) -> st.SearchStrategy[Any]:
    t = shape.type_name
    if t == "structure":
        return _structure(shape, ctx)
    if t == "list":
        item_ctx = ctx.deeper()
        if ctx.location in ("header", "querystring"):
            item_ctx = replace(item_ctx, location=ctx.location)
        least = _list_min(shape, ctx)
        item = strategy(shape.member, item_ctx) if ctx.depth < MAX_DEPTH else st.nothing()
        if item.is_empty:
            return st.just([]) if least == 0 else st.nothing()
        return st.lists(item, min_size=least, max_size=3)
    if t == "map":
        if ctx.location == "headers":
            keys = st.text(HEADER_KEY_ALPHABET, min_size=1, max_size=8)
            return st.dictionaries(keys, _text(ctx), min_size=1, max_size=3)
        min_size = 1 if ctx.query_input or shape.serialization.get("flattened") else 0
        value = strategy(shape.value, ctx.deeper()) if ctx.depth < MAX_DEPTH else st.nothing()
        if value.is_empty:
            return st.just({}) if min_size == 0 else st.nothing()
        return st.dictionaries(strategy(shape.key, ctx.deeper()), value, min_size=min_size, max_size=3)
    if t == "string":
        if ctx.location == "header" and shape.serialization.get("hostLabel"):
            return st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=8)
        text = _text(ctx, min_size=1 if ctx.location == "payload" else 0)
        if shape.enum:
            return st.one_of(st.sampled_from(shape.enum), text)
        return text
    if t in _INT_RANGE:
        return _ints(shape)
    if t in ("float", "double"):
        return st.floats(allow_nan=False, allow_infinity=False)
    if t == "boolean":
        return st.booleans()
    if t == "blob":
        if ctx.location == "payload" and ctx.direction == "out" and not shape.serialization.get("streaming"):
            # botocore decodes a non-streaming blob payload as UTF-8 (Lambda's JSON payloads)
            return st.text(min_size=1, max_size=16).map(lambda text: text.encode("utf-8"))
        return st.binary(min_size=1 if ctx.location == "payload" else 0, max_size=16)
    if t == "timestamp":
        return _timestamps(shape, ctx)
    raise AssertionError(f"no strategy for {t}")


def member_ctx(member: Any, ctx: Ctx, top: bool) -> Ctx:
    location = member.serialization.get("location") if top else None
    if location == "uri":
        return replace(ctx.deeper(), location="uri")
    if location in ("header", "headers", "querystring", "statusCode"):
        return replace(ctx.deeper(), location=location)
    if location == "xmlText":  # S3's bare <LocationConstraint/>: empty reads back as None
        return replace(ctx.deeper(), location="payload")
    return ctx.deeper()


def _structure(shape: Any, ctx: Ctx) -> st.SearchStrategy[dict[str, Any]]:
    top = ctx.depth == 0
    required = set(shape.required_members)
    payload = shape.serialization.get("payload") if top else None
    must: dict[str, st.SearchStrategy[Any]] = {}
    may: dict[str, st.SearchStrategy[Any]] = {}
    for name, member in unambiguous_members(shape, ctx):
        if skip_member(member):
            continue
        mctx = member_ctx(member, ctx, top)
        if mctx.location != "uri" and name not in required and ctx.depth >= MAX_DEPTH:
            continue
        if name == payload:
            mctx = replace(mctx, location="payload")
        if mctx.location == "uri" and member.serialization.get("name", name) in ctx.greedy:
            mctx = replace(mctx, location="uri+")
        if mctx.location == "statusCode":
            value: st.SearchStrategy[Any] = st.sampled_from([200, 201, 202])
        else:
            value = strategy(member, mctx)
        if name in required or mctx.location in ("uri", "uri+"):
            if value.is_empty:
                return st.nothing()
            must[name] = value
        elif ctx.depth < MAX_DEPTH and not value.is_empty:
            may[name] = value
    if shape.is_tagged_union:
        options = [st.fixed_dictionaries({k: v}) for k, v in {**must, **may}.items()]
        return st.one_of(options) if options else st.just({})
    result = st.fixed_dictionaries(must, optional=may)
    if ctx.query_input and not must:
        if not may:
            return st.nothing()  # the query serializers send nothing for an empty structure
        result = result.filter(bool)
    return result


def operation_ctx(operation: Any, protocol: str, direction: str) -> Ctx:
    uri = str(operation.http.get("requestUri", ""))
    greedy = frozenset(m[:-1] for m in re.findall(r"\{([^}]+)\}", uri) if m.endswith("+"))
    return Ctx(protocol, direction, greedy=greedy)


def operation_strategy(operation: Any, ctx: Ctx) -> st.SearchStrategy[dict[str, Any]]:
    shape = operation.input_shape if ctx.direction == "in" else operation.output_shape
    if shape is None:
        return st.just({})
    return strategy(shape, ctx)


# -- one deterministic value per shape, every member set ------------------------------------------

_SAMPLE_TIME = datetime(2026, 11, 29, 5, 33, 50, 123456, tzinfo=UTC)


_SKIP = object()  # no value the wire can carry here


def sample(shape: Any, ctx: Ctx) -> Any:
    value = _sample(shape, ctx)
    return {} if value is _SKIP else value


def _union_sample(members: list[tuple[str, Any]], ctx: Ctx) -> Any:
    """Exactly one member set: the first that can take a value (scalars first once deep)."""
    if ctx.depth >= MAX_DEPTH:
        members = sorted(members, key=lambda item: item[1].type_name in ("structure", "list", "map"))
    for name, member in members:
        value = _sample(member, member_ctx(member, ctx, False))
        if value is not _SKIP:
            return {name: value}
    return _SKIP


def _sample(shape: Any, ctx: Ctx) -> Any:
    t = shape.type_name
    if t == "structure":
        out = {}
        top = ctx.depth == 0
        payload = shape.serialization.get("payload") if top else None
        members = [(n, m) for n, m in unambiguous_members(shape, ctx) if not skip_member(m)]
        if shape.is_tagged_union:
            return _union_sample(members, ctx)
        for name, member in members:
            required = name in shape.required_members
            if skip_member(member) or (ctx.depth >= MAX_DEPTH and not required):
                continue
            mctx = member_ctx(member, ctx, top)
            if name == payload:
                mctx = replace(mctx, location="payload")
            if mctx.location == "statusCode":
                out[name] = 200
                continue
            value = _sample(member, mctx)
            if value is _SKIP:
                if required:
                    return _SKIP
                continue
            out[name] = value
        if not out and ctx.query_input and shape.members:
            return _SKIP
        return out
    if t == "list":
        item_ctx = ctx.deeper()
        if ctx.location in ("header", "querystring"):
            item_ctx = replace(item_ctx, location=ctx.location)
        item = _sample(shape.member, item_ctx) if ctx.depth < MAX_DEPTH else _SKIP
        if item is _SKIP:
            return [] if _list_min(shape, ctx) == 0 else _SKIP
        return [item, item]
    if t == "map":
        if ctx.location == "headers":
            return {"meta-key": "value-1"}
        value = _sample(shape.value, ctx.deeper()) if ctx.depth < MAX_DEPTH else _SKIP
        if value is _SKIP:
            return _SKIP if ctx.query_input or shape.serialization.get("flattened") else {}
        return {"key-1": value, "key 2": value}
    if t == "string":
        if shape.enum:
            return shape.enum[0]
        if shape.serialization.get("hostLabel"):
            return "route-1"
        if ctx.location in ("header", "headers") or ctx.xml:
            return "v-1:2" if ctx.location in ("header", "headers") else "x <&> é 😀 \n y"
        return "x <&>/ é 😀 \n y+z=1"
    if t in _INT_RANGE:
        low = int(shape.metadata.get("min", 0))
        return max(low, min(int(shape.metadata.get("max", 7)), 7))
    if t in ("float", "double"):
        return 1.5
    if t == "boolean":
        return True
    if t == "blob":
        if ctx.location == "payload" and ctx.direction == "out" and not shape.serialization.get("streaming"):
            return b"{}"
        return b"\x00\xffblob"
    if t == "timestamp":
        if ctx.location == "header" or shape.serialization.get("timestampFormat") == "rfc822":
            return _SAMPLE_TIME.replace(microsecond=0)
        if ctx.direction == "out":
            return _SAMPLE_TIME.replace(microsecond=123000)
        return _SAMPLE_TIME + timedelta(0)
    raise AssertionError(f"no sample for {t}")
