"""The registry on the wire of a real ``minicloud up``: TLS probes, connections, auth, crashes."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import socket
import threading
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from tests.support.server import Keys, MinicloudServer


def basic(keys: Keys | None) -> dict[str, str]:
    assert keys is not None
    return {"authorization": "Basic " + base64.b64encode(
        f"{keys.access_key_id}:{keys.secret_access_key}".encode()).decode()}


def request(server: MinicloudServer, method: str, path: str, body: bytes | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def test_a_tls_handshake_on_the_plain_port_gets_http_400(server: MinicloudServer) -> None:
    # The start of a TLS ClientHello, as docker sends it before falling back to plain HTTP.
    hello = bytes.fromhex("16030100f8010000f40303") + os.urandom(32) + b"\x00" * 40
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(hello)
        answer = s.recv(4096)
    assert answer.startswith(b"HTTP/1.1 400")


def test_connection_close_on_every_request(server: MinicloudServer) -> None:
    data = os.urandom(1000)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    headers = {**basic(server.root), "connection": "close"}
    status, h, _ = request(server, "POST", f"/v2/wire/close/blobs/uploads/?digest={digest}", data, headers)
    assert status == 201 and h.get("connection") == "close"
    status, _, body = request(server, "GET", f"/v2/wire/close/blobs/{digest}", None, headers)
    assert status == 200 and body == data


def test_refusals(server: MinicloudServer) -> None:
    status, headers, body = request(server, "GET", "/v2/")
    assert status == 401 and headers["www-authenticate"].startswith('Bearer realm="http://127.0.0.1:')
    status, _, body = request(server, "GET", "/v2/", headers={"authorization": "Basic Zm9vOmJhcg=="})
    assert status == 401 and json.loads(body)["errors"][0]["code"] == "UNAUTHORIZED"
    iam = server.client("iam")
    user = f"reg-{uuid.uuid4().hex[:6]}"
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    keys = Keys(key["AccessKeyId"], key["SecretAccessKey"])
    status, _, body = request(server, "POST", "/v2/refused/app/blobs/uploads/", b"", basic(keys))
    assert status == 403 and json.loads(body)["errors"][0]["code"] == "DENIED"
    token_url = "/_minicloud/registry/token?service=minicloud&scope=repository:refused/app:pull,push"
    status, _, body = request(server, "GET", token_url, None, basic(keys))
    token = json.loads(body)["token"]
    status, headers, _ = request(server, "POST", "/v2/refused/app/blobs/uploads/", b"",
                                 {"authorization": f"Bearer {token}"})
    assert status == 401 and 'error="insufficient_scope"' in headers["www-authenticate"]
    status, _, body = request(server, "GET", "/v2/refused/app/blobs/sha256:123", None, basic(server.root))
    assert status == 400 and json.loads(body)["errors"][0]["code"] == "DIGEST_INVALID"


def test_uploads_and_blobs_survive_a_restart(fresh_server: MinicloudServer) -> None:
    fresh_server.start()
    data = os.urandom(300_000)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    auth = basic(fresh_server.root)
    status, headers, _ = request(fresh_server, "POST", "/v2/restart/app/blobs/uploads/", b"", auth)
    location = headers["location"]
    request(fresh_server, "PATCH", location, data[:100_000], auth)
    fresh_server.stop()
    fresh_server.start()
    auth = basic(fresh_server.root)
    status, headers, _ = request(fresh_server, "GET", location, None, auth)
    assert status == 204 and headers["range"] == "0-99999"
    request(fresh_server, "PATCH", location, data[100_000:], auth)
    status, _, _ = request(fresh_server, "PUT", f"{location}?digest={digest}", b"", auth)
    assert status == 201
    fresh_server.kill()
    fresh_server.start()
    status, _, body = request(fresh_server, "GET", f"/v2/restart/app/blobs/{digest}", None,
                              basic(fresh_server.root))
    assert status == 200 and body == data


def test_kill_during_concurrent_pushes_loses_nothing_acknowledged(fresh_server: MinicloudServer) -> None:
    fresh_server.start()
    auth = basic(fresh_server.root)
    acknowledged: list[tuple[str, str, bytes]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def pusher(i: int) -> None:
        n = 0
        while not stop.is_set():
            data = os.urandom(200_000 + i)
            digest = "sha256:" + hashlib.sha256(data).hexdigest()
            repo = f"crash/repo{i}"
            try:
                status, _, _ = request(fresh_server, "POST", f"/v2/{repo}/blobs/uploads/?digest={digest}", data, auth)
            except OSError:
                return
            if status == 201:
                with lock:
                    acknowledged.append((repo, digest, data))
            n += 1

    threads = [threading.Thread(target=pusher, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    while len(acknowledged) < 40:
        threading.Event().wait(0.05)
    fresh_server.kill()
    stop.set()
    for t in threads:
        t.join()
    fresh_server.start()
    auth = basic(fresh_server.root)
    for repo, digest, data in acknowledged:
        status, _, body = request(fresh_server, "GET", f"/v2/{repo}/blobs/{digest}", None, auth)
        assert status == 200 and body == data
    # nothing half-written is visible: every committed file hashes to its name
    for path in Path(fresh_server.data_dir, "blobs").glob("*/sha256/*/*"):
        assert hashlib.sha256(path.read_bytes()).hexdigest() == path.name


def test_anonymous_pull_only_where_a_repository_policy_allows(server: MinicloudServer) -> None:
    repo = f"public/{uuid.uuid4().hex[:8]}"
    data = b"public bytes"
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    request(server, "POST", f"/v2/{repo}/blobs/uploads/?digest={digest}", data, basic(server.root))
    assert request(server, "GET", f"/v2/{repo}/blobs/{digest}")[0] == 401
    policy = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": "*", "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]}]})
    server.client("ecr").set_repository_policy(repositoryName=repo, policyText=policy)
    status, _, body = request(server, "GET", f"/_minicloud/registry/token?scope=repository:{repo}:pull")
    token = json.loads(body)["token"]
    status, _, body = request(server, "GET", f"/v2/{repo}/blobs/{digest}", None, {"authorization": f"Bearer {token}"})
    assert status == 200 and body == data
    status, _, body = request(server, "GET", f"/_minicloud/registry/token?scope=repository:{repo}:pull,push")
    push_token = json.loads(body)["token"]
    status, _, _ = request(server, "POST", f"/v2/{repo}/blobs/uploads/", b"", {"authorization": f"Bearer {push_token}"})
    assert status == 401


def test_unknown_paths_and_methods_are_not_500(server: MinicloudServer) -> None:
    auth = basic(server.root)
    for method, path in [("GET", "/v2/x/unknown"), ("PUT", "/v2/_catalog"), ("POST", "/v2/a/manifests/b"),
                         ("GET", "/_minicloud/registry/nothing"), ("PATCH", "/v2/a/blobs/uploads/zzz"),
                         ("GET", "/v2/a/tags/list?n=-1"), ("GET", "/v2/" + "a" * 300 + "/tags/list")]:
        status, _, body = request(server, method, path, b"" if method != "GET" else None, auth)
        assert 400 <= status < 500, (method, path, status)
        assert json.loads(body)["errors"][0]["code"]
    with urllib.request.urlopen(f"{server.endpoint}/_minicloud/health", timeout=5) as r:
        assert r.status == 200
    try:
        urllib.request.urlopen(f"{server.endpoint}/v2/_catalog", timeout=5)
    except urllib.error.HTTPError as err:
        assert err.code == 401
