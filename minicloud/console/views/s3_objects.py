"""The S3 object browser: prefixes as folders, upload (streamed), download, properties, versions,
delete, presigned links."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from minicloud.aws.errors import ServiceError, error_status
from minicloud.aws.payload import RequestPayload
from minicloud.aws.request import ClientDisconnected
from minicloud.console.calls import CallFailure
from minicloud.console.http import SECURITY_HEADERS, Response, text, url
from minicloud.console.page import Page
from minicloud.console.presign import longest_link, presign_get
from minicloud.console.views.common import field_error, status_of
from minicloud.server.asgi import ReceiveStream

PAGE_SIZE = 200
DRAIN_LIMIT = 64 * 1024 * 1024


def breadcrumbs(prefix: str) -> list[tuple[str, str]]:
    """(label, prefix) for each folder level of ``prefix`` ("a/b/" -> [("a", "a/"), ("b", "a/b/")])."""
    crumbs, path = [], ""
    for part in prefix.split("/")[:-1]:
        path += part + "/"
        crumbs.append((part or "(empty)", path))
    return crumbs


async def browse(page: Page, status: int = 200, **extra: Any) -> Response:
    bucket = page.request.params["bucket"]
    prefix = page.request.query.get("prefix", "")
    params: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "Delimiter": "/", "MaxKeys": PAGE_SIZE}
    if page.request.query.get("token"):
        params["ContinuationToken"] = page.request.query["token"]
    listing, failure = await page.attempt("s3", "ListObjectsV2", params)
    versioning, _ = await page.attempt("s3", "GetBucketVersioning", {"Bucket": bucket})
    listing = listing or {}
    values: dict[str, Any] = {
        "bucket": bucket, "folder": prefix, "crumbs": breadcrumbs(prefix), "failure": failure,
        "folders": [p["Prefix"] for p in listing.get("CommonPrefixes") or []],
        "objects": [o for o in listing.get("Contents") or [] if o["Key"] != prefix],
        "next_token": listing.get("NextContinuationToken"),
        "versioning": (versioning or {}).get("Status"), "action_failure": None, "errors": {},
    }
    values.update(extra)
    return page.render("s3_bucket.html", status, **values)


async def upload(page: Page) -> Response:
    """PUT the raw body: it streams from the browser into S3's PutObject, never held whole."""
    request = page.request
    bucket, key = request.params["bucket"], request.query.get("key", "")
    length = request.headers.get("content-length")
    params: dict[str, Any] = {"Bucket": bucket, "Key": key}
    if length is not None and length.isdigit():
        params["ContentLength"] = int(length)
    content_type = request.headers.get("content-type")
    if content_type:
        params["ContentType"] = content_type
    stream = ReceiveStream(request.receive)
    payload = RequestPayload(stream, length=int(length) if length and length.isdigit() else None)
    try:
        result = await page.calls.call("s3", "PutObject", params, method="PUT", payload={"Body": payload})
    except ServiceError as error:
        failure = CallFailure.of(error)
        await _drain(stream)  # so that the browser reads the answer instead of a reset connection
        return text(f"{failure.code}: {failure.message}", error_status(error))
    body = json.dumps({"Bucket": bucket, "Key": key, "ETag": result.get("ETag")}).encode()
    return Response(200, [("content-type", "application/json"), *SECURITY_HEADERS], body)


async def _drain(stream: ReceiveStream, limit: int = DRAIN_LIMIT) -> None:
    """Read and drop what is left of a refused upload's body, up to ``limit`` bytes."""
    seen = 0
    try:
        async for chunk in stream:
            seen += len(chunk)
            if seen > limit:
                return
    except ClientDisconnected:
        return


async def download(page: Page) -> Response:
    """The object's bytes as they are stored, as an attachment (never rendered by the console)."""
    bucket, key = page.request.params["bucket"], page.request.query.get("key", "")
    params: dict[str, Any] = {"Bucket": bucket, "Key": key}
    if page.request.query.get("versionId"):
        params["VersionId"] = page.request.query["versionId"]
    result = await page.call("s3", "GetObject", params)  # a service error renders the error page
    name = key.rsplit("/", 1)[-1] or "download"
    headers = [
        ("content-type", "application/octet-stream"),
        ("content-length", str(result.get("ContentLength", 0))),
        ("content-disposition", f"attachment; filename*=UTF-8''{quote(name, safe='')}"),
        ("etag", str(result.get("ETag", ""))),
        *SECURITY_HEADERS,
    ]
    body = result.get("Body")
    if body is None:
        return Response(200, headers, b"")
    return Response(200, headers, stream=body)


async def object_page(page: Page, status: int = 200, **extra: Any) -> Response:
    bucket, key = page.request.params["bucket"], page.request.value("key")
    version_id = page.request.value("versionId") or None
    params: dict[str, Any] = {"Bucket": bucket, "Key": key}
    if version_id:
        params["VersionId"] = version_id
    head, failure = await page.attempt("s3", "HeadObject", params)
    tags, _ = await page.attempt("s3", "GetObjectTagging", params)
    versions, versions_failure = await page.attempt("s3", "ListObjectVersions", {"Bucket": bucket, "Prefix": key})
    versions = versions or {}
    entries = [{**v, "DeleteMarker": False} for v in versions.get("Versions") or [] if v["Key"] == key]
    entries += [{**v, "DeleteMarker": True} for v in versions.get("DeleteMarkers") or [] if v["Key"] == key]
    entries.sort(key=lambda v: v["LastModified"], reverse=True)
    values: dict[str, Any] = {
        "bucket": bucket, "key": key, "version_id": version_id, "head": head or {}, "failure": failure,
        "tags": (tags or {}).get("TagSet") or [], "versions": entries, "versions_failure": versions_failure,
        "crumbs": breadcrumbs(key), "link": None, "errors": {}, "action_failure": None,
        "longest_link": longest_link(page.principal.kind), "expires": "3600",
    }
    values.update(extra)
    return page.render("s3_object.html", status, **values)


async def delete_object(page: Page) -> Response:
    bucket, key = page.request.params["bucket"], page.form("key")
    params: dict[str, Any] = {"Bucket": bucket, "Key": key}
    if page.form("versionId"):
        params["VersionId"] = page.form("versionId")
    _, failure = await page.attempt("s3", "DeleteObject", params)
    if failure is not None:
        return await object_page(page, status_of(failure), action_failure=failure)
    folder = key.rsplit("/", 1)[0] + "/" if "/" in key else ""
    what = f"Version {params['VersionId']} of {key}" if "VersionId" in params else key
    return await page.done(url(f"/s3/buckets/{bucket}", prefix=folder or None), f"{what} deleted.")


async def create_folder(page: Page) -> Response:
    bucket = page.request.params["bucket"]
    prefix, name = page.form("prefix"), page.form("folder_name").strip().strip("/")
    if not name:
        return await browse(page, 400, errors={"folder_name": "Enter a folder name."})
    _, failure = await page.attempt("s3", "PutObject", {"Bucket": bucket, "Key": f"{prefix}{name}/"})
    if failure is not None:
        return await browse(page, status_of(failure), errors=field_error(failure, "folder_name"))
    return await page.done(url(f"/s3/buckets/{bucket}", prefix=prefix or None), f"Folder {name}/ created.")


async def presign(page: Page) -> Response:
    bucket, key = page.request.params["bucket"], page.form("key")
    raw = page.form("expires").strip()
    if not raw.isdigit() or not 1 <= int(raw) <= longest_link(page.principal.kind):
        return await object_page(page, 400, expires=raw, errors={
            "expires": f"Enter a number of seconds from 1 to {longest_link(page.principal.kind)}."})
    scheme = "https" if page.request.secure else "http"
    endpoint = f"{scheme}://{page.request.headers.get('host') or '127.0.0.1'}"
    try:
        link = await presign_get(page.calls, endpoint, bucket, key, page.form("versionId") or None, int(raw))
    except ServiceError as error:
        return await object_page(page, status_of(CallFailure.of(error)), expires=raw,
                                 errors=field_error(CallFailure.of(error), "expires"))
    return await object_page(page, link=link, expires=raw)
