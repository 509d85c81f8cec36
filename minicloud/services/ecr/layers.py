"""ECR's layer API: the same upload sessions and blob store as the registry's /v2/ uploads.

InitiateLayerUpload opens a session, UploadLayerPart appends parts in order (the session survives
a restart: its bytes are an ingest in the blob store), CompleteLayerUpload verifies the digest and
links the layer into the repository. GetDownloadUrlForLayer answers the registry URL of the blob
(fetched with registry credentials, where AWS answers a presigned S3 URL).
"""

from __future__ import annotations

import asyncio
import uuid
import weakref
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from minicloud.aws.context import RequestContext
from minicloud.registry.repositories import (
    Repository,
    blob_size,
    create_upload,
    delete_upload,
    finish_upload,
    touch_upload,
    upload_repository,
)
from minicloud.services.ecr.errors import (
    EmptyUploadException,
    InvalidLayerException,
    InvalidLayerPartException,
    InvalidParameterException,
    LayerAlreadyExistsException,
    LayersNotFoundException,
    UploadNotFoundException,
)
from minicloud.storage.blobs import BlobNotFound, Digest, DigestMismatch, InvalidDigest, ReplicatedBlobStore

if TYPE_CHECKING:
    from minicloud.storage.metadata.db import Database

PART_SIZE = 10 * 1024 * 1024


class LayersMixin:
    db: Database
    blobs: ReplicatedBlobStore
    _upload_locks: weakref.WeakValueDictionary[str, asyncio.Lock]

    async def repository(self, ctx: RequestContext, params: dict[str, Any], action: str) -> Repository:
        raise NotImplementedError

    @staticmethod
    def host(ctx: RequestContext) -> str:
        raise NotImplementedError

    def _upload_lock(self, upload_id: str) -> asyncio.Lock:
        lock = self._upload_locks.get(upload_id)
        if lock is None:
            lock = asyncio.Lock()
            self._upload_locks[upload_id] = lock
        return lock

    async def _session(self, repository: Repository, upload_id: str) -> None:
        owner = await self.db.read(lambda conn: upload_repository(conn, upload_id))
        if owner != repository.id:
            raise UploadNotFoundException(
                f"Upload with id '{upload_id}' is not found in repository '{repository.name}' in registry with id "
                f"'{repository.account_id}'")

    async def initiate_layer_upload(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        repository = await self.repository(ctx, params, "ecr:InitiateLayerUpload")
        upload_id = str(uuid.uuid4())
        now = datetime.now(UTC)
        await self.db.write(lambda conn: create_upload(conn, upload_id, repository.id, now))
        return {"uploadId": upload_id, "partSize": PART_SIZE}

    async def upload_layer_part(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        repository = await self.repository(ctx, params, "ecr:UploadLayerPart")
        upload_id: str = params["uploadId"]
        data: bytes = params["layerPartBlob"]
        first, last = int(params["partFirstByte"]), int(params["partLastByte"])
        await self._session(repository, upload_id)
        async with self._upload_lock(upload_id):
            ingest = await self.blobs.ingest(upload_id)
            try:
                if first != ingest.offset or last - first + 1 != len(data):
                    raise InvalidLayerPartException(
                        f"The part with first byte {first} and last byte {last} does not follow the "
                        f"{ingest.offset} bytes received", lastValidByteReceived=max(ingest.offset - 1, 0),
                        registryId=repository.account_id, repositoryName=repository.name, uploadId=upload_id)
                await ingest.write(data)
            finally:
                await ingest.close()
            received = ingest.offset
        now = datetime.now(UTC)
        await self.db.write(lambda conn: touch_upload(conn, upload_id, now))
        return {"registryId": repository.account_id, "repositoryName": repository.name, "uploadId": upload_id,
                "lastByteReceived": received - 1}

    async def complete_layer_upload(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        repository = await self.repository(ctx, params, "ecr:CompleteLayerUpload")
        upload_id: str = params["uploadId"]
        try:
            digest = Digest.parse(params["layerDigests"][0])
        except (InvalidDigest, IndexError):
            raise InvalidParameterException("Invalid parameter at 'layerDigests' failed to satisfy constraint: "
                                            "'must be one valid digest'") from None
        await self._session(repository, upload_id)
        if await self.db.read(lambda conn: blob_size(conn, repository.id, str(digest))) is not None:
            raise LayerAlreadyExistsException(
                f"The layer '{digest}' already exists in the repository with name '{repository.name}' in registry "
                f"with id '{repository.account_id}'")
        async with self._upload_lock(upload_id):
            ingest = await self.blobs.ingest(upload_id)
            if ingest.offset == 0:
                await ingest.close()
                raise EmptyUploadException(f"The upload '{upload_id}' has no layer parts")
            try:
                info = await ingest.commit(digest)
            except DigestMismatch as exc:
                await ingest.abort()
                await self.db.write(lambda conn: delete_upload(conn, upload_id))
                raise InvalidLayerException(f"Layer digest does not match the uploaded content: {exc}") from None
        now = datetime.now(UTC)
        await self.db.write(lambda conn: finish_upload(conn, upload_id, repository.id, str(digest), info.size, now))
        return {"registryId": repository.account_id, "repositoryName": repository.name, "uploadId": upload_id,
                "layerDigest": str(digest)}

    async def get_download_url_for_layer(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        repository = await self.repository(ctx, params, "ecr:GetDownloadUrlForLayer")
        digest_text: str = params["layerDigest"]
        missing = LayersNotFoundException(f"The specified layer '{digest_text}' does not exist in the repository "
                                          f"'{repository.name}' in registry with id '{repository.account_id}'")
        try:
            digest = Digest.parse(digest_text)
        except InvalidDigest:
            raise InvalidParameterException("Invalid parameter at 'layerDigest' failed to satisfy constraint: "
                                            "'must be a valid digest'") from None
        if await self.db.read(lambda conn: blob_size(conn, repository.id, str(digest))) is None:
            raise missing
        try:
            await self.blobs.stat(digest)
        except BlobNotFound:
            raise missing from None
        return {"downloadUrl": f"http://{self.host(ctx)}/v2/{repository.name}/blobs/{digest}",
                "layerDigest": str(digest)}
