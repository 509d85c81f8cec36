"""Layers as read from the metadata store, their ARNs, and the documents Lambda answers with.

    arn:aws:lambda:<region>:<account>:layer:<name>              a layer (LayerArn)
    arn:aws:lambda:<region>:<account>:layer:<name>:<version>    one of its versions (LayerVersionArn)

A layer version's members (Description, CreatedDate, CompatibleRuntimes, ...) are kept as one JSON
document, as function versions' configurations are; its resource policy beside it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from minicloud.services.lambda_.code import MAX_UNZIPPED
from minicloud.services.lambda_.errors import InvalidParameterValueException
from minicloud.services.lambda_.tables import lambda_layer_versions, lambda_layers, lambda_versions

LAYER_ARN = re.compile(r"^arn:aws[a-zA-Z-]*:lambda:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):layer:"
                       r"(?P<name>[a-zA-Z0-9-_]+)(:(?P<version>[0-9]+))?$")
MAX_LAYERS = 5  # per function


@dataclass(frozen=True, slots=True)
class LayerRef:
    """A LayerName parameter or a layer version ARN taken apart."""

    account_id: str
    region: str
    name: str
    version: int | None = None

    @property
    def layer_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account_id}:layer:{self.name}"

    def version_arn(self, version: int | None = None) -> str:
        return f"{self.layer_arn}:{version if version is not None else self.version}"


@dataclass(frozen=True, slots=True)
class LayerVersionRow:
    layer_id: str
    ref: LayerRef  # with its version
    config: dict[str, Any]
    code_sha256: str  # hex
    unzipped_size: int
    policy: dict[str, Any] | None

    @property
    def arn(self) -> str:
        return self.ref.version_arn()

    def policy_document(self) -> str | None:
        if not self.policy or not self.policy.get("Statement"):
            return None
        return json.dumps({k: v for k, v in self.policy.items() if not k.startswith("_")})


def parse_layer_name(raw: str, account_id: str, region: str) -> LayerRef:
    """LayerName: a name (the caller's account and region) or a layer's ARN (the model checked which)."""
    match = LAYER_ARN.match(raw)
    if match is None:
        return LayerRef(account_id, region, raw)
    return LayerRef(match["account"], match["region"], match["name"])


def parse_version_arn(raw: str) -> LayerRef | None:
    match = LAYER_ARN.match(raw)
    if match is None or match["version"] is None:
        return None
    return LayerRef(match["account"], match["region"], match["name"], int(match["version"]))


# -- reads ------------------------------------------------------------------------------------------
def get_layer_id(conn: sa.Connection, ref: LayerRef) -> tuple[str, int] | None:
    """(id, next version number) of a layer that has ever had a version."""
    c = lambda_layers.c
    row = conn.execute(sa.select(c.id, c.next_version).where(
        c.account_id == ref.account_id, c.region == ref.region, c.name == ref.name)).first()
    return (row.id, row.next_version) if row else None


def _versions(conn: sa.Connection, *where: Any) -> list[LayerVersionRow]:
    lc, vc = lambda_layers.c, lambda_layer_versions.c
    rows = conn.execute(sa.select(lc.account_id, lc.region, lc.name, lambda_layer_versions).join(
        lambda_layers, lc.id == vc.layer_id).where(*where).order_by(lc.name, vc.version.desc())).all()
    return [LayerVersionRow(r.layer_id, LayerRef(r.account_id, r.region, r.name, r.version), json.loads(r.config),
                            r.code_sha256, r.unzipped_size, json.loads(r.policy) if r.policy else None)
            for r in rows]


def get_version(conn: sa.Connection, ref: LayerRef) -> LayerVersionRow | None:
    lc, vc = lambda_layers.c, lambda_layer_versions.c
    found = _versions(conn, lc.account_id == ref.account_id, lc.region == ref.region, lc.name == ref.name,
                      vc.version == ref.version)
    return found[0] if found else None


def get_version_by_id(conn: sa.Connection, layer_id: str, version: int) -> LayerVersionRow | None:
    vc = lambda_layer_versions.c
    found = _versions(conn, vc.layer_id == layer_id, vc.version == version)
    return found[0] if found else None


def list_versions(conn: sa.Connection, account_id: str, region: str, name: str | None = None) -> list[LayerVersionRow]:
    """By layer name, newest version first."""
    lc = lambda_layers.c
    where = [lc.account_id == account_id, lc.region == region]
    if name is not None:
        where.append(lc.name == name)
    return _versions(conn, *where)


def digest_in_use(conn: sa.Connection, sha256_hex: str) -> bool:
    """Whether a layer version, or a function version (deleted layer versions keep working for the
    functions that use them), still refers to the zip ``sha256_hex``."""
    vc = lambda_layer_versions.c
    if conn.execute(sa.select(vc.version).where(vc.code_sha256 == sha256_hex).limit(1)).first() is not None:
        return True
    return conn.execute(sa.select(lambda_versions.c.version).where(
        lambda_versions.c.config.contains(sha256_hex)).limit(1)).first() is not None


# -- documents -------------------------------------------------------------------------------------
def matches(config: dict[str, Any], runtime: str | None, architecture: str | None) -> bool:
    """ListLayers/ListLayerVersions filters: a version matches what it declares compatible."""
    if runtime and runtime not in (config.get("CompatibleRuntimes") or []):
        return False
    return not architecture or architecture in (config.get("CompatibleArchitectures") or [])


def list_item(row: LayerVersionRow) -> dict[str, Any]:
    """LayerVersionsListItem."""
    item: dict[str, Any] = {"LayerVersionArn": row.arn, "Version": row.ref.version}
    for key in ("Description", "CreatedDate", "CompatibleRuntimes", "CompatibleArchitectures", "LicenseInfo"):
        if key in row.config:
            item[key] = row.config[key]
    return item


def version_document(row: LayerVersionRow, location: str) -> dict[str, Any]:
    """GetLayerVersion's (and PublishLayerVersion's) answer."""
    doc = list_item(row)
    doc["LayerArn"] = row.ref.layer_arn
    doc["Content"] = {"Location": location, "CodeSha256": row.config["CodeSha256"], "CodeSize": row.config["CodeSize"]}
    return doc


def statement_for(params: dict[str, Any], resource: str) -> dict[str, Any]:
    """AddLayerVersionPermission's statement: an account (or everyone, optionally within an
    organization) may use the version."""
    principal = params["Principal"]
    if principal == "*":
        principal_doc: Any = "*"
    elif principal.isdigit():
        principal_doc = {"AWS": f"arn:aws:iam::{principal}:root"}
    else:
        principal_doc = {"AWS": principal}
    statement: dict[str, Any] = {"Sid": params["StatementId"], "Effect": "Allow", "Principal": principal_doc,
                                 "Action": params["Action"], "Resource": resource}
    if params.get("OrganizationId"):
        statement["Condition"] = {"StringEquals": {"aws:PrincipalOrgID": params["OrganizationId"]}}
    return statement


def check_combined_size(code_unzipped: int, codes: list[dict[str, Any]]) -> None:
    """The unzipped function code with its layers' (``_LayerCode``) within Lambda's 250 MB."""
    total = code_unzipped + sum(int(c["UnzippedSize"]) for c in codes)
    if total > MAX_UNZIPPED:
        raise InvalidParameterValueException("Function code combined with layers exceeds the maximum allowed size of "
                                             f"{MAX_UNZIPPED} bytes. The actual size is {total} bytes.", Type="User")
