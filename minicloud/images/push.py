"""Push built images into an OCI Distribution registry (minicloud's own): only what is missing.

For each blob: ``HEAD`` first; when absent, a cross-repository mount (from a repository this run
already pushed it to, or, without ``from``, any repository of the account that links it); only
then a monolithic upload streamed from the cache. The manifest is ``HEAD``-ed by tag and put only
when its digest differs. Credentials go as HTTP Basic on every request (an access key id and its
secret, as ``docker login`` sends them).

The HTTP calls are blocking (``http.client``) and run in threads; ``Pusher`` is the async face.
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote, urlencode, urljoin, urlsplit

from minicloud.images.oci import Document


class PushError(RuntimeError):
    pass


@dataclass(slots=True)
class PushStats:
    present: int = 0  # blobs the repository already had
    mounted: int = 0
    uploaded: int = 0
    uploaded_bytes: int = 0
    manifests_put: int = 0


@dataclass(frozen=True, slots=True)
class BlobSource:
    digest: str
    size: int
    path: Path | None = None  # a file in the cache, or ...
    data: bytes | None = None  # ... small bytes (the config)


def _error_text(status: int, body: bytes) -> str:
    try:
        errors = json.loads(body).get("errors") or []
        if errors:
            return "; ".join(f"{e.get('code', '')}: {e.get('message', '')}" for e in errors)
    except (ValueError, AttributeError):
        pass
    return f"HTTP {status}"


class RegistryHTTP:
    """Blocking calls to one registry with Basic credentials."""

    def __init__(self, endpoint: str, keys: tuple[str, str], timeout: float = 300.0) -> None:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise PushError(f"invalid registry endpoint {endpoint!r} (want http://host:port)")
        self.scheme, self.netloc = parts.scheme, parts.netloc
        self.timeout = timeout
        token = base64.b64encode(f"{keys[0]}:{keys[1]}".encode()).decode()
        self.auth = f"Basic {token}"

    def request(self, method: str, target: str, headers: dict[str, str] | None = None,
                body: bytes | BinaryIO | None = None, length: int | None = None) -> tuple[int, dict[str, str], bytes]:
        conn: http.client.HTTPConnection
        if self.scheme == "https":
            conn = http.client.HTTPSConnection(self.netloc, timeout=self.timeout)
        else:
            conn = http.client.HTTPConnection(self.netloc, timeout=self.timeout)
        all_headers = {"Authorization": self.auth, "User-Agent": "minicloud-images", **(headers or {})}
        if body is not None:
            all_headers["Content-Length"] = str(length if length is not None else len(body))  # type: ignore[arg-type]
        try:
            conn.request(method, target, body=body, headers=all_headers)
            response = conn.getresponse()
            data = response.read()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, data
        except OSError as exc:
            raise PushError(f"cannot reach the registry at {self.netloc}: {exc}") from None
        finally:
            conn.close()

    def check(self, status: int, body: bytes, what: str, *expected: int) -> None:
        if status == 401:
            raise PushError(f"{what}: the registry refused the credentials (401)")
        if status not in expected:
            raise PushError(f"{what}: {_error_text(status, body)}")

    def ping(self) -> None:
        """Fail early (before any build) when the registry is unreachable or refuses the keys."""
        status, _, body = self.request("GET", "/v2/")
        self.check(status, body, f"registry at {self.netloc}", 200)

    # -- blobs ----------------------------------------------------------------------------------
    def has_blob(self, repo: str, digest: str) -> bool:
        status, _, body = self.request("HEAD", f"/v2/{repo}/blobs/{digest}")
        if status == 404:
            return False
        self.check(status, body, f"HEAD blob {digest} in {repo}", 200)
        return True

    def mount(self, repo: str, digest: str, source: str | None) -> str | None:
        """Mount ``digest`` into ``repo``; ``None`` when done, else the upload URL to use instead."""
        query = {"mount": digest, **({"from": source} if source else {})}
        status, headers, body = self.request("POST", f"/v2/{repo}/blobs/uploads/?{urlencode(query)}")
        if status == 201:
            return None
        self.check(status, body, f"mount {digest} into {repo}", 202)
        return headers.get("location") or f"/v2/{repo}/blobs/uploads/"

    def upload(self, repo: str, blob: BlobSource, location: str) -> None:
        target = urljoin(f"{self.scheme}://{self.netloc}/v2/{repo}/blobs/uploads/", location)
        parts = urlsplit(target)
        separator = "&" if parts.query else ""
        path = f"{parts.path}?{parts.query}{separator}digest={quote(blob.digest)}"
        headers = {"Content-Type": "application/octet-stream"}
        if blob.data is not None:
            status, _, body = self.request("PUT", path, headers, blob.data)
        else:
            assert blob.path is not None
            with open(blob.path, "rb") as handle:
                status, _, body = self.request("PUT", path, headers, handle, blob.size)
        self.check(status, body, f"upload {blob.digest} to {repo}", 201)

    # -- manifests ------------------------------------------------------------------------------
    def manifest_digest(self, repo: str, tag: str) -> str | None:
        accept = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, " \
                 "application/vnd.docker.distribution.manifest.v2+json"
        status, headers, body = self.request("HEAD", f"/v2/{repo}/manifests/{tag}", {"Accept": accept})
        if status == 404:
            return None
        self.check(status, body, f"HEAD manifest {repo}:{tag}", 200)
        return headers.get("docker-content-digest")

    def put_manifest(self, repo: str, tag: str, manifest: Document) -> None:
        status, _, body = self.request("PUT", f"/v2/{repo}/manifests/{tag}",
                                       {"Content-Type": manifest.media_type}, manifest.data)
        self.check(status, body, f"put manifest {repo}:{tag}", 201)


@dataclass
class Pusher:
    """Pushes images, sharing what one push learnt (where a blob already is) with the next."""

    http: RegistryHTTP
    stats: dict[str, PushStats] = field(default_factory=dict)
    _homes: dict[str, str] = field(default_factory=dict)  # digest -> a repository that has it
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    async def push(self, repo: str, tags: tuple[str, ...], blobs: list[BlobSource], manifest: Document) -> PushStats:
        stats = PushStats()
        for blob in blobs:  # in order: a layer shared with a base is mounted, not uploaded twice
            lock = self._locks.setdefault(blob.digest, asyncio.Lock())
            async with lock:
                await self._blob(repo, blob, stats)
        for tag in tags:
            if await asyncio.to_thread(self.http.manifest_digest, repo, tag) != manifest.digest:
                await asyncio.to_thread(self.http.put_manifest, repo, tag, manifest)
                stats.manifests_put += 1
        self.stats[repo] = stats
        return stats

    async def _blob(self, repo: str, blob: BlobSource, stats: PushStats) -> None:
        if await asyncio.to_thread(self.http.has_blob, repo, blob.digest):
            stats.present += 1
        else:
            location = await asyncio.to_thread(self.http.mount, repo, blob.digest, self._homes.get(blob.digest))
            if location is None:
                stats.mounted += 1
            else:
                await asyncio.to_thread(self.http.upload, repo, blob, location)
                stats.uploaded += 1
                stats.uploaded_bytes += blob.size
        self._homes.setdefault(blob.digest, repo)
