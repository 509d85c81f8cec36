"""The wire-level request and response that every AWS protocol parser and serializer works on.

These types are the seam between the ASGI server (which builds them) and the protocol layer
(which turns them into an operation and typed parameters, and results back into bytes).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable, Iterator
from dataclasses import dataclass, field

# A body that is read as it arrives: chunks of bytes, in order.
BodyStream = AsyncIterable[bytes]


class ClientDisconnected(Exception):
    """The client went away before its request body had fully arrived."""


class Headers:
    """Case-insensitive, multi-valued HTTP headers. Names are stored lower-case; the first value of
    each name is indexed (a request's headers are looked up far more often than they change)."""

    __slots__ = ("_first", "_items")

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] = [(k.lower(), v) for k, v in items]
        self._first = _index(self._items)

    @classmethod
    def from_wire(cls, raw: Iterable[tuple[bytes, bytes]]) -> Headers:
        """Headers as the HTTP server hands them over: names already lower-case, bytes in latin-1."""
        headers = cls.__new__(cls)
        headers._items = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in raw]
        headers._first = _index(headers._items)
        return headers

    def get(self, name: str, default: str | None = None) -> str | None:
        value = self._first.get(name)
        if value is None:
            if name.islower():  # (callers ask in lower case: an absent header costs one look-up)
                return default
            value = self._first.get(name.lower())
        return default if value is None else value

    def get_all(self, name: str) -> list[str]:
        name = name.lower()
        return [value for key, value in self._items if key == name]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def items(self) -> list[tuple[str, str]]:
        return list(self._items)

    def repeats(self) -> bool:
        """Whether some name occurs more than once."""
        return len(self._items) != len(self._first)

    def iter_items(self) -> Iterator[tuple[str, str]]:
        """The (name, value) pairs in order received, without copying them (do not add or set meanwhile)."""
        return iter(self._items)

    def add(self, name: str, value: str) -> None:
        name = name.lower()
        self._items.append((name, value))
        self._first.setdefault(name, value)

    def set(self, name: str, value: str) -> None:
        name = name.lower()
        self._items = [(k, v) for k, v in self._items if k != name]
        self._items.append((name, value))
        self._first[name] = value

    def __iter__(self) -> Iterator[str]:
        return iter(k for k, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


def _index(items: list[tuple[str, str]]) -> dict[str, str]:
    """Each name's first value: built from the end, so that an earlier value overwrites a later one."""
    return dict(reversed(items))


@dataclass(slots=True)
class AwsRequest:
    """An HTTP request as received, before any AWS interpretation.

    ``path`` is the raw, still percent-encoded path; ``query`` the raw query string (no ``?``).
    ``body`` holds the whole body for ordinary operations. The server may leave a large, chunked
    or aws-chunked body unread and hand it over as ``stream`` instead (``body`` is then empty):
    the dispatcher reads it fully for ordinary operations, and hands it to the provider, as it
    arrives, for operations whose payload is a streaming blob (S3 PutObject, UploadPart).
    """

    method: str
    path: str
    query: str = ""
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""
    client_ip: str = "127.0.0.1"
    secure: bool = False
    stream: BodyStream | None = None
    signed_path: str | None = None  # the path as signed, when a provider rewrote ``path`` (S3 virtual hosts)


@dataclass(slots=True)
class AwsResponse:
    """``stream``, when set, is the body (``body`` is then empty): the server sends its chunks as
    they come and closes the stream (``aclose``) however the response ends. ``own_origin``: the
    response is for a host that is an origin of its own (S3's website endpoints), which the server
    does not sandbox."""

    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    stream: BodyStream | None = None
    own_origin: bool = False
