"""Blobs and blob uploads over HTTP.

An upload session is a row in the metadata store plus an ingest in the blob store named by the
session id, so a session survives a restart: its bytes are on disk and the hash state is rebuilt
from them when the next chunk arrives. Writes to one session are serialised by a lock; a blob
exists for a repository once its bytes are committed (size and digest verified, fsynced, renamed)
and the repository links it.
"""

from __future__ import annotations

import asyncio
import re
import uuid
import weakref
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from minicloud.registry.content import parse_digest
from minicloud.registry.errors import RegistryError
from minicloud.registry.http import ClientGone, Request, Response
from minicloud.registry.repositories import (
    blob_size,
    create_upload,
    delete_upload,
    finish_upload,
    link_blob,
    linked_in_account,
    touch_upload,
    unlink_blob,
    upload_repository,
)
from minicloud.storage.blobs import (
    BlobNotFound,
    Digest,
    DigestMismatch,
    NoReplicaAvailable,
    ReplicatedIngest,
    SizeMismatch,
)

if TYPE_CHECKING:
    from minicloud.registry.api import RegistryApp
    from minicloud.registry.auth import Identity
    from minicloud.registry.repositories import Repository

_CONTENT_RANGE = re.compile(r"^(?:bytes[ =])?(\d+)-(\d+)(?:/(?:\d+|\*))?$")
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
TAIL_BATCH = 1 << 20  # bytes per batch where the end of a body may be near (see _receive)
_UPLOAD_ID = re.compile(r"^[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12}$")


def _range_header(offset: int) -> str:
    return f"0-{max(offset - 1, 0)}"


def _byte_range(header: str, size: int) -> tuple[int, int] | None:
    """``(start, end)`` inclusive for a single ``bytes=`` range; None when it cannot be satisfied."""
    match = _RANGE.match(header.strip().replace(" ", ""))
    if match is None or (not match.group(1) and not match.group(2)):
        raise RegistryError("RANGE_INVALID", f"unsupported range {header[:100]!r}", status=416,
                            headers=[("content-range", f"bytes */{size}")])
    first, last = match.group(1), match.group(2)
    if not first:  # the last N bytes
        n = int(last)
        if n == 0 or size == 0:
            return None
        return max(size - n, 0), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if start >= size or end < start:
        return None
    return start, min(end, size - 1)


class BlobHandlers:
    def __init__(self, app: RegistryApp) -> None:
        self.app = app
        self.db = app.db
        self.blobs = app.blobs
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def _lock(self, upload_id: str) -> asyncio.Lock:
        lock = self._locks.get(upload_id)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[upload_id] = lock
        return lock

    # -- blobs ---------------------------------------------------------------------------------------
    async def get_blob(self, req: Request, name: str, digest_text: str) -> Response:
        digest = parse_digest(digest_text)
        _, repository = await self.app.authorize(req, name, "pull")
        if repository is None:
            raise RegistryError("NAME_UNKNOWN", f"repository {name} not found", {"name": name})
        repo_id = repository.id
        size = await self.db.read(lambda conn: blob_size(conn, repo_id, str(digest)))
        if size is None:
            raise RegistryError("BLOB_UNKNOWN", f"blob {digest} not found in {name}", {"digest": str(digest)})
        try:
            info = await self.blobs.stat(digest)
        except BlobNotFound:
            raise RegistryError("BLOB_UNKNOWN", f"blob {digest} is not available",
                                {"digest": str(digest)}) from None
        size = info.size
        headers = [("content-type", "application/octet-stream"), ("docker-content-digest", str(digest)),
                   ("accept-ranges", "bytes"), ("etag", f'"{digest}"'),
                   ("cache-control", "max-age=31536000")]
        status, start, length = 200, 0, size
        range_header = req.headers.get("range")
        if range_header:
            span = _byte_range(range_header, size)
            if span is None:
                raise RegistryError("RANGE_INVALID", "requested range not satisfiable", status=416,
                                    headers=[("content-range", f"bytes */{size}")])
            start, end = span
            status, length = 206, end - start + 1
            headers.append(("content-range", f"bytes {start}-{end}/{size}"))
        if req.method == "HEAD" or length == 0:
            return Response(status, headers, length=length)
        return Response(status, headers, stream=self.blobs.read(digest, start, length), length=length)

    async def delete_blob(self, req: Request, name: str, digest_text: str) -> Response:
        digest = parse_digest(digest_text)
        _, repository = await self.app.authorize(req, name, "delete")
        if repository is None:
            raise RegistryError("NAME_UNKNOWN", f"repository {name} not found", {"name": name})
        repo_id = repository.id
        if not await self.db.write(lambda conn: unlink_blob(conn, repo_id, str(digest))):
            raise RegistryError("BLOB_UNKNOWN", f"blob {digest} not found in {name}", {"digest": str(digest)})
        return Response(202, [("docker-content-digest", str(digest))])

    # -- starting an upload --------------------------------------------------------------------------
    async def start_upload(self, req: Request, name: str, upload_id: str) -> Response:
        if upload_id:
            raise RegistryError("UNSUPPORTED", "POST goes to /blobs/uploads/", status=405)
        mount, source = req.arg("mount"), req.arg("from")
        also = f"repository:{source}:pull" if mount and source and source != name else None
        identity, repository = await self.app.authorize(req, name, "push", also)
        if mount is not None:
            mounted = await self._mount(req, identity, name, repository, mount, source)
            if mounted is not None:
                return mounted
        repository = await self.app.repository_for_push(identity, name, repository)
        digest_text = req.arg("digest")
        if digest_text is not None:
            return await self._monolithic(req, name, repository, parse_digest(digest_text))
        new_id = str(uuid.uuid4())
        now = datetime.now(UTC)
        repo_id = repository.id
        await self.db.write(lambda conn: create_upload(conn, new_id, repo_id, now))
        return self._upload_response(req, 202, name, new_id, 0)

    async def _mount(self, req: Request, identity: Identity, name: str, repository: Repository | None,
                     mount: str, source: str | None) -> Response | None:
        from minicloud.registry.api import valid_name

        digest = parse_digest(mount)
        if not source:
            size = await self._discover(identity, name, repository, digest)
        else:
            if not valid_name(source):
                return None
            if identity.grants is not None and not identity.asked(source):
                # The token was issued without the source's scope: ask for both (as distribution does).
                push = f"repository:{name}:pull,push"
                raise self.app.challenge(req, f"{push} repository:{source}:pull", "insufficient_scope")
            source_repo = await self.app.repository(source)
            if source_repo is None or not await self.app.auth.allowed(identity, source, source_repo, "pull",
                                                                      req.client_ip):
                return None
            source_id = source_repo.id
            size = await self.db.read(lambda conn: blob_size(conn, source_id, str(digest)))
        if size is None:
            return None
        try:
            await self.blobs.stat(digest)
        except BlobNotFound:
            return None
        target = await self.app.repository_for_push(identity, name, repository)
        now = datetime.now(UTC)
        blob_bytes = size
        await self.db.write(lambda conn: link_blob(conn, target.id, str(digest), blob_bytes, now))
        return self._created(req, name, digest)

    async def _discover(self, identity: Identity, name: str, repository: Repository | None,
                        digest: Digest) -> int | None:
        """A mount without ``from``: the blob's size when a repository of the same account links it."""
        account = repository.account_id if repository is not None else identity.principal.account_id
        return await self.db.read(lambda conn: linked_in_account(conn, account, str(digest)))

    async def _monolithic(self, req: Request, name: str, repository: Repository, digest: Digest) -> Response:
        ingest = await self._open(uuid.uuid4().hex)
        try:
            await self._receive(req, ingest)
            size = await self._commit(ingest, digest)
        except BaseException:
            await ingest.abort()
            raise
        now = datetime.now(UTC)
        repo_id = repository.id
        await self.db.write(lambda conn: link_blob(conn, repo_id, str(digest), size, now))
        return self._created(req, name, digest)

    # -- an upload session ---------------------------------------------------------------------------
    async def _session(self, req: Request, name: str, upload_id: str) -> Repository:
        _, repository = await self.app.authorize(req, name, "push")
        if not _UPLOAD_ID.match(upload_id) or repository is None:
            raise RegistryError("BLOB_UPLOAD_UNKNOWN", "upload unknown", {"uuid": upload_id[:64]})
        owner = await self.db.read(lambda conn: upload_repository(conn, upload_id))
        if owner != repository.id:
            raise RegistryError("BLOB_UPLOAD_UNKNOWN", "upload unknown", {"uuid": upload_id})
        return repository

    async def _still_open(self, upload_id: str) -> None:
        """Inside the session's lock: a request that waited behind the one that ended it finds nothing."""
        if await self.db.read(lambda conn: upload_repository(conn, upload_id)) is None:
            raise RegistryError("BLOB_UPLOAD_UNKNOWN", "upload unknown", {"uuid": upload_id})

    async def _offset(self, upload_id: str) -> int:
        try:
            return (await self.blobs.ingest_status(upload_id)).offset
        except BlobNotFound:
            return 0

    async def upload_status(self, req: Request, name: str, upload_id: str) -> Response:
        await self._session(req, name, upload_id)
        return self._upload_response(req, 204, name, upload_id, await self._offset(upload_id))

    async def patch_upload(self, req: Request, name: str, upload_id: str) -> Response:
        await self._session(req, name, upload_id)
        async with self._lock(upload_id):
            await self._still_open(upload_id)
            ingest = await self._open(upload_id)
            try:
                self._check_range(req, name, upload_id, ingest.offset)
                await self._receive(req, ingest)
            finally:
                await ingest.close()
            offset = ingest.offset
        now = datetime.now(UTC)
        await self.db.write(lambda conn: touch_upload(conn, upload_id, now))
        return self._upload_response(req, 202, name, upload_id, offset)

    async def put_upload(self, req: Request, name: str, upload_id: str) -> Response:
        repository = await self._session(req, name, upload_id)
        digest_text = req.arg("digest")
        if not digest_text:
            raise RegistryError("DIGEST_INVALID", "the digest query parameter is required")
        digest = parse_digest(digest_text)
        async with self._lock(upload_id):
            await self._still_open(upload_id)
            ingest = await self._open(upload_id)
            try:
                if req.headers.get("content-range") or (req.content_length or 0) > 0:
                    self._check_range(req, name, upload_id, ingest.offset)
                await self._receive(req, ingest)
                size = await self._commit(ingest, digest)
            except RegistryError as error:
                if error.code in ("DIGEST_INVALID", "SIZE_INVALID"):
                    await ingest.abort()
                    await self.db.write(lambda conn: delete_upload(conn, upload_id))
                else:
                    await ingest.close()
                raise
            except BaseException:
                await ingest.close()
                raise
        now = datetime.now(UTC)
        repo_id = repository.id
        await self.db.write(lambda conn: finish_upload(conn, upload_id, repo_id, str(digest), size, now))
        return self._created(req, name, digest)

    async def cancel_upload(self, req: Request, name: str, upload_id: str) -> Response:
        await self._session(req, name, upload_id)
        async with self._lock(upload_id):
            await self.blobs.abort_ingest(upload_id)
            await self.db.write(lambda conn: delete_upload(conn, upload_id))
        return Response(204)

    # -- helpers -------------------------------------------------------------------------------------
    async def _open(self, ref: str) -> ReplicatedIngest:
        try:
            return await self.blobs.ingest(ref)
        except NoReplicaAvailable as exc:
            raise RegistryError("TOOMANYREQUESTS", f"storage unavailable: {exc}", status=503) from None

    @staticmethod
    async def _receive(req: Request, ingest: ReplicatedIngest) -> None:
        """The body into the ingest. The store hands bytes to its threads in large batches, and a
        request ends once its last batch and the one in flight are written: that tail is paid per
        layer by clients that push layers one after another (skopeo: POST, PATCH, PUT each). So
        small batches where the end may be near: all along a body of unknown length (chunked), the
        last large batch's worth of one whose length is known."""
        length = req.content_length if "chunked" not in (req.headers.get("transfer-encoding") or "") else None
        near_end = ingest.store.flush_bytes
        received = unflushed = 0
        try:
            async for chunk in req.stream():
                await ingest.write(chunk)
                received += len(chunk)
                unflushed += len(chunk)
                if unflushed >= TAIL_BATCH and (length is None or length - received < near_end):
                    await ingest.flush()
                    unflushed = 0
        except ClientGone:
            raise
        except NoReplicaAvailable as exc:
            raise RegistryError("TOOMANYREQUESTS", f"storage unavailable: {exc}", status=503) from None

    @staticmethod
    async def _commit(ingest: ReplicatedIngest, digest: Digest) -> int:
        try:
            return (await ingest.commit(digest)).size
        except DigestMismatch as exc:
            raise RegistryError("DIGEST_INVALID", str(exc), {"digest": str(digest)}) from None
        except SizeMismatch as exc:
            raise RegistryError("SIZE_INVALID", str(exc)) from None
        except NoReplicaAvailable as exc:
            raise RegistryError("TOOMANYREQUESTS", f"storage unavailable: {exc}", status=503) from None

    def _check_range(self, req: Request, name: str, upload_id: str, offset: int) -> None:
        header = req.headers.get("content-range")
        if not header:
            return
        match = _CONTENT_RANGE.match(header.strip())
        if match is None:
            raise RegistryError("RANGE_INVALID", f"invalid Content-Range {header[:100]!r}", status=416,
                                headers=self._upload_headers(req, name, upload_id, offset))
        start, end = int(match.group(1)), int(match.group(2))
        if start != offset or end < start:
            raise RegistryError("RANGE_INVALID", f"the upload is at offset {offset}, not {start}", status=416,
                                headers=self._upload_headers(req, name, upload_id, offset))
        length = req.content_length
        if length is not None and length != end - start + 1:
            raise RegistryError("SIZE_INVALID", f"Content-Length {length} does not match Content-Range {header}")

    @staticmethod
    def _upload_headers(req: Request, name: str, upload_id: str, offset: int) -> list[tuple[str, str]]:
        return [("location", req.url(f"/v2/{name}/blobs/uploads/{upload_id}")), ("range", _range_header(offset)),
                ("docker-upload-uuid", upload_id)]

    def _upload_response(self, req: Request, status: int, name: str, upload_id: str, offset: int) -> Response:
        return Response(status, self._upload_headers(req, name, upload_id, offset))

    @staticmethod
    def _created(req: Request, name: str, digest: Digest) -> Response:
        return Response(201, [("location", req.url(f"/v2/{name}/blobs/{digest}")),
                              ("docker-content-digest", str(digest))])
