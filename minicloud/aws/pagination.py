"""Opaque pagination tokens (NextToken / Marker): what comes after, encoded so clients can't forge it."""

from __future__ import annotations

import base64
import binascii

import orjson


def encode_token(position: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(position)).decode().rstrip("=")


def decode_token(token: str) -> dict[str, object] | None:
    """The position in ``token``, or None when it is not one of ours (the caller raises its error)."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        value = orjson.loads(raw)
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        return None
    return value if isinstance(value, dict) else None
