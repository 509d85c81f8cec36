"""HTTP semantics S3 applies to objects: byte ranges, conditional requests, content headers."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from minicloud.services.s3.errors import InvalidRange, InvalidRedirectLocation, NotModified, PreconditionFailed

_RANGE = re.compile(r"bytes=(\d*)-(\d*)\Z")

# Content headers stored with an object and returned with it (input member -> output member).
CONTENT_MEMBERS = ("ContentType", "ContentEncoding", "ContentDisposition", "ContentLanguage",
                   "CacheControl", "Expires", "WebsiteRedirectLocation")
# GetObject's response-* overrides (input member -> output member).
OVERRIDES = {"ResponseContentType": "ContentType", "ResponseContentLanguage": "ContentLanguage",
             "ResponseExpires": "Expires", "ResponseCacheControl": "CacheControl",
             "ResponseContentDisposition": "ContentDisposition",
             "ResponseContentEncoding": "ContentEncoding"}
DEFAULT_CONTENT_TYPE = "binary/octet-stream"
_READ_CONDITIONS = frozenset({"IfMatch", "IfUnmodifiedSince", "IfNoneMatch", "IfModifiedSince"})


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The [start, end) a Range header selects, None for the whole object (an absent or
    unparsable header, or several ranges, which S3 ignores); InvalidRange if unsatisfiable."""
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if match is None or (not match[1] and not match[2]):
        return None
    if not match[1]:  # the last N bytes
        suffix = int(match[2])
        if suffix == 0 or size == 0:
            raise _unsatisfiable(header, size)
        return max(0, size - suffix), size
    start = int(match[1])
    end = int(match[2]) + 1 if match[2] else size
    if match[2] and end <= start:
        return None  # bytes=5-2: not a valid range, the whole object
    if start >= size:
        raise _unsatisfiable(header, size)
    return start, min(end, size)


def _unsatisfiable(header: str, size: int) -> InvalidRange:
    return InvalidRange("The requested range is not satisfiable", RangeRequested=header,
                        ActualObjectSize=str(size))


def etag_matches(condition: str, etag: str) -> bool:
    bare = etag.strip('"')
    for candidate in condition.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/").strip('"') == bare:
            return True
    return False


def check_read_conditions(params: dict[str, Any], etag: str, last_modified: datetime) -> None:
    """If-Match / If-Unmodified-Since (412) and If-None-Match / If-Modified-Since (304), with
    the precedence S3 gives them (an ETag condition that holds overrides its date partner)."""
    if not params.keys() & _READ_CONDITIONS:
        return
    modified = last_modified.replace(microsecond=0)
    if_match = params.get("IfMatch")
    if if_match is not None:
        if not etag_matches(if_match, etag):
            raise PreconditionFailed("At least one of the pre-conditions you specified did not hold",
                                     Condition="If-Match")
    elif params.get("IfUnmodifiedSince") is not None and modified > params["IfUnmodifiedSince"]:
        raise PreconditionFailed("At least one of the pre-conditions you specified did not hold",
                                 Condition="If-Unmodified-Since")
    if_none_match = params.get("IfNoneMatch")
    if if_none_match is not None:
        if etag_matches(if_none_match, etag):
            raise NotModified("Not Modified")
    elif params.get("IfModifiedSince") is not None and modified <= params["IfModifiedSince"]:
        raise NotModified("Not Modified")


def check_copy_conditions(params: dict[str, Any], etag: str, last_modified: datetime) -> None:
    """x-amz-copy-source-if-* : every failure is 412 for a copy."""
    renamed = {"IfMatch": params.get("CopySourceIfMatch"),
               "IfUnmodifiedSince": params.get("CopySourceIfUnmodifiedSince"),
               "IfNoneMatch": params.get("CopySourceIfNoneMatch"),
               "IfModifiedSince": params.get("CopySourceIfModifiedSince")}
    try:
        check_read_conditions(renamed, etag, last_modified)
    except NotModified:
        raise PreconditionFailed("At least one of the pre-conditions you specified did not hold",
                                 Condition="x-amz-copy-source-If-None-Match") from None


def content_headers(params: dict[str, Any]) -> dict[str, Any]:
    """The content headers and user metadata of a PUT, as stored."""
    meta: dict[str, Any] = {}
    for name in CONTENT_MEMBERS:
        value = params.get(name)
        if value is not None:
            meta[name] = value.isoformat() if isinstance(value, datetime) else value
    encoding = meta.get("ContentEncoding")
    if encoding is not None:  # aws-chunked is how the body travelled, not what it is
        given = [e.strip() for e in str(encoding).split(",") if e.strip()]
        kept = [e for e in given if e != "aws-chunked"]
        if kept:
            meta["ContentEncoding"] = str(encoding) if kept == given else ", ".join(kept)
        else:
            del meta["ContentEncoding"]
    if params.get("Metadata"):
        meta["Metadata"] = {k.lower(): v for k, v in params["Metadata"].items()}
    return meta


def check_redirect_location(params: dict[str, Any]) -> None:
    """A write's x-amz-website-redirect-location (the page a website answers the object with), as
    S3 takes it: a path in the bucket or an http(s) URL."""
    location = params.get("WebsiteRedirectLocation")
    if location is None:
        return
    if not location.startswith(("/", "http://", "https://")):
        raise InvalidRedirectLocation("The website redirect location must have a prefix of 'http://' or 'https://' "
                                      "or '/'.")
    if len(location) > 2048:
        raise InvalidRedirectLocation("The length of website redirect location cannot exceed 2,048 characters.")


def copied_headers(meta: str | None, params: dict[str, Any]) -> str | None:
    """A copy's stored headers under the COPY directive: the source's, but for the website redirect
    location, which S3 never copies (the copy has the one its request gives, if any)."""
    location = params.get("WebsiteRedirectLocation")
    if location is None and (not meta or "WebsiteRedirectLocation" not in meta):
        return meta
    headers = json.loads(meta) if meta else {}
    headers.pop("WebsiteRedirectLocation", None)
    if location is not None:
        headers["WebsiteRedirectLocation"] = location
    return json.dumps(headers)


def stored_headers(meta: dict[str, Any]) -> dict[str, Any]:
    """Output members for the stored content headers and metadata."""
    out: dict[str, Any] = {"ContentType": meta.get("ContentType") or DEFAULT_CONTENT_TYPE}
    for name in CONTENT_MEMBERS:
        if name in meta and name != "ContentType":
            out[name] = datetime.fromisoformat(meta[name]) if name == "Expires" else meta[name]
    if meta.get("Metadata"):
        out["Metadata"] = meta["Metadata"]
    return out
