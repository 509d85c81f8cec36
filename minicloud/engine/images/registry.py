"""A client for the OCI Distribution API: manifests and blobs, with the Bearer token challenge and
Basic auth, redirects, and ranged requests to resume blob downloads; for push, blob existence
checks (HEAD), cross-repository mounts, monolithic uploads and manifest puts.

Blocking (``http.client``): the puller and pusher call it through ``asyncio.to_thread``, one
thread per transfer, so that hashing, reading and writing never run on the event loop.
"""

from __future__ import annotations

import base64
import http.client
import json
import re
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO
from urllib.parse import quote, urlencode, urljoin, urlsplit

from minicloud.engine.content import Digest, Writer
from minicloud.engine.errors import EngineError, InvalidArgument, NotFound
from minicloud.engine.images.reference import DEFAULT_DOMAIN, Reference

MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
_CHUNK = 1 << 20
_LOOPBACK = re.compile(r"^(localhost|127\.\d+\.\d+\.\d+|\[::1\])(:\d+)?$")
MAX_MANIFEST = 4 * 1024 * 1024


class RegistryError(EngineError):
    pass


class Unauthorized(RegistryError):
    status = 401


@dataclass(frozen=True, slots=True)
class Credentials:
    username: str
    password: str


@dataclass(frozen=True, slots=True)
class Manifest:
    data: bytes
    media_type: str
    digest: Digest


def endpoint_for(ref: Reference, mirror: str | None) -> str:
    """``http(s)://host[:port]`` for a reference: Docker Hub goes to the mirror; loopback is HTTP."""
    if ref.domain == DEFAULT_DOMAIN:
        if not mirror:
            raise NotFound("docker.io is not reachable from minicloud and no mirror registry is configured "
                           "(set MINICLOUD_ENGINE_MIRROR)")
        return mirror.rstrip("/")
    scheme = "http" if _LOOPBACK.match(ref.domain) else "https"
    return f"{scheme}://{ref.domain}"


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.partition(" ")
    params = dict(re.findall(r'(\w+)="([^"]*)"', rest))
    return scheme.lower(), params


class ProgressReader:
    """A file read by ``http.client`` while it uploads, reporting how far it got."""

    def __init__(self, raw: BinaryIO, progress: Callable[[int], None] | None) -> None:
        self.raw = raw
        self.progress = progress
        self.offset = 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.offset += len(data)
        if self.progress is not None and data:
            self.progress(self.offset)
        return data

    def rewind(self) -> None:
        self.raw.seek(0)
        self.offset = 0


class RegistryClient:
    """One repository on one registry; safe to share between threads. ``scopes`` are asked for
    together with a Bearer challenge's own (a push asks for ``pull,push`` and a mount's source)."""

    def __init__(self, base_url: str, repository: str, credentials: Credentials | None = None,
                 timeout: float = 60.0, scopes: tuple[str, ...] = ()) -> None:
        self.base_url = base_url
        self.repository = repository
        self.credentials = credentials
        self.timeout = timeout
        self.scopes = scopes
        self._token: str | None = None
        self._basic = False
        self._lock = threading.Lock()

    # -- manifests ------------------------------------------------------------------------------
    def manifest(self, reference: str, accept: tuple[str, ...] = MANIFEST_TYPES) -> Manifest:
        status, headers, body = self._request_all("GET", f"/v2/{self.repository}/manifests/{reference}",
                                                  {"Accept": ", ".join(accept)}, MAX_MANIFEST)
        if status == 404:
            raise NotFound(f"manifest unknown: manifest for {self.repository}:{reference} not found")
        if status != 200:
            raise RegistryError(_error_text(status, body))
        digest = Digest.of(body)
        media_type = headers.get("content-type", "").split(";")[0].strip()
        try:
            media_type = json.loads(body).get("mediaType") or media_type
        except ValueError:
            raise RegistryError(f"the registry returned an invalid manifest for {reference}") from None
        if reference.startswith("sha256:") and digest != reference:
            raise InvalidArgument(f"manifest digest mismatch: asked for {reference}, got {digest}")
        return Manifest(body, media_type, digest)

    # -- blobs ----------------------------------------------------------------------------------
    def fetch_blob(self, digest: Digest, size: int, writer: Writer,
                   progress: Callable[[int], None] | None = None) -> None:
        """Download into ``writer`` (resuming at its offset); the caller commits and verifies."""
        headers = {}
        if writer.offset:
            if writer.offset >= size > 0:
                return
            headers["Range"] = f"bytes={writer.offset}-"
        conn, response = self._open("GET", f"/v2/{self.repository}/blobs/{digest}", headers)
        try:
            if response.status == 200 and writer.offset:
                writer.truncate()  # the server ignored the range: start over
            elif response.status not in (200, 206):
                body = response.read(65536)
                if response.status == 404:
                    raise NotFound(f"blob unknown: {digest}")
                raise RegistryError(_error_text(response.status, body))
            while chunk := response.read(_CHUNK):
                writer.write(chunk)
                if progress is not None:
                    progress(writer.offset)
        finally:
            conn.close()

    def check_login(self) -> None:
        """``docker login``: the registry's base endpoint must answer 200 with these credentials."""
        try:
            status, _headers, _body = self._request_all("GET", "/v2/", {}, 65536)
        except Unauthorized:
            status = 401
        if status == 401:
            raise Unauthorized("unauthorized: incorrect username or password")
        if status != 200:
            raise RegistryError(f"login attempt to {self.base_url}/v2/ failed with status: {status}")

    # -- push -----------------------------------------------------------------------------------
    def blob_exists(self, digest: str) -> bool:
        status, _headers, body = self._request_all("HEAD", f"/v2/{self.repository}/blobs/{digest}", {}, 0)
        if status in (200, 404):
            return status == 200
        raise RegistryError(_error_text(status, body))

    def mount_blob(self, digest: str, source: str) -> str | None:
        """Mount ``digest`` from repository ``source`` of the same registry: ``None`` when mounted,
        else the location of the upload the registry opened instead."""
        query = urlencode({"mount": digest, "from": source})
        status, headers, body = self._request_all("POST", f"/v2/{self.repository}/blobs/uploads/?{query}",
                                                  {"Content-Length": "0"}, 65536)
        if status == 201:
            return None
        if status == 202 and headers.get("location"):
            return urljoin(self.base_url + "/", headers["location"])
        raise RegistryError(_error_text(status, body))

    def start_upload(self) -> str:
        status, headers, body = self._request_all("POST", f"/v2/{self.repository}/blobs/uploads/",
                                                  {"Content-Length": "0"}, 65536)
        if status != 202 or not headers.get("location"):
            raise RegistryError(_error_text(status, body))
        return urljoin(self.base_url + "/", headers["location"])

    def upload_blob(self, location: str, digest: str, size: int, source: BinaryIO,
                    progress: Callable[[int], None] | None = None) -> None:
        """Finish the upload at ``location`` with the whole blob in one PUT (streamed from ``source``)."""
        parts = urlsplit(location)
        sep = "&" if parts.query else "?"
        target = f"{parts.path}{'?' + parts.query if parts.query else ''}{sep}digest={quote(digest)}"
        reader = ProgressReader(source, progress)
        status, _headers, body = self._request_all(
            "PUT", target, {"Content-Type": "application/octet-stream", "Content-Length": str(size)}, 65536,
            body=reader)
        if status != 201:
            raise RegistryError(_error_text(status, body))

    def put_manifest(self, reference: str, data: bytes, media_type: str) -> str:
        status, headers, body = self._request_all(
            "PUT", f"/v2/{self.repository}/manifests/{reference}",
            {"Content-Type": media_type, "Content-Length": str(len(data))}, 65536, body=data)
        if status != 201:
            raise RegistryError(_error_text(status, body))
        return headers.get("docker-content-digest") or str(Digest.of(data))

    # -- transport ------------------------------------------------------------------------------
    def _request_all(self, method: str, path: str, headers: dict[str, str], limit: int,
                     body: bytes | ProgressReader | None = None) -> tuple[int, dict[str, str], bytes]:
        conn, response = self._open(method, path, headers, body)
        try:
            data = b"" if method == "HEAD" else response.read(limit + 1)
            if len(data) > limit:
                raise RegistryError(f"response to {path} is larger than {limit} bytes")
            return response.status, {k.lower(): v for k, v in response.getheaders()}, data
        finally:
            conn.close()

    def _open(self, method: str, path: str, headers: dict[str, str], body: bytes | ProgressReader | None = None,
              ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        url = self.base_url + path if path.startswith("/") else path
        authorized = False
        for _ in range(8):
            if isinstance(body, ProgressReader):
                body.rewind()
            conn, response = self._send(method, url, {**headers, **self._auth_header(url)}, body)
            if response.status == 401 and not authorized:
                challenge = response.getheader("WWW-Authenticate", "")
                response.read()
                conn.close()
                self._answer(challenge)
                authorized = True
                continue
            if response.status in (301, 302, 303, 307, 308):
                location = response.getheader("Location", "")
                response.read()
                conn.close()
                url = urljoin(url, location)
                continue
            if response.status == 401:
                response.read()
                conn.close()
                raise Unauthorized(f"unauthorized: authentication required for {self.repository}")
            return conn, response
        raise RegistryError(f"too many redirects for {path}")

    def _send(self, method: str, url: str, headers: dict[str, str], body: bytes | ProgressReader | None = None,
              ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        conn: http.client.HTTPConnection
        if parts.scheme == "https":
            conn = http.client.HTTPSConnection(parts.netloc, timeout=self.timeout,
                                               context=ssl.create_default_context(), blocksize=_CHUNK)
        else:
            conn = http.client.HTTPConnection(parts.netloc, timeout=self.timeout, blocksize=_CHUNK)
        try:
            conn.request(method, target, body=body,
                         headers={"User-Agent": "minicloud-engine", **headers})
            return conn, conn.getresponse()
        except OSError as exc:
            conn.close()
            raise RegistryError(f"cannot reach registry {parts.netloc}: {exc}") from None

    def _auth_header(self, url: str) -> dict[str, str]:
        if urlsplit(url).netloc != urlsplit(self.base_url).netloc:
            return {}  # never send credentials to a redirect target
        with self._lock:
            if self._token:
                return {"Authorization": f"Bearer {self._token}"}
        if self._basic and self.credentials:
            raw = f"{self.credentials.username}:{self.credentials.password}".encode()
            return {"Authorization": "Basic " + base64.b64encode(raw).decode()}
        return {}

    def _answer(self, challenge: str) -> None:
        scheme, params = parse_challenge(challenge)
        if scheme == "basic":
            if not self.credentials:
                raise Unauthorized(f"unauthorized: authentication required for {self.repository}")
            self._basic = True
            return
        if scheme != "bearer" or "realm" not in params:
            raise Unauthorized(f"unauthorized: unsupported authentication challenge {challenge!r}")
        scopes = (params.get("scope") or (f"repository:{self.repository}:pull" if self.repository else "")).split()
        scopes += [s for s in self.scopes if s not in scopes]
        query: list[tuple[str, str]] = [("scope", s) for s in scopes]
        if "service" in params:
            query.append(("service", params["service"]))
        headers = {}
        if self.credentials:
            raw = f"{self.credentials.username}:{self.credentials.password}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
        sep = "&" if "?" in params["realm"] else "?"
        conn, response = self._send("GET", params["realm"] + sep + urlencode(query), headers)
        try:
            body = response.read(65536)
        finally:
            conn.close()
        if response.status != 200:
            raise Unauthorized(f"unauthorized: the token service answered {response.status}")
        doc = json.loads(body)
        with self._lock:
            self._token = doc.get("token") or doc.get("access_token")


def _error_text(status: int, body: bytes) -> str:
    try:
        errors = json.loads(body).get("errors") or []
        if errors:
            return "; ".join(f"{e.get('code', '').lower()}: {e.get('message', '')}" for e in errors)
    except (ValueError, AttributeError):
        pass
    return f"registry answered HTTP {status}"
