"""CloudWatch Logs' plain-text filter patterns."""

from __future__ import annotations

import pytest

from minicloud.services.logs.errors import InvalidParameterException
from minicloud.services.logs.provider import compile_pattern


@pytest.mark.parametrize(("pattern", "message", "matches"), [
    ("", "anything", True),
    ("ERROR", "an ERROR here", True),
    ("ERROR", "an error here", False),
    ("ERROR timeout", "ERROR: timeout", True),
    ("ERROR timeout", "ERROR only", False),
    ('"disk full"', "the disk full now", True),
    ('"disk full"', "full disk", False),
    ("?ERROR ?WARN", "WARN low", True),
    ("?ERROR ?WARN", "INFO fine", False),
    ("ERROR -retry", "ERROR final", True),
    ("ERROR -retry", "ERROR will retry", False),
])
def test_terms(pattern: str, message: str, matches: bool) -> None:
    assert compile_pattern(pattern)(message) is matches


@pytest.mark.parametrize("pattern", ['{ $.level = "error" }', "[ip, user]", '"unterminated'])
def test_unsupported_or_malformed_patterns(pattern: str) -> None:
    with pytest.raises(InvalidParameterException):
        compile_pattern(pattern)
