"""The linear-time wildcard matcher agrees with a regular-expression reference, and stays fast on
patterns that make a backtracking engine explode."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from minicloud.iam.policy.glob import ArnGlob, SegmentGlob, tokens_of_glob, tokens_of_rendered
from minicloud.iam.policy.matching import arn_matcher, glob_matcher


def _reference(pattern: str) -> re.Pattern[str]:
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern), re.DOTALL)


def _arn_reference(pattern: str) -> re.Pattern[str]:
    parts = pattern.split(":", 5)
    if len(parts) < 6:
        return _reference(pattern)
    head = ["".join("[^:]*" if c == "*" else "[^:]" if c == "?" else re.escape(c) for c in p) for p in parts[:5]]
    return re.compile(":".join([*head, _reference(parts[5]).pattern]), re.DOTALL)


ALPHABET = "ab:*?/\n"


@settings(max_examples=400)
@given(st.text(ALPHABET, max_size=10), st.text("ab:/\n", max_size=14))
def test_glob_agrees_with_the_reference(pattern: str, value: str) -> None:
    assert SegmentGlob(tokens_of_glob(pattern))(value) == bool(_reference(pattern).fullmatch(value))


@settings(max_examples=400)
@given(st.text(ALPHABET, max_size=16), st.text("ab:/", max_size=16))
def test_arn_glob_agrees_with_the_reference(pattern: str, value: str) -> None:
    assert ArnGlob(tokens_of_glob(pattern))(value) == bool(_arn_reference(pattern).fullmatch(value))


def test_substituted_values_are_literal() -> None:
    matcher = SegmentGlob(tokens_of_rendered(("home/", "a*b", "/*")))
    assert matcher("home/a*b/x")
    assert not matcher("home/axxb/x")


def test_patterns_that_explode_a_backtracking_engine() -> None:
    # With re these take seconds to hours (exponential in the number of stars); here microseconds.
    assert not arn_matcher("arn:aws:s3:::b/" + "*a" * 12 + "*b")("arn:aws:s3:::b/" + "a" * 5000)
    assert not glob_matcher("*a*a*a*a*a*a*a*a*b")("a" * 20000)
    assert arn_matcher("arn:aws:s3:::pub/*/logs/*/*/*/*.gz")("arn:aws:s3:::pub/" + "x/logs/" * 300 + "f.gz")
