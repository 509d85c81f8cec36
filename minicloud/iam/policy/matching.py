"""Wildcards, ARNs and policy variables, compiled once per policy.

Three ways a policy string is compared with a request value:

    glob      ``*`` any run of characters, ``?`` exactly one (actions, StringLike)
    arn glob  the same, but in the first five colon-separated segments of an ARN (``arn``,
              partition, service, region, account) a wildcard never crosses a colon; the sixth
              segment (the resource part, which may itself hold colons) is matched as a whole.
              This is how ``Resource`` and ``ArnLike`` match, per the IAM user guide: "Each of the
              six colon-delimited components of the ARN is checked separately".
    exact     plain string equality

A compiled matcher is a plain callable ``str -> truthy`` picked for speed: ``str.__eq__`` for an
exact string, ``str.startswith`` for ``prefix*``, a regular expression only when needed.

Policy variables (``${aws:username}``, ``${aws:PrincipalTag/team, 'default'}``, and the escapes
``${*}``, ``${?}``, ``${$}``) are parsed into a :class:`Template` when the policy is parsed (only
for ``"Version": "2012-10-17"``; older documents keep them literal). A variable's value is always
taken literally: a ``*`` in a user's tag is not a wildcard. A variable without a value (and without
a default) makes the whole string match nothing.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from .glob import ArnGlob, SegmentGlob, any_of, arn_glob, glob, tokens_of_rendered

Matcher = Callable[[str], object]
"""Returns something truthy when the request value matches."""


class VariableSource(Protocol):
    """Where policy variables get their values (the request context)."""

    def variable(self, key: str) -> str | None:
        """The single value of the lower-cased context key, or None if it has none."""
        ...




def has_wildcard(text: str) -> bool:
    return "*" in text or "?" in text


def _always(_value: str) -> bool:
    return True


def glob_matcher(pattern: str) -> Matcher:
    """A matcher for one glob pattern (callers lower-case both sides for case-insensitivity)."""
    if pattern == "*":
        return _always
    if not has_wildcard(pattern):
        return pattern.__eq__
    stem = pattern[:-1]
    if pattern.endswith("*") and not has_wildcard(stem):
        return lambda value: value.startswith(stem)
    return glob(pattern)


def arn_matcher(pattern: str) -> Matcher:
    """A matcher for one ARN pattern (``Resource``, ``ArnLike``)."""
    if pattern == "*":
        return _always
    if not has_wildcard(pattern):
        return pattern.__eq__
    return arn_glob(pattern)


def any_glob_matcher(patterns: list[str], arn: bool = False) -> Matcher:
    """One matcher for several patterns: exact ones in a set, ``prefix*`` ones through
    ``str.startswith``, the rest in one regular expression. With *arn*, ARN glob rules apply
    (a trailing ``*`` is a plain prefix only once the resource part is reached)."""
    if "*" in patterns:
        return _always
    exact = frozenset(p for p in patterns if not has_wildcard(p))
    prefixes: list[str] = []
    others: list[str] = []
    for pattern in patterns:
        if not has_wildcard(pattern):
            continue
        stem = pattern[:-1]
        if pattern.endswith("*") and not has_wildcard(stem) and (not arn or stem.count(":") >= 5):
            prefixes.append(stem)
        else:
            others.append(pattern)
    convert = arn_glob if arn else glob
    regex = any_of(convert(p) for p in others) if others else None
    starts = tuple(prefixes)
    if regex is None and not starts:
        return exact.__contains__
    if regex is None and not exact:
        return lambda value: value.startswith(starts)
    return lambda value: (value in exact or (starts and value.startswith(starts))
                          or (regex is not None and regex(value)))


# --- policy variables -----------------------------------------------------------------------

_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_DEFAULT = re.compile(r"^\s*'(.*)'\s*$", re.DOTALL)
_ESCAPES = {"*": "*", "?": "?", "$": "$"}


@dataclass(frozen=True, slots=True)
class Variable:
    key: str  # lower-cased context key
    default: str | None = None


@dataclass(frozen=True, slots=True)
class Template:
    """A policy string with variables: literal pieces (which keep their wildcards) and variables.

    ``literal`` pieces come from the policy text, so ``*`` and ``?`` in them are wildcards;
    variable values (and the ``${*}`` escapes) are literal text.
    """

    pieces: tuple[str | Variable, ...]

    def render(self, source: VariableSource) -> tuple[str, ...] | None:
        """Alternating (policy-text, literal-value, policy-text, ...) pieces, None if unresolved.

        Even positions hold policy text (wildcards active), odd positions hold substituted values.
        """
        out: list[str] = []
        for piece in self.pieces:
            if isinstance(piece, Variable):
                value = source.variable(piece.key) if piece.key else None
                if value is None:
                    value = piece.default
                if value is None:
                    return None
                if len(out) % 2 == 0:
                    out.append("")
                out.append(value)
            elif len(out) % 2 == 0:
                out.append(piece)
            else:
                out[-1] += piece
        return tuple(out)

    def text(self, source: VariableSource) -> str | None:
        """The string with variables substituted (for exact comparisons)."""
        rendered = self.render(source)
        return None if rendered is None else "".join(rendered)


def parse_template(text: str) -> Template | None:
    """The variables in *text*, or None if it has none (then it is compiled statically)."""
    if "${" not in text:
        return None
    pieces: list[str | Variable] = []
    last = 0
    found = False
    for match in _VARIABLE.finditer(text):
        found = True
        if match.start() > last:
            pieces.append(text[last:match.start()])
        pieces.append(_variable(match.group(1)))
        last = match.end()
    if not found:
        return None
    if last < len(text):
        pieces.append(text[last:])
    return Template(tuple(pieces))


def _variable(body: str) -> Variable:
    name, comma, rest = body.partition(",")
    name = name.strip()
    if name in _ESCAPES and not comma:
        # ${*} and friends: a fixed literal value, never missing
        return Variable(key="", default=_ESCAPES[name])
    default = None
    if comma:
        quoted = _DEFAULT.match(rest)
        default = quoted.group(1) if quoted else rest.strip()
    return Variable(key=name.lower(), default=default)


@functools.lru_cache(maxsize=8192)
def _rendered_matcher(rendered: tuple[str, ...], arn: bool) -> Callable[[str], bool]:
    tokens = tokens_of_rendered(rendered)
    return ArnGlob(tokens) if arn else SegmentGlob(tokens)


def template_matcher(template: Template, arn: bool) -> Callable[[str, VariableSource], bool]:
    """A matcher for a glob or ARN pattern with variables, compiled once per distinct
    substitution (cached: the same user asks again and again)."""

    def match(value: str, source: VariableSource) -> bool:
        rendered = template.render(source)
        if rendered is None:
            return False
        return _rendered_matcher(rendered, arn)(value)

    return match
