"""Amazon ECR over the registry's repositories: what ``docker push`` creates appears here and what
CreateRepository creates is pushable with docker.

Repository names are global on one minicloud (the registry has one host name); a repository
belongs to the account that created it, through ECR or by its first push. ``registryId`` names
that account; other accounts reach a repository only where its repository policy lets them.
"""

from __future__ import annotations

import asyncio
import base64
import weakref
from datetime import UTC, datetime
from typing import Any

from minicloud.aws.context import RequestContext
from minicloud.aws.pagination import decode_token, encode_token
from minicloud.aws.provider import Provider
from minicloud.iam.policy import MalformedPolicyDocument, PolicyKind, parse_policy
from minicloud.registry.auth import RegistryAuth, effective_policy, load_key
from minicloud.registry.repositories import (
    Repository,
    RepositoryExists,
    count_images,
    create_repository,
    delete_repository,
    get_repository,
    list_repositories,
    update_repository,
)
from minicloud.runtime import Runtime
from minicloud.services.ecr.errors import (
    AccessDeniedException,
    InvalidParameterException,
    InvalidTagParameterException,
    LifecyclePolicyNotFoundException,
    RepositoryAlreadyExistsException,
    RepositoryNotEmptyException,
    RepositoryNotFoundException,
    RepositoryPolicyNotFoundException,
    TooManyTagsException,
)
from minicloud.services.ecr.images import ImagesMixin
from minicloud.services.ecr.layers import LayersMixin
from minicloud.services.ecr.lifecycle import LifecycleController, validate_lifecycle_policy
from minicloud.storage.blobs import ReplicatedBlobStore, WritePolicy

MAX_TAGS = 50


class EcrProvider(ImagesMixin, LayersMixin, Provider):
    service_name = "ecr"
    access_denied = AccessDeniedException

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.db = runtime.db
        self.auth = RegistryAuth(runtime.credentials, runtime.authorizer, load_key(runtime.config.data_dir),
                                 runtime.topology.default_region)
        runtime.controllers.append(LifecycleController(runtime))
        region = runtime.topology.default_region
        zones = [z.name for z in runtime.topology.zones(region)] or [region]
        self.blobs = ReplicatedBlobStore.for_zones(runtime.config.data_dir / "blobs", zones, WritePolicy.ALL, workers=4)
        self._upload_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    async def stop(self) -> None:
        self.blobs.close()

    # -- shared helpers ------------------------------------------------------------------------------
    @staticmethod
    def host(ctx: RequestContext) -> str:
        return ctx.request.headers.get("host") or "127.0.0.1:4566"

    def arn(self, ctx: RequestContext, registry_id: str, name: str) -> str:
        return f"arn:aws:ecr:{ctx.region}:{registry_id}:repository/{name}"

    async def repository(self, ctx: RequestContext, params: dict[str, Any], action: str) -> Repository:
        """The repository the request names, once the caller may do ``action`` on it."""
        name: str = params["repositoryName"]
        registry_id: str = params.get("registryId") or ctx.account_id
        repository = await self.db.read(lambda conn: get_repository(conn, name))
        if repository is not None and (repository.account_id != registry_id or repository.region != ctx.region):
            repository = None
        arn = repository.arn if repository else self.arn(ctx, registry_id, name)
        await ctx.authorize(action, arn, resource_account=registry_id,
                            resource_policy=effective_policy(repository.policy, arn) if repository else None)
        if repository is None:
            raise RepositoryNotFoundException(
                f"The repository with name '{name}' does not exist in the registry with id '{registry_id}'")
        return repository

    def describe(self, ctx: RequestContext, repository: Repository) -> dict[str, Any]:
        encryption: dict[str, Any] = {"encryptionType": repository.encryption_type}
        if repository.kms_key:
            encryption["kmsKey"] = repository.kms_key
        return {
            "repositoryArn": repository.arn, "registryId": repository.account_id,
            "repositoryName": repository.name, "repositoryUri": f"{self.host(ctx)}/{repository.name}",
            "createdAt": repository.created_at, "imageTagMutability": repository.tag_mutability,
            "imageScanningConfiguration": {"scanOnPush": repository.scan_on_push},
            "encryptionConfiguration": encryption,
        }

    @staticmethod
    def _check_tags(tags: list[dict[str, str]]) -> None:
        if len(tags) > MAX_TAGS:
            raise TooManyTagsException(f"A repository can have at most {MAX_TAGS} tags")
        for tag in tags:
            if tag["Key"].startswith("aws:"):
                raise InvalidTagParameterException("Tag keys beginning with 'aws:' are reserved")

    # -- repositories --------------------------------------------------------------------------------
    async def create_repository(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name: str = params["repositoryName"]
        registry_id = params.get("registryId") or ctx.account_id
        await ctx.authorize("ecr:CreateRepository", self.arn(ctx, registry_id, name),
                            context={"aws:RequestTag/" + t["Key"]: t["Value"] for t in params.get("tags", [])})
        if registry_id != ctx.account_id:
            raise InvalidParameterException("Invalid parameter at 'registryId' failed to satisfy constraint: "
                                            "'must be your own account id'")
        mutability = params.get("imageTagMutability") or "MUTABLE"
        if mutability not in ("MUTABLE", "IMMUTABLE"):
            raise InvalidParameterException(f"imageTagMutability {mutability} is not supported by minicloud")
        tags = params.get("tags") or []
        self._check_tags(tags)
        encryption = params.get("encryptionConfiguration") or {}
        now = datetime.now(UTC)

        def create(conn: Any) -> Repository:
            return create_repository(
                conn, name, ctx.account_id, ctx.region, now, tag_mutability=mutability,
                scan_on_push=bool((params.get("imageScanningConfiguration") or {}).get("scanOnPush")),
                encryption_type=encryption.get("encryptionType") or "AES256", kms_key=encryption.get("kmsKey"),
                resource_tags=tags)
        try:
            repository = await self.db.write(create)
        except RepositoryExists:
            raise RepositoryAlreadyExistsException(
                f"The repository with name '{name}' already exists in the registry with id "
                f"'{ctx.account_id}'") from None
        return {"repository": self.describe(ctx, repository)}

    async def describe_repositories(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        registry_id = params.get("registryId") or ctx.account_id
        names: list[str] | None = params.get("repositoryNames")
        if names:
            found = []
            for name in names:
                found.append(await self.repository(ctx, {"repositoryName": name, "registryId": registry_id},
                                                   "ecr:DescribeRepositories"))
            return {"repositories": [self.describe(ctx, r) for r in found]}
        await ctx.authorize("ecr:DescribeRepositories", self.arn(ctx, registry_id, "*"),
                            resource_account=registry_id)
        after = self.position(params)
        limit = int(params.get("maxResults") or 100)
        repos = await self.db.read(lambda conn: list_repositories(
            conn, account_id=registry_id, region=ctx.region, after=after, limit=limit + 1))
        result: dict[str, Any] = {"repositories": [self.describe(ctx, r) for r in repos[:limit]]}
        if len(repos) > limit:
            result["nextToken"] = encode_token({"after": repos[limit - 1].name})
        return result

    @staticmethod
    def position(params: dict[str, Any]) -> str | None:
        token = params.get("nextToken")
        if not token:
            return None
        position = decode_token(token)
        after = position.get("after") if position else None
        if not isinstance(after, str):
            raise InvalidParameterException("Invalid parameter at 'nextToken' failed to satisfy constraint: "
                                            "'must be a valid token'")
        return after

    async def delete_repository(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        repository = await self.repository(ctx, params, "ecr:DeleteRepository")
        images = await self.db.read(lambda conn: count_images(conn, repository.id))
        if images and not params.get("force"):
            raise RepositoryNotEmptyException(
                f"The repository with name '{repository.name}' in registry with id '{repository.account_id}' "
                "cannot be deleted because it still contains images")
        await self.db.write(lambda conn: delete_repository(conn, repository.id))
        return {"repository": self.describe(ctx, repository)}

    async def put_image_tag_mutability(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        repository = await self.repository(ctx, params, "ecr:PutImageTagMutability")
        mutability = params["imageTagMutability"]
        if mutability not in ("MUTABLE", "IMMUTABLE"):
            raise InvalidParameterException(f"imageTagMutability {mutability} is not supported by minicloud")
        await self.db.write(lambda conn: update_repository(conn, repository.id, tag_mutability=mutability))
        return {"registryId": repository.account_id, "repositoryName": repository.name,
                "imageTagMutability": mutability}

    async def put_image_scanning_configuration(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        repository = await self.repository(ctx, params, "ecr:PutImageScanningConfiguration")
        scan = bool(params["imageScanningConfiguration"].get("scanOnPush"))
        await self.db.write(lambda conn: update_repository(conn, repository.id, scan_on_push=scan))
        return {"registryId": repository.account_id, "repositoryName": repository.name,
                "imageScanningConfiguration": {"scanOnPush": scan}}

    # -- repository policies -------------------------------------------------------------------------
    async def set_repository_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        repository = await self.repository(ctx, params, "ecr:SetRepositoryPolicy")
        text: str = params["policyText"]
        try:
            parse_policy(effective_policy(text, repository.arn) or text, PolicyKind.RESOURCE)
        except MalformedPolicyDocument as exc:
            raise InvalidParameterException(
                f"Invalid parameter at 'PolicyText' failed to satisfy constraint: '{exc.message}'") from None
        await self.db.write(lambda conn: update_repository(conn, repository.id, policy=text))
        return {"registryId": repository.account_id, "repositoryName": repository.name, "policyText": text}

    async def get_repository_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        repository = await self.repository(ctx, params, "ecr:GetRepositoryPolicy")
        if not repository.policy:
            raise RepositoryPolicyNotFoundException(
                f"Repository policy does not exist for the repository with name '{repository.name}' in the "
                f"registry with id '{repository.account_id}'")
        return {"registryId": repository.account_id, "repositoryName": repository.name,
                "policyText": repository.policy}

    async def delete_repository_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        result = await self.get_repository_policy(ctx, params)
        repository = await self.repository(ctx, params, "ecr:DeleteRepositoryPolicy")
        await self.db.write(lambda conn: update_repository(conn, repository.id, policy=None))
        return result

    # -- lifecycle policies --------------------------------------------------------------------------
    async def put_lifecycle_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        repository = await self.repository(ctx, params, "ecr:PutLifecyclePolicy")
        text: str = params["lifecyclePolicyText"]
        validate_lifecycle_policy(text)
        await self.db.write(lambda conn: update_repository(conn, repository.id, lifecycle_policy=text))
        return {"registryId": repository.account_id, "repositoryName": repository.name,
                "lifecyclePolicyText": text}

    async def get_lifecycle_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        repository = await self.repository(ctx, params, "ecr:GetLifecyclePolicy")
        if not repository.lifecycle_policy:
            raise LifecyclePolicyNotFoundException(
                f"Lifecycle policy does not exist for the repository with name '{repository.name}' in the "
                f"registry with id '{repository.account_id}'")
        return {"registryId": repository.account_id, "repositoryName": repository.name,
                "lifecyclePolicyText": repository.lifecycle_policy,
                "lastEvaluatedAt": repository.created_at}

    async def delete_lifecycle_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        result = await self.get_lifecycle_policy(ctx, params)
        repository = await self.repository(ctx, params, "ecr:DeleteLifecyclePolicy")
        await self.db.write(lambda conn: update_repository(conn, repository.id, lifecycle_policy=None))
        return result

    # -- resource tags -------------------------------------------------------------------------------
    async def _tagged(self, ctx: RequestContext, arn: str, action: str) -> Repository:
        prefix = f"arn:aws:ecr:{ctx.region}:"
        account, _, rest = arn[len(prefix):].partition(":") if arn.startswith(prefix) else ("", "", "")
        if not rest.startswith("repository/"):
            raise InvalidParameterException(f"Invalid parameter at 'resourceArn' failed to satisfy constraint: "
                                            f"'Invalid ARN {arn}'")
        return await self.repository(ctx, {"repositoryName": rest[len("repository/"):], "registryId": account},
                                     action)

    async def tag_resource(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        repository = await self._tagged(ctx, params["resourceArn"], "ecr:TagResource")
        merged = {t["Key"]: t["Value"] for t in repository.tags}
        merged.update({t["Key"]: t["Value"] for t in params["tags"]})
        tags = [{"Key": k, "Value": v} for k, v in merged.items()]
        self._check_tags(tags)
        await self.db.write(lambda conn: update_repository(conn, repository.id, tags=tags))
        return {}

    async def untag_resource(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        repository = await self._tagged(ctx, params["resourceArn"], "ecr:UntagResource")
        drop = set(params["tagKeys"])
        tags = [t for t in repository.tags if t["Key"] not in drop]
        await self.db.write(lambda conn: update_repository(conn, repository.id, tags=tags))
        return {}

    async def list_tags_for_resource(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        repository = await self._tagged(ctx, params["resourceArn"], "ecr:ListTagsForResource")
        return {"tags": repository.tags}

    # -- authorization tokens ------------------------------------------------------------------------
    async def get_authorization_token(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        await ctx.authorize("ecr:GetAuthorizationToken", "*")
        credential = ctx.extra["credential"]
        password, expires = self.auth.ecr_password(credential)
        token = base64.b64encode(f"AWS:{password}".encode()).decode()
        registries = params.get("registryIds") or [ctx.account_id]
        return {"authorizationData": [{
            "authorizationToken": token, "expiresAt": datetime.fromtimestamp(expires, UTC),
            "proxyEndpoint": f"http://{self.host(ctx)}"} for _ in registries[:1]]}

    async def describe_registry(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        await ctx.authorize("ecr:DescribeRegistry", "*")
        return {"registryId": ctx.account_id, "replicationConfiguration": {"rules": []}}
