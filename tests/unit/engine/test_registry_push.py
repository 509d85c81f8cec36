"""The registry client's push side against a small registry that only takes Basic credentials:
HEAD before upload, a refused mount that opens an upload instead, a streamed PUT, the manifest."""

from __future__ import annotations

import base64
import hashlib
import io
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from minicloud.engine.images.registry import Credentials, RegistryClient, Unauthorized

USER, PASSWORD = "alice", "s3cret"


class BasicRegistry(BaseHTTPRequestHandler):
    blobs: dict[str, bytes] = {}
    manifests: dict[str, bytes] = {}
    log: list[str] = []

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _authorized(self) -> bool:
        expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        if self.headers.get("Authorization") == expected:
            return True
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="test"')
        self.send_header("Content-Length", "0")
        self.end_headers()
        return False

    def _reply(self, status: int, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        if self._authorized():
            self._reply(200 if self.path == "/v2/" else 404)

    def do_HEAD(self) -> None:
        if self._authorized():
            self.log.append(f"HEAD {self.path}")
            self._reply(200 if self.path.rsplit("/", 1)[1] in self.blobs else 404)

    def do_POST(self) -> None:
        if self._authorized():
            self.log.append(f"POST {self.path}")
            self._reply(202, {"Location": "/v2/team/app/blobs/uploads/u1?state=x"})

    def do_PUT(self) -> None:
        if not self._authorized():
            return
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.log.append(f"PUT {self.path.split('?')[0]}")
        if "/manifests/" in self.path:
            self.manifests[self.path.rsplit("/", 1)[1]] = body
            self._reply(201, {"Docker-Content-Digest": "sha256:" + hashlib.sha256(body).hexdigest()})
            return
        digest = self.path.split("digest=", 1)[1].replace("%3A", ":")
        assert "sha256:" + hashlib.sha256(body).hexdigest() == digest
        self.blobs[digest] = body
        self._reply(201)


@pytest.fixture
def registry() -> Iterator[str]:
    BasicRegistry.blobs, BasicRegistry.manifests, BasicRegistry.log = {}, {}, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), BasicRegistry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_push_with_basic_credentials(registry: str) -> None:
    client = RegistryClient(registry, "team/app", Credentials(USER, PASSWORD))
    data = b"layer bytes" * 1000
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    assert client.blob_exists(digest) is False
    location = client.mount_blob(digest, "team/other")  # refused: an upload is opened instead
    assert location is not None and location.endswith("/v2/team/app/blobs/uploads/u1?state=x")
    seen: list[int] = []
    client.upload_blob(location, digest, len(data), io.BytesIO(data), seen.append)
    assert BasicRegistry.blobs[digest] == data and seen[-1] == len(data)
    assert client.blob_exists(digest) is True
    manifest = b'{"schemaVersion":2}'
    pushed = client.put_manifest("v1", manifest, "application/vnd.docker.distribution.manifest.v2+json")
    assert pushed == "sha256:" + hashlib.sha256(manifest).hexdigest()
    mount = f"POST /v2/team/app/blobs/uploads/?mount={digest.replace(':', '%3A')}&from=team%2Fother"
    assert BasicRegistry.log[:2] == [f"HEAD /v2/team/app/blobs/{digest}", mount]


def test_wrong_basic_credentials_are_refused(registry: str) -> None:
    client = RegistryClient(registry, "team/app", Credentials(USER, "wrong"))
    with pytest.raises(Unauthorized):
        client.blob_exists("sha256:" + "0" * 64)
    with pytest.raises(Unauthorized, match="incorrect username or password"):
        RegistryClient(registry, "", Credentials(USER, "wrong")).check_login()
    RegistryClient(registry, "", Credentials(USER, PASSWORD)).check_login()
