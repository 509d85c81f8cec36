"""A client for the OCI Distribution API: manifests and blobs, with the Bearer token challenge and
Basic auth, redirects, and ranged requests to resume blob downloads.

Blocking (``http.client``): the puller calls it through ``asyncio.to_thread``, one thread per
download, so that hashing and writing never run on the event loop.
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
from urllib.parse import urlencode, urljoin, urlsplit

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


class RegistryClient:
    """One repository on one registry; safe to share between threads."""

    def __init__(self, base_url: str, repository: str, credentials: Credentials | None = None,
                 timeout: float = 60.0) -> None:
        self.base_url = base_url
        self.repository = repository
        self.credentials = credentials
        self.timeout = timeout
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

    # -- transport ------------------------------------------------------------------------------
    def _request_all(self, method: str, path: str, headers: dict[str, str],
                     limit: int) -> tuple[int, dict[str, str], bytes]:
        conn, response = self._open(method, path, headers)
        try:
            body = response.read(limit + 1)
            if len(body) > limit:
                raise RegistryError(f"response to {path} is larger than {limit} bytes")
            return response.status, {k.lower(): v for k, v in response.getheaders()}, body
        finally:
            conn.close()

    def _open(self, method: str, path: str,
              headers: dict[str, str]) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        url = self.base_url + path
        authorized = False
        for _ in range(8):
            conn, response = self._send(method, url, {**headers, **self._auth_header(url)})
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

    def _send(self, method: str, url: str,
              headers: dict[str, str]) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        conn: http.client.HTTPConnection
        if parts.scheme == "https":
            conn = http.client.HTTPSConnection(parts.netloc, timeout=self.timeout,
                                               context=ssl.create_default_context())
        else:
            conn = http.client.HTTPConnection(parts.netloc, timeout=self.timeout)
        try:
            conn.request(method, target, headers={"User-Agent": "minicloud-engine", **headers})
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
        query = {"scope": params.get("scope") or f"repository:{self.repository}:pull"}
        if "service" in params:
            query["service"] = params["service"]
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
