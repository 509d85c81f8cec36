"""The registry app on a real metadata store and blob store, called through ASGI without a server."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from minicloud.aws.context import RequestContext
from minicloud.aws.errors import AccessDenied
from minicloud.aws.request import AwsRequest
from minicloud.config import Config
from minicloud.iam import store
from minicloud.iam.accounts import create_account
from minicloud.iam.authorizer import Authorizer
from minicloud.iam.credentials import CredentialStore
from minicloud.iam.identity import Principal, root_principal
from minicloud.registry.api import RegistryApp
from minicloud.runtime import Runtime
from minicloud.services.iam.provider import IamProvider
from minicloud.storage.metadata.db import Database
from minicloud.topology import Topology


@dataclass
class Resp:
    status: int
    headers: dict[str, str]
    body: bytes
    header_list: list[tuple[str, str]] = field(default_factory=list)

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def code(self) -> str:
        return str(self.json()["errors"][0]["code"])


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def asgi_call(app: Any, method: str, url: str, headers: dict[str, str] | None = None,
                    body: bytes = b"", chunks: list[bytes] | None = None) -> Resp:
    path, _, query = url.partition("?")
    scope = {
        "type": "http", "method": method, "path": unquote(path), "raw_path": path.encode(),
        "query_string": query.encode(), "client": ("127.0.0.1", 40000),
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
    }
    parts = chunks if chunks is not None else [body]
    messages = [{"type": "http.request", "body": p, "more_body": i < len(parts) - 1} for i, p in enumerate(parts)]

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = sent[0]
    raw = [(k.decode(), v.decode()) for k, v in start["headers"]]
    return Resp(start["status"], {k: v for k, v in raw}, b"".join(m.get("body", b"") for m in sent[1:]), raw)


@dataclass
class Registry:
    runtime: Runtime
    iam: IamProvider
    app: RegistryApp
    account_id: str
    access_key: str
    secret: str

    @property
    def auth(self) -> dict[str, str]:
        return {"authorization": basic(self.access_key, self.secret)}

    def call(self, method: str, url: str, headers: dict[str, str] | None = None, *, auth: bool = True,
             body: bytes = b"", chunks: list[bytes] | None = None) -> Resp:
        merged = {**(self.auth if auth else {}), **(headers or {})}
        if url.startswith("http"):  # an absolute Location from an earlier answer
            url = "/" + url.split("/", 3)[3]
        return asyncio.run(asgi_call(self.app, method, url, merged, body, chunks))

    def restart(self) -> None:
        """A new app over the same data dir and metadata store, as after ``minicloud up`` again."""
        self.app.blobs.close()
        self.app = RegistryApp(self.runtime)

    # -- content helpers ----------------------------------------------------------------------------
    def push_blob(self, name: str, data: bytes, headers: dict[str, str] | None = None) -> str:
        d = digest(data)
        r = self.call("POST", f"/v2/{name}/blobs/uploads/?digest={d}", headers, body=data)
        assert r.status == 201, r.body
        return d

    def push_image(self, name: str, tag: str = "latest", layer: bytes = b"layer",
                   media_type: str = "application/vnd.oci.image.manifest.v1+json",
                   extra: dict[str, Any] | None = None) -> tuple[str, bytes]:
        config = b'{"architecture":"amd64","os":"linux"}'
        config_type = ("application/vnd.oci.image.config.v1+json" if "oci" in media_type
                       else "application/vnd.docker.container.image.v1+json")
        manifest = {
            "schemaVersion": 2, "mediaType": media_type,
            "config": {"mediaType": config_type, "digest": self.push_blob(name, config), "size": len(config)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        "digest": self.push_blob(name, layer), "size": len(layer)}],
            **(extra or {}),
        }
        body = json.dumps(manifest).encode()
        r = self.call("PUT", f"/v2/{name}/manifests/{tag}", {"content-type": media_type}, body=body)
        assert r.status == 201, r.body
        return digest(body), body

    # -- IAM helpers ---------------------------------------------------------------------------------
    def iam_call(self, op: str, **params: Any) -> dict[str, Any]:
        async def call() -> dict[str, Any]:
            ctx = RequestContext(
                request_id="t", service="iam", operation=op, region="us-east-1",
                principal=root_principal(self.account_id), request=AwsRequest("POST", "/"),
                now=datetime.now(UTC), authorizer=self.runtime.authorizer, access_denied=AccessDenied)
            handler = self.iam.handler(op)
            assert handler is not None
            return await handler(ctx, params)
        return asyncio.run(call())

    def user(self, name: str, *statements: dict[str, Any]) -> dict[str, str]:
        """An IAM user with an inline policy; the Basic header of its access key."""
        self.iam_call("CreateUser", UserName=name)
        if statements:
            policy = json.dumps({"Version": "2012-10-17", "Statement": list(statements)})
            self.iam_call("PutUserPolicy", UserName=name, PolicyName="p", PolicyDocument=policy)
        key = self.iam_call("CreateAccessKey", UserName=name)["AccessKey"]
        return {"authorization": basic(key["AccessKeyId"], key["SecretAccessKey"])}

    def principal(self) -> Principal:
        return root_principal(self.account_id)


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    db = Database(f"sqlite:///{tmp_path / 'metadata.sqlite3'}")
    db.migrate()
    account, keys = db.write_sync(lambda c: create_account(c, "main", "main@example.com"))
    config = Config(data_dir=tmp_path)
    runtime = Runtime(config=config, topology=Topology(config), db=db, credentials=CredentialStore(db),
                      authorizer=Authorizer(), root_keys=keys)
    iam = IamProvider(runtime)
    runtime.authorizer.set_evaluator(iam.evaluator)
    runtime.credentials.add_resolver(store.resolve_user_key)
    reg = Registry(runtime, iam, RegistryApp(runtime), account.account_id, keys.access_key_id,
                   keys.secret_access_key)
    yield reg
    reg.app.blobs.close()
    db.close()
