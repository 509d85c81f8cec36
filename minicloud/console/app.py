"""The management console, an ASGI app mounted at ``/_minicloud/console/`` by the server.

Every request passes one gate (``_serve``): static assets and the sign-in page are public; any
other page needs a live session (else the browser is sent to sign in); any request that changes
something (POST, PUT) must carry the session's CSRF token (a form field, or the X-CSRF-Token
header for the upload and other script requests) and, when the browser sends one, a same-origin
Origin header. Pages then act through ``PrincipalCalls``: the providers' own operations, as the
signed-in principal.
"""

from __future__ import annotations

import logging
import mimetypes
import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

from minicloud.aws.dispatch import AwsDispatcher
from minicloud.aws.errors import ServiceError, error_status
from minicloud.console.auth import SIGN_IN_FAILED, ConsoleAuth
from minicloud.console.calls import CallFailure, ServiceCalls
from minicloud.console.http import (
    COOKIE,
    LOGIN_CSRF_COOKIE,
    PREFIX,
    SECURITY_HEADERS,
    ConsoleRequest,
    FormTooLarge,
    Response,
    clear_cookie,
    html,
    redirect,
    set_cookie,
    text,
    url,
)
from minicloud.console.page import Page, Route
from minicloud.console.sessions import ABSOLUTE_TIMEOUT, ConsoleSession, SessionStore, csrf_matches
from minicloud.console.templates import Templates
from minicloud.console.views import all_routes
from minicloud.iam.identity import Principal, PrincipalKind
from minicloud.runtime import Runtime
from minicloud.server.asgi import Receive, Scope, Send, send_response, send_stream

log = logging.getLogger("minicloud.console")

STATIC = Path(__file__).with_name("static")
_STATIC_NAME = re.compile(r"/static/([a-z0-9_-]+\.(?:css|js|svg|png))")


class ConsoleApp:
    def __init__(self, runtime: Runtime, dispatcher: AwsDispatcher, health: Callable[[], bytes]) -> None:
        self.runtime = runtime
        self.health = health
        self.calls = ServiceCalls(dispatcher, runtime.authorizer, runtime.topology)
        self.sessions = SessionStore(runtime.db)
        self.auth = ConsoleAuth(runtime.db, runtime.credentials)
        self.templates = Templates()
        self.routes: list[Route] = all_routes()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = ConsoleRequest.from_scope(scope, receive)
        try:
            response = await self._serve(request)
        except FormTooLarge:
            response = text("The form is too large.", 413)
        except Exception:
            log.exception("console request %s %s failed", request.method, request.path)
            response = self._error_page(None, 500, "InternalFailure", "The console hit an internal error.")
        if response.stream is not None:
            await send_stream(send, receive, response.status, response.headers, response.stream)
        else:
            await send_response(send, response.status, response.headers,
                                b"" if request.method == "HEAD" else response.body)

    async def _serve(self, request: ConsoleRequest) -> Response:
        path, method = request.path, request.method
        if path == "":
            return redirect(PREFIX + "/", 308)
        static = _STATIC_NAME.fullmatch(path)
        if static is not None and method in ("GET", "HEAD"):
            return _static_file(static.group(1))
        if path == "/signin":
            return await self._sign_in(request)
        session = await self.sessions.get(request.cookie(COOKIE), datetime.now(UTC))
        principal = await self.auth.principal_of(session) if session is not None else None
        if session is None or principal is None:
            return self._not_signed_in(request)
        if method not in ("GET", "HEAD"):
            refused = await self._check_csrf(request, session)
            if refused is not None:
                return refused
        if path not in ("/password", "/signout") and await self.auth.reset_required(session):
            if method == "GET" and not request.wants_fragment:
                return redirect(url("/password"))
            return text("Choose a new console password first.", 403)
        if path == "/signout" and method == "POST":
            return await self._sign_out(session)
        if path == "/region" and method == "POST":
            return await self._set_region(request, session)
        return await self._page(request, session, principal)

    async def _page(self, request: ConsoleRequest, session: ConsoleSession, principal: Principal) -> Response:
        """The page the route table names for the request, acting as ``principal``."""
        for candidate in self.routes:
            match = candidate.pattern.fullmatch(request.path)
            if match is None or not _method_matches(candidate.method, request.method):
                continue
            request.params = {k: v for k, v in match.groupdict().items() if v is not None}
            if session.flash and not request.wants_fragment:
                await self.sessions.set_flash(session.token_hash, None)
            calls = self.calls.as_principal(principal, session.region, request.client_ip, request.secure,
                                            request.headers.get("host"))
            page = Page(self, request, session, principal, calls)
            try:
                return await candidate.handler(page)
            except ServiceError as error:
                failure = CallFailure.of(error)
                return self._error_page(page, error_status(error), failure.code, failure.message)
        return self._error_page(None, 404, "NotFound", f"There is no console page at {request.path}.")

    async def _sign_out(self, session: ConsoleSession) -> Response:
        await self.sessions.delete(session.token_hash)
        response = redirect(url("/signin", notice="signed-out"))
        clear_cookie(response, COOKIE)
        return response

    # -- the gate ----------------------------------------------------------------------------------
    def _not_signed_in(self, request: ConsoleRequest) -> Response:
        if request.method == "GET" and not request.wants_fragment:
            target = PREFIX + request.path
            if request.query:
                target += "?" + urlencode(request.query)
            return redirect(url("/signin", next=target))
        if request.method == "POST" and "x-csrf-token" not in request.headers:  # a form, not a script
            return redirect(url("/signin", next=PREFIX + "/"))
        return text("Your console session has ended: sign in again.", 401)

    async def _check_csrf(self, request: ConsoleRequest, session: ConsoleSession) -> Response | None:
        origin = request.headers.get("origin")
        host = request.headers.get("host")
        if origin is not None and host is not None and origin.split("://", 1)[-1] != host:
            return self._error_page(None, 403, "InvalidOrigin", "The request did not come from a console page.")
        sent = request.headers.get("x-csrf-token")
        if request.method == "POST":
            await request.read_form()
            sent = request.form.get("csrf_token") or sent
        if not csrf_matches(session.csrf_token, sent):
            return self._error_page(None, 403, "InvalidCsrfToken",
                                    "The form was not sent by a console page of this session (its CSRF token is "
                                    "missing or wrong). Reload the page and try again.")
        return None

    async def _set_region(self, request: ConsoleRequest, session: ConsoleSession) -> Response:
        region = request.form.get("region", "")
        if not self.calls.topology.has_region(region):
            return self._error_page(None, 400, "InvalidRegion", f"The region {region!r} is not configured.")
        await self.sessions.set_region(session.token_hash, region)
        back = request.form.get("back", "")
        return redirect(back if _safe_next(back) else PREFIX + "/")

    # -- signing in ----------------------------------------------------------------------------------
    async def _sign_in(self, request: ConsoleRequest) -> Response:
        if request.method == "POST":
            await request.read_form()
            login_csrf = request.cookie(LOGIN_CSRF_COOKIE)
            if login_csrf is None or not csrf_matches(login_csrf, request.form.get("csrf_token")):
                return self._sign_in_page(request, 403, "The sign-in form expired: please try again.")
            if request.form.get("mode") == "root":
                signed = await self.auth.sign_in_root(request.form.get("access_key_id", ""),
                                                      request.form.get("secret_access_key", ""))
            else:
                signed = await self.auth.sign_in_user(request.form.get("account", ""),
                                                      request.form.get("user_name", ""),
                                                      request.form.get("password", ""))
            if signed is None:
                return self._sign_in_page(request, 401, SIGN_IN_FAILED)
            p = signed.principal
            token, _session = await self.sessions.create(
                p.kind, p.account_id, p.user_id if p.kind is PrincipalKind.USER else None,
                self.calls.topology.default_region, datetime.now(UTC))
            target = request.form.get("next", "")
            response = redirect(target if _safe_next(target) else PREFIX + "/")
            set_cookie(response, COOKIE, token, secure=request.secure, max_age=int(ABSOLUTE_TIMEOUT.total_seconds()))
            clear_cookie(response, LOGIN_CSRF_COOKIE)
            return response
        notice = "You have signed out." if request.query.get("notice") == "signed-out" else None
        return self._sign_in_page(request, 200, None, notice=notice)

    def _sign_in_page(self, request: ConsoleRequest, status: int, error: str | None,
                      notice: str | None = None) -> Response:
        token = secrets.token_urlsafe(24)
        mode = request.form.get("mode") or request.query.get("mode") or "user"
        body = self.templates.render("signin.html", {}, {
            "csrf": token, "error": error, "notice": notice, "mode": mode,
            "next": request.value("next"), "account": request.form.get("account", ""),
            "user_name": request.form.get("user_name", ""),
            "access_key_id": request.form.get("access_key_id", ""),
        })
        response = html(body, status)
        set_cookie(response, LOGIN_CSRF_COOKIE, token, secure=request.secure, max_age=3600)
        return response

    def _error_page(self, page: Page | None, status: int, code: str, message: str) -> Response:
        if page is not None:
            return page.render("error.html", status, code=code, message=message)
        body = self.templates.render("error.html", {"principal": None, "services": [], "regions": ()},
                                     {"code": code, "message": message})
        return html(body, status)


def _method_matches(route_method: str, method: str) -> bool:
    return route_method == method or (route_method == "GET" and method == "HEAD")


def _safe_next(target: str) -> bool:
    """Only the console's own pages: no other host, no scheme, no protocol-relative URL."""
    return (target.startswith(PREFIX + "/") and "//" not in target and "\\" not in target
            and not any(c in target for c in "\r\n"))


def _static_file(name: str) -> Response:
    path = STATIC / name
    if not path.is_file():
        return text("not found", 404)
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    if content_type.startswith("text/") or content_type.endswith("javascript"):
        content_type += "; charset=utf-8"
    headers = [("content-type", content_type), ("cache-control", "no-cache"),
               *[h for h in SECURITY_HEADERS if h[0] != "cache-control"]]
    return Response(200, headers, path.read_bytes())
