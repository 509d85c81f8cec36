"""Functions, versions and aliases as read from the metadata store, and the names and ARNs Lambda uses."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from minicloud.services.lambda_.errors import InvalidParameterValueException, ResourceNotFoundException
from minicloud.services.lambda_.tables import lambda_aliases, lambda_functions, lambda_versions

LATEST = "$LATEST"
NAME = re.compile(r"^[a-zA-Z0-9-_]{1,64}$")
ARN = re.compile(r"^arn:aws[a-zA-Z-]*:lambda:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):function:"
                 r"(?P<name>[a-zA-Z0-9-_]+)(:(?P<qualifier>[a-zA-Z0-9$_-]+))?$")
PARTIAL = re.compile(r"^(?P<account>\d{12}):function:(?P<name>[a-zA-Z0-9-_]+)(:(?P<qualifier>[a-zA-Z0-9$_-]+))?$")
ALIAS_NAME = re.compile(r"^(?!^[0-9]+$)([a-zA-Z0-9-_]+)$")


@dataclass(frozen=True, slots=True)
class FunctionRow:
    id: str
    account_id: str
    region: str
    name: str
    arn: str
    tags: dict[str, str]
    policy: dict[str, Any] | None
    reserved_concurrency: int | None
    next_version: int


@dataclass(frozen=True, slots=True)
class VersionRow:
    version: str
    config: dict[str, Any]
    code_sha256: str | None


@dataclass(frozen=True, slots=True)
class AliasRow:
    name: str
    version: str
    description: str
    routing: dict[str, float] | None
    revision_id: str


@dataclass(frozen=True, slots=True)
class FunctionRef:
    """A FunctionName parameter taken apart: name or ARN (full or partial), with an optional qualifier."""

    name: str
    qualifier: str | None
    account_id: str | None
    region: str | None


def parse_function_name(raw: str, qualifier: str | None = None) -> FunctionRef:
    match = ARN.match(raw)
    if match:
        ref = FunctionRef(match["name"], match["qualifier"], match["account"], match["region"])
    elif (match := PARTIAL.match(raw)) is not None:
        ref = FunctionRef(match["name"], match["qualifier"], match["account"], None)
    else:
        name, _, inline = raw.partition(":")
        if not NAME.match(name) or (inline and not re.match(r"^[a-zA-Z0-9$_-]{1,128}$", inline)):
            raise InvalidParameterValueException(
                f"1 validation error detected: Value '{raw}' at 'functionName' failed to satisfy constraint: Member "
                "must satisfy regular expression pattern: (arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\\d"
                "{1}:)?(\\d{12}:)?(function:)?([a-zA-Z0-9-_\\.]+)(:(\\$LATEST|[a-zA-Z0-9-_]+))?")
        ref = FunctionRef(name, inline or None, None, None)
    if qualifier is not None and ref.qualifier is not None and qualifier != ref.qualifier:
        raise InvalidParameterValueException("The derived qualifier from the function name does not match the "
                                             "specified qualifier.")
    return FunctionRef(ref.name, qualifier or ref.qualifier, ref.account_id, ref.region)


def function_arn(region: str, account_id: str, name: str, qualifier: str | None = None) -> str:
    arn = f"arn:aws:lambda:{region}:{account_id}:function:{name}"
    return f"{arn}:{qualifier}" if qualifier else arn


def _function(row: Any) -> FunctionRow:
    m = row._mapping
    return FunctionRow(m["id"], m["account_id"], m["region"], m["name"], m["arn"], json.loads(m["tags"]),
                       json.loads(m["policy"]) if m["policy"] else None, m["reserved_concurrency"],
                       m["next_version"])


# Built once: the statements on every invocation's path (SQLAlchemy memoizes their cache keys).
_FUNCTION_BY_NAME = sa.select(lambda_functions).where(
    lambda_functions.c.account_id == sa.bindparam("account_id"), lambda_functions.c.region == sa.bindparam("region"),
    lambda_functions.c.name == sa.bindparam("name"))
_VERSION = sa.select(lambda_versions).where(
    lambda_versions.c.function_id == sa.bindparam("function_id"), lambda_versions.c.version == sa.bindparam("version"))
_ALIAS = sa.select(lambda_aliases).where(
    lambda_aliases.c.function_id == sa.bindparam("function_id"), lambda_aliases.c.name == sa.bindparam("name"))


def get_function(conn: sa.Connection, account_id: str, region: str, name: str) -> FunctionRow | None:
    row = conn.execute(_FUNCTION_BY_NAME, {"account_id": account_id, "region": region, "name": name}).first()
    return _function(row) if row else None


def get_function_by_id(conn: sa.Connection, function_id: str) -> FunctionRow | None:
    row = conn.execute(sa.select(lambda_functions).where(lambda_functions.c.id == function_id)).first()
    return _function(row) if row else None


def get_version(conn: sa.Connection, function_id: str, version: str) -> VersionRow | None:
    row = conn.execute(_VERSION, {"function_id": function_id, "version": version}).first()
    return VersionRow(row.version, json.loads(row.config), row.code_sha256) if row else None


def list_versions(conn: sa.Connection, function_id: str) -> list[VersionRow]:
    rows = conn.execute(sa.select(lambda_versions).where(lambda_versions.c.function_id == function_id)).all()
    versions = [VersionRow(r.version, json.loads(r.config), r.code_sha256) for r in rows]
    return sorted(versions, key=lambda v: -1 if v.version == LATEST else int(v.version))


def put_version(conn: sa.Connection, function_id: str, version: VersionRow, insert: bool) -> None:
    values = {"config": json.dumps(version.config), "code_sha256": version.code_sha256}
    if insert:
        conn.execute(lambda_versions.insert().values(function_id=function_id, version=version.version, **values))
    else:
        c = lambda_versions.c
        conn.execute(lambda_versions.update().where(c.function_id == function_id, c.version == version.version)
                     .values(**values))


def get_alias(conn: sa.Connection, function_id: str, name: str) -> AliasRow | None:
    row = conn.execute(_ALIAS, {"function_id": function_id, "name": name}).first()
    return _alias(row) if row else None


def list_aliases(conn: sa.Connection, function_id: str) -> list[AliasRow]:
    c = lambda_aliases.c
    rows = conn.execute(sa.select(lambda_aliases).where(c.function_id == function_id).order_by(c.name)).all()
    return [_alias(r) for r in rows]


def _alias(row: Any) -> AliasRow:
    return AliasRow(row.name, row.version, row.description, json.loads(row.routing) if row.routing else None,
                    row.revision_id)


def code_in_use(conn: sa.Connection, sha256_hex: str) -> bool:
    return conn.execute(sa.select(lambda_versions.c.version).where(
        lambda_versions.c.code_sha256 == sha256_hex).limit(1)).first() is not None


def not_found(arn: str) -> ResourceNotFoundException:
    return ResourceNotFoundException(f"Function not found: {arn}", Type="User")
