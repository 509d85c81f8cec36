"""What a console page handler works with, and the route table's vocabulary."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from minicloud.aws.errors import ServiceError
from minicloud.console.calls import CallFailure, PrincipalCalls
from minicloud.console.http import ConsoleRequest, Response, html, redirect
from minicloud.console.sessions import ConsoleSession
from minicloud.iam.identity import Principal

if TYPE_CHECKING:
    from minicloud.console.app import ConsoleApp


@dataclass(slots=True)
class Page:
    """A signed-in request: who, in which region, and the service calls made as them."""

    console: ConsoleApp
    request: ConsoleRequest
    session: ConsoleSession
    principal: Principal
    calls: PrincipalCalls

    def render(self, template: str, status: int = 200, **values: Any) -> Response:
        """The page, or only its ``live`` block when the browser polls for a fragment."""
        flash = _read_flash(self.session.flash) if not self.request.wants_fragment else {}
        values.setdefault("flash", flash.get("message"))
        values.setdefault("reveal", flash.get("reveal"))
        block = None
        if self.request.wants_fragment:  # "live", or another live_* block the page polls
            wanted = self.request.query.get("block", "live")
            block = wanted if re.fullmatch(r"live(_[a-z]+)?", wanted) else "live"
        body = self.console.templates.render(template, self._common(), values, block=block)
        return html(body, status)

    def _common(self) -> dict[str, Any]:
        return {"session": self.session, "principal": self.principal, "csrf": self.session.csrf_token,
                "regions": self.console.calls.topology.regions, "services": self.console.calls.services,
                "path": self.request.path, "query": self.request.query}

    async def done(self, location: str, message: str, reveal: dict[str, Any] | None = None) -> Response:
        """Post/redirect/get with a one-time notice shown on the next page; ``reveal`` holds what
        that page shows once and never again (a new access key's secret)."""
        flash = json.dumps({"message": message, "reveal": reveal})
        await self.console.sessions.set_flash(self.session.token_hash, flash)
        return redirect(location)

    async def attempt(self, service: str, operation: str, params: dict[str, Any] | None = None,
                      ) -> tuple[dict[str, Any] | None, CallFailure | None]:
        return await self.calls.attempt(service, operation, params)

    async def call(self, service: str, operation: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self.calls.call(service, operation, params)

    def form(self, name: str, default: str = "") -> str:
        return self.request.form.get(name, default)


def _read_flash(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


PageHandler = Callable[[Page], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: PageHandler


def route(method: str, pattern: str, handler: PageHandler) -> Route:
    return Route(method, re.compile(pattern + r"\Z"), handler)


__all__ = ["CallFailure", "Page", "PageHandler", "Route", "ServiceError", "route"]
