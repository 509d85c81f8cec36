"""Static website hosting, configured: Put/Get/DeleteBucketWebsite with S3's checks and errors.

The configuration is kept as it was given (JSON in ``s3_buckets.website``) and answered back as
such; ``website_endpoint`` serves the website it describes.
"""

from __future__ import annotations

import json
from typing import Any

from minicloud.aws.context import RequestContext
from minicloud.aws.protocol.rest_serializers import RESULT_STATUS
from minicloud.aws.provider import HostHandler
from minicloud.aws.request import AwsRequest
from minicloud.services.s3 import store
from minicloud.services.s3.base import S3Base
from minicloud.services.s3.errors import (
    InvalidArgument,
    InvalidRequest,
    MalformedXML,
    MissingRequestBodyError,
    NoSuchWebsiteConfiguration,
)
from minicloud.services.s3.website_endpoint import WebsiteEndpoint, website_site

MAX_ROUTING_RULES = 50
PROTOCOLS = ("http", "https")
_BAD_PROTOCOL = ("Invalid protocol, protocol can be http or https. If not defined the protocol will be selected "
                 "automatically.")


def check_website(config: dict[str, Any]) -> None:
    """PutBucketWebsite's validation, with S3's errors."""
    redirect_all = config.get("RedirectAllRequestsTo")
    if redirect_all is not None:
        if any(config.get(name) is not None for name in ("IndexDocument", "ErrorDocument", "RoutingRules")):
            raise InvalidArgument("RedirectAllRequestsTo cannot be provided in conjunction with other Routing Rules.",
                                  ArgumentName="RedirectAllRequestsTo", ArgumentValue="not null")
        if redirect_all.get("HostName") is None:
            raise MalformedXML()
        if not redirect_all["HostName"]:
            raise InvalidRequest('A host name must be provided to redirect all requests (e.g. "example.com").')
        _check_protocol(redirect_all)
        return
    index = config.get("IndexDocument")
    if index is None:
        raise InvalidArgument("A value for IndexDocument Suffix must be provided if RedirectAllRequestsTo is empty",
                              ArgumentName="IndexDocument", ArgumentValue="null")
    suffix = index.get("Suffix")
    if suffix is None:
        raise MalformedXML()
    if not suffix or "/" in suffix:
        raise InvalidArgument("The IndexDocument Suffix is not well formed", ArgumentName="IndexDocument",
                              ArgumentValue=suffix or None)
    error_document = config.get("ErrorDocument")
    if error_document is not None and not error_document.get("Key"):
        raise MalformedXML()
    rules = config.get("RoutingRules")
    if rules is not None:
        _check_rules(rules)


def _check_rules(rules: list[dict[str, Any]]) -> None:
    if not rules:
        raise MalformedXML()
    if len(rules) > MAX_ROUTING_RULES:
        raise InvalidRequest(f"{len(rules)} routing rules provided, the number of routing rules in a website "
                             f"configuration is limited to {MAX_ROUTING_RULES}.")
    for rule in rules:
        condition = rule.get("Condition")
        if condition is not None:
            if condition.get("KeyPrefixEquals") is None and condition.get("HttpErrorCodeReturnedEquals") is None:
                raise InvalidRequest("Condition cannot be empty. To redirect all requests without a condition, the "
                                     "condition element shouldn't be present.")
            code = condition.get("HttpErrorCodeReturnedEquals")
            if code is not None and not 400 <= _status(code) <= 599:
                raise InvalidRequest(f"The provided HTTP error code ({code}) is not valid. Valid codes are 4XX or 5XX.")
        redirect = rule.get("Redirect")
        if not redirect:  # (a Redirect needs one child at least)
            raise MalformedXML()
        if redirect.get("ReplaceKeyPrefixWith") is not None and redirect.get("ReplaceKeyWith") is not None:
            raise InvalidRequest("You can only define ReplaceKeyPrefix or ReplaceKey but not both.")
        code = redirect.get("HttpRedirectCode")
        if code is not None and not 301 <= _status(code) <= 399:
            raise InvalidRequest(f"The provided HTTP redirect code ({code}) is not valid. Valid codes are 3XX "
                                 "except 300.")
        if redirect.get("HostName") == "":
            raise InvalidRequest("The HostName cannot be blank. To redirect within the same domain, the element "
                                 "should not be present.")
        _check_protocol(redirect)


def _status(text: str) -> int:
    """An HTTP status the configuration gives as text (not a number: malformed)."""
    if not text.isascii() or not text.isdigit() or len(text) > 9:
        raise MalformedXML()
    return int(text)


def _check_protocol(redirect: dict[str, Any]) -> None:
    protocol = redirect.get("Protocol")
    if protocol is not None and protocol not in PROTOCOLS:
        raise InvalidRequest(_BAD_PROTOCOL)


class WebsiteOperations(S3Base):
    async def put_bucket_website(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = await self.bucket_for(ctx, params, "PutBucketWebsite")
        config = params.get("WebsiteConfiguration")
        if config is None:
            raise MissingRequestBodyError("Request Body is empty")
        check_website(config)
        text = json.dumps(config)
        await self.db.write(lambda conn: store.update_bucket(conn, bucket.name, website=text))
        self.forget_bucket(bucket.name)
        return {}

    async def get_bucket_website(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = await self.bucket_for(ctx, params, "GetBucketWebsite")
        config = bucket.config("website")
        if not config:
            raise NoSuchWebsiteConfiguration("The specified bucket does not have a website configuration",
                                             BucketName=bucket.name)
        return dict(config)

    async def delete_bucket_website(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        bucket = await self.bucket_for(ctx, params, "DeleteBucketWebsite")
        if bucket.website is not None:
            await self.db.write(lambda conn: store.update_bucket(conn, bucket.name, website=None))
            self.forget_bucket(bucket.name)
        return {RESULT_STATUS: 204}

    # -- the website endpoint --------------------------------------------------------------------------
    def host_handler(self, request: AwsRequest) -> HostHandler | None:
        """A request whose Host is a website endpoint (``<bucket>.s3-website-<region>.<domain>`` or
        ``<bucket>.s3-website.<region>.<domain>``) is the website's, whatever else it carries."""
        host = request.headers.get("host")
        if host is None or "s3-website" not in host.lower():  # (every request: a substring test, no more)
            return None
        site = website_site(host)
        if site is None:
            return None
        return WebsiteEndpoint(self, *site).serve
