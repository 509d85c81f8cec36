"""The Java regular expressions of botocore's models (``pattern`` traits), as Python ones.

AWS checks a pattern against the whole value (Java's ``matches()``), with ASCII ``\\w``/``\\d``/
``\\s``. Python's ``re`` lacks Unicode property classes (``\\p{L}``) and UTF-16 surrogate-pair
ranges, which the models use; both are rewritten into explicit code point ranges. A pattern
that still does not compile is not checked (``compile_pattern`` returns ``None``).
"""

from __future__ import annotations

import functools
import logging
import re
import sys
import unicodedata

log = logging.getLogger("minicloud.aws.protocol")

_PROPERTY_RE = re.compile(r"\\p\{(\w+)\}")
_SURROGATE_PAIR_RE = re.compile(r"\\u(d[89ab][0-9a-f]{2})\\u(d[c-f][0-9a-f]{2})", re.IGNORECASE)
_SHORTHAND_DASH_RE = re.compile(r"(\\[wdsWDS])-")
_ALIASES = {"Alpha": "L", "Digit": "Nd", "Punct": "P", "Space": "Z", "IsAlphabetic": "L",
            "IsLetter": "L", "IsDigit": "Nd"}


@functools.cache
def _all_categories() -> dict[str, list[tuple[int, int]]]:
    """Every general category's code point ranges, from one pass over Unicode."""
    found: dict[str, list[tuple[int, int]]] = {}
    category = unicodedata.category
    current, start = category("\0"), 0
    for cp in range(1, sys.maxunicode + 1):
        cat = category(chr(cp))
        if cat != current:
            found.setdefault(current, []).append((start, cp - 1))
            current, start = cat, cp
    found.setdefault(current, []).append((start, sys.maxunicode))
    return found


@functools.cache
def _category_ranges(category: str) -> str:
    """The code points of a Unicode general category (``L`` or ``Lu``) as class ranges."""
    ranges = sorted(r for cat, found in _all_categories().items() if cat.startswith(category)
                    for r in found)
    return "".join(_range(start, end) for start, end in ranges)


def _range(start: int, end: int) -> str:
    if start == end:
        return f"\\U{start:08x}"
    return f"\\U{start:08x}-\\U{end:08x}"


def _pair_to_code_point(m: re.Match[str]) -> str:
    high, low = int(m[1], 16), int(m[2], 16)
    return f"\\U{0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00):08x}"


def translate(pattern: str) -> str:
    pattern = _SURROGATE_PAIR_RE.sub(_pair_to_code_point, pattern)
    out: list[str] = []
    in_class = False
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            m = _PROPERTY_RE.match(pattern, i)
            if m is not None:
                ranges = _category_ranges(_ALIASES.get(m[1], m[1]))
                out.append(ranges if in_class else f"[{ranges}]")
                i = m.end()
                continue
            dash = _SHORTHAND_DASH_RE.match(pattern, i)
            if in_class and dash is not None:
                out.append(dash[1] + "\\-")
                i = dash.end()
                continue
            out.append(pattern[i:i + 2])
            i += 2
            continue
        if ch == "[" and not in_class:
            in_class = True
        elif ch == "]" and in_class and out and out[-1] != "[":
            in_class = False
        out.append(ch)
        i += 1
    return "".join(out)


@functools.cache
def compile_pattern(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(translate(pattern), re.ASCII)
    except (re.error, ValueError, OverflowError):
        log.debug("pattern %r is not checked: no Python equivalent", pattern)
        return None
