"""The container registry (ECR): repositories, their images and tags, an image's layers, delete."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from minicloud.console.calls import CallFailure
from minicloud.console.http import Response, url
from minicloud.console.page import Page, Route, route
from minicloud.console.views.common import field_error, next_marker, paged, status_of


@dataclass(frozen=True, slots=True)
class Layer:
    kind: str  # "config", "layer", or "manifest" (an index's entry)
    digest: str
    size: int
    media_type: str
    platform: str = ""


def manifest_parts(text: str) -> list[Layer]:
    """The config and layers of an image manifest, or the manifests of an index."""
    try:
        manifest = json.loads(text)
    except ValueError:
        return []
    parts: list[Layer] = []
    config = manifest.get("config")
    if isinstance(config, dict):
        parts.append(Layer("config", str(config.get("digest", "")), int(config.get("size", 0)),
                           str(config.get("mediaType", ""))))
    for layer in manifest.get("layers") or []:
        parts.append(Layer("layer", str(layer.get("digest", "")), int(layer.get("size", 0)),
                           str(layer.get("mediaType", ""))))
    for child in manifest.get("manifests") or []:
        platform = child.get("platform") or {}
        parts.append(Layer("manifest", str(child.get("digest", "")), int(child.get("size", 0)),
                           str(child.get("mediaType", "")),
                           "/".join(str(platform[k]) for k in ("os", "architecture", "variant") if platform.get(k))))
    return parts


async def repositories(page: Page, status: int = 200, **extra: Any) -> Response:
    result, failure = await page.attempt("ecr", "DescribeRepositories",
                                         paged(page.request.query.get("marker", ""), {}, "nextToken"))
    values: dict[str, Any] = {"repositories": (result or {}).get("repositories") or [], "failure": failure,
                              "errors": {}, "values": {}, "next_marker": next_marker(result)}
    values.update(extra)
    return page.render("ecr_repositories.html", status, **values)


async def create_repository(page: Page) -> Response:
    name = page.form("repository_name").strip()
    params: dict[str, Any] = {"repositoryName": name,
                              "imageTagMutability": "IMMUTABLE" if page.form("immutable") == "on" else "MUTABLE"}
    _, failure = await page.attempt("ecr", "CreateRepository", params)
    if failure is not None:
        return await repositories(page, status_of(failure), errors=field_error(failure, "repository_name"),
                                  values=page.request.form)
    return await page.done(url("/ecr/repository", name=name), f"Repository {name} created.")


async def repository(page: Page, status: int = 200, **extra: Any) -> Response:
    name = page.request.value("name")
    found, failure = await page.attempt("ecr", "DescribeRepositories", {"repositoryNames": [name]})
    if failure is not None:
        return page.render("error.html", status_of(failure), code=failure.code, message=failure.message)
    images, images_failure = await page.attempt("ecr", "DescribeImages", {"repositoryName": name})
    details = sorted((images or {}).get("imageDetails") or [], key=lambda d: d.get("imagePushedAt") or 0,
                     reverse=True)
    values: dict[str, Any] = {"repository": ((found or {}).get("repositories") or [{}])[0], "images": details,
                              "images_failure": images_failure, "action_failure": None}
    values.update(extra)
    return page.render("ecr_repository.html", status, **values)


async def delete_repository(page: Page) -> Response:
    name = page.form("name")
    _, failure = await page.attempt("ecr", "DeleteRepository", {"repositoryName": name,
                                                                "force": page.form("force") == "on"})
    if failure is not None:
        return await repository(page, status_of(failure), action_failure=failure)
    return await page.done(url("/ecr/repositories"), f"Repository {name} deleted.")


async def image(page: Page, status: int = 200, **extra: Any) -> Response:
    name, digest = page.request.value("name"), page.request.value("digest")
    image_id = {"imageDigest": digest}
    described, failure = await page.attempt("ecr", "DescribeImages", {"repositoryName": name, "imageIds": [image_id]})
    if failure is not None:
        return page.render("error.html", status_of(failure), code=failure.code, message=failure.message)
    fetched, manifest_failure = await page.attempt("ecr", "BatchGetImage", {"repositoryName": name,
                                                                            "imageIds": [image_id]})
    manifests = (fetched or {}).get("images") or []
    manifest = manifests[0]["imageManifest"] if manifests else ""
    values: dict[str, Any] = {
        "name": name, "digest": digest, "detail": ((described or {}).get("imageDetails") or [{}])[0],
        "manifest": manifest, "parts": manifest_parts(manifest), "manifest_failure": manifest_failure,
        "action_failure": None,
    }
    values.update(extra)
    return page.render("ecr_image.html", status, **values)


async def delete_image(page: Page) -> Response:
    name = page.form("name")
    image_id = {"imageTag": page.form("tag")} if page.form("tag") else {"imageDigest": page.form("digest")}
    result, failure = await page.attempt("ecr", "BatchDeleteImage", {"repositoryName": name, "imageIds": [image_id]})
    problems = (result or {}).get("failures") or []
    if failure is None and problems:
        problem = CallFailure(str(problems[0].get("failureCode")), str(problems[0].get("failureReason")))
        return await repository(page, 400, action_failure=problem)
    if failure is not None:
        return await repository(page, status_of(failure), action_failure=failure)
    what = f"Tag {image_id['imageTag']}" if "imageTag" in image_id else f"Image {image_id['imageDigest']}"
    return await page.done(url("/ecr/repository", name=name), f"{what} deleted.")


ROUTES: list[Route] = [
    route("GET", "/ecr/repositories", repositories),
    route("POST", "/ecr/repositories", create_repository),
    route("GET", "/ecr/repository", repository),
    route("POST", "/ecr/repository/delete", delete_repository),
    route("GET", "/ecr/image", image),
    route("POST", "/ecr/image/delete", delete_image),
]
