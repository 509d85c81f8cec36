"""The Docker Engine API server: routing (with the optional ``/v1.NN`` prefix and the versions
1.24..1.50), errors rendered once as Docker's ``{"message": ...}``, and the unix socket.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from minicloud.engine.dockerapi.http import (
    Hijack,
    HttpError,
    HttpServer,
    Request,
    Response,
    StreamResponse,
    json_response,
)
from minicloud.engine.errors import EngineError, NotModified

if TYPE_CHECKING:
    from minicloud.engine.service import Engine

log = logging.getLogger("minicloud.engine.dockerapi")

MIN_VERSION = (1, 24)
MAX_VERSION = (1, 50)
_VERSIONED = re.compile(r"^/v(\d+)\.(\d+)(/.*)$")

Result = Response | StreamResponse | Hijack
Route = tuple[str, str, Callable[["Engine", Request], Awaitable[Result]]]


class Router:
    def __init__(self, engine: Engine, routes: list[Route]) -> None:
        self.engine = engine
        self._routes = [(method, re.compile(f"^{pattern}$"), handler) for method, pattern, handler in routes]

    async def __call__(self, request: Request) -> Result:
        path = request.path
        match = _VERSIONED.match(path)
        if match:
            version = (int(match.group(1)), int(match.group(2)))
            if version < MIN_VERSION:
                raise HttpError(400, f"client version {version[0]}.{version[1]} is too old. Minimum supported "
                                     f"API version is {MIN_VERSION[0]}.{MIN_VERSION[1]}, please upgrade your "
                                     "client to a newer version")
            if version > MAX_VERSION:
                raise HttpError(400, f"client version {version[0]}.{version[1]} is too new. Maximum supported "
                                     f"API version is {MAX_VERSION[0]}.{MAX_VERSION[1]}")
            path = match.group(3)
        method = "GET" if request.method == "HEAD" else request.method
        allowed = False
        for route_method, pattern, handler in self._routes:
            found = pattern.match(path)
            if found is None:
                continue
            allowed = True
            if route_method == method:
                request.params = found.groupdict()
                return await handler(self.engine, request)
        if allowed:
            raise HttpError(405, f"method {request.method} not allowed for {path}")
        raise HttpError(404, f"page not found: {path} is not part of minicloud's Docker Engine API yet")


def render_error(exc: Exception) -> Response:
    if isinstance(exc, NotModified):
        return Response(304, b"")
    if isinstance(exc, (EngineError, HttpError)):
        status = exc.status
    else:
        log.error("docker API request failed", exc_info=exc)
        status = 500
    return json_response({"message": str(exc)}, status)


def all_routes() -> list[Route]:
    from minicloud.engine.dockerapi import (
        archive,
        build,
        containers,
        housekeeping,
        images,
        inspection,
        networks,
        streams,
        system,
        update,
        volumes,
    )

    return [*system.ROUTES, *images.ROUTES, *streams.ROUTES, *housekeeping.ROUTES, *inspection.ROUTES,
            *archive.ROUTES, *update.ROUTES, *containers.ROUTES, *networks.ROUTES, *volumes.ROUTES, *build.ROUTES]


class DockerApiServer:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.http = HttpServer(Router(engine, all_routes()), render_error)
        self.path: Path | None = None

    async def start(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # a socket left by a crash
        await self.http.start_unix(str(path))
        os.chmod(path, 0o660)
        self.path = path

    async def stop(self) -> None:
        await self.http.stop()
        if self.path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
