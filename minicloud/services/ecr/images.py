"""ECR's image operations: an image is a manifest of a repository, with its tags."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from minicloud.aws.context import RequestContext
from minicloud.aws.pagination import decode_token, encode_token
from minicloud.registry.content import TAG, immutable_message
from minicloud.registry.errors import RegistryError
from minicloud.registry.manifests import IMAGE_MANIFESTS, parse_manifest
from minicloud.registry.repositories import (
    ManifestRecord,
    ReferencesUnknown,
    Repository,
    TagImmutable,
    delete_manifest,
    delete_tag,
    get_manifest,
    linked_blobs,
    list_manifests,
    put_manifest,
    resolve,
    tags_by_digest,
)
from minicloud.services.ecr.errors import (
    ImageAlreadyExistsException,
    ImageDigestDoesNotMatchException,
    ImageNotFoundException,
    ImageTagAlreadyExistsException,
    InvalidParameterException,
    LayersNotFoundException,
    ReferencedImagesNotFoundException,
)
from minicloud.storage.blobs import Digest, InvalidDigest

if TYPE_CHECKING:
    import sqlalchemy as sa

    from minicloud.storage.metadata.db import Database


def _image_id_text(image_id: dict[str, str]) -> str:
    return (f"{{imageDigest:'{image_id.get('imageDigest', 'null')}', "
            f"imageTag:'{image_id.get('imageTag', 'null')}'}}")


def _failure(image_id: dict[str, str], code: str, reason: str) -> dict[str, Any]:
    return {"imageId": image_id, "failureCode": code, "failureReason": reason}


def _lookup(conn: sa.Connection, repository_id: int, image_id: dict[str, str]) -> ManifestRecord | dict[str, Any]:
    """The manifest an imageId names, or the ImageFailure that says why not."""
    digest, tag = image_id.get("imageDigest"), image_id.get("imageTag")
    if not digest and not tag:
        return _failure(image_id, "MissingDigestAndTag", "Invalid request parameters: both tag and digest "
                                                         "cannot be null")
    if digest:
        try:
            Digest.parse(digest)
        except InvalidDigest:
            return _failure(image_id, "InvalidImageDigest", "Invalid request parameters: image digest "
                                                            "should satisfy the regex '[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+'")
    if tag:
        pointed = resolve(conn, repository_id, tag)
        if pointed is None:
            return _failure(image_id, "ImageNotFound", "Requested image not found")
        if digest and pointed != digest:
            return _failure(image_id, "ImageTagDoesNotMatchDigest", "Invalid request parameters: given tag "
                                                                    "does not map to the given digest")
        digest = pointed
    assert digest is not None
    record = get_manifest(conn, repository_id, digest)
    if record is None:
        return _failure(image_id, "ImageNotFound", "Requested image not found")
    return record


class ImagesMixin:
    db: Database

    async def repository(self, ctx: RequestContext, params: dict[str, Any], action: str) -> Repository:
        raise NotImplementedError

    # -- reading -------------------------------------------------------------------------------------
    async def list_images(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        repository = await self.repository(ctx, params, "ecr:ListImages")
        status = (params.get("filter") or {}).get("tagStatus", "ANY")

        def listing(conn: sa.Connection) -> list[dict[str, str]]:
            tags = tags_by_digest(conn, repository.id)
            ids: list[dict[str, str]] = []
            for record in list_manifests(conn, repository.id):
                names = tags.get(record.digest, [])
                if names and status in ("ANY", "TAGGED"):
                    ids.extend({"imageDigest": record.digest, "imageTag": t} for t in names)
                elif not names and status in ("ANY", "UNTAGGED"):
                    ids.append({"imageDigest": record.digest})
            return ids
        ids = await self.db.read(listing)
        page, token = self._page(ids, params, 100)
        result: dict[str, Any] = {"imageIds": page}
        if token:
            result["nextToken"] = token
        return result

    @staticmethod
    def _page(items: list[Any], params: dict[str, Any], default: int) -> tuple[list[Any], str | None]:
        limit = int(params.get("maxResults") or default)
        start = 0
        if params.get("nextToken"):
            position = decode_token(params["nextToken"])
            offset = position.get("offset") if position else None
            if not isinstance(offset, int) or offset < 0:
                raise InvalidParameterException("Invalid parameter at 'nextToken' failed to satisfy constraint: "
                                                "'must be a valid token'")
            start = offset
        end = start + limit
        return items[start:end], encode_token({"offset": end}) if end < len(items) else None

    def _detail(self, repository: Repository, record: ManifestRecord, tags: list[str]) -> dict[str, Any]:
        detail: dict[str, Any] = {
            "registryId": repository.account_id, "repositoryName": repository.name,
            "imageDigest": record.digest, "imageSizeInBytes": record.image_size,
            "imagePushedAt": record.pushed_at, "imageManifestMediaType": record.media_type,
            "imageStatus": "ACTIVE",
        }
        if tags:
            detail["imageTags"] = tags
        if record.subject:
            detail["subjectManifestDigest"] = record.subject
        artifact = record.artifact_type
        if record.media_type in IMAGE_MANIFESTS:
            try:
                config = orjson.loads(record.content).get("config") or {}
                artifact = config.get("mediaType") or artifact
            except (orjson.JSONDecodeError, AttributeError):
                pass
        if artifact:
            detail["artifactMediaType"] = artifact
        return detail

    async def describe_images(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        repository = await self.repository(ctx, params, "ecr:DescribeImages")
        image_ids: list[dict[str, str]] | None = params.get("imageIds")
        status = (params.get("filter") or {}).get("tagStatus", "ANY")

        def describe(conn: sa.Connection) -> list[dict[str, Any]]:
            tags = tags_by_digest(conn, repository.id)
            if image_ids:
                records = []
                for image_id in image_ids:
                    found = _lookup(conn, repository.id, image_id)
                    if isinstance(found, dict):
                        raise ImageNotFoundException(
                            f"The image with imageId {_image_id_text(image_id)} does not exist within the "
                            f"repository with name '{repository.name}' in the registry with id "
                            f"'{repository.account_id}'")
                    records.append(found)
            else:
                records = list_manifests(conn, repository.id)
            details = []
            for record in records:
                names = tags.get(record.digest, [])
                if image_ids or status == "ANY" or (status == "TAGGED") == bool(names):
                    details.append(self._detail(repository, record, names))
            return details
        details = await self.db.read(describe)
        page, token = self._page(details, params, 100)
        result: dict[str, Any] = {"imageDetails": page}
        if token:
            result["nextToken"] = token
        return result

    async def batch_get_image(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        repository = await self.repository(ctx, params, "ecr:BatchGetImage")
        accepted: list[str] | None = params.get("acceptedMediaTypes")

        def fetch(conn: sa.Connection) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
            images, failures = [], []
            for image_id in params["imageIds"]:
                found = _lookup(conn, repository.id, image_id)
                if isinstance(found, dict):
                    failures.append(found)
                    continue
                if accepted and found.media_type not in accepted:
                    failures.append(_failure(image_id, "UnsupportedImageType",
                                             f"Image manifest media type {found.media_type} is not accepted"))
                    continue
                images.append({
                    "registryId": repository.account_id, "repositoryName": repository.name,
                    "imageId": {"imageDigest": found.digest, **({"imageTag": image_id["imageTag"]}
                                                                 if image_id.get("imageTag") else {})},
                    "imageManifest": found.content.decode(), "imageManifestMediaType": found.media_type,
                })
            return images, failures
        images, failures = await self.db.read(fetch)
        return {"images": images, "failures": failures}

    async def batch_check_layer_availability(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        repository = await self.repository(ctx, params, "ecr:BatchCheckLayerAvailability")
        digests: list[str] = params["layerDigests"]
        sizes = await self.db.read(lambda conn: linked_blobs(conn, repository.id, digests))
        layers, failures = [], []
        for digest in digests:
            if digest in sizes:
                layers.append({"layerDigest": digest, "layerAvailability": "AVAILABLE", "layerSize": sizes[digest]})
            else:
                failures.append({"layerDigest": digest, "failureCode": "MissingLayerDigest",
                                 "failureReason": "Could not find layer"})
        return {"layers": layers, "failures": failures}

    # -- writing -------------------------------------------------------------------------------------
    async def batch_delete_image(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        repository = await self.repository(ctx, params, "ecr:BatchDeleteImage")

        def delete(conn: sa.Connection) -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
            deleted, failures = [], []
            for image_id in params["imageIds"]:
                found = _lookup(conn, repository.id, image_id)
                if isinstance(found, dict):
                    failures.append(found)
                    continue
                tag = image_id.get("imageTag")
                if tag:  # removing an image's last tag deletes the image, as on ECR
                    delete_tag(conn, repository.id, tag)
                    if not tags_by_digest(conn, repository.id, [found.digest]):
                        delete_manifest(conn, repository.id, found.digest)
                    deleted.append({"imageDigest": found.digest, "imageTag": tag})
                else:
                    delete_manifest(conn, repository.id, found.digest)
                    deleted.append({"imageDigest": found.digest})
            return deleted, failures
        deleted, failures = await self.db.write(delete)
        return {"imageIds": deleted, "failures": failures}

    async def put_image(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        repository = await self.repository(ctx, params, "ecr:PutImage")
        tag: str | None = params.get("imageTag")
        if tag is not None and not TAG.match(tag):
            raise InvalidParameterException(f"Invalid parameter at 'imageTag' failed to satisfy constraint: "
                                            f"'{tag[:300]}' is not a valid tag")
        try:
            manifest = parse_manifest(params["imageManifest"].encode(), params.get("imageManifestMediaType"))
        except RegistryError as exc:
            raise InvalidParameterException(
                f"Invalid parameter at 'ImageManifest' failed to satisfy constraint: '{exc.message}'") from None
        digest = str(manifest.digest)
        if params.get("imageDigest") and params["imageDigest"] != digest:
            raise ImageDigestDoesNotMatchException(
                f"Invalid parameter at 'imageDigest' failed to satisfy constraint: 'The digest "
                f"{params['imageDigest']} does not match the digest of the image manifest {digest}'")
        now = datetime.now(UTC)

        def put(conn: sa.Connection) -> None:
            exists = get_manifest(conn, repository.id, digest) is not None
            if exists and (tag is None or resolve(conn, repository.id, tag) == digest):
                raise ImageAlreadyExistsException(
                    f"Image with digest '{digest}' and tag '{tag or 'null'}' already exists in the repository "
                    f"with name '{repository.name}' in registry with id '{repository.account_id}'")
            put_manifest(conn, repository, manifest, [tag] if tag else [], now)
        try:
            await self.db.write(put)
        except TagImmutable as exc:
            raise ImageTagAlreadyExistsException(immutable_message(exc.tag, repository.name)) from None
        except ReferencesUnknown as exc:
            children = {str(d.digest) for d in manifest.children}
            if any(d in children for d in exc.digests):
                raise ReferencedImagesNotFoundException(
                    f"Some of the referenced images were not found: {exc.digests}") from None
            raise LayersNotFoundException(
                f"Layers with digests '{exc.digests}' required for pushing image into repository with name "
                f"'{repository.name}' in registry with id '{repository.account_id}' do not exist") from None
        image_id = {"imageDigest": digest, **({"imageTag": tag} if tag else {})}
        return {"image": {"registryId": repository.account_id, "repositoryName": repository.name,
                          "imageId": image_id, "imageManifest": params["imageManifest"],
                          "imageManifestMediaType": manifest.media_type}}
