"""The website endpoint: a request whose Host is ``<bucket>.s3-website-<region>.<domain>`` or
``<bucket>.s3-website.<region>.<domain>`` (AWS's two forms; any domain that reaches minicloud's
port, ``localhost`` included) is answered as S3's website endpoint answers it, unsigned, on the
bucket's website configuration (``website``):

    not GET or HEAD                                  405
    RedirectAllRequestsTo                            301 to its host, the same path
    a routing rule without an error code matches     its redirect
    the key ("" and "folder/": the index document), read as GetObject / HeadObject read it, by
    the anonymous principal (public through the bucket policy or an ACL; ranges, conditional
    requests, content headers, decryption: all theirs)
      with x-amz-website-redirect-location           301 there
      found                                          the object
      missing, and "<key>/<index document>" exists   302 to "/<key>/"
      an error a routing rule's error code names     its redirect
      a 4xx, with an error document                  the error document, with the error's status
      else                                           S3's HTML error page (never XML)

Without the s3:ListBucket permission a missing key is a 403 (AccessDenied), as on the REST
endpoint; with it, a 404 (NoSuchKey).
"""

from __future__ import annotations

import functools
import html
import logging
import re
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import quote, unquote

from minicloud.aws.errors import ServiceError, error_code, error_status
from minicloud.aws.protocol.serializer_base import host_id
from minicloud.aws.provider import AnonymousCall
from minicloud.aws.request import AwsRequest, AwsResponse, Headers
from minicloud.aws.request_ids import new_request_id
from minicloud.services.s3.base import S3Base, WebsiteAnswer
from minicloud.services.s3.errors import (
    IncorrectEndpoint,
    InternalError,
    MethodNotAllowed,
    NoSuchBucket,
    NoSuchWebsiteConfiguration,
)

log = logging.getLogger("minicloud.s3")

_LABEL = "s3-website"
# A region's name as AWS spells them (us-east-1, eu-west-1, ap-southeast-2, us-gov-west-1): a bucket
# label such as "docs.s3-website-old" does not make a virtual-hosted API request a website's.
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d+")
_HTML = "text/html; charset=utf-8"
# What stays as it is in a redirect's key (beside letters, digits and "_.-~").
_PATH_SAFE = "/!$&'()*+,;=:@"


@functools.lru_cache(maxsize=1024)
def website_site(host: str) -> tuple[str, str] | None:
    """The bucket and region a website endpoint's Host names, None for any other host."""
    name = host.strip().lower()
    if name.startswith("["):  # an IPv6 address
        return None
    labels = name.rsplit(":", 1)[0].rstrip(".").split(".")
    for at, label in enumerate(labels[1:], start=1):
        if label == _LABEL:
            region = labels[at + 1] if at + 1 < len(labels) else ""
        elif label.startswith(_LABEL + "-"):
            region = label[len(_LABEL) + 1:]
        else:
            continue
        return (".".join(labels[:at]), region) if _REGION.fullmatch(region) else None
    return None


class WebsiteEndpoint:
    """One request to a bucket's website endpoint."""

    def __init__(self, s3: S3Base, bucket: str, region: str) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.region = region
        self.key: str | None = None  # the object read, for the access log
        self.error: ServiceError | None = None  # the error the answer reports, for the access log

    async def serve(self, request: AwsRequest, call: AnonymousCall) -> AwsResponse:
        request_id = new_request_id()
        started = datetime.now(UTC)
        try:
            response = await self._serve(request, call, request_id)
        except ServiceError as error:
            self.error = error
            response = error_page(error, request_id)
        except Exception:
            log.exception("website request to %s failed", self.bucket)
            self.error = InternalError("We encountered an internal error. Please try again.")
            response = error_page(self.error, request_id)
        response.own_origin = True  # (the website's host is its origin: its pages are not sandboxed)
        self.s3.website_answered(WebsiteAnswer(
            self.bucket, request, response, request_id, started, self.key,
            error_code(self.error) if self.error is not None else None))
        return response

    async def _serve(self, request: AwsRequest, call: AnonymousCall, request_id: str) -> AwsResponse:
        if request.method not in ("GET", "HEAD"):
            raise MethodNotAllowed("The specified method is not allowed against this resource.",
                                   Method=request.method, ResourceType="OBJECT")
        config = await self._configuration()
        redirect_all = config.get("RedirectAllRequestsTo")
        if redirect_all is not None:
            scheme = redirect_all.get("Protocol") or _scheme(request)
            return redirect(301, f"{scheme}://{redirect_all['HostName']}{request.path or '/'}", request_id)
        key = unquote(request.path[1:] if request.path.startswith("/") else request.path)
        rule = matching_rule(config, key, None)
        if rule is not None:
            return redirect(*rule_location(rule, key, request), request_id)
        suffix = config["IndexDocument"]["Suffix"]
        target = key + suffix if not key or key.endswith("/") else key
        self.key = target
        try:
            response = await call(object_request(request, self.bucket, target), request_id, self.region)
        except ServiceError as error:
            return await self._failed(error, request, call, config, key, request_id)
        location = _header(response, "x-amz-website-redirect-location")
        if location is not None:  # the object is a redirect
            await _discard(response)
            return redirect(301, location, request_id)
        return response

    async def _configuration(self) -> dict[str, Any]:
        bucket = await self.s3.find_bucket(self.bucket)
        if bucket is None:
            raise NoSuchBucket("The specified bucket does not exist", BucketName=self.bucket)
        config = bucket.config("website")
        if not config:
            raise NoSuchWebsiteConfiguration("The specified bucket does not have a website configuration",
                                             BucketName=self.bucket)
        if bucket.region != self.region:
            raise IncorrectEndpoint("The specified bucket exists in another region. Please direct requests to the "
                                    "specified endpoint.")
        return dict(config)

    async def _failed(self, error: ServiceError, request: AwsRequest, call: AnonymousCall, config: dict[str, Any],
                      key: str, request_id: str) -> AwsResponse:
        """The answer to a read that failed: a folder's redirect, a routing rule's, the error
        document (with the error's status) or the error page."""
        suffix = config["IndexDocument"]["Suffix"]
        if (error_code(error) in ("NoSuchKey", "AccessDenied") and key and not key.endswith("/")
                and await self._is_folder(key, suffix)):
            return redirect(302, f"/{quote(key, safe=_PATH_SAFE)}/", request_id)
        status = error_status(error)
        rule = matching_rule(config, key, status)
        if rule is not None:
            return redirect(*rule_location(rule, key, request), request_id)
        self.error = error  # (a redirect instead reports none)
        document = (config.get("ErrorDocument") or {}).get("Key")
        if document is None or not 400 <= status <= 499:
            raise error
        origin = request.headers.get("origin")  # (for the CORS headers of the document's read)
        headers = Headers([("origin", origin)] if origin else [])
        try:
            page = await call(object_request(request, self.bucket, document, headers), request_id, self.region)
        except ServiceError as document_error:
            return error_page(error, request_id, document_error)
        page.status = status
        return page

    async def _is_folder(self, key: str, suffix: str) -> bool:
        """Whether ``key`` is no object but ``<key>/<index document>`` is one."""
        row = await self.s3.object_row(self.bucket, key)
        if row is not None and not row.delete_marker:
            return False
        index = await self.s3.object_row(self.bucket, f"{key}/{suffix}")
        return index is not None and not index.delete_marker


def object_request(request: AwsRequest, bucket: str, key: str, headers: Headers | None = None) -> AwsRequest:
    """The REST request (path style, no query) that reads ``key`` as the website request would."""
    return AwsRequest(method=request.method, path=f"/{bucket}/{quote(key, safe='/')}",
                      headers=request.headers if headers is None else headers, client_ip=request.client_ip,
                      secure=request.secure)


def matching_rule(config: dict[str, Any], key: str, status: int | None) -> dict[str, Any] | None:
    """The first routing rule for ``key``: before it is read (``status`` None), of the rules without
    an error code; after it failed with ``status``, of those naming it."""
    for rule in config.get("RoutingRules") or []:
        condition = rule.get("Condition") or {}
        code = condition.get("HttpErrorCodeReturnedEquals")
        if (code is None) != (status is None) or (code is not None and int(code) != status):
            continue
        if key.startswith(condition.get("KeyPrefixEquals") or ""):
            return dict(rule)
    return None


def rule_location(rule: dict[str, Any], key: str, request: AwsRequest) -> tuple[int, str]:
    """A routing rule's redirect of ``key``: its status and location."""
    target = rule["Redirect"]
    prefix = (rule.get("Condition") or {}).get("KeyPrefixEquals") or ""
    if target.get("ReplaceKeyWith") is not None:
        key = target["ReplaceKeyWith"]
    elif target.get("ReplaceKeyPrefixWith") is not None:
        key = target["ReplaceKeyPrefixWith"] + key[len(prefix):]
    scheme = target.get("Protocol") or _scheme(request)
    host = target.get("HostName") or request.headers.get("host") or ""
    return int(target.get("HttpRedirectCode") or 301), f"{scheme}://{host}/{quote(key, safe=_PATH_SAFE)}"


def redirect(status: int, location: str, request_id: str) -> AwsResponse:
    # (a location is sent as a URL: spaces, control and non-ASCII characters percent-encoded)
    location = "".join(c if " " < c < "\x7f" else quote(c) for c in location)
    return AwsResponse(status, [("Location", location), *_ids(request_id)])


def error_page(error: ServiceError, request_id: str, document_error: ServiceError | None = None) -> AwsResponse:
    """The HTML page the website endpoint answers an error with (and, when the error document
    could not be read either, why not)."""
    status = error_status(error)
    title = f"{status} {HTTPStatus(status).phrase}"
    parts = [f"<html>\n<head><title>{title}</title></head>\n<body>\n<h1>{title}</h1>\n<ul>\n", *_items(error),
             f"<li>RequestId: {request_id}</li>\n<li>HostId: {host_id(request_id)}</li>\n</ul>\n"]
    if document_error is not None:
        parts += ["<h3>An Error Occurred While Attempting to Retrieve a Custom Error Document</h3>\n<ul>\n",
                  *_items(document_error), "</ul>\n"]
    parts.append("<hr/>\n</body>\n</html>\n")
    headers = [("Content-Type", _HTML), *_ids(request_id), *error.headers]
    return AwsResponse(status, headers, "".join(parts).encode("utf-8"))


def _items(error: ServiceError) -> list[str]:
    code = error_code(error)
    message = "Access Denied" if code == "AccessDenied" else error.message  # (whatever denied it)
    items = [("Code", code), ("Message", message),
             *((name, value) for name, value in error.fields.items() if value is not None)]
    return [f"<li>{name}: {html.escape(str(value))}</li>\n" for name, value in items]


def _ids(request_id: str) -> list[tuple[str, str]]:
    return [("x-amz-request-id", request_id), ("x-amz-id-2", host_id(request_id))]


def _scheme(request: AwsRequest) -> str:
    return "https" if request.secure else "http"


def _header(response: AwsResponse, name: str) -> str | None:
    for key, value in response.headers:
        if key.lower() == name:
            return value
    return None


async def _discard(response: AwsResponse) -> None:
    close = getattr(response.stream, "aclose", None)
    if close is not None:
        await close()
