"""Layers: PublishLayerVersion, Get/List/DeleteLayerVersion(s), ListLayers, the versions' resource
policies (Add/RemoveLayerVersionPermission, GetLayerVersionPolicy), and the layers of functions.

A function refers to up to five layer *versions*; its configuration keeps, beside ``Layers``
([{Arn, CodeSize}]), each one's zip digest and unzipped size (``_LayerCode``), so that a layer
version deleted later keeps working for the functions that already use it, as on AWS. At
invocation the layers are unpacked (once per digest) and merged, in order, into the directory
mounted read-only at /opt (``CodeStore.merged``).

Authorization: lambda:PublishLayerVersion on the layer's ARN; lambda:GetLayerVersion,
DeleteLayerVersion, Add/RemoveLayerVersionPermission and GetLayerVersionPolicy on the version's
ARN (another account's version only as its policy allows); lambda:ListLayers and
lambda:ListLayerVersions on "*". Whoever gives a function a layer needs lambda:GetLayerVersion on it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from minicloud.aws.context import RequestContext
from minicloud.aws.pagination import decode_token, encode_token
from minicloud.services.lambda_ import layer_model
from minicloud.services.lambda_.base import LambdaBase
from minicloud.services.lambda_.code import StoredCode
from minicloud.services.lambda_.errors import (
    InvalidParameterValueException,
    PreconditionFailedException,
    ResourceConflictException,
    ResourceNotFoundException,
)
from minicloud.services.lambda_.functions import timestamp
from minicloud.services.lambda_.layer_model import LayerRef, LayerVersionRow, check_combined_size
from minicloud.services.lambda_.tables import lambda_layer_versions, lambda_layers

log = logging.getLogger("minicloud.lambda.layers")

NOT_FOUND = "The resource you requested does not exist."
LAYER_URL_PREFIX = "/_minicloud/lambda/layer/"


class LayersMixin(LambdaBase):
    # -- publish -------------------------------------------------------------------------------------
    async def publish_layer_version(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        ref = layer_model.parse_layer_name(params["LayerName"], ctx.account_id, ctx.region)
        await ctx.authorize("lambda:PublishLayerVersion", ref.layer_arn, resource_account=ref.account_id)
        if ref.region != ctx.region:
            raise InvalidParameterValueException(f"Layer {ref.layer_arn} is not in region {ctx.region}.")
        stored = await self._layer_zip(ctx, params.get("Content") or {})
        config: dict[str, Any] = {"Description": params.get("Description") or "", "CreatedDate": timestamp(),
                                  "CodeSha256": base64.b64encode(bytes.fromhex(stored.sha256_hex)).decode(),
                                  "CodeSize": stored.size}
        for key in ("CompatibleRuntimes", "CompatibleArchitectures", "LicenseInfo"):
            if params.get(key):
                config[key] = params[key]
        row = await self.db.write(lambda conn: _insert_version(conn, ref, config, stored))
        return layer_model.version_document(row, self.layer_location(ctx, row))

    async def _layer_zip(self, ctx: RequestContext, content: dict[str, Any]) -> StoredCode:
        data = await self.zip_bytes(ctx, content)
        return await asyncio.to_thread(self.layer_code.put, data, "PublishLayerVersion", False)

    # -- read -------------------------------------------------------------------------------------------
    async def get_layer_version(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        ref = layer_model.parse_layer_name(params["LayerName"], ctx.account_id, ctx.region)
        row = await self._version(ctx, LayerRef(ref.account_id, ref.region, ref.name, int(params["VersionNumber"])),
                                  "lambda:GetLayerVersion")
        return layer_model.version_document(row, self.layer_location(ctx, row))

    async def get_layer_version_by_arn(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        ref = layer_model.parse_version_arn(params["Arn"])
        if ref is None:  # (the model's pattern lets through an "awslayer" ARN: none exists here)
            raise ResourceNotFoundException(NOT_FOUND, Type="User")
        row = await self._version(ctx, ref, "lambda:GetLayerVersion")
        return layer_model.version_document(row, self.layer_location(ctx, row))

    async def _version(self, ctx: RequestContext, ref: LayerRef, action: str) -> LayerVersionRow:
        """The version ``ref`` once the caller may ``action`` it (as its policy allows another account)."""
        if ref.version is None or ref.version < 1:
            raise InvalidParameterValueException("Layer Version Cannot be less than 1", Type="User")
        row = await self.db.read(lambda conn: layer_model.get_version(conn, ref))
        await ctx.authorize(action, ref.version_arn(), resource_account=ref.account_id,
                            resource_policy=row.policy_document() if row else None)
        if row is None:
            raise ResourceNotFoundException(NOT_FOUND, Type="User")
        return row

    async def list_layers(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        await ctx.authorize("lambda:ListLayers", "*")
        after = _marker(params, "after")
        runtime, architecture = params.get("CompatibleRuntime"), params.get("CompatibleArchitecture")
        rows = await self.db.read(lambda conn: layer_model.list_versions(conn, ctx.account_id, ctx.region))
        latest: dict[str, LayerVersionRow] = {}
        for row in rows:  # by name, newest first: the first match of a name is its latest matching version
            if row.ref.name > str(after or "") and row.ref.name not in latest and \
                    layer_model.matches(row.config, runtime, architecture):
                latest[row.ref.name] = row
        names = sorted(latest)
        limit = int(params.get("MaxItems") or 50)
        page = names[:limit]
        result: dict[str, Any] = {"Layers": [
            {"LayerName": name, "LayerArn": latest[name].ref.layer_arn,
             "LatestMatchingVersion": layer_model.list_item(latest[name])} for name in page]}
        if len(names) > limit:
            result["NextMarker"] = encode_token({"after": page[-1]})
        return result

    async def list_layer_versions(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        ref = layer_model.parse_layer_name(params["LayerName"], ctx.account_id, ctx.region)
        await ctx.authorize("lambda:ListLayerVersions", "*", resource_account=ref.account_id)
        before = _marker(params, "before")
        runtime, architecture = params.get("CompatibleRuntime"), params.get("CompatibleArchitecture")
        rows = await self.db.read(lambda conn: layer_model.list_versions(conn, ref.account_id, ref.region, ref.name))
        found = [r for r in rows if (before is None or (r.ref.version or 0) < int(before))
                 and layer_model.matches(r.config, runtime, architecture)]
        limit = int(params.get("MaxItems") or 50)
        page = found[:limit]
        result: dict[str, Any] = {"LayerVersions": [layer_model.list_item(r) for r in page]}
        if len(found) > limit:
            result["NextMarker"] = encode_token({"before": page[-1].ref.version})
        return result

    # -- delete -----------------------------------------------------------------------------------------
    async def delete_layer_version(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        """Idempotent, as on AWS. The zip stays while a function version still uses it."""
        named = layer_model.parse_layer_name(params["LayerName"], ctx.account_id, ctx.region)
        ref = LayerRef(named.account_id, named.region, named.name, int(params["VersionNumber"]))
        if (ref.version or 0) < 1:
            raise InvalidParameterValueException("Layer Version Cannot be less than 1", Type="User")
        await ctx.authorize("lambda:DeleteLayerVersion", ref.version_arn(), resource_account=ref.account_id)

        def delete(conn: sa.Connection) -> str | None:
            row = layer_model.get_version(conn, ref)
            if row is None:
                return None
            vc = lambda_layer_versions.c
            conn.execute(lambda_layer_versions.delete().where(vc.layer_id == row.layer_id,
                                                              vc.version == ref.version))
            return None if layer_model.digest_in_use(conn, row.code_sha256) else row.code_sha256

        unused = await self.db.write(delete)
        if unused is not None:
            self._discard_later({unused})
        return {}

    async def discard_unused_layers(self, digests: set[str]) -> None:
        """After function versions went away: remove the layer zips nothing refers to any more."""
        self._discard_later(digests)

    def _discard_later(self, digests: set[str]) -> None:
        """Remove the zips of ``digests`` ``layer_discard_delay`` seconds from now, those that
        nothing refers to *then*: a function being given the layer version (read, its configuration
        not written yet), or a publish of the same bytes (which found the zip there), have long
        committed their reference by that time. A zip whose removal a stop or crash interrupts
        stays on disk, unused."""
        task = asyncio.get_running_loop().create_task(self._discard_after(digests, self.settings.layer_discard_delay))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _discard_after(self, digests: set[str], delay: float) -> None:
        await asyncio.sleep(delay)
        for digest in digests:
            try:
                if not await self.db.read(_in_use(digest)):
                    await asyncio.to_thread(self.layer_code.discard, digest)
            except Exception:  # (left on disk: the next removal of the same digest tries again)
                log.exception("removing the unused layer zip %s failed", digest)

    # -- resource policy ---------------------------------------------------------------------------------
    async def add_layer_version_permission(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        row = await self._version_for_policy(ctx, params, "lambda:AddLayerVersionPermission")
        statement = layer_model.statement_for(params, row.arn)
        if params.get("OrganizationId") and params["Principal"] != "*":
            raise InvalidParameterValueException("OrganizationId can only be specified when Principal is '*'.",
                                                 Type="User")

        def add(conn: sa.Connection) -> str:
            current = layer_model.get_version(conn, row.ref)
            if current is None:
                raise _version_not_found(row.ref)
            policy = current.policy or {"Version": "2012-10-17", "Id": "default", "Statement": []}
            if any(s.get("Sid") == statement["Sid"] for s in policy["Statement"]):
                raise ResourceConflictException(
                    f"The statement id ({statement['Sid']}) provided already exists. Please provide a new statement "
                    "id, or remove the existing statement.", Type="User")
            _check_policy_revision(policy, params.get("RevisionId"))
            policy["Statement"].append(statement)
            policy["_RevisionId"] = str(uuid.uuid4())
            _save_policy(conn, current, policy)
            return str(policy["_RevisionId"])

        revision = await self.db.write(add)
        return {"Statement": json.dumps(statement), "RevisionId": revision}

    async def remove_layer_version_permission(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        row = await self._version_for_policy(ctx, params, "lambda:RemoveLayerVersionPermission")
        sid = params["StatementId"]

        def remove(conn: sa.Connection) -> None:
            current = layer_model.get_version(conn, row.ref)
            if current is None:
                raise _version_not_found(row.ref)
            policy = current.policy or {"Statement": []}
            _check_policy_revision(policy, params.get("RevisionId"))
            kept = [s for s in policy["Statement"] if s.get("Sid") != sid]
            if len(kept) == len(policy["Statement"]):
                raise ResourceNotFoundException(f"Statement {sid} is not found in resource policy.", Type="User")
            policy["Statement"] = kept
            policy["_RevisionId"] = str(uuid.uuid4())
            _save_policy(conn, current, policy if kept else None)

        await self.db.write(remove)
        return {}

    async def get_layer_version_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        row = await self._version_for_policy(ctx, params, "lambda:GetLayerVersionPolicy")
        document = row.policy_document()
        if document is None or row.policy is None:
            raise ResourceNotFoundException("No policy is associated with the given resource.", Type="User")
        return {"Policy": document, "RevisionId": row.policy.get("_RevisionId", "")}

    async def _version_for_policy(self, ctx: RequestContext, params: dict[str, Any], action: str) -> LayerVersionRow:
        named = layer_model.parse_layer_name(params["LayerName"], ctx.account_id, ctx.region)
        ref = LayerRef(named.account_id, named.region, named.name, int(params["VersionNumber"]))
        await ctx.authorize(action, ref.version_arn(), resource_account=ref.account_id)
        row = await self.db.read(lambda conn: layer_model.get_version(conn, ref))
        if row is None:
            raise _version_not_found(ref)
        return row

    # -- functions' layers -------------------------------------------------------------------------------
    async def apply_layers(self, ctx: RequestContext, config: dict[str, Any], arns: list[str],
                           code_unzipped: int) -> None:
        """Set a function configuration's ``Layers`` from a request's layer version ARNs, with AWS's
        checks: at most five, the function's region, one version per layer, each existing (or already
        the function's) and usable by the caller (lambda:GetLayerVersion), and the unzipped code with
        its layers within 250 MB."""
        if arns and config.get("PackageType") == "Image":
            raise InvalidParameterValueException("Please don't provide Handler or Runtime or Layer when the intended "
                                                 "function PackageType is Image.", Type="User")
        if len(arns) > layer_model.MAX_LAYERS:
            raise InvalidParameterValueException("Cannot reference more than 5 layers.", Type="User")
        region = str(config["FunctionArn"].split(":")[3])
        attached = {layer["Arn"]: code for layer, code in zip(config.get("Layers") or [],
                                                               config.get("_LayerCode") or [], strict=False)}
        layers: list[dict[str, Any]] = []
        codes: list[dict[str, Any]] = []
        seen: dict[str, str] = {}
        for arn in arns:
            ref = layer_model.parse_version_arn(arn)
            if ref is None:
                raise InvalidParameterValueException(f"Layer version {arn} does not exist.", Type="User")
            if ref.region != region:
                raise InvalidParameterValueException("Layers are not in the same region as the function. Layers are "
                                                     f"expected to be in region {region}.", Type="User")
            if ref.layer_arn in seen:
                raise InvalidParameterValueException(
                    "Two different versions of the same layer are not allowed to be referenced in the same function. "
                    f"{seen[ref.layer_arn]} and {arn} are versions of the same layer.", Type="User")
            seen[ref.layer_arn] = arn
            code = await self._attachable(ctx, ref, attached.get(ref.version_arn()))
            layers.append({"Arn": ref.version_arn(), "CodeSize": code["CodeSize"]})
            codes.append(code)
        check_combined_size(code_unzipped, codes)
        config.pop("Layers", None)
        config.pop("_LayerCode", None)
        if layers:
            config["Layers"], config["_LayerCode"] = layers, codes

    async def _attachable(self, ctx: RequestContext, ref: LayerRef, attached: dict[str, Any] | None) -> dict[str, Any]:
        row = await self.db.read(lambda conn: layer_model.get_version(conn, ref))
        if row is None and attached is not None:
            return attached  # deleted since the function took it: it keeps working
        await ctx.authorize("lambda:GetLayerVersion", ref.version_arn(), resource_account=ref.account_id,
                            resource_policy=row.policy_document() if row else None)
        if row is None:
            raise InvalidParameterValueException(f"Layer version {ref.version_arn()} does not exist.", Type="User")
        return {"Sha256": row.code_sha256, "UnzippedSize": row.unzipped_size, "CodeSize": row.config["CodeSize"]}

    # -- code download --------------------------------------------------------------------------------
    def layer_location(self, ctx: RequestContext, row: LayerVersionRow) -> str:
        host = ctx.request.headers.get("host") or f"127.0.0.1:{self.runtime.config.port}"
        expires = int(time.time()) + 600
        path = f"{LAYER_URL_PREFIX}{row.layer_id}/{row.ref.version}/{row.code_sha256}"
        return f"http://{host}{path}?Expires={expires}&Signature={self.sign(path, expires)}"


def _in_use(digest: str) -> Callable[[sa.Connection], bool]:
    return lambda conn: layer_model.digest_in_use(conn, digest)


def _marker(params: dict[str, Any], key: str) -> Any:
    if not params.get("Marker"):
        return None
    position = decode_token(params["Marker"])
    if position is None or key not in position:
        raise InvalidParameterValueException("Invalid marker.", Type="User")
    return position[key]


def _insert_version(conn: sa.Connection, ref: LayerRef, config: dict[str, Any], stored: StoredCode) -> LayerVersionRow:
    found = layer_model.get_layer_id(conn, ref)
    if found is None:
        layer_id, number = uuid.uuid4().hex, 1
        conn.execute(lambda_layers.insert().values(id=layer_id, account_id=ref.account_id, region=ref.region,
                                                   name=ref.name, next_version=2))
    else:
        layer_id, number = found
        conn.execute(lambda_layers.update().where(lambda_layers.c.id == layer_id).values(next_version=number + 1))
    conn.execute(lambda_layer_versions.insert().values(
        layer_id=layer_id, version=number, config=json.dumps(config), code_sha256=stored.sha256_hex,
        unzipped_size=stored.unzipped_size, policy=None))
    return LayerVersionRow(layer_id, LayerRef(ref.account_id, ref.region, ref.name, number), config,
                           stored.sha256_hex, stored.unzipped_size, None)


def _save_policy(conn: sa.Connection, row: LayerVersionRow, policy: dict[str, Any] | None) -> None:
    vc = lambda_layer_versions.c
    conn.execute(lambda_layer_versions.update().where(vc.layer_id == row.layer_id, vc.version == row.ref.version)
                 .values(policy=json.dumps(policy) if policy else None))


def _check_policy_revision(policy: dict[str, Any], wanted: str | None) -> None:
    if wanted and wanted != policy.get("_RevisionId"):
        raise PreconditionFailedException("The Revision Id provided does not match the latest Revision Id. Call the "
                                          "GetLayerPolicy API to retrieve the latest Revision Id", Type="User")


def _version_not_found(ref: LayerRef) -> ResourceNotFoundException:
    return ResourceNotFoundException(f"Layer version {ref.version_arn()} does not exist.", Type="User")
