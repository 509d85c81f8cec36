"""The OCI Distribution API (v1.1) as one ASGI app: routing, authentication, errors.

    GET    /v2/                                    is the API here (401 until authenticated)
    GET    /v2/_catalog                            repositories of the caller's account
    GET    /v2/<name>/tags/list                    tags, with n/last and Link
    *      /v2/<name>/manifests/<reference>        GET HEAD PUT DELETE          (content.py)
    GET    /v2/<name>/referrers/<digest>           manifests whose subject is <digest>
    *      /v2/<name>/blobs/<digest>               GET HEAD DELETE              (uploads.py)
    *      /v2/<name>/blobs/uploads/[<id>]         POST PATCH PUT GET DELETE    (uploads.py)
    GET    /_minicloud/registry/token              the Docker token endpoint (also POST, OAuth2 form)

Every error leaves as the spec's JSON error body with its status; a client's mistake is never a 500.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from minicloud.iam.identity import ANONYMOUS
from minicloud.registry.auth import SERVICE, Grant, Identity, RegistryAuth, load_key
from minicloud.registry.errors import RegistryError
from minicloud.registry.gc import RegistryGC
from minicloud.registry.http import ClientGone, Request, Response
from minicloud.registry.repositories import Repository, ensure_repository, get_repository, list_repositories
from minicloud.server.asgi import Receive, Scope, Send
from minicloud.storage.blobs import ReplicatedBlobStore, WritePolicy

if TYPE_CHECKING:
    from minicloud.runtime import Runtime

log = logging.getLogger("minicloud.registry")

NAME = re.compile(r"^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$")
MAX_NAME = 256
TOKEN_PATH = "/_minicloud/registry/token"
_ROUTES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^/v2/(?P<name>.+)/manifests/(?P<ref>[^/]+)$"), "manifest"),
    (re.compile(r"^/v2/(?P<name>.+)/blobs/uploads/(?P<id>[^/]*)$"), "upload"),
    (re.compile(r"^/v2/(?P<name>.+)/blobs/(?P<digest>[^/]+)$"), "blob"),
    (re.compile(r"^/v2/(?P<name>.+)/tags/list$"), "tags"),
    (re.compile(r"^/v2/(?P<name>.+)/referrers/(?P<digest>[^/]+)$"), "referrers"),
]
_SCOPE_ACTIONS = {"pull": "pull", "push": "pull,push", "delete": "delete"}
_COMMON = [("docker-distribution-api-version", "registry/2.0")]


def valid_name(name: str) -> bool:
    return len(name) <= MAX_NAME and NAME.match(name) is not None


def page_size(req: Request) -> int | None:
    raw = req.arg("n")
    if raw is None or raw == "":
        return None
    if not raw.isdigit():
        raise RegistryError("PAGINATION_NUMBER_INVALID", f"invalid n: {raw[:32]!r}")
    return int(raw)


class RegistryApp:
    def __init__(self, runtime: Runtime) -> None:
        from minicloud.registry.content import ContentHandlers
        from minicloud.registry.uploads import BlobHandlers

        self.runtime = runtime
        self.db = runtime.db
        self.region = runtime.topology.default_region
        zones = [z.name for z in runtime.topology.zones(self.region)] or [self.region]
        # A blob is acknowledged once a quorum of zones has it fsynced (as S3 STANDARD); the other
        # copies finish in the background.
        self.blobs = ReplicatedBlobStore.for_zones(runtime.config.data_dir / "blobs", zones, WritePolicy.QUORUM)
        self.auth = RegistryAuth(runtime.credentials, runtime.authorizer, load_key(runtime.config.data_dir),
                                 self.region)
        self.content = ContentHandlers(self)
        self.blob_handlers = BlobHandlers(self)
        self.gc = RegistryGC(self.db, self.blobs)
        runtime.controllers.append(self.gc)

    # -- ASGI ----------------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        req = Request.from_scope(scope, receive)
        try:
            response = await self.route(req)
        except RegistryError as error:
            response = Response(error.status, [("content-type", "application/json"), *error.headers],
                                error.body())
        except ClientGone:
            return
        except Exception:
            log.exception("registry request %s %s failed", req.method, req.path)
            response = Response(500, [("content-type", "application/json")],
                                b'{"errors":[{"code":"UNKNOWN","message":"internal error"}]}')
        response.headers.extend(_COMMON)
        await response.send(send, head=req.method == "HEAD")

    async def route(self, req: Request) -> Response:
        path = req.path
        if path.startswith("/_minicloud/registry/"):
            if path.rstrip("/") == TOKEN_PATH:
                return await self.token(req)
            raise RegistryError("UNSUPPORTED", "not found", status=404)
        if path in ("/v2", "/v2/"):
            return await self.base(req)
        if path == "/v2/_catalog":
            self._methods(req, "GET")
            return await self.catalog(req)
        for pattern, kind in _ROUTES:
            match = pattern.match(path)
            if match is None:
                continue
            params = match.groupdict()
            name = params.pop("name")
            if not valid_name(name):
                raise RegistryError("NAME_INVALID", f"invalid repository name: {name[:300]!r}")
            handler = self._handler(req, kind)
            return await handler(req, name, *params.values())
        raise RegistryError("UNSUPPORTED", "not found", status=404)

    def _handler(self, req: Request, kind: str) -> Callable[..., Awaitable[Response]]:
        table: dict[str, dict[str, Callable[..., Awaitable[Response]]]] = {
            "manifest": {"GET": self.content.get_manifest, "HEAD": self.content.get_manifest,
                         "PUT": self.content.put_manifest, "DELETE": self.content.delete_manifest},
            "tags": {"GET": self.content.list_tags},
            "referrers": {"GET": self.content.referrers},
            "blob": {"GET": self.blob_handlers.get_blob, "HEAD": self.blob_handlers.get_blob,
                     "DELETE": self.blob_handlers.delete_blob},
            "upload": {"POST": self.blob_handlers.start_upload, "PATCH": self.blob_handlers.patch_upload,
                       "PUT": self.blob_handlers.put_upload, "GET": self.blob_handlers.upload_status,
                       "DELETE": self.blob_handlers.cancel_upload},
        }
        handlers = table[kind]
        self._methods(req, *handlers)
        return handlers[req.method]

    @staticmethod
    def _methods(req: Request, *allowed: str) -> None:
        if req.method not in allowed:
            raise RegistryError("UNSUPPORTED", f"method {req.method} not allowed", status=405,
                                headers=[("allow", ", ".join(allowed))])

    # -- authentication and authorization ------------------------------------------------------------
    def challenge(self, req: Request, scope: str | None = None, error: str | None = None,
                  message: str = "authentication required") -> RegistryError:
        parts = [f'realm="http://{req.host}{TOKEN_PATH}"', f'service="{SERVICE}"']
        if scope:
            parts.append(f'scope="{scope}"')
        if error:
            parts.append(f'error="{error}"')
        detail: list[dict[str, str]] = []
        for item in (scope or "").split():
            kind, _, rest = item.partition(":")
            name, _, actions = rest.rpartition(":")
            detail.extend({"Type": kind, "Name": name, "Action": a} for a in actions.split(","))
        return RegistryError("UNAUTHORIZED", message, detail or None,
                             headers=[("www-authenticate", "Bearer " + ",".join(parts))])

    async def identify(self, req: Request) -> Identity:
        header = req.headers.get("authorization")
        if not header:
            return Identity(ANONYMOUS)
        scheme, _, value = header.strip().partition(" ")
        scheme = scheme.lower()
        if scheme == "basic":
            try:
                user, sep, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                user, sep, password = "", "", ""
            identity = await self.auth.basic(user, password) if sep else None
            if identity is None:
                raise self.challenge(req, message="invalid username or password")
            return identity
        if scheme == "bearer":
            identity = self.auth.bearer(value)
            if identity is None:
                raise self.challenge(req, error="invalid_token", message="invalid or expired token")
            return identity
        raise self.challenge(req, message=f"unsupported authorization scheme {scheme[:20]!r}")

    async def repository(self, name: str) -> Repository | None:
        return await self.db.read(lambda conn: get_repository(conn, name))

    async def authorize(self, req: Request, name: str, action: str,
                        also: str | None = None) -> tuple[Identity, Repository | None]:
        """The caller and the repository, once the caller may do ``action`` (pull, push, delete).
        ``also`` is a further scope the request can use (a mount's source), named in the challenge."""
        identity = await self.identify(req)
        repository = await self.repository(name)
        if await self.auth.allowed(identity, name, repository, action, req.client_ip):
            return identity, repository
        scope = f"repository:{name}:{_SCOPE_ACTIONS[action]}" + (f" {also}" if also else "")
        if identity.anonymous or identity.grants is not None:
            error = "insufficient_scope" if identity.grants is not None else None
            raise self.challenge(req, scope, error)
        raise RegistryError("DENIED", f"User: {identity.principal.arn} is not authorized to {action} "
                                      f"repository {name}", [{"Type": "repository", "Name": name,
                                                              "Action": action}])

    async def repository_for_push(self, identity: Identity, name: str, repository: Repository | None) -> Repository:
        """The repository, created for the caller's account by its first push."""
        if repository is not None:
            return repository
        now = datetime.now(UTC)
        return await self.db.write(lambda conn: ensure_repository(
            conn, name, identity.principal.account_id, self.region, now))

    # -- base, catalog, token ------------------------------------------------------------------------
    async def base(self, req: Request) -> Response:
        self._methods(req, "GET", "HEAD")
        identity = await self.identify(req)
        if identity.anonymous:
            raise self.challenge(req)
        return Response.json(200, {})

    async def catalog(self, req: Request) -> Response:
        identity = await self.identify(req)
        if not await self.auth.catalog_allowed(identity, req.client_ip):
            if identity.anonymous or identity.grants is not None:
                raise self.challenge(req, "registry:catalog:*", None if identity.anonymous else "insufficient_scope")
            raise RegistryError("DENIED", "not authorized to list repositories")
        limit = page_size(req)
        last = req.arg("last") or None
        account = identity.principal.account_id
        if limit == 0:
            return Response.json(200, {"repositories": []})
        repos = await self.db.read(lambda conn: list_repositories(
            conn, account_id=account, after=last, limit=None if limit is None else limit + 1))
        names = [r.name for r in repos]
        headers = []
        if limit is not None and len(names) > limit:
            names = names[:limit]
            headers.append(("link", f'</v2/_catalog?n={limit}&last={names[-1]}>; rel="next"'))
        return Response.json(200, {"repositories": names}, headers)

    async def token(self, req: Request) -> Response:
        self._methods(req, "GET", "POST")
        scopes = list(req.query.get("scope", []))
        if req.method == "POST":
            return await self._oauth_token(req)
        header = req.headers.get("authorization")
        if header:
            try:
                identity = await self.identify(req)
            except RegistryError as error:
                raise RegistryError("UNAUTHORIZED", error.message) from None
        else:
            identity = Identity(ANONYMOUS)
        return await self._issue(req, identity, scopes)

    async def _oauth_token(self, req: Request) -> Response:
        from urllib.parse import parse_qsl

        body = await req.body(64 * 1024) or b""
        form = dict(parse_qsl(body.decode("latin-1"), keep_blank_values=True))
        if form.get("grant_type") != "password":
            raise RegistryError("UNSUPPORTED", "only grant_type=password is supported", status=400)
        identity = await self.auth.basic(form.get("username", ""), form.get("password", ""))
        if identity is None:
            raise RegistryError("UNAUTHORIZED", "invalid username or password")
        return await self._issue(req, identity, form.get("scope", "").split())

    async def _issue(self, req: Request, identity: Identity, scopes: list[str]) -> Response:
        grants: list[Grant] = []
        for scope in " ".join(scopes).split():
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            wanted = {a for a in actions.split(",") if a}
            if kind == "registry" and name == "catalog":
                if await self.auth.catalog_allowed(identity, req.client_ip):
                    grants.append(Grant("registry", "catalog", frozenset({"*"})))
                continue
            if kind != "repository" or not valid_name(name):
                continue
            if "*" in wanted:
                wanted = {"pull", "push", "delete"}
            repository = await self.repository(name)
            granted = {a for a in sorted(wanted)
                       if await self.auth.allowed(identity, name, repository, a, req.client_ip)}
            # An empty grant records that the scope was asked for and refused (no new challenge).
            grants.append(Grant("repository", name, frozenset(granted)))
        token, ttl = self.auth.issue(identity, grants)
        issued = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return Response.json(200, {"token": token, "access_token": token, "expires_in": ttl,
                                   "issued_at": issued})
