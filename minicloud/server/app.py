"""The one ASGI application: routes each request to a surface by path and headers.

    /_minicloud/...   minicloud's own pages (health; the console later)
    /v2/...           the OCI registry, unless the request carries SigV4 (then it is S3's); on
                      every host, S3 website endpoints included (DESIGN.md's contract)
    everything else   the AWS APIs
"""

from __future__ import annotations

import gc
import logging
from datetime import UTC, datetime
from typing import Any

from minicloud.aws.dispatch import AwsDispatcher
from minicloud.aws.errors import RequestEntityTooLarge
from minicloud.aws.provider import Provider
from minicloud.aws.request import AwsRequest, Headers
from minicloud.controllers.runner import ControllerRunner
from minicloud.runtime import Runtime
from minicloud.server.asgi import (
    ASGIApp,
    BodyTooLarge,
    Message,
    Receive,
    ReceiveStream,
    Scope,
    Send,
    read_body,
    send_response,
    send_stream,
    streams_body,
)
from minicloud.server.health import health_document
from minicloud.server.protocol import Exchange
from minicloud.server.sendoff import ThreadReadable
from minicloud.services.registry import build_providers

log = logging.getLogger("minicloud.server")


class MinicloudApp:
    def __init__(self, runtime: Runtime, providers: list[Provider] | None = None) -> None:
        """Every service, or (a read worker's) only ``providers``: then no registry and no console."""
        self.runtime = runtime
        self.providers = build_providers(runtime) if providers is None else providers
        self.dispatcher = AwsDispatcher(self.providers, runtime.credentials, runtime.authorizer,
                                        runtime.topology, max_body_bytes=runtime.config.max_body_bytes)
        self.runner: ControllerRunner | None = None
        self.engine: Any = None  # minicloud.engine.service.Engine when enabled
        self.started_at = datetime.now(UTC)
        # The OCI registry (ECR's data plane), an ASGI app for /v2/ and /_minicloud/registry/, and the
        # console (/_minicloud/console/): imported only here, so that a S3 worker, forked before
        # the server builds its app, never loads them (nor jinja2).
        self.registry: ASGIApp | None = None
        self.console: ASGIApp | None = None
        if providers is None:
            from minicloud.console.app import ConsoleApp
            from minicloud.registry.api import RegistryApp

            self.registry = RegistryApp(runtime)
            self.console = ConsoleApp(runtime, self.dispatcher, self._health)

    async def startup(self) -> None:
        for provider in self.providers:
            await provider.start()
        if self.runtime.config.engine:  # before the controllers: they run workloads on it
            from minicloud.engine.service import start_engine

            keys = self.runtime.root_keys  # the engine pulls from minicloud's own registry as root
            self.engine = await start_engine(self.runtime.config, (keys.access_key_id, keys.secret_access_key))
            self.runtime.engine = self.engine
        if self.runtime.config.controllers:
            self.runner = ControllerRunner(self.runtime.db, self.runtime.controllers)
            await self.runner.start()
        # What start-up built (service models, routing tables, compiled statements) lives as long as
        # the server: out of the collector's sight, a full collection no longer walks it every time.
        gc.collect()
        gc.freeze()

    async def shutdown(self) -> None:
        if self.runner is not None:
            await self.runner.stop()
        if self.engine is not None:
            await self.engine.stop()
        for provider in reversed(self.providers):
            try:
                await provider.stop()
            except Exception:
                log.exception("stopping %s failed", provider.service_name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    log.exception("startup failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        if path.startswith("/_minicloud/"):
            if (self.console is not None and (path == "/_minicloud/console" or path.startswith("/_minicloud/console/"))
                    and not _website_host(scope)):  # (a website's pages are not sandboxed: never the console's origin)
                await self.console(scope, receive, send)
                return
            send = _sandboxed(send)
            if path.startswith("/_minicloud/registry/") and self.registry is not None:
                await self.registry(scope, receive, send)
                return
            await self._internal(scope, receive, send)
            return
        if (path == "/v2" or path.startswith("/v2/")) and not _sigv4_signed(scope):
            if self.registry is not None:
                await self.registry(scope, receive, _sandboxed(send))
            else:
                await send_response(send, 404, [("content-type", "application/json")],
                                    b'{"errors":[{"code":"UNSUPPORTED","message":"the registry is not enabled"}]}')
            return
        raw_headers = scope["headers"]
        native: Exchange | None = scope.get("minicloud.exchange")  # minicloud's own HTTP protocol
        header_bytes = native.header_bytes if native is not None else sum(len(k) + len(v) for k, v in raw_headers)
        headers = Headers.from_wire(raw_headers)
        client = scope.get("client")
        request = AwsRequest(
            method=scope["method"],
            path=(scope.get("raw_path") or path.encode()).decode("latin-1").split("?", 1)[0],
            query=scope["query_string"].decode("latin-1"),
            headers=headers,
            client_ip=client[0] if client else "127.0.0.1",
            secure=scope.get("scheme") == "https",
        )
        config = self.runtime.config
        stream: ReceiveStream | None = None
        try:
            if header_bytes > config.max_header_bytes:
                raise BodyTooLarge()
            if streams_body(headers):
                stream = request.stream = ReceiveStream(receive)
            else:
                body = native.whole_body() if native is not None else None
                if body is None:
                    body = await read_body(receive, config.max_body_bytes)
                elif len(body) > config.max_body_bytes:
                    raise BodyTooLarge()
                request.body = body
        except BodyTooLarge:
            response = self.dispatcher.render_error(
                RequestEntityTooLarge("Request entity too large"), request)
            await send_response(send, response.status, [*response.headers, ("connection", "close")],
                                response.body)
            return
        response = await self.dispatcher.handle(request)
        response_headers = [*response.headers, *SANDBOX_HEADERS] if not response.own_origin else response.headers
        if stream is not None and not stream.done:  # the body was refused before it was read
            response_headers = [*response_headers, ("connection", "close")]
        if (response.stream is not None and native is not None and request.method != "HEAD"
                and isinstance(response.stream, ThreadReadable)):
            await native.respond_pumped(response.status, response_headers, response.stream)
        elif response.stream is not None:
            await send_stream(send, receive if stream is None or stream.done else None, response.status,
                              response_headers, response.stream)
        else:
            # A HEAD response never carries a body (errors included); its headers stay.
            body = b"" if request.method == "HEAD" else response.body
            if native is not None:
                await native.respond(response.status, response_headers, body)
            else:
                await send_response(send, response.status, response_headers, body)

    def _health(self) -> bytes:
        return health_document(self.dispatcher, self.runner, self.started_at, self.runtime.topology.regions)

    async def _internal(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        if path in ("/_minicloud/health", "/_minicloud/health/"):
            await send_response(send, 200, [("content-type", "application/json")], self._health())
            return
        lambda_ = next((p for p in self.providers if p.service_name == "lambda"), None)
        if lambda_ is not None and path.startswith("/_minicloud/lambda/"):  # code downloads, function URLs
            await lambda_.asgi(scope, receive, send)  # type: ignore[attr-defined]
            return
        await send_response(send, 404, [("content-type", "application/json")],
                            b'{"error": "not found"}')


# Every response but the console's is sandboxed: S3 objects, function URLs and registry blobs share
# the console's origin (one host and port), so an HTML object or a function's page would otherwise
# run its scripts as the console, with the signed-in user's session. Sandboxed without
# allow-same-origin, such a page has an origin of its own: the console's SameSite cookie is not sent
# for it and the console's pages cannot be read from it. Appended, never replaced: a response's own
# policy cannot lift it (every policy applies). The exception: an S3 website's pages, whose host
# (<bucket>.s3-website-<region>...) is an origin of its own already, where the console is never
# served; sandboxed, a website's module scripts, fetches of its own files and storage would fail.
SANDBOX_HEADERS = (
    ("content-security-policy", "sandbox allow-scripts allow-forms allow-popups allow-modals allow-downloads"),
    ("x-content-type-options", "nosniff"),
)
_SANDBOX_RAW = [(k.encode(), v.encode()) for k, v in SANDBOX_HEADERS]


def _sandboxed(send: Send) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", ()), *_SANDBOX_RAW]}
        await send(message)
    return sending


def _website_host(scope: Scope) -> bool:
    """A request to an S3 website endpoint (``<bucket>.s3-website-<region>...``), where the console is not served."""
    for name, value in scope["headers"]:
        if name == b"host":
            return b"s3-website" in value.lower()
    return False


def _sigv4_signed(scope: Scope) -> bool:
    """A request under /v2/ is S3's (a bucket named v2) only when it carries an AWS signature."""
    for name, value in scope["headers"]:
        if name == b"authorization" and value.startswith((b"AWS4-HMAC-SHA256", b"AWS ")):
            return True
    query: bytes = scope.get("query_string", b"")
    return b"X-Amz-Signature=" in query or b"X-Amz-Credential=" in query or b"AWSAccessKeyId=" in query
