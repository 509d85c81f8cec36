"""The console's HTTP vocabulary: a parsed request, a response, cookies and small response helpers."""

from __future__ import annotations

from collections.abc import AsyncIterable
from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qsl, quote

from minicloud.aws.request import Headers
from minicloud.server.asgi import BodyTooLarge, Receive, Scope, read_body

PREFIX = "/_minicloud/console"
FORM_LIMIT = 1 << 20  # a form (a policy document, a password) is small; uploads stream instead
COOKIE = "minicloud_console"
LOGIN_CSRF_COOKIE = "minicloud_console_signin"


class FormTooLarge(Exception):
    pass


@dataclass(slots=True)
class ConsoleRequest:
    method: str
    path: str  # below PREFIX: "" for PREFIX itself, else starting with "/"
    query: dict[str, str]
    headers: Headers
    client_ip: str
    secure: bool
    receive: Receive
    form: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)  # named groups of the matched route
    form_lists: dict[str, list[str]] = field(default_factory=dict)  # every value of repeated fields

    @classmethod
    def from_scope(cls, scope: Scope, receive: Receive) -> ConsoleRequest:
        path: str = scope["path"][len(PREFIX):]
        headers = Headers((k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"])
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
        query = {k.encode("latin-1").decode("utf-8", "replace"): v.encode("latin-1").decode("utf-8", "replace")
                 for k, v in query.items()}
        client = scope.get("client")
        return cls(scope["method"], path, query, headers, client[0] if client else "127.0.0.1",
                   scope.get("scheme") == "https", receive)

    def cookie(self, name: str) -> str | None:
        jar: SimpleCookie = SimpleCookie()
        for header in self.headers.get_all("cookie"):
            try:
                jar.load(header)
            except CookieError:
                continue
        morsel = jar.get(name)
        return morsel.value if morsel is not None else None

    async def read_form(self) -> None:
        content_type = (self.headers.get("content-type") or "").split(";")[0].strip().lower()
        try:
            body = await read_body(self.receive, FORM_LIMIT)
        except BodyTooLarge:
            raise FormTooLarge() from None
        if content_type == "application/x-www-form-urlencoded":
            pairs = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
            self.form = dict(pairs)
            for key, value in pairs:
                self.form_lists.setdefault(key, []).append(value)

    def form_all(self, name: str) -> list[str]:
        return self.form_lists.get(name, [])

    def value(self, name: str, default: str = "") -> str:
        return self.form.get(name, self.query.get(name, default))

    @property
    def wants_fragment(self) -> bool:
        return self.query.get("fragment") == "1"


@dataclass(slots=True)
class Response:
    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    stream: AsyncIterable[bytes] | None = None


SECURITY_HEADERS = [
    ("content-security-policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                                "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"),
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "same-origin"),
    ("cache-control", "no-store"),
]


def html(body: str, status: int = 200) -> Response:
    return Response(status, [("content-type", "text/html; charset=utf-8"), *SECURITY_HEADERS], body.encode())


def text(body: str, status: int = 200) -> Response:
    return Response(status, [("content-type", "text/plain; charset=utf-8"), *SECURITY_HEADERS], body.encode())


def redirect(location: str, status: int = 303) -> Response:
    return Response(status, [("location", location), *SECURITY_HEADERS])


def url(path: str, **query: str | None) -> str:
    """A console URL: ``url("/s3/buckets/b", prefix="a/")``; None values are left out."""
    parts = [f"{quote(k)}={quote(v, safe='')}" for k, v in query.items() if v is not None]
    return PREFIX + path + ("?" + "&".join(parts) if parts else "")


def set_cookie(response: Response, name: str, value: str, *, secure: bool, max_age: int | None = None) -> None:
    attributes = [f"{name}={value}", f"Path={PREFIX}/", "HttpOnly", "SameSite=Strict"]
    if max_age is not None:
        attributes.append(f"Max-Age={max_age}")
    if secure:
        attributes.append("Secure")
    response.headers.append(("set-cookie", "; ".join(attributes)))


def clear_cookie(response: Response, name: str) -> None:
    response.headers.append(("set-cookie", f"{name}=; Path={PREFIX}/; HttpOnly; SameSite=Strict; Max-Age=0"))
