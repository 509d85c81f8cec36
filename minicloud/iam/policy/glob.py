"""Wildcard matching in time linear in the value (times the pattern), never exponential.

A policy's ``*`` and ``?`` cannot go to a backtracking regular-expression engine: a pattern such as
``b/*a*a*a*a*b`` against a long key takes that engine minutes, on the event loop, for every
account. Here a pattern is cut at its ``*`` into fixed-length chunks (literal characters and
``?``); the first chunk must match at the start, the last at the end, and each one between is
found at its leftmost place after the previous one (leftmost is always right for globs).

A pattern is a sequence of tokens: ``STAR``, ``QMARK`` or literal text, so substituted policy
variables (whose ``*`` is literal) and policy text (whose ``*`` is a wildcard) mix safely.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import Final

STAR: Final = object()
QMARK: Final = object()
Token = object  # STAR, QMARK or str

_ARN_HEAD_SEGMENTS = 5  # arn:partition:service:region:account — wildcards never cross a colon there


def tokens_of_glob(pattern: str) -> list[Token]:
    out: list[Token] = []
    literal: list[str] = []
    for char in pattern:
        if char in "*?":
            if literal:
                out.append("".join(literal))
                literal = []
            out.append(STAR if char == "*" else QMARK)
        else:
            literal.append(char)
    if literal:
        out.append("".join(literal))
    return out


def tokens_of_rendered(pieces: Sequence[str]) -> list[Token]:
    """Alternating (policy text, literal value, policy text, ...) pieces."""
    out: list[Token] = []
    for index, piece in enumerate(pieces):
        if index % 2:
            if piece:
                out.append(piece)
        else:
            out.extend(tokens_of_glob(piece))
    return out


class _Chunk:
    """A star-free run of literal characters and ``?``: fixed length, matched without backtracking."""

    __slots__ = ("length", "literal", "regex")

    def __init__(self, tokens: Sequence[Token]) -> None:
        if all(isinstance(t, str) for t in tokens):
            self.literal: str | None = "".join(t for t in tokens if isinstance(t, str))
            self.regex: re.Pattern[str] | None = None
            self.length = len(self.literal)
        else:
            self.literal = None
            self.regex = re.compile("".join(re.escape(t) if isinstance(t, str) else "." for t in tokens), re.DOTALL)
            self.length = sum(len(t) if isinstance(t, str) else 1 for t in tokens)

    def at(self, text: str, pos: int) -> bool:
        if self.literal is not None:
            return text.startswith(self.literal, pos)
        assert self.regex is not None
        return self.regex.match(text, pos, pos + self.length) is not None

    def find(self, text: str, start: int, end: int) -> int:
        """The end of this chunk's leftmost match within text[start:end], or -1."""
        if self.literal is not None:
            found = text.find(self.literal, start, end)
            return -1 if found < 0 else found + self.length
        assert self.regex is not None
        match = self.regex.search(text, start, end)
        return -1 if match is None else match.end()


class SegmentGlob:
    __slots__ = ("chunks", "starred")

    def __init__(self, tokens: Sequence[Token]) -> None:
        chunks: list[list[Token]] = [[]]
        for token in tokens:
            if token is STAR:
                chunks.append([])
            else:
                chunks[-1].append(token)
        self.starred = len(chunks) > 1
        self.chunks = [_Chunk(c) for c in chunks]

    def __call__(self, text: str) -> bool:
        chunks = self.chunks
        first = chunks[0]
        if not self.starred:
            return len(text) == first.length and first.at(text, 0)
        last = chunks[-1]
        end = len(text) - last.length
        if end < first.length or not first.at(text, 0) or not last.at(text, end):
            return False
        pos = first.length
        for chunk in chunks[1:-1]:
            pos = chunk.find(text, pos, end)
            if pos < 0:
                return False
        return True


class ArnGlob:
    """Per the IAM user guide, each of the six colon-separated parts of an ARN is matched on its
    own: a wildcard in the first five never crosses a colon; the resource part holds colons."""

    __slots__ = ("head", "resource", "whole")

    def __init__(self, tokens: Sequence[Token]) -> None:
        parts: list[list[Token]] = [[]]
        for token in tokens:
            if isinstance(token, str) and len(parts) <= _ARN_HEAD_SEGMENTS and ":" in token:
                pieces = token.split(":")
                for i, piece in enumerate(pieces):
                    if i:
                        if len(parts) <= _ARN_HEAD_SEGMENTS:
                            parts.append([])
                        else:
                            parts[-1].append(":")
                    if piece:
                        parts[-1].append(piece)
            else:
                parts[-1].append(token)
        if len(parts) <= _ARN_HEAD_SEGMENTS:  # not an ARN: a plain glob
            self.whole: SegmentGlob | None = SegmentGlob(tokens)
            self.head: list[SegmentGlob] = []
            self.resource: SegmentGlob | None = None
        else:
            self.whole = None
            self.head = [SegmentGlob(p) for p in parts[:_ARN_HEAD_SEGMENTS]]
            self.resource = SegmentGlob(parts[_ARN_HEAD_SEGMENTS])

    def __call__(self, text: str) -> bool:
        if self.whole is not None:
            return self.whole(text)
        values = text.split(":", _ARN_HEAD_SEGMENTS)
        if len(values) <= _ARN_HEAD_SEGMENTS:
            return False
        assert self.resource is not None
        return all(glob(value) for glob, value in zip(self.head, values, strict=False)) and self.resource(values[-1])


def glob(pattern: str) -> Callable[[str], bool]:
    return SegmentGlob(tokens_of_glob(pattern))


def arn_glob(pattern: str) -> Callable[[str], bool]:
    return ArnGlob(tokens_of_glob(pattern))


def any_of(matchers: Iterable[Callable[[str], bool]]) -> Callable[[str], bool]:
    chosen = tuple(matchers)
    if len(chosen) == 1:
        return chosen[0]
    return lambda value: any(match(value) for match in chosen)
