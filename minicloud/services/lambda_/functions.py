"""CreateFunction, GetFunction(Configuration), ListFunctions, UpdateFunctionCode/Configuration,
DeleteFunction, and the Pending -> Active (InProgress -> Successful) transitions."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from minicloud.aws.context import RequestContext
from minicloud.aws.pagination import decode_token, encode_token
from minicloud.iam.trust import service_may_assume
from minicloud.services.lambda_ import model
from minicloud.services.lambda_.base import LambdaBase
from minicloud.services.lambda_.code import StoredCode
from minicloud.services.lambda_.errors import (
    InvalidParameterValueException,
    ResourceConflictException,
)
from minicloud.services.lambda_.images import KNOWN_RUNTIMES, RUNTIMES
from minicloud.services.lambda_.layer_model import check_combined_size
from minicloud.services.lambda_.model import LATEST, VersionRow
from minicloud.services.lambda_.tables import lambda_functions, lambda_versions

LAMBDA_SERVICE = "lambda.amazonaws.com"
CONFIG_KEYS = ("Description", "Timeout", "MemorySize", "Handler", "Runtime", "Role", "Environment",
               "TracingConfig", "EphemeralStorage", "LoggingConfig", "ImageConfig", "DeadLetterConfig")


def timestamp(moment: datetime | None = None) -> str:
    """Lambda's LastModified format: 2024-01-02T03:04:05.678+0000."""
    moment = moment or datetime.now(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


class FunctionsMixin(LambdaBase):
    # -- create ------------------------------------------------------------------------------------
    async def create_function(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name: str = params["FunctionName"]
        ref = model.parse_function_name(name)
        arn = model.function_arn(ctx.region, ctx.account_id, ref.name)
        tags = params.get("Tags") or {}
        layers: list[str] = params.get("Layers") or []
        await ctx.authorize("lambda:CreateFunction", arn,
                            context={**{f"aws:RequestTag/{k}": v for k, v in tags.items()},
                                     **({"lambda:Layer": layers} if layers else {})})
        if ref.qualifier is not None or (ref.account_id not in (None, ctx.account_id)):
            raise InvalidParameterValueException("Unsupported FunctionName for CreateFunction.")
        package_type = params.get("PackageType") or "Zip"
        config = self._validated_config(params, package_type, creating=True)
        await self._check_role(ctx, config["Role"])
        stored, image_uri = await self._code_from(ctx, params.get("Code") or {}, package_type)
        now = timestamp()
        config.update({
            "FunctionName": ref.name, "FunctionArn": arn, "Version": LATEST, "LastModified": now,
            "PackageType": package_type, "RevisionId": str(uuid.uuid4()),
            "State": "Pending", "StateReason": "The function is being created.", "StateReasonCode": "Creating",
            "Architectures": params.get("Architectures") or ["x86_64"],
        })
        _apply_code(config, stored, image_uri)
        if layers:
            await self.apply_layers(ctx, config, layers, stored.unzipped_size if stored else 0)
        function_id = uuid.uuid4().hex

        def insert(conn: sa.Connection) -> bool:
            if model.get_function(conn, ctx.account_id, ctx.region, ref.name) is not None:
                return False
            conn.execute(lambda_functions.insert().values(
                id=function_id, account_id=ctx.account_id, region=ctx.region, name=ref.name, arn=arn,
                created_at=datetime.now(UTC), tags=json.dumps(tags), policy=None, reserved_concurrency=None,
                next_version=1))
            model.put_version(conn, function_id, VersionRow(LATEST, config, stored.sha256_hex if stored else None),
                              insert=True)
            return True

        if not await self.db.write(insert):
            raise ResourceConflictException(f"Function already exist: {ref.name}", Type="User")
        self._activate_later(function_id, LATEST)
        result = self.configuration(config)
        if params.get("Publish"):
            await self._wait_active(function_id)
            published = await self._publish(function_id, params.get("Description"))
            result = self.configuration(published.config)
        return result

    def _validated_config(self, params: dict[str, Any], package_type: str, creating: bool,
                          current: dict[str, Any] | None = None) -> dict[str, Any]:
        config: dict[str, Any] = dict(current or {})
        for key in CONFIG_KEYS:
            if key in params:
                config[key] = params[key]
        if creating:
            config.setdefault("Description", "")
            config.setdefault("Timeout", 3)
            config.setdefault("MemorySize", 128)
            config.setdefault("EphemeralStorage", {"Size": 512})
            config.setdefault("TracingConfig", {"Mode": "PassThrough"})
        if package_type not in ("Zip", "Image"):
            raise InvalidParameterValueException(f"Unsupported PackageType: {package_type}")
        runtime = config.get("Runtime")
        if package_type == "Zip":
            if not runtime or not config.get("Handler"):
                raise InvalidParameterValueException("Runtime and Handler are mandatory parameters for functions "
                                                     "created with Zip packages.")
            if runtime not in RUNTIMES:
                if runtime in KNOWN_RUNTIMES:
                    raise InvalidParameterValueException(
                        f"The runtime parameter of {runtime} is not supported by minicloud (supported: "
                        f"{', '.join(sorted(RUNTIMES))}).")
                raise InvalidParameterValueException(
                    f"Value {runtime} at 'runtime' failed to satisfy constraint: Member must satisfy enum value set: "
                    f"[{', '.join(sorted(RUNTIMES | dict.fromkeys(KNOWN_RUNTIMES)))}] or be a valid ARN")
        elif runtime:
            raise InvalidParameterValueException("Runtime and Handler are not supported for functions created with "
                                                 "Image packages.")
        timeout = int(config["Timeout"])
        memory = int(config["MemorySize"])
        if not 1 <= timeout <= 900:
            raise InvalidParameterValueException(f"1 validation error detected: Value '{timeout}' at 'timeout' "
                                                 "failed to satisfy constraint: Member must have value less than or "
                                                 "equal to 900")
        if not 128 <= memory <= 10240:
            raise InvalidParameterValueException(f"1 validation error detected: Value '{memory}' at 'memorySize' "
                                                 "failed to satisfy constraint: Member must have value greater than "
                                                 "or equal to 128")
        variables = (config.get("Environment") or {}).get("Variables") or {}
        if len(json.dumps(variables)) > 4096:
            raise InvalidParameterValueException("Lambda was unable to configure your environment variables because "
                                                 "the environment variables you have provided exceeded the 4KB limit.")
        for key in variables:
            if key in RESERVED_VARIABLES:
                raise InvalidParameterValueException(
                    f"Lambda was unable to configure your environment variables because the environment variables "
                    f"you have provided contains reserved keys that are currently not supported for modification. "
                    f"Reserved keys used in this request: {key}")
        if "Environment" in config:
            config["Environment"] = {"Variables": variables}
        return config

    async def _check_role(self, ctx: RequestContext, role_arn: str) -> None:
        from minicloud.iam import store as iam_store

        # Handing a role to Lambda lets the function act as that role: the caller must be allowed to
        # pass it (iam:PassRole), as AWS checks before anything else about the role.
        await ctx.authorize("iam:PassRole", role_arn, context={"iam:PassedToService": LAMBDA_SERVICE})
        role = await self.db.read(lambda conn: iam_store.get_role_by_arn(conn, role_arn))
        if role is None or role.account_id != ctx.account_id:
            raise InvalidParameterValueException("The role defined for the function cannot be assumed by Lambda.")
        if not service_may_assume(role.assume_role_policy, role.arn, role.account_id, LAMBDA_SERVICE):
            raise InvalidParameterValueException("The role defined for the function cannot be assumed by Lambda.")

    async def _authorize_image(self, ctx: RequestContext, image_uri: str) -> None:
        """Lambda pulls a function's image with minicloud's own credentials: whoever creates or updates
        the function must be allowed to pull it (ecr:BatchGetImage, ecr:GetDownloadUrlForLayer; another
        account's repository only while its policy grants them)."""
        from minicloud.registry.auth import authorize_pull
        from minicloud.registry.repositories import get_repository

        name = self.images.registry_repository(image_uri)
        if name is None:
            return
        repository = await self.db.read(lambda conn: get_repository(conn, name))
        if repository is not None:
            await authorize_pull(ctx, repository)

    async def _code_from(self, ctx: RequestContext, code: dict[str, Any],
                         package_type: str) -> tuple[StoredCode | None, str | None]:
        if package_type == "Image":
            image_uri = code.get("ImageUri")
            if not image_uri or code.get("ZipFile") or code.get("S3Bucket"):
                raise InvalidParameterValueException("Please provide ImageUri when the PackageType is Image.")
            await self._authorize_image(ctx, str(image_uri))
            return None, str(image_uri)
        if code.get("ImageUri"):
            raise InvalidParameterValueException("Please don't provide ImageUri when the PackageType is Zip.")
        data = await self.zip_bytes(ctx, code)
        return await asyncio.to_thread(self.code.put, data), None

    # -- read --------------------------------------------------------------------------------------
    async def get_function_configuration(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        _function, version = await self.resolve(ctx, params, "lambda:GetFunctionConfiguration")
        return self.configuration(version.config)

    async def get_function(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        function, version = await self.resolve(ctx, params, "lambda:GetFunction")
        result: dict[str, Any] = {"Configuration": self.configuration(version.config)}
        if version.config.get("PackageType") == "Image":
            result["Code"] = {"RepositoryType": "ECR", "ImageUri": version.config["ImageUri"],
                              "ResolvedImageUri": version.config.get("ResolvedImageUri", version.config["ImageUri"])}
        else:
            result["Code"] = {"RepositoryType": "S3", "Location": self.code_location(ctx, function, version)}
        if function.tags:
            result["Tags"] = function.tags
        if function.reserved_concurrency is not None:
            result["Concurrency"] = {"ReservedConcurrentExecutions": function.reserved_concurrency}
        return result

    async def list_functions(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        await ctx.authorize("lambda:ListFunctions", "*")
        limit = int(params.get("MaxItems") or 50)
        if not 1 <= limit <= 10000:
            raise InvalidParameterValueException("MaxItems must be between 1 and 10000.")
        after = ""
        if params.get("Marker"):
            position = decode_token(params["Marker"])
            if position is None or not isinstance(position.get("after"), str):
                raise InvalidParameterValueException("Invalid marker.")
            after = str(position["after"])
        all_versions = params.get("FunctionVersion") == "ALL"
        c, v = lambda_functions.c, lambda_versions.c
        query = sa.select(c.name, v.version, v.config).join(lambda_versions, v.function_id == c.id).where(
            c.account_id == ctx.account_id, c.region == ctx.region, c.name > after).order_by(c.name)
        if not all_versions:
            query = query.where(v.version == LATEST)
        rows = await self.db.read(lambda conn: conn.execute(query).all())
        names: list[str] = []
        functions: list[dict[str, Any]] = []
        more = False
        for row in rows:
            if row.name not in names:
                if len(names) == limit:
                    more = True
                    break
                names.append(row.name)
            functions.append(self.configuration(json.loads(row.config)))
        result: dict[str, Any] = {"Functions": functions}
        if more:
            result["NextMarker"] = encode_token({"after": names[-1]})
        return result

    # -- update ------------------------------------------------------------------------------------
    async def update_function_configuration(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        function, version = await self.resolve(ctx, params, "lambda:UpdateFunctionConfiguration", latest_only=True,
                                               context={"lambda:Layer": params["Layers"]} if params.get("Layers")
                                               else None)
        self._check_revision(version, params)
        self._check_not_in_progress(version)
        config = self._validated_config(params, version.config.get("PackageType", "Zip"), creating=False,
                                        current=version.config)
        if "Role" in params:
            await self._check_role(ctx, params["Role"])
        if "Layers" in params:
            unzipped = await asyncio.to_thread(self.code.unzipped_size, version.code_sha256) \
                if version.code_sha256 else 0
            await self.apply_layers(ctx, config, params["Layers"] or [], unzipped)
        return await self._update_latest(function, config, version.code_sha256)

    async def update_function_code(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        function, version = await self.resolve(ctx, params, "lambda:UpdateFunctionCode", latest_only=True)
        self._check_revision(version, params)
        self._check_not_in_progress(version)
        package_type = version.config.get("PackageType", "Zip")
        stored, image_uri = await self._code_from(ctx, params, package_type)
        if stored is not None and version.config.get("_LayerCode"):
            check_combined_size(stored.unzipped_size, version.config["_LayerCode"])
        if params.get("DryRun"):
            return self.configuration(version.config)
        config = dict(version.config)
        _apply_code(config, stored, image_uri)
        result = await self._update_latest(function, config, stored.sha256_hex if stored else None)
        if params.get("Publish"):
            await self._wait_active(function.id)
            return self.configuration((await self._publish(function.id, None)).config)
        return result

    async def _update_latest(self, function: model.FunctionRow, config: dict[str, Any],
                             code_sha256: str | None) -> dict[str, Any]:
        config.update({"LastModified": timestamp(), "RevisionId": str(uuid.uuid4()), "LastUpdateStatus": "InProgress",
                       "LastUpdateStatusReason": "The function is being created.",
                       "LastUpdateStatusReasonCode": "Creating"})
        await self.db.write(lambda conn: model.put_version(conn, function.id, VersionRow(LATEST, config, code_sha256),
                                                            insert=False))
        await self.execution_retire(function.arn, LATEST)
        self._activate_later(function.id, LATEST)
        return self.configuration(config)

    def _check_revision(self, version: VersionRow, params: dict[str, Any]) -> None:
        from minicloud.services.lambda_.errors import PreconditionFailedException
        wanted = params.get("RevisionId")
        if wanted and wanted != version.config.get("RevisionId"):
            raise PreconditionFailedException("The Revision Id provided does not match the latest Revision Id. Call "
                                              "the GetFunction/GetAlias API to retrieve the latest Revision Id",
                                              Type="User")

    @staticmethod
    def _check_not_in_progress(version: VersionRow) -> None:
        if version.config.get("LastUpdateStatus") == "InProgress" or version.config.get("State") == "Pending":
            raise ResourceConflictException(
                f"The operation cannot be performed at this time. An update is in progress for resource: "
                f"{version.config['FunctionArn']}", Type="User")

    # -- delete ------------------------------------------------------------------------------------
    async def delete_function(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        function, version = await self.resolve(ctx, params, "lambda:DeleteFunction")
        ref = model.parse_function_name(params["FunctionName"], params.get("Qualifier"))
        if ref.qualifier == LATEST:
            raise InvalidParameterValueException("$LATEST version cannot be deleted without deleting the function.")

        layers: set[str] = set()

        def delete(conn: sa.Connection) -> list[str]:
            from minicloud.services.lambda_.tables import lambda_aliases
            gone = model.list_versions(conn, function.id) if ref.qualifier is None else [version]
            layers.update(str(code["Sha256"]) for v in gone for code in v.config.get("_LayerCode") or [])
            if ref.qualifier is None:
                codes = [v.code_sha256 for v in model.list_versions(conn, function.id) if v.code_sha256]
                conn.execute(lambda_functions.delete().where(lambda_functions.c.id == function.id))
                conn.execute(lambda_versions.delete().where(lambda_versions.c.function_id == function.id))
                conn.execute(lambda_aliases.delete().where(lambda_aliases.c.function_id == function.id))
                self.delete_urls(conn, function.id)
            else:
                used = [a.name for a in model.list_aliases(conn, function.id) if a.version == version.version]
                if used:
                    raise ResourceConflictException(
                        f"Unable to delete version because the following aliases reference it: {used}", Type="User")
                codes = [version.code_sha256] if version.code_sha256 else []
                conn.execute(lambda_versions.delete().where(lambda_versions.c.function_id == function.id,
                                                            lambda_versions.c.version == version.version))
            return [c for c in codes if not model.code_in_use(conn, c)]

        unused = await self.db.write(delete)
        await self.execution_retire(function.arn, None if ref.qualifier is None else version.version)
        for digest in set(unused):
            await asyncio.to_thread(self.code.discard, digest)
        await self.discard_unused_layers(layers)
        return {}

    # -- Pending -> Active -------------------------------------------------------------------------
    def _activate_later(self, function_id: str, version: str) -> None:
        task = asyncio.get_running_loop().create_task(self._activate(function_id, version))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _activate(self, function_id: str, version_name: str) -> None:
        version = await self.db.read(lambda conn: model.get_version(conn, function_id, version_name))
        if version is None:
            return
        failure: str | None = None
        try:
            await self.images.ensure(*self.image_for(version.config))
        except Exception as exc:
            failure = f"The function's image could not be prepared: {exc}"

        def settle(conn: sa.Connection) -> None:
            current = model.get_version(conn, function_id, version_name)
            if current is None or current.config.get("RevisionId") != version.config.get("RevisionId"):
                return  # changed meanwhile: that change settles itself
            config = dict(current.config)
            if config.get("State") == "Pending":
                config.update(State="Failed" if failure else "Active", StateReasonCode="InternalError"
                              if failure else None, StateReason=failure, LastUpdateStatus="Failed" if failure
                              else "Successful")
            else:
                config.update(LastUpdateStatus="Failed" if failure else "Successful",
                              LastUpdateStatusReason=failure, LastUpdateStatusReasonCode="InternalError"
                              if failure else None)
            config = {k: v for k, v in config.items() if v is not None}
            model.put_version(conn, function_id, VersionRow(version_name, config, current.code_sha256), insert=False)

        await self.db.write(settle)
        self._settled.setdefault(function_id, asyncio.Event()).set()

    async def _wait_active(self, function_id: str, timeout: float = 600.0) -> None:
        async with asyncio.timeout(timeout):
            while True:
                version = await self.db.read(lambda conn: model.get_version(conn, function_id, LATEST))
                if version is None or (version.config.get("LastUpdateStatus") != "InProgress" and \
                        version.config.get("State") != "Pending"):
                    return
                await asyncio.sleep(0.05)

    async def resume_pending(self) -> None:
        """At start: settle what a previous run left Pending or InProgress."""
        rows = await self.db.read(lambda conn: conn.execute(
            sa.select(lambda_versions.c.function_id, lambda_versions.c.version, lambda_versions.c.config)).all())
        for row in rows:
            config = json.loads(row.config)
            if config.get("State") == "Pending" or config.get("LastUpdateStatus") == "InProgress":
                self._activate_later(row.function_id, row.version)


RESERVED_VARIABLES = frozenset({
    "_HANDLER", "_X_AMZN_TRACE_ID", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE", "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR",
})


def _apply_code(config: dict[str, Any], stored: StoredCode | None, image_uri: str | None) -> None:
    if stored is not None:
        config.update(CodeSha256=stored.sha256_b64, CodeSize=stored.size)
    if image_uri is not None:
        import hashlib
        config.update(ImageUri=image_uri, CodeSha256=hashlib.sha256(image_uri.encode()).hexdigest(), CodeSize=0)
