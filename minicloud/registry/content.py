"""Manifests, tags and referrers over HTTP."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import quote

from minicloud.registry.errors import RegistryError
from minicloud.registry.http import Request, Response
from minicloud.registry.manifests import MAX_MANIFEST_BYTES, OCI_INDEX, parse_manifest
from minicloud.registry.repositories import (
    ReferencesUnknown,
    TagImmutable,
    delete_manifest,
    delete_tag,
    get_manifest,
    list_tags,
    put_manifest,
    referrers,
)
from minicloud.storage.blobs import Digest, InvalidDigest

if TYPE_CHECKING:
    from minicloud.registry.api import RegistryApp

TAG = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$")


def parse_reference(reference: str, lookup: bool = False) -> Digest | str:
    """A digest, or a tag. A lookup of a malformed tag finds nothing (404), a push of one is refused."""
    if ":" in reference:
        try:
            return Digest.parse(reference)
        except InvalidDigest as exc:
            raise RegistryError("DIGEST_INVALID", str(exc)) from None
    if not TAG.match(reference):
        if lookup:
            raise RegistryError("MANIFEST_UNKNOWN", f"manifest {reference[:200]!r} not found")
        raise RegistryError("TAG_INVALID", f"invalid tag: {reference[:200]!r}")
    return reference


def parse_digest(text: str) -> Digest:
    try:
        return Digest.parse(text)
    except InvalidDigest as exc:
        raise RegistryError("DIGEST_INVALID", str(exc)) from None


def immutable_message(tag: str, name: str) -> str:
    return (f"The image tag '{tag}' already exists in the '{name}' repository and cannot be overwritten "
            "because the repository is immutable.")


class ContentHandlers:
    def __init__(self, app: RegistryApp) -> None:
        self.app = app
        self.db = app.db

    async def get_manifest(self, req: Request, name: str, reference: str) -> Response:
        ref = parse_reference(reference, lookup=True)
        _, repository = await self.app.authorize(req, name, "pull")
        if repository is None:
            raise RegistryError("NAME_UNKNOWN", f"repository {name} not found", {"name": name})
        repo_id = repository.id
        record = await self.db.read(lambda conn: get_manifest(conn, repo_id, str(ref)))
        if record is None:
            raise RegistryError("MANIFEST_UNKNOWN", f"manifest {reference} not found in {name}",
                                {"name": name, "reference": reference})
        headers = [("content-type", record.media_type), ("docker-content-digest", record.digest),
                   ("etag", f'"{record.digest}"')]
        return Response(200, headers, record.content)

    async def put_manifest(self, req: Request, name: str, reference: str) -> Response:
        ref = parse_reference(reference)
        tag_names = [] if isinstance(ref, Digest) else [ref]
        for extra in req.query.get("tag", []):
            if not TAG.match(extra):
                raise RegistryError("TAG_INVALID", f"invalid tag: {extra[:200]!r}")
            if extra not in tag_names:
                tag_names.append(extra)
        identity, repository = await self.app.authorize(req, name, "push")
        body = await req.body(MAX_MANIFEST_BYTES)
        if body is None:
            raise RegistryError("SIZE_INVALID", f"manifests are limited to {MAX_MANIFEST_BYTES} bytes",
                                status=413)
        algorithm = ref.algorithm if isinstance(ref, Digest) else "sha256"
        manifest = parse_manifest(body, req.headers.get("content-type"), algorithm)
        if isinstance(ref, Digest) and manifest.digest != ref:
            raise RegistryError("DIGEST_INVALID", f"the manifest's digest is {manifest.digest}, not {ref}",
                                {"digest": str(ref)})
        repository = await self.app.repository_for_push(identity, name, repository)
        repo = repository
        now = datetime.now(UTC)
        try:
            await self.db.write(lambda conn: put_manifest(conn, repo, manifest, tag_names, now))
        except ReferencesUnknown as exc:
            raise RegistryError("MANIFEST_BLOB_UNKNOWN", f"blob unknown to registry: {exc.digests[0]}",
                                [{"digest": d} for d in exc.digests]) from None
        except TagImmutable as exc:
            raise RegistryError("TAG_INVALID", immutable_message(exc.tag, name), {"tag": exc.tag}) from None
        digest = str(manifest.digest)
        headers = [("location", req.url(f"/v2/{name}/manifests/{digest}")), ("docker-content-digest", digest)]
        if manifest.subject is not None:
            headers.append(("oci-subject", str(manifest.subject)))
        headers.extend(("oci-tag", tag) for tag in tag_names)
        return Response(201, headers)

    async def delete_manifest(self, req: Request, name: str, reference: str) -> Response:
        ref = parse_reference(reference, lookup=True)
        _, repository = await self.app.authorize(req, name, "delete")
        if repository is None:
            raise RegistryError("NAME_UNKNOWN", f"repository {name} not found", {"name": name})
        repo_id = repository.id
        if isinstance(ref, Digest):
            deleted = await self.db.write(lambda conn: delete_manifest(conn, repo_id, str(ref)))
        else:
            deleted = await self.db.write(lambda conn: delete_tag(conn, repo_id, ref))
        if not deleted:
            raise RegistryError("MANIFEST_UNKNOWN", f"manifest {reference} not found in {name}",
                                {"name": name, "reference": reference})
        return Response(202)

    async def list_tags(self, req: Request, name: str) -> Response:
        from minicloud.registry.api import page_size

        limit = page_size(req)
        last = req.arg("last") or None
        _, repository = await self.app.authorize(req, name, "pull")
        if repository is None:
            raise RegistryError("NAME_UNKNOWN", f"repository {name} not found", {"name": name})
        repo_id = repository.id
        if limit == 0:
            return Response.json(200, {"name": name, "tags": []})
        found = await self.db.read(lambda conn: list_tags(
            conn, repo_id, last=last, limit=None if limit is None else limit + 1))
        headers = []
        if limit is not None and len(found) > limit:
            found = found[:limit]
            headers.append(("link", f'</v2/{name}/tags/list?n={limit}&last={quote(found[-1])}>; rel="next"'))
        return Response.json(200, {"name": name, "tags": found}, headers)

    async def referrers(self, req: Request, name: str, digest_text: str) -> Response:
        subject = parse_digest(digest_text)
        _, repository = await self.app.authorize(req, name, "pull")
        wanted = req.arg("artifactType")
        records = []
        if repository is not None:
            repo_id = repository.id
            records = await self.db.read(lambda conn: referrers(conn, repo_id, str(subject)))
        descriptors = []
        for record in records:
            if wanted and record.artifact_type != wanted:
                continue
            descriptor: dict[str, object] = {"mediaType": record.media_type, "digest": record.digest,
                                             "size": record.size}
            if record.artifact_type:
                descriptor["artifactType"] = record.artifact_type
            if record.annotations:
                descriptor["annotations"] = record.annotations
            descriptors.append(descriptor)
        headers = [("oci-filters-applied", "artifactType")] if wanted else []
        document = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors}
        return Response.json(200, document, headers, content_type=OCI_INDEX)
