"""The listing scan over a sorted key list standing in for the metadata index."""

from __future__ import annotations

import bisect
from typing import Any

from minicloud.services.s3.listing import scan
from minicloud.services.s3.store import prefix_end

KEYS = sorted(["a", "b/1", "b/2", "b/3/x", "c", "d/1", "d/2", "e"])


def start_of(keys: list[str], after: str | None, inclusive: bool) -> int:
    if after is None:
        return 0
    return bisect.bisect_left(keys, after) if inclusive else bisect.bisect_right(keys, after)


def fetcher(keys: list[str], prefix: str, calls: list[int]) -> Any:
    def fetch(after: str | None, inclusive: bool, limit: int) -> list[str]:
        calls.append(limit)
        lo = start_of(keys, after, inclusive)
        found = [k for k in keys[lo:] if k.startswith(prefix)] if prefix else keys[lo:]
        if prefix:
            found = [k for k in found if prefix <= k < prefix_end(prefix)]
        return found[:limit]
    return fetch


def listing(prefix: str = "", delimiter: str = "", after: str | None = None, max_keys: int = 1000) -> Any:
    calls: list[int] = []
    entries, truncated = scan(fetcher(KEYS, prefix, calls), lambda k: k, prefix, delimiter, after, max_keys)
    return [key for key, _ in entries], truncated


def test_flat() -> None:
    assert listing() == (KEYS, False)


def test_delimiter_groups_and_skips() -> None:
    assert listing(delimiter="/") == (["a", "b/", "c", "d/", "e"], False)
    assert listing(prefix="b/", delimiter="/") == (["b/1", "b/2", "b/3/"], False)


def test_pages_with_common_prefix_markers() -> None:
    first, truncated = listing(delimiter="/", max_keys=2)
    assert first == ["a", "b/"] and truncated
    second, truncated = listing(delimiter="/", after="b/", max_keys=2)
    assert second == ["c", "d/"] and truncated
    assert listing(delimiter="/", after="d/", max_keys=2) == (["e"], False)


def test_exact_page_boundary_is_not_truncated() -> None:
    assert listing(max_keys=len(KEYS)) == (KEYS, False)
    assert listing(max_keys=len(KEYS) - 1)[1] is True
