"""CORS: the bucket's rules govern browsers' preflight OPTIONS requests (answered here, unsigned,
as S3 does) and add Access-Control-* headers to actual requests that carry an Origin."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

from minicloud.aws.context import RequestContext
from minicloud.aws.errors import ServiceError
from minicloud.aws.protocol.rest_serializers import RESULT_HEADERS
from minicloud.aws.provider import Handler
from minicloud.services.s3.base import S3Base
from minicloud.services.s3.errors import BadRequest, CORSResponse, InvalidRequest, MalformedXML
from minicloud.services.s3.store import Bucket

METHODS = frozenset({"GET", "PUT", "POST", "DELETE", "HEAD"})
_VARY = ("Vary", "Origin, Access-Control-Request-Headers, Access-Control-Request-Method")
_PREFLIGHT = frozenset({"OptionsBucket", "OptionsObject"})


@lru_cache(maxsize=1024)
def _pattern(text: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in text.split("*")), re.IGNORECASE | re.DOTALL)


def _matches(pattern: str, value: str) -> bool:
    return _pattern(pattern).fullmatch(value) is not None


def check_rules(rules: list[dict[str, Any]]) -> None:
    """PutBucketCors's validation, with S3's errors."""
    if not rules or len(rules) > 100:
        raise MalformedXML()
    for rule in rules:
        methods = rule.get("AllowedMethods") or []
        origins = rule.get("AllowedOrigins") or []
        if not methods or not origins:
            raise MalformedXML()
        for method in methods:
            if method not in METHODS:
                raise InvalidRequest(f"Found unsupported HTTP method in CORS config. Unsupported method is {method}")
        for origin in origins:
            if origin.count("*") > 1:
                raise InvalidRequest(f'AllowedOrigin "{origin}" can not have more than one wildcard.')
        for header in rule.get("AllowedHeaders") or []:
            if header.count("*") > 1:
                raise InvalidRequest(f'AllowedHeader "{header}" can not have more than one wildcard.')
        if len(str(rule.get("ID") or "")) > 255:
            raise InvalidRequest("The ID of a CORS rule must be at most 255 characters long.")


def matching_rule(bucket: Bucket, origin: str, method: str, headers: list[str]) -> dict[str, Any] | None:
    """The first rule that allows ``origin`` to use ``method`` with ``headers``."""
    for rule in json.loads(bucket.cors) if bucket.cors else []:
        if method not in (rule.get("AllowedMethods") or []):
            continue
        if not any(_matches(allowed, origin) for allowed in rule.get("AllowedOrigins") or []):
            continue
        allowed_headers = rule.get("AllowedHeaders") or []
        if all(any(_matches(a, h) for a in allowed_headers) for h in headers):
            return dict(rule)
    return None


def response_headers(rule: dict[str, Any], origin: str, *, preflight: bool,
                     requested_headers: list[str]) -> list[tuple[str, str]]:
    wildcard = "*" in (rule.get("AllowedOrigins") or [])
    out = [("Access-Control-Allow-Origin", "*" if wildcard else origin)]
    if not wildcard:
        out.append(("Access-Control-Allow-Credentials", "true"))
    out.append(("Access-Control-Allow-Methods", ", ".join(rule.get("AllowedMethods") or [])))
    if preflight and requested_headers:
        out.append(("Access-Control-Allow-Headers", ", ".join(requested_headers)))
    if rule.get("ExposeHeaders"):
        out.append(("Access-Control-Expose-Headers", ", ".join(rule["ExposeHeaders"])))
    if rule.get("MaxAgeSeconds") is not None:
        out.append(("Access-Control-Max-Age", str(rule["MaxAgeSeconds"])))
    out.append(_VARY)
    return out


class CorsOperations(S3Base):
    async def options_bucket(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return await self._preflight(ctx, params)

    async def options_object(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return await self._preflight(ctx, params)

    async def _preflight(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        """A browser's preflight: anonymous, as S3 answers it (the bucket's CORS rules decide)."""
        ctx.allow_unauthenticated()
        origin = params.get("Origin")
        if not origin:
            raise BadRequest("Insufficient information. Origin request header needed.")
        method = params.get("AccessControlRequestMethod")
        if not method or method not in METHODS:
            raise BadRequest(f"Invalid Access-Control-Request-Method: {method or 'null'}")
        bucket = await self.bucket(params["Bucket"])
        if not bucket.cors:
            raise CORSResponse("CORS is not enabled for this bucket.")
        requested = [h.strip() for h in str(params.get("AccessControlRequestHeaders") or "").split(",") if h.strip()]
        rule = matching_rule(bucket, origin, method, requested)
        if rule is None:
            raise CORSResponse("This CORS request is not allowed. This is usually because the evalution of Origin, "
                               "request method / Access-Control-Request-Method or Access-Control-Request-Headers "
                               "are not whitelisted by the resource's CORS spec.", Method=method,
                               ResourceType="OBJECT" if params.get("Key") else "BUCKET")
        return {RESULT_HEADERS: response_headers(rule, origin, preflight=True, requested_headers=requested)}

    def handler(self, operation_name: str) -> Handler | None:
        """Every operation on a bucket answers a request with an Origin with the CORS headers its
        rules allow."""
        inner = super().handler(operation_name)
        if inner is None or operation_name in _PREFLIGHT:
            return inner

        async def cors_headers(ctx: RequestContext, params: dict[str, Any]) -> list[tuple[str, str]]:
            origin = ctx.request.headers.get("origin")
            name = params.get("Bucket")
            if origin and isinstance(name, str):
                bucket = await self.find_bucket(name)
                rule = matching_rule(bucket, origin, ctx.request.method, []) if bucket and bucket.cors else None
                if rule is not None:
                    return response_headers(rule, origin, preflight=False, requested_headers=[])
            return []

        async def with_cors(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
            if not ctx.request.headers.get("origin"):  # (most requests) no Origin: no CORS headers
                return await inner(ctx, params)
            try:
                result = await inner(ctx, params)
            except ServiceError as error:  # an error answer carries them too (a 404 to a browser)
                error.headers.extend(await cors_headers(ctx, params))
                raise
            extra = await cors_headers(ctx, params)
            if extra:
                result = {**result, RESULT_HEADERS: [*result.get(RESULT_HEADERS, []), *extra]}
            return result
        return with_cors
