"""A real IAM provider on a real metadata store (SQLite and PostgreSQL), called without HTTP."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import botocore.parsers
import pytest

from minicloud.aws.context import RequestContext
from minicloud.aws.errors import AccessDenied
from minicloud.aws.protocol.models import load_service_model
from minicloud.aws.protocol.serializers import create_serializer
from minicloud.aws.request import AwsRequest
from minicloud.config import Config
from minicloud.iam import store
from minicloud.iam.accounts import create_account
from minicloud.iam.authorizer import Authorizer
from minicloud.iam.credentials import CredentialStore
from minicloud.iam.identity import Principal, root_principal
from minicloud.runtime import Runtime
from minicloud.services.iam.provider import IamProvider
from minicloud.storage.metadata.db import Database
from minicloud.topology import Topology


def doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(action: str | list[str], resource: str | list[str] = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: str | list[str], resource: str | list[str] = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


TRUST_EC2 = doc(
    {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
)


def _check_shape(value: Any, shape: Any, where: str) -> None:
    """Every member of a result must exist in the model's output shape."""
    if shape.type_name == "structure":
        assert isinstance(value, dict), where
        unknown = set(value) - set(shape.members)
        assert not unknown, f"{where}: not in the model: {unknown}"
        for key, item in value.items():
            if item is not None:
                _check_shape(item, shape.members[key], f"{where}.{key}")
    elif shape.type_name == "list":
        assert isinstance(value, list), where
        for item in value:
            _check_shape(item, shape.member, f"{where}[]")


def _round_trip(op: str, result: dict[str, Any]) -> None:
    """Serialize like the server does, parse like botocore does: what a client would see."""
    model = load_service_model("iam")
    operation = model.operation_model(op)
    if operation.output_shape is None:
        assert result == {}, op
        return
    _check_shape(result, operation.output_shape, op)
    response = create_serializer(model).serialize_result(operation, result, "test")
    parsed = botocore.parsers.create_parser("query").parse(
        {"body": response.body, "headers": dict(response.headers), "status_code": response.status},
        operation.output_shape)
    assert set(parsed) - {"ResponseMetadata"} == {k for k, v in result.items() if v is not None}, op


@dataclass
class Iam:
    runtime: Runtime
    provider: IamProvider
    account_id: str
    root: Principal
    client_ip: str = "10.1.2.3"

    async def acall(self, op: str, principal: Principal | None = None, **params: Any) -> dict[str, Any]:
        ctx = RequestContext(
            request_id="test",
            service="iam",
            operation=op,
            region="us-east-1",
            principal=principal or self.root,
            request=AwsRequest("POST", "/", client_ip=self.client_ip),
            now=datetime.now(UTC),
            authorizer=self.runtime.authorizer,
            access_denied=AccessDenied,
        )
        handler = self.provider.handler(op)
        assert handler is not None, op
        result = await handler(ctx, params)
        assert ctx.authorized, f"{op} returned without an authorization check"
        _round_trip(op, result)
        return result

    def call(self, op: str, principal: Principal | None = None, **params: Any) -> dict[str, Any]:
        return asyncio.run(self.acall(op, principal, **params))

    def user(self, name: str) -> Principal:
        """The principal an IAM user's access key resolves to."""

        def load(conn: Any) -> Principal:
            user = store.get_user(conn, self.account_id, name)
            assert user is not None
            return store.user_principal(conn, user)

        return self.runtime.db.read_sync(load)

    def new_account(self, name: str) -> Principal:
        account, _ = self.runtime.db.write_sync(lambda c: create_account(c, name, f"{name}@example.com"))
        return root_principal(account.account_id)


@pytest.fixture
def iam(metadata_db: Database, tmp_path: Path) -> Iterator[Iam]:
    account, keys = metadata_db.write_sync(lambda c: create_account(c, "main", "main@example.com"))
    config = Config(data_dir=tmp_path)
    runtime = Runtime(
        config=config,
        topology=Topology(config),
        db=metadata_db,
        credentials=CredentialStore(metadata_db),
        authorizer=Authorizer(),
        root_keys=keys,
    )
    provider = IamProvider(runtime)
    runtime.authorizer.set_evaluator(provider.evaluator)
    runtime.credentials.add_resolver(store.resolve_user_key)
    yield Iam(runtime, provider, account.account_id, root_principal(account.account_id))
