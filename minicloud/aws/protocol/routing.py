"""REST routing: HTTP method + path + query keys + headers -> the operation of a rest-json or
rest-xml service, built once per service from each operation's ``http.requestUri``.

A route matches when its path pattern matches (``{Name}`` is one path segment, ``{Key+}`` is
greedy), every literal query key of its ``requestUri`` is present (with its value, if it has
one: ``?list-type=2``), and every *required* querystring and header member of its input is
present (this tells S3's PutObject, CopyObject, UploadPart and UploadPartCopy apart). Among the
routes that match, the one with the most literal query keys wins, then the one with the most
required members present, then the one with the longest literal path, then non-greedy before
greedy, then ``http.routePriority`` (a minicloud model patch), then a non-deprecated operation
before a deprecated one. An ``x-id`` query parameter naming a matching operation wins outright.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from minicloud.aws.forms import parse_form
from minicloud.aws.protocol.wire_errors import MethodNotAllowed, UnknownRoute
from minicloud.aws.request import Headers

_LABEL_RE = re.compile(r"\{([^}]+)\}")


@dataclass(frozen=True, slots=True)
class Route:
    operation: Any  # botocore OperationModel
    method: str
    template: str
    regex: re.Pattern[str]
    labels: tuple[str, ...]
    literal_query: tuple[tuple[str, str | None], ...]
    required_query: tuple[str, ...]
    required_headers: tuple[str, ...]
    rank: tuple[int, int, int, int, int, int]
    needed_query: frozenset[str] = frozenset()  # literal keys and required querystring members
    literal_values: tuple[tuple[str, str], ...] = ()  # literal keys that carry a value

    @property
    def literal_keys(self) -> frozenset[str]:
        return frozenset(key for key, _ in self.literal_query)

    def accepts(self, query: dict[str, list[str]], headers: Headers) -> bool:
        if not self.needed_query <= query.keys():
            return False
        for key, value in self.literal_values:
            if value not in query[key]:
                return False
        return all(name in headers for name in self.required_headers)


def compile_path(path: str) -> tuple[re.Pattern[str], tuple[str, ...], int, int]:
    """``/{Bucket}/{Key+}`` -> (regex, label names, literal length, greedy labels)."""
    pattern: list[str] = []
    labels: list[str] = []
    literal = greedy = 0
    pos = 0
    if len(path) > 1 and path.endswith("/"):
        path = path[:-1]
    for m in _LABEL_RE.finditer(path):
        text = path[pos:m.start()]
        literal += len(text)
        pattern.append(re.escape(text))
        name = m[1]
        if name.endswith("+"):
            pattern.append("(.+)")
            greedy += 1
            name = name[:-1]
        else:
            pattern.append("([^/]+)")
        labels.append(name)
        pos = m.end()
    tail = path[pos:]
    literal += len(tail)
    pattern.append(re.escape(tail.rstrip("/")))
    regex = re.compile("".join(pattern) + r"/?\Z", re.DOTALL)
    return regex, tuple(labels), literal, greedy


def _literal_query(query: str) -> tuple[tuple[str, str | None], ...]:
    found: list[tuple[str, str | None]] = []
    for part in query.split("&"):
        if not part:
            continue
        key, sep, value = part.partition("=")
        found.append((key, value if sep else None))
    return tuple(found)


def build_route(operation: Any) -> Route:
    http = operation.http
    method = str(http.get("method", "POST")).upper()
    uri = str(http.get("requestUri", "/"))
    path, _, query = uri.partition("?")
    regex, labels, literal, greedy = compile_path(path)
    literal_query = _literal_query(query)
    required_query: list[str] = []
    required_headers: list[str] = []
    shape = operation.input_shape
    if shape is not None:
        for name in shape.required_members:
            member = shape.members[name]
            location = member.serialization.get("location")
            wire = str(member.serialization.get("name", name))
            if location == "querystring" and member.type_name != "map":
                required_query.append(wire)
            elif location == "header":
                required_headers.append(wire.lower())
    members = len(required_query) + len(required_headers)
    priority = int(http.get("routePriority", 0))
    rank = (-len(literal_query), -members, -literal, greedy, -priority, int(bool(operation.deprecated)))
    needed = frozenset([key for key, _ in literal_query] + required_query)
    valued = tuple((key, value) for key, value in literal_query if value is not None)
    return Route(operation, method, uri, regex, labels, literal_query, tuple(required_query),
                 tuple(required_headers), rank, needed, valued)


def parse_query(query: str) -> dict[str, list[str]]:
    """A raw query string as key -> values (``+`` is a space, as form encoding has it)."""
    result: dict[str, list[str]] = {}
    if not query:
        return result
    for key, value in parse_form(query):
        found = result.get(key)
        if found is None:
            result[key] = [value]
        else:
            found.append(value)
    return result


_ELIGIBLE_SETS = 1024  # (method, query key set) pairs whose eligible routes are remembered


class Router:
    def __init__(self, service_model: Any) -> None:
        routes = [build_route(service_model.operation_model(name))
                  for name in service_model.operation_names]
        self.routes: dict[str, list[Route]] = {}
        for route in sorted(routes, key=lambda r: r.rank):
            self.routes.setdefault(route.method, []).append(route)
        self._eligible: dict[tuple[str, frozenset[str]], list[Route]] = {}

    def shadowed(self) -> dict[str, str]:
        """Operations no request can reach without ``x-id`` (name -> the operation that wins):
        their routes are indistinguishable from a higher-ranked one."""
        found: dict[str, str] = {}
        for routes in self.routes.values():
            seen: dict[tuple[Any, ...], str] = {}
            for route in routes:
                signature = (route.regex.pattern, frozenset(route.literal_query),
                             frozenset(route.required_query), frozenset(route.required_headers))
                if signature in seen:
                    found[route.operation.name] = seen[signature]
                else:
                    seen[signature] = route.operation.name
        return found

    def match(self, method: str, path: str, query: dict[str, list[str]],
              headers: Headers) -> tuple[Route, tuple[str, ...]]:
        """The most specific route for the request and its raw (still percent-encoded) labels."""
        upper = method.upper()
        candidates = self.routes.get(upper, [])
        wanted = query.get("x-id")
        if wanted:
            for route in candidates:
                if route.operation.name == wanted[0]:
                    m = route.regex.match(path)
                    if m is not None and route.accepts(query, headers):
                        return route, m.groups()
        # The routes whose query keys the request has, in rank order: the same for every request with
        # the same keys (a client's presigned URLs, say), so worked out once per method and key set.
        keys = frozenset(query)
        eligible = self._eligible.get((upper, keys))
        if eligible is None:
            eligible = [route for route in candidates if route.needed_query <= keys]
            if len(self._eligible) >= _ELIGIBLE_SETS:
                self._eligible.clear()
            self._eligible[(upper, keys)] = eligible
        for route in eligible:
            # dict look-ups first: much cheaper than the path regex
            if (not route.literal_values and not route.required_headers) or route.accepts(query, headers):
                m = route.regex.match(path)
                if m is not None:
                    return route, m.groups()
        for other, routes in self.routes.items():
            if other != method.upper() and any(r.regex.match(path) for r in routes):
                raise MethodNotAllowed("The specified method is not allowed against this resource.",
                                       Method=method.upper(), ResourceType="OBJECT")
        raise UnknownRoute(f"No operation of this service matches {method.upper()} {path}")
