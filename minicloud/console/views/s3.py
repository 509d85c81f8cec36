"""S3 buckets: list, create (the service's name errors next to the field), delete, versioning."""

from __future__ import annotations

from typing import Any

from minicloud.console.http import Response, url
from minicloud.console.page import Page, Route, route
from minicloud.console.views import s3_objects
from minicloud.console.views.common import field_error, status_of

BUCKET = r"(?P<bucket>[^/]{1,255})"


async def buckets(page: Page, status: int = 200, **extra: Any) -> Response:
    result, failure = await page.attempt("s3", "ListBuckets", {})
    values: dict[str, Any] = {"buckets": (result or {}).get("Buckets") or [], "failure": failure, "errors": {},
                              "values": {}}
    values.update(extra)
    return page.render("s3_buckets.html", status, **values)


async def create_bucket(page: Page) -> Response:
    name = page.form("bucket_name").strip()
    params: dict[str, Any] = {"Bucket": name}
    if page.session.region != "us-east-1":
        params["CreateBucketConfiguration"] = {"LocationConstraint": page.session.region}
    _, failure = await page.attempt("s3", "CreateBucket", params)
    if failure is not None:
        return await buckets(page, status_of(failure), errors=field_error(failure, "bucket_name"),
                             values=page.request.form)
    return await page.done(url(f"/s3/buckets/{name}"), f"Bucket {name} created in {page.session.region}.")


async def delete_bucket(page: Page) -> Response:
    name = page.request.params["bucket"]
    _, failure = await page.attempt("s3", "DeleteBucket", {"Bucket": name})
    if failure is not None:
        return await s3_objects.browse(page, status_of(failure), action_failure=failure)
    return await page.done(url("/s3/buckets"), f"Bucket {name} deleted.")


async def set_versioning(page: Page) -> Response:
    name = page.request.params["bucket"]
    status = "Enabled" if page.form("status") == "Enabled" else "Suspended"
    _, failure = await page.attempt("s3", "PutBucketVersioning",
                                    {"Bucket": name, "VersioningConfiguration": {"Status": status}})
    if failure is not None:
        return await s3_objects.browse(page, status_of(failure), action_failure=failure)
    return await page.done(url(f"/s3/buckets/{name}"), f"Versioning of {name} is now {status}.")


ROUTES: list[Route] = [
    route("GET", "/s3/buckets", buckets),
    route("POST", "/s3/buckets", create_bucket),
    route("GET", f"/s3/buckets/{BUCKET}", s3_objects.browse),
    route("POST", f"/s3/buckets/{BUCKET}/delete", delete_bucket),
    route("POST", f"/s3/buckets/{BUCKET}/versioning", set_versioning),
    route("PUT", f"/s3/buckets/{BUCKET}/upload", s3_objects.upload),
    route("GET", f"/s3/buckets/{BUCKET}/download", s3_objects.download),
    route("GET", f"/s3/buckets/{BUCKET}/object", s3_objects.object_page),
    route("POST", f"/s3/buckets/{BUCKET}/object/delete", s3_objects.delete_object),
    route("POST", f"/s3/buckets/{BUCKET}/folder", s3_objects.create_folder),
    route("POST", f"/s3/buckets/{BUCKET}/presign", s3_objects.presign),
]
