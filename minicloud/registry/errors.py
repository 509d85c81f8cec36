"""The OCI Distribution error codes, each declared once with its HTTP status.

A handler raises ``RegistryError(CODE, message, detail)``; the app renders it once, as the spec's
JSON body ``{"errors": [{"code", "message", "detail"}]}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(frozen=True, slots=True)
class ErrorCode:
    code: str
    status: int
    message: str


def _codes(*codes: ErrorCode) -> dict[str, ErrorCode]:
    return {c.code: c for c in codes}


CODES = _codes(
    ErrorCode("BLOB_UNKNOWN", 404, "blob unknown to registry"),
    ErrorCode("BLOB_UPLOAD_INVALID", 400, "blob upload invalid"),
    ErrorCode("BLOB_UPLOAD_UNKNOWN", 404, "blob upload unknown to registry"),
    ErrorCode("DIGEST_INVALID", 400, "provided digest did not match uploaded content"),
    ErrorCode("MANIFEST_BLOB_UNKNOWN", 400, "manifest references a manifest or blob unknown to registry"),
    ErrorCode("MANIFEST_INVALID", 400, "manifest invalid"),
    ErrorCode("MANIFEST_UNKNOWN", 404, "manifest unknown to registry"),
    ErrorCode("NAME_INVALID", 400, "invalid repository name"),
    ErrorCode("NAME_UNKNOWN", 404, "repository name not known to registry"),
    ErrorCode("SIZE_INVALID", 400, "provided length did not match content length"),
    ErrorCode("UNAUTHORIZED", 401, "authentication required"),
    ErrorCode("DENIED", 403, "requested access to the resource is denied"),
    ErrorCode("UNSUPPORTED", 405, "the operation is unsupported"),
    ErrorCode("TOOMANYREQUESTS", 429, "too many requests"),
    ErrorCode("RANGE_INVALID", 416, "invalid content range"),
    ErrorCode("TAG_INVALID", 400, "manifest tag did not match URI"),
    ErrorCode("PAGINATION_NUMBER_INVALID", 400, "invalid number of results requested"),
    ErrorCode("MANIFEST_TOO_BIG", 413, "manifest too big"),
)


class RegistryError(Exception):
    def __init__(self, code: str, message: str = "", detail: Any = None, *, status: int | None = None,
                 headers: list[tuple[str, str]] | None = None) -> None:
        spec = CODES[code]
        super().__init__(message or spec.message)
        self.code = code
        self.message = message or spec.message
        self.detail = detail
        self.status = status or spec.status
        self.headers = headers or []

    def body(self) -> bytes:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.detail is not None:
            error["detail"] = self.detail
        return orjson.dumps({"errors": [error]})
