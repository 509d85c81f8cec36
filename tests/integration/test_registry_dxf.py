"""python-dxf (a Docker registry v2 client library) against ``minicloud up``, through the token flow."""

from __future__ import annotations

import base64
import hashlib
import json
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.support.server import MinicloudServer

dxf = pytest.importorskip("dxf")


def token(server: MinicloudServer, user: str, password: str, *scopes: str) -> str:
    """A bearer token from the token endpoint (python-dxf only authenticates itself over HTTPS)."""
    query = urllib.parse.urlencode([("service", "minicloud"), *(("scope", s) for s in scopes)])
    basic = base64.b64encode(f"{user}:{password}".encode()).decode()
    req = urllib.request.Request(f"{server.endpoint}/_minicloud/registry/token?{query}",
                                 headers={"authorization": f"Basic {basic}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return str(json.loads(r.read())["token"])


def client(server: MinicloudServer, repo: str, password: str | None = None, *more: str) -> Any:
    assert server.root is not None
    user, secret = ("AWS", password) if password else (server.root.access_key_id, server.root.secret_access_key)
    registry = dxf.DXF(f"127.0.0.1:{server.port}", repo, insecure=True)
    registry.token = token(server, user, secret, f"repository:{repo}:pull,push,delete", *more)
    return registry


def test_dxf_push_alias_pull_delete(server: MinicloudServer, tmp_path: Path) -> None:
    repo = f"dxf/{uuid.uuid4().hex[:8]}"
    registry = client(server, repo)
    path = tmp_path / "blob"
    path.write_bytes(b"python-dxf blob " * 1000)
    digest = registry.push_blob(str(path))
    assert digest == "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    assert registry.blob_size(digest) == path.stat().st_size
    registry.set_alias("v1", digest)
    assert registry.list_aliases() == ["v1"]
    assert registry.get_alias("v1") == [digest]
    assert b"".join(registry.pull_blob(digest)) == path.read_bytes()
    password = server.aws("ecr", "get-login-password").stdout.strip()
    other = client(server, f"{repo}-mounted", password, f"repository:{repo}:pull")
    assert other.mount_blob(repo, digest) == digest
    assert b"".join(other.pull_blob(digest)) == path.read_bytes()
    catalog = dxf.DXF(f"127.0.0.1:{server.port}", repo, insecure=True)
    assert server.root is not None
    catalog.token = token(server, server.root.access_key_id, server.root.secret_access_key, "registry:catalog:*")
    assert repo in catalog.list_repos()
    registry.del_alias("v1")
    assert registry.list_aliases() == []
