"""Form-encoded text (query strings, ``application/x-www-form-urlencoded`` bodies) as name/value pairs.

:func:`parse_form` answers exactly what ``urllib.parse.parse_qsl(text, keep_blank_values=True,
errors="strict")`` answers, and skips its per-field work when there is nothing to decode: a signed
API call's ``Action=ListUsers&Version=2010-05-08`` is only split.
"""

from __future__ import annotations

from urllib.parse import parse_qsl


def parse_form(text: str) -> list[tuple[str, str]]:
    """``name=value`` pairs in order; ``+`` is a space, ``%XX`` UTF-8 (strict: a bad sequence raises
    ``UnicodeDecodeError``, a ``ValueError``); a field without ``=`` has the empty value."""
    if not text:
        return []
    if "%" in text or "+" in text:
        return parse_qsl(text, keep_blank_values=True, errors="strict")
    pairs = []
    for field in text.split("&"):
        if field:
            name, _, value = field.partition("=")
            pairs.append((name, value))
    return pairs
