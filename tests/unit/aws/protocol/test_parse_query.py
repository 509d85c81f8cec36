"""routing.parse_query reads a query string exactly as parse_qsl(keep_blank_values=True, errors="strict") does."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest

from minicloud.aws.protocol.routing import parse_query

QUERIES = ["", "a=1&b=&c", "x+y=%20z+&&=&%2B=+", "k=%E2%82%AC&k=2", "==&a==b", "uploads", "a=%zz", "a=%",
           "list-type=2&prefix=foo%2Fbar&max-keys=10", "X-Amz-Credential=AKID%2F20261129%2Fus-east-1%2Fs3"]


@pytest.mark.parametrize("query", QUERIES)
def test_parse_query_is_parse_qsl_grouped(query: str) -> None:
    expected: dict[str, list[str]] = {}
    for key, value in parse_qsl(query, keep_blank_values=True, errors="strict"):
        expected.setdefault(key, []).append(value)
    assert parse_query(query) == expected


def test_undecodable_escapes_are_refused_as_parse_qsl_refuses_them() -> None:
    with pytest.raises(ValueError):
        parse_query("%ff=1")
    with pytest.raises(ValueError):
        parse_query("a=%ff")
