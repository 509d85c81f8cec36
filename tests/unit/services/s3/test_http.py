from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from minicloud.services.s3.errors import InvalidRange, NotModified, PreconditionFailed
from minicloud.services.s3.http import check_read_conditions, content_headers, parse_range, stored_headers

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.mark.parametrize(("header", "size", "expected"), [
    (None, 10, None), ("bytes=0-0", 10, (0, 1)), ("bytes=2-", 10, (2, 10)), ("bytes=-3", 10, (7, 10)),
    ("bytes=-30", 10, (0, 10)), ("bytes=5-100", 10, (5, 10)), ("bytes=5-2", 10, None),
    ("bytes=0-1,3-4", 10, None), ("items=0-1", 10, None),
])
def test_ranges(header: str | None, size: int, expected: tuple[int, int] | None) -> None:
    assert parse_range(header, size) == expected


@pytest.mark.parametrize(("header", "size"), [("bytes=10-", 10), ("bytes=-0", 10), ("bytes=0-", 0)])
def test_unsatisfiable_ranges(header: str, size: int) -> None:
    with pytest.raises(InvalidRange):
        parse_range(header, size)


def test_conditions_precedence() -> None:
    etag = '"abc"'
    check_read_conditions({"IfMatch": '"abc"', "IfUnmodifiedSince": NOW - timedelta(days=1)}, etag, NOW)
    with pytest.raises(PreconditionFailed):
        check_read_conditions({"IfMatch": '"zzz"'}, etag, NOW)
    with pytest.raises(NotModified):
        check_read_conditions({"IfNoneMatch": "*"}, etag, NOW)
    check_read_conditions({"IfNoneMatch": '"zzz"', "IfModifiedSince": NOW + timedelta(days=1)}, etag, NOW)
    with pytest.raises(NotModified):
        check_read_conditions({"IfModifiedSince": NOW}, etag, NOW)


def test_content_headers_drop_aws_chunked() -> None:
    meta = content_headers({"ContentEncoding": "aws-chunked", "ContentType": "text/plain",
                            "Metadata": {"Key": "v"}})
    assert meta == {"ContentType": "text/plain", "Metadata": {"key": "v"}}
    assert content_headers({"ContentEncoding": "gzip,aws-chunked"})["ContentEncoding"] == "gzip"
    assert stored_headers({})["ContentType"] == "binary/octet-stream"
