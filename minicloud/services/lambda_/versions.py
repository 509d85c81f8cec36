"""PublishVersion, ListVersionsByFunction, and aliases."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from minicloud.aws.context import RequestContext
from minicloud.services.lambda_ import model
from minicloud.services.lambda_.base import LambdaBase
from minicloud.services.lambda_.errors import (
    InvalidParameterValueException,
    PreconditionFailedException,
    ResourceConflictException,
    ResourceNotFoundException,
)
from minicloud.services.lambda_.model import LATEST, AliasRow, VersionRow
from minicloud.services.lambda_.tables import lambda_aliases, lambda_functions


class VersionsMixin(LambdaBase):
    async def publish_version(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        function, latest = await self.resolve(ctx, params, "lambda:PublishVersion", latest_only=True)
        if latest.config.get("LastUpdateStatus") == "InProgress" or latest.config.get("State") == "Pending":
            raise ResourceConflictException("The operation cannot be performed at this time. An update is in progress "
                                            f"for resource: {function.arn}", Type="User")
        wanted = params.get("CodeSha256")
        if wanted and wanted != latest.config.get("CodeSha256"):
            raise InvalidParameterValueException(f"CodeSHA256 ({wanted}) is different from current CodeSHA256 in "
                                                 f"$LATEST ({latest.config.get('CodeSha256')}). Please try again.")
        if params.get("RevisionId") and params["RevisionId"] != latest.config.get("RevisionId"):
            raise PreconditionFailedException("The Revision Id provided does not match the latest Revision Id.",
                                              Type="User")
        published = await self._publish(function.id, params.get("Description"))
        return self.configuration(published.config)

    async def _publish(self, function_id: str, description: str | None) -> VersionRow:
        def publish(conn: sa.Connection) -> VersionRow:
            function = model.get_function_by_id(conn, function_id)
            latest = model.get_version(conn, function_id, LATEST)
            assert function is not None and latest is not None
            for existing in model.list_versions(conn, function_id):  # unchanged since the last publish: that one
                if existing.version != LATEST and existing.config.get("_SourceRevision") == \
                        latest.config.get("RevisionId"):
                    return existing
            number = str(function.next_version)
            config = dict(latest.config)
            config.update(Version=number, FunctionArn=f"{function.arn}:{number}", RevisionId=str(uuid.uuid4()),
                          _SourceRevision=latest.config.get("RevisionId"))
            if description is not None:
                config["Description"] = description
            version = VersionRow(number, config, latest.code_sha256)
            model.put_version(conn, function_id, version, insert=True)
            conn.execute(lambda_functions.update().where(lambda_functions.c.id == function_id).values(
                next_version=function.next_version + 1))
            return version

        return await self.db.write(publish)

    async def list_versions_by_function(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        function, _latest = await self.resolve(ctx, params, "lambda:ListVersionsByFunction", latest_only=True)
        versions = await self.db.read(lambda conn: model.list_versions(conn, function.id))
        limit = int(params.get("MaxItems") or 50)
        start = int(params["Marker"]) if str(params.get("Marker") or "").isdigit() else 0
        page = versions[start:start + limit]
        result: dict[str, Any] = {"Versions": [self.configuration(v.config) for v in page]}
        if start + limit < len(versions):
            result["NextMarker"] = str(start + limit)
        return result

    # -- aliases ------------------------------------------------------------------------------------
    def _alias_doc(self, function: model.FunctionRow, alias: AliasRow) -> dict[str, Any]:
        doc: dict[str, Any] = {"AliasArn": f"{function.arn}:{alias.name}", "Name": alias.name,
                               "FunctionVersion": alias.version, "Description": alias.description,
                               "RevisionId": alias.revision_id}
        if alias.routing:
            doc["RoutingConfig"] = {"AdditionalVersionWeights": alias.routing}
        return doc

    async def _check_alias_target(self, function_id: str, version: str, routing: dict[str, float] | None) -> None:
        for target in [version, *(routing or {})]:
            found = await self.db.read(_version_reader(function_id, target))
            if found is None:
                raise ResourceNotFoundException(f"Function not found: {target}", Type="User")

    async def create_alias(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        function, _latest = await self.resolve(ctx, {"FunctionName": params["FunctionName"]}, "lambda:CreateAlias")
        name = params["Name"]
        if not model.ALIAS_NAME.match(name) or name == LATEST:
            raise InvalidParameterValueException(f"1 validation error detected: Value '{name}' at 'name' failed to "
                                                 "satisfy constraint: Member must satisfy regular expression pattern: "
                                                 "(?!^[0-9]+$)([a-zA-Z0-9-_]+)")
        routing = (params.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or None
        await self._check_alias_target(function.id, params["FunctionVersion"], routing)
        alias = AliasRow(name, params["FunctionVersion"], params.get("Description") or "", routing, str(uuid.uuid4()))

        def insert(conn: sa.Connection) -> bool:
            if model.get_alias(conn, function.id, name) is not None:
                return False
            conn.execute(lambda_aliases.insert().values(
                function_id=function.id, name=name, version=alias.version, description=alias.description,
                routing=json.dumps(routing) if routing else None, revision_id=alias.revision_id))
            return True

        if not await self.db.write(insert):
            raise ResourceConflictException(f"Alias already exists: {function.arn}:{name}", Type="User")
        return self._alias_doc(function, alias)

    async def _alias(self, ctx: RequestContext, params: dict[str, Any], action: str) -> tuple[Any, AliasRow]:
        function, _latest = await self.resolve(ctx, {"FunctionName": params["FunctionName"]}, action)
        alias = await self.db.read(lambda conn: model.get_alias(conn, function.id, params["Name"]))
        if alias is None:
            raise ResourceNotFoundException(f"Cannot find alias arn: {function.arn}:{params['Name']}", Type="User")
        return function, alias

    async def get_alias(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        function, alias = await self._alias(ctx, params, "lambda:GetAlias")
        return self._alias_doc(function, alias)

    async def update_alias(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        function, alias = await self._alias(ctx, params, "lambda:UpdateAlias")
        if params.get("RevisionId") and params["RevisionId"] != alias.revision_id:
            raise PreconditionFailedException("The Revision Id provided does not match the latest Revision Id.",
                                              Type="User")
        version = params.get("FunctionVersion") or alias.version
        routing = alias.routing
        if "RoutingConfig" in params:
            routing = (params["RoutingConfig"] or {}).get("AdditionalVersionWeights") or None
        await self._check_alias_target(function.id, version, routing)
        updated = AliasRow(alias.name, version, params.get("Description", alias.description), routing,
                           str(uuid.uuid4()))
        c = lambda_aliases.c
        await self.db.write(lambda conn: conn.execute(lambda_aliases.update().where(
            c.function_id == function.id, c.name == alias.name).values(
            version=updated.version, description=updated.description,
            routing=json.dumps(routing) if routing else None, revision_id=updated.revision_id)))
        return self._alias_doc(function, updated)

    async def delete_alias(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        function, _latest = await self.resolve(ctx, {"FunctionName": params["FunctionName"]}, "lambda:DeleteAlias")
        c = lambda_aliases.c
        await self.db.write(lambda conn: conn.execute(lambda_aliases.delete().where(
            c.function_id == function.id, c.name == params["Name"])))
        return {}

    async def list_aliases(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        function, _latest = await self.resolve(ctx, {"FunctionName": params["FunctionName"]}, "lambda:ListAliases")
        aliases = await self.db.read(lambda conn: model.list_aliases(conn, function.id))
        wanted = params.get("FunctionVersion")
        return {"Aliases": [self._alias_doc(function, a) for a in aliases if not wanted or a.version == wanted]}


def _version_reader(function_id: str, version: str) -> Callable[[sa.Connection], VersionRow | None]:
    return lambda conn: model.get_version(conn, function_id, version)
