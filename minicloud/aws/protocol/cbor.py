"""A small CBOR (RFC 8949) codec for the smithy-rpc-v2-cbor protocol.

Decoding accepts definite and indefinite lengths, half/single/double floats and tag 1 (epoch
timestamps, decoded to aware ``datetime``); other tags are refused. Encoding writes the shortest
heads, doubles for floats and tag 1 for ``datetime``. Both raise ``ValueError`` on bad input.
"""

from __future__ import annotations

import struct
from datetime import datetime
from typing import Any

from minicloud.aws.protocol import values

_BREAK = object()
MAX_DEPTH = 200


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise ValueError("CBOR data ends early")
        chunk = self.data[self.pos:end]
        self.pos = end
        return chunk

    def argument(self, info: int) -> int:
        if info < 24:
            return info
        if info == 24:
            return self.take(1)[0]
        if info == 25:
            return int.from_bytes(self.take(2), "big")
        if info == 26:
            return int.from_bytes(self.take(4), "big")
        if info == 27:
            return int.from_bytes(self.take(8), "big")
        raise ValueError(f"bad CBOR additional information {info}")

    def item(self, depth: int = 0) -> Any:
        if depth > MAX_DEPTH:
            raise ValueError("CBOR data is nested too deeply")
        head = self.take(1)[0]
        major, info = head >> 5, head & 0x1F
        if major == 0:
            return self.argument(info)
        if major == 1:
            return -1 - self.argument(info)
        if major in (2, 3):
            raw = self._string(major, info)
            return raw if major == 2 else raw.decode("utf-8")
        if major == 4:
            return self._array(info, depth)
        if major == 5:
            return self._map(info, depth)
        if major == 6:
            tag = self.argument(info)
            value = self.item(depth + 1)
            if tag == 1 and isinstance(value, (int, float)) and not isinstance(value, bool):
                return values.epoch_to_datetime(value)
            raise ValueError(f"unsupported CBOR tag {tag}")
        return self._simple(info)

    def _string(self, major: int, info: int) -> bytes:
        if info != 31:
            return self.take(self.argument(info))
        chunks: list[bytes] = []
        while True:
            head = self.take(1)[0]
            if head == 0xFF:
                return b"".join(chunks)
            if head >> 5 != major or head & 0x1F == 31:
                raise ValueError("bad chunk in an indefinite CBOR string")
            chunks.append(self.take(self.argument(head & 0x1F)))

    def _array(self, info: int, depth: int) -> list[Any]:
        if info == 31:
            out = []
            while (value := self.item(depth + 1)) is not _BREAK:
                out.append(value)
            return out
        count = self.argument(info)
        if count > len(self.data) - self.pos:
            raise ValueError("CBOR array longer than its data")
        return [self._definite(depth) for _ in range(count)]

    def _map(self, info: int, depth: int) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        if info == 31:
            while (key := self.item(depth + 1)) is not _BREAK:
                out[_key(key)] = self._definite(depth)
            return out
        count = self.argument(info)
        if count > len(self.data) - self.pos:
            raise ValueError("CBOR map longer than its data")
        for _ in range(count):
            key = self._definite(depth)
            out[_key(key)] = self._definite(depth)
        return out

    def _definite(self, depth: int) -> Any:
        value = self.item(depth + 1)
        if value is _BREAK:
            raise ValueError("unexpected CBOR break")
        return value

    def _simple(self, info: int) -> Any:
        if info == 20:
            return False
        if info == 21:
            return True
        if info in (22, 23):
            return None
        if info == 25:
            return struct.unpack(">e", self.take(2))[0]
        if info == 26:
            return struct.unpack(">f", self.take(4))[0]
        if info == 27:
            return struct.unpack(">d", self.take(8))[0]
        if info == 31:
            return _BREAK
        raise ValueError(f"unsupported CBOR simple value {info}")


def _key(key: Any) -> Any:
    if isinstance(key, (list, dict)) or key is _BREAK:
        raise ValueError("unsupported CBOR map key")
    return key


def decode(data: bytes) -> Any:
    reader = _Reader(data)
    value = reader.item()
    if value is _BREAK:
        raise ValueError("unexpected CBOR break")
    if reader.pos != len(data):
        raise ValueError("trailing bytes after the CBOR data item")
    return value


def _head(major: int, value: int) -> bytes:
    if value < 24:
        return bytes((major << 5 | value,))
    if value < 0x100:
        return bytes((major << 5 | 24, value))
    if value < 0x10000:
        return bytes((major << 5 | 25,)) + value.to_bytes(2, "big")
    if value < 0x100000000:
        return bytes((major << 5 | 26,)) + value.to_bytes(4, "big")
    return bytes((major << 5 | 27,)) + value.to_bytes(8, "big")


def encode(value: Any) -> bytes:
    out = bytearray()
    _encode(value, out)
    return bytes(out)


def _encode(value: Any, out: bytearray) -> None:
    if value is None:
        out.append(0xF6)
    elif value is True:
        out.append(0xF5)
    elif value is False:
        out.append(0xF4)
    elif isinstance(value, int):
        out += _head(0, value) if value >= 0 else _head(1, -1 - value)
    elif isinstance(value, float):
        out += b"\xfb" + struct.pack(">d", value)
    elif isinstance(value, str):
        raw = value.encode("utf-8")
        out += _head(3, len(raw))
        out += raw
    elif isinstance(value, (bytes, bytearray)):
        out += _head(2, len(value))
        out += value
    elif isinstance(value, datetime):
        out.append(0xC1)
        _encode(values.to_epoch(value), out)
    elif isinstance(value, dict):
        out += _head(5, len(value))
        for key, item in value.items():
            _encode(key, out)
            _encode(item, out)
    elif isinstance(value, (list, tuple)):
        out += _head(4, len(value))
        for item in value:
            _encode(item, out)
    else:
        raise ValueError(f"cannot encode {type(value).__name__} as CBOR")
