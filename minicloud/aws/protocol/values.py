"""Scalar conversions shared by the parsers and serializers: text <-> int, float, bool, blob, timestamp.

Every ``parse_*`` function raises ``ValueError`` on bad input (the caller turns it into the
protocol's ServiceError); none accepts more than AWS's wire formats (no ``int(" 1_0 ")`` leniency).
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from datetime import UTC, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Any

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

INT_RANGES: dict[str, tuple[int, int]] = {
    "byte": (-(2**7), 2**7 - 1),
    "short": (-(2**15), 2**15 - 1),
    "integer": (-(2**31), 2**31 - 1),
    "long": (-(2**63), 2**63 - 1),
}

_INT_RE = re.compile(r"[-+]?[0-9]+\Z")
_FLOAT_RE = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?\Z")
_SPECIAL_FLOATS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_ISO_RE = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d)(?::(\d\d)(?:[.,](\d+))?)?"
    r"(?:([Zz])|([-+])(\d\d):?(\d\d))?\Z"
)
_ISO_DATE_RE = re.compile(r"(\d{4})-(\d\d)-(\d\d)\Z")
_B64_RE = re.compile(rb"[A-Za-z0-9+/]*={0,2}\Z")


def parse_int(text: str, type_name: str = "long") -> int:
    if not _INT_RE.match(text):
        raise ValueError(f"not an integer: {text!r}")
    value = int(text)
    check_int_range(value, type_name)
    return value


def check_int_range(value: int, type_name: str) -> None:
    low, high = INT_RANGES.get(type_name, INT_RANGES["long"])
    if not low <= value <= high:
        raise ValueError(f"{value} is out of range for {type_name}")


def parse_float(text: str) -> float:
    special = _SPECIAL_FLOATS.get(text)
    if special is not None:
        return special
    if not _FLOAT_RE.match(text):
        raise ValueError(f"not a number: {text!r}")
    return float(text)


def parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    raise ValueError(f"not a boolean: {text!r}")


def parse_blob(text: str | bytes) -> bytes:
    """Strict standard base64 (what every SDK sends); whitespace is not tolerated."""
    raw = text.encode("ascii") if isinstance(text, str) else text
    if len(raw) % 4 or not _B64_RE.match(raw):
        raise ValueError("invalid base64")
    try:
        return base64.b64decode(raw, validate=True)
    except binascii.Error as exc:
        raise ValueError("invalid base64") from exc


def b64(value: bytes | bytearray | str) -> str:
    if isinstance(value, str):
        value = value.encode("utf-8")
    return base64.b64encode(value).decode("ascii")


def epoch_to_datetime(value: float) -> datetime:
    if isinstance(value, bool):
        raise ValueError(f"not a timestamp: {value!r}")
    try:
        if isinstance(value, int):
            return EPOCH + timedelta(seconds=value)
        if not math.isfinite(value):
            raise ValueError(f"not a timestamp: {value!r}")
        return EPOCH + timedelta(microseconds=round(value * 1_000_000))
    except OverflowError as exc:
        raise ValueError(f"timestamp out of range: {value!r}") from exc


def parse_timestamp(text: str) -> datetime:
    """ISO 8601 (any precision, ``Z`` or an offset), epoch seconds, or RFC 822/1123 (HTTP-date)."""
    text = text.strip()
    m = _ISO_RE.match(text)
    if m:
        return _from_iso_match(m)
    if _FLOAT_RE.match(text):
        return epoch_to_datetime(float(text) if ("." in text or "e" in text.lower()) else int(text))
    m = _ISO_DATE_RE.match(text)
    if m:
        return datetime(int(m[1]), int(m[2]), int(m[3]), tzinfo=UTC)
    try:
        parsed = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError) as exc:
        raise ValueError(f"not a timestamp: {text!r}") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _from_iso_match(m: re.Match[str]) -> datetime:
    fraction = m[7] or ""
    micro = int((fraction + "000000")[:6]) if fraction else 0
    tz: timezone = UTC
    if m[9]:
        offset = timedelta(hours=int(m[10]), minutes=int(m[11]))
        tz = timezone(-offset if m[9] == "-" else offset)
    second = int(m[6] or 0)
    leap = second == 60
    value = datetime(int(m[1]), int(m[2]), int(m[3]), int(m[4]), int(m[5]),
                     59 if leap else second, micro, tzinfo=tz)
    if leap:
        value += timedelta(seconds=1)
    return value.astimezone(UTC) if tz is not UTC else value


def to_datetime(value: Any) -> datetime:
    """A provider's timestamp (aware or naive-UTC ``datetime``, epoch number or text) as aware UTC."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return epoch_to_datetime(value)
    if isinstance(value, str):
        return parse_timestamp(value)
    raise ValueError(f"not a timestamp: {value!r}")


def format_iso8601(value: Any, *, always_millis: bool = False) -> str:
    """``2026-11-29T05:33:50Z`` (IAM style), or with milliseconds when there are any (or always,
    as EC2 and S3 send them: ``2026-11-29T05:33:50.000Z``)."""
    dt = to_datetime(value)
    if dt.tzinfo is not UTC:
        dt = dt.astimezone(UTC)
    millis = dt.microsecond // 1000
    base = f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}"
    if millis or always_millis:
        return f"{base}.{millis:03d}Z"
    return base + "Z"


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


_RFC822_REMEMBERED = 4096  # datetimes whose text is kept (an object's Last-Modified, served again and again)
_rfc822: dict[datetime, str] = {}


def format_rfc822(value: Any) -> str:
    """``Sun, 29 Nov 2026 12:00:00 GMT`` (as email.utils.format_datetime(usegmt=True), without its cost)."""
    remember = type(value) is datetime  # equal datetimes are the same instant: the same text
    if remember:
        known = _rfc822.get(value)
        if known is not None:
            return known
    dt = to_datetime(value).astimezone(UTC)
    text = (f"{_DAYS[dt.weekday()]}, {dt.day:02d} {_MONTHS[dt.month - 1]} {dt.year:04d} "
            f"{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d} GMT")
    if remember:
        if len(_rfc822) >= _RFC822_REMEMBERED:
            _rfc822.clear()
        _rfc822[value] = text
    return text


def to_epoch(value: Any) -> int | float:
    """Epoch seconds with millisecond precision: an int when there is no fraction."""
    dt = to_datetime(value)
    delta = dt - EPOCH
    whole = delta.days * 86400 + delta.seconds
    millis = delta.microseconds // 1000
    if not millis:
        return whole
    return whole + millis / 1000


def format_timestamp(value: Any, fmt: str) -> str:
    if fmt == "rfc822":
        return format_rfc822(value)
    if fmt == "unixtimestamp":
        return str(to_epoch(value))
    return format_iso8601(value)


def format_float(value: float) -> str | float:
    """JSON/text form of a float: AWS sends the non-finite ones as strings."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value
