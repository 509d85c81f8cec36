"""What every part of the Lambda provider shares: the stores, the execution service, and how a
request's FunctionName (+ Qualifier) resolves to a function version the caller may act on."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from minicloud.aws.context import ConditionValues, RequestContext
from minicloud.aws.provider import Provider
from minicloud.runtime import Runtime
from minicloud.services.lambda_ import model
from minicloud.services.lambda_.code import CodeStore
from minicloud.services.lambda_.errors import (
    AccessDeniedException,
    InvalidParameterValueException,
    ResourceNotFoundException,
)
from minicloud.services.lambda_.execution.pool import ExecutionService
from minicloud.services.lambda_.execution.spec import EnvironmentSpec
from minicloud.services.lambda_.images import RUNTIMES, ImageProvisioner
from minicloud.services.lambda_.model import LATEST, FunctionRow, VersionRow
from minicloud.services.lambda_.settings import LambdaSettings
from minicloud.services.lambda_.tables import lambda_urls
from minicloud.storage.keyfile import load_or_create_key

CODE_URL_SECONDS = 600


class LambdaBase(Provider):
    service_name = "lambda"
    access_denied = AccessDeniedException

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.db = runtime.db
        self.settings = LambdaSettings.from_environ()
        self.root: Path = runtime.config.data_dir / "lambda"
        self.code = CodeStore(self.root / "code")
        self.layer_code = CodeStore(self.root / "layers")
        self.images = ImageProvisioner(runtime)
        self.execution: ExecutionService | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._settled: dict[str, asyncio.Event] = {}
        self._url_key = load_or_create_key(self.root / "url.key")
        self._specs: dict[tuple[Any, ...], EnvironmentSpec] = {}  # built once per function version revision
        self._credentials: dict[tuple[str, str], tuple[dict[str, str], datetime]] = {}  # (role id, function)

    # -- resolution -------------------------------------------------------------------------------
    async def resolve(self, ctx: RequestContext, params: dict[str, Any], action: str, latest_only: bool = False,
                      context: ConditionValues | None = None) -> tuple[FunctionRow, VersionRow]:
        ref = model.parse_function_name(params["FunctionName"], params.get("Qualifier"))
        account = ref.account_id or ctx.account_id
        region = ref.region or ctx.region
        function = await self.db.read(lambda conn: model.get_function(conn, account, region, ref.name))
        arn = model.function_arn(region, account, ref.name, ref.qualifier)
        await ctx.authorize(action, arn, context=context, resource_account=account,
                            resource_policy=self.policy_document(function) if function else None)
        if function is None:
            raise model.not_found(model.function_arn(region, account, ref.name))
        if latest_only and ref.qualifier not in (None, LATEST):
            raise InvalidParameterValueException("Qualifier is not supported for this operation.")
        version = await self.db.read(lambda conn: self.version_for(conn, function, ref.qualifier))
        if version is None:
            raise model.not_found(arn)
        return function, version

    @staticmethod
    def version_for(conn: sa.Connection, function: FunctionRow, qualifier: str | None) -> VersionRow | None:
        if qualifier is None or qualifier == LATEST or qualifier.isdigit():
            return model.get_version(conn, function.id, qualifier or LATEST)
        alias = model.get_alias(conn, function.id, qualifier)
        return model.get_version(conn, function.id, alias.version) if alias else None

    @staticmethod
    def policy_document(function: FunctionRow) -> str | None:
        if not function.policy or not function.policy.get("Statement"):
            return None
        return json.dumps({k: v for k, v in function.policy.items() if not k.startswith("_")})

    def configuration(self, config: dict[str, Any]) -> dict[str, Any]:
        doc = {k: v for k, v in config.items() if not k.startswith("_")}
        if doc.get("PackageType") == "Image":
            image_config = config.get("ImageConfig")
            doc.pop("ImageConfig", None)
            if image_config:
                doc["ImageConfigResponse"] = {"ImageConfig": image_config}
        else:
            doc.pop("ImageConfig", None)
        doc.pop("ImageUri", None)
        doc.pop("ResolvedImageUri", None)
        doc["LoggingConfig"] = config.get("LoggingConfig") or {
            "LogFormat": "Text", "LogGroup": f"/aws/lambda/{config['FunctionName']}"}
        return doc

    # -- execution --------------------------------------------------------------------------------
    def image_for(self, config: dict[str, Any]) -> tuple[str, Any]:
        runtime = config.get("Runtime")
        if runtime:
            image = RUNTIMES[runtime]
            return image.reference, image.recipe
        return self.images.engine_reference(str(config["ImageUri"])), None

    def environment_spec(self, function: FunctionRow, version: VersionRow) -> EnvironmentSpec:
        config = version.config
        reference, _recipe = self.image_for(config)
        image_config = config.get("ImageConfig") or {}
        code_dir = str(self.code.task_dir(version.code_sha256)) if version.code_sha256 else None
        if code_dir is not None and not os.path.isdir(code_dir):
            code_dir = str(self.code.unpack(version.code_sha256 or ""))
        layers = [str(code["Sha256"]) for code in config.get("_LayerCode") or []]
        opt_dir = str(self.layer_code.merged(layers)) if layers else None
        bootstrap = "/var/task/bootstrap"  # a custom runtime's: the function's own, else a layer's
        if opt_dir is not None and not os.path.lexists(os.path.join(code_dir or "", "bootstrap")) \
                and os.path.lexists(os.path.join(opt_dir, "bootstrap")):
            bootstrap = "/opt/bootstrap"
        return EnvironmentSpec(
            pool_key=f"{function.arn}:{version.version}:{config.get('RevisionId')}",
            account_id=function.account_id, region=function.region, function_name=function.name,
            function_arn=function.arn, version=version.version, runtime=config.get("Runtime") or "",
            handler=config.get("Handler") or "", image=reference, code_dir=code_dir, opt_dir=opt_dir,
            bootstrap=bootstrap,
            memory_mb=int(config["MemorySize"]), timeout=int(config["Timeout"]), role_arn=config["Role"],
            variables=dict((config.get("Environment") or {}).get("Variables") or {}),
            entrypoint=tuple(image_config["EntryPoint"]) if image_config.get("EntryPoint") else None,
            command=tuple(image_config["Command"]) if image_config.get("Command") else None,
            working_dir=image_config.get("WorkingDirectory"),
            reserved_concurrency=function.reserved_concurrency,
            log_group=(config.get("LoggingConfig") or {}).get("LogGroup") or f"/aws/lambda/{function.name}",
        )

    async def execution_retire(self, function_arn: str, version: str | None) -> None:
        if self.execution is not None:
            await self.execution.retire(
                lambda spec: spec.function_arn == function_arn and (version is None or spec.version == version))

    async def role_credentials(self, spec: EnvironmentSpec) -> dict[str, str]:
        """Temporary credentials of the function's execution role, as Lambda gets them from STS."""
        from minicloud.iam import sessions
        from minicloud.iam import store as iam_store
        from minicloud.iam.identity import Principal, PrincipalKind

        role = await self.db.read(lambda conn: iam_store.get_role_by_arn(conn, spec.role_arn))
        if role is None:
            return {}
        key = (role.role_id, spec.function_name)
        cached = self._credentials.get(key)
        if cached is not None and cached[1] - datetime.now(UTC) > timedelta(hours=6):
            return cached[0]  # a session of this role for this function, valid for hours yet
        principal = Principal(
            kind=PrincipalKind.ASSUMED_ROLE, account_id=role.account_id,
            arn=f"arn:aws:sts::{role.account_id}:assumed-role/{role.name}/{spec.function_name}",
            user_id=f"{role.role_id}:{spec.function_name}", name=spec.function_name, role_arn=role.arn,
            role_id=role.role_id, tags=(), session_policies=(), source_identity=None)
        expires = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=12)
        creds = await self.db.write(lambda conn: sessions.issue(conn, principal, "AssumeRole", expires))
        variables = {"AWS_ACCESS_KEY_ID": creds.access_key_id, "AWS_SECRET_ACCESS_KEY": creds.secret_access_key,
                     "AWS_SESSION_TOKEN": creds.session_token}
        self._credentials[key] = (variables, expires)
        return variables

    # -- code download and S3 sources -------------------------------------------------------------
    def code_location(self, ctx: RequestContext, function: FunctionRow, version: VersionRow) -> str:
        host = ctx.request.headers.get("host") or f"127.0.0.1:{self.runtime.config.port}"
        expires = int(time.time()) + CODE_URL_SECONDS
        path = f"/_minicloud/lambda/code/{function.id}/{version.code_sha256}"
        return f"http://{host}{path}?Expires={expires}&Signature={self.sign(path, expires)}"

    def sign(self, path: str, expires: int) -> str:
        return hmac.new(self._url_key, f"{path}\n{expires}".encode(), hashlib.sha256).hexdigest()

    async def zip_bytes(self, ctx: RequestContext, content: dict[str, Any]) -> bytes:
        """The zip a request's ``Code`` / ``Content`` gives: ZipFile, or S3Bucket/S3Key/S3ObjectVersion."""
        data = content.get("ZipFile")
        if data is None and content.get("S3Bucket") and content.get("S3Key"):
            data = await self.s3_code(ctx, content["S3Bucket"], content["S3Key"], content.get("S3ObjectVersion"))
        if data is None:
            raise InvalidParameterValueException("Please provide a source for function code.")
        return base64.b64decode(data) if isinstance(data, str) else bytes(data)

    async def s3_code(self, ctx: RequestContext, bucket: str, key: str, version_id: str | None) -> bytes:
        """The zip at s3://bucket/key, read with the caller's permission (s3:GetObject)."""
        from minicloud.services.s3 import store as s3_store
        from minicloud.services.s3.base import policy_for
        from minicloud.services.s3.crypto import MasterKey
        from minicloud.services.s3.data import ObjectData

        found = await self.db.read(lambda conn: (s3_store.get_bucket(conn, bucket),
                                                 s3_store.get_object(conn, bucket, key, version_id)))
        bucket_row, obj = found
        # As S3 itself would authorize the read: the bucket's account owns the object, and its
        # bucket policy (as it applies to this caller) is evaluated with the caller's policies; a
        # bucket of another account is readable only where its policy grants it.
        await ctx.authorize("s3:GetObjectVersion" if version_id else "s3:GetObject", f"arn:aws:s3:::{bucket}/{key}",
                            resource_policy=policy_for(bucket_row, ctx.principal.account_id) if bucket_row else None,
                            resource_account=bucket_row.account_id if bucket_row else None)
        if bucket_row is None or obj is None or obj.delete_marker:
            raise InvalidParameterValueException("Error occurred while GetObject. S3 Error Code: NoSuchKey. S3 Error "
                                                 "Message: The specified key does not exist.")
        if bucket_row.region != ctx.region:
            raise InvalidParameterValueException("Error occurred while GetObject. S3 Error Code: "
                                                 "PermanentRedirect. S3 Error Message: The bucket is in this region: "
                                                 f"{bucket_row.region}. Please use this region to retry the request")
        stored = json.loads(obj.encryption) if obj.encryption else None
        if stored and stored.get("sse") == "SSE-C":
            raise InvalidParameterValueException("Error occurred while GetObject. S3 Error Code: InvalidRequest. S3 "
                                                 "Error Message: The object was stored using a form of Server Side "
                                                 "Encryption. The correct parameters must be provided to retrieve "
                                                 "the object.")
        if obj.size > 50 * 1024 * 1024 * 5:
            raise InvalidParameterValueException("Unzipped size must be smaller than 262144000 bytes")
        zones = [z.name for z in self.runtime.topology.zones(ctx.region)] or [ctx.region]
        data = ObjectData(self.runtime.config.data_dir / "s3", zones)
        try:
            if stored and stored.get("sse") == "aws:kms":  # SSE-KMS: the data key is KMS's to open
                kek = await self._kms_data_key(ctx, stored, bucket, key)
                chunks = [chunk async for chunk in data.read_sealed(obj.segments(), 0, obj.size, kek)]
            elif stored:  # SSE-S3: sealed under S3's master key
                kek = MasterKey.load_or_create(self.runtime.config.data_dir / "s3" / "master.key").key
                chunks = [chunk async for chunk in data.read_sealed(obj.segments(), 0, obj.size, kek)]
            else:
                chunks = [chunk async for chunk in data.read(obj.segments(), 0, obj.size)]
        finally:
            data.close()
        return b"".join(chunks)

    async def _kms_data_key(self, ctx: RequestContext, stored: dict[str, Any], bucket: str, key: str) -> bytes:
        """The data key of an SSE-KMS code object, opened by KMS with the caller's kms:Decrypt."""
        from minicloud.aws.errors import ServiceError, error_code
        from minicloud.services.kms.keyring import KeyRing
        from minicloud.services.s3.encryption import open_kms_data_key

        try:
            return await open_kms_data_key(KeyRing(self.db, self.runtime.config.data_dir), ctx, stored, bucket, key)
        except ServiceError as error:
            raise InvalidParameterValueException(
                f"Error occurred while GetObject. S3 Error Code: {error_code(error)}. S3 Error Message: {error.message}"
            ) from None

    # -- URLs (the table is shared with urls.py) --------------------------------------------------
    @staticmethod
    def delete_urls(conn: sa.Connection, function_id: str) -> None:
        conn.execute(lambda_urls.delete().where(lambda_urls.c.function_id == function_id))

    async def _publish(self, function_id: str, description: str | None) -> VersionRow:
        raise NotImplementedError  # versions.py

    async def apply_layers(self, ctx: RequestContext, config: dict[str, Any], arns: list[str],
                           code_unzipped: int) -> None:
        raise NotImplementedError  # layers.py

    async def discard_unused_layers(self, digests: set[str]) -> None:
        raise NotImplementedError  # layers.py

    def not_found_error(self, arn: str) -> ResourceNotFoundException:
        return model.not_found(arn)
