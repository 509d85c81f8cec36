"""Condition operators, compiled once per policy.

Semantics (IAM user guide: "Condition operators", "Conditions with multiple context keys or
values", "Single-valued vs. multivalued context keys"):

* Several operators in a block, and several keys under one operator, are ANDed.
* Several values for one key are ORed; for a negated operator (``StringNotEquals``,
  ``NotIpAddress``, ...) they are NORed: the request value must match none of them.
* A key missing from the request context makes a condition false, except that a negated operator
  is then true; ``...IfExists`` makes a missing key true; ``Null`` tests presence itself.
* ``ForAnyValue:``: true if at least one request value passes (for a negated operator: at least
  one request value matches none of the policy values); false when the key is missing or empty.
* ``ForAllValues:``: true if every request value passes (negated: no request value matches any
  policy value); true when the key is missing or empty.
* Without a set operator a multivalued request key behaves as "any value matches" (negated:
  "no value matches"): the negation of the positive test.

A *base test* answers "does this one request value match at least one of the policy values?";
negation, set operators and ``IfExists`` are applied on top of it by :class:`Condition`.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from .glob import any_of, glob
from .matching import (
    Template,
    arn_matcher,
    has_wildcard,
    parse_template,
    template_matcher,
)
from .request import EvalContext

BaseTest = Callable[[str, EvalContext], bool]
Factory = Callable[[list[str], bool], BaseTest]

ANY_VALUE = 1
ALL_VALUES = 2


@dataclass(frozen=True, slots=True)
class Condition:
    """One ``operator: {key: values}`` pair of a ``Condition`` block."""

    operator: str  # as written in the policy
    key: str  # lower-cased context key
    qualifier: int  # 0, ANY_VALUE or ALL_VALUES
    if_exists: bool
    negated: bool
    test: BaseTest | None  # None for Null
    null_expected: tuple[bool, ...] = ()  # Null: the values ("true" = must be absent)

    def holds(self, context: EvalContext) -> bool:
        values = context.get(self.key)
        test = self.test
        if test is None:  # Null
            absent = values is None
            return any(expected == absent for expected in self.null_expected)
        if values is None:
            if self.if_exists:
                return True
            if self.qualifier == ANY_VALUE:
                return False
            if self.qualifier == ALL_VALUES:
                return True
            return self.negated
        if self.qualifier == 0 and len(values) == 1:  # the common case
            return test(values[0], context) != self.negated
        if self.qualifier == ALL_VALUES:
            if self.negated:
                return not any(test(value, context) for value in values)
            return all(test(value, context) for value in values)
        if self.qualifier == ANY_VALUE and self.negated:
            return not all(test(value, context) for value in values)
        hit = any(test(value, context) for value in values)
        return hit != self.negated


class UnknownOperator(ValueError):
    """The operator name is not one IAM knows."""


def compile_condition(operator_name: str, key: str, values: list[str], variables: bool) -> Condition:
    qualifier, base, if_exists = _split_operator(operator_name)
    entry = _OPERATORS.get(base.lower())
    if entry is None or (if_exists and base.lower() == "null"):
        raise UnknownOperator(operator_name)
    factory, negated = entry
    if factory is None:
        return Condition(operator_name, key.lower(), qualifier, False, False, None,
                         tuple(value.lower() == "true" for value in values))
    return Condition(operator_name, key.lower(), qualifier, if_exists, negated,
                     factory(values, variables))


def _split_operator(name: str) -> tuple[int, str, bool]:
    lower = name.lower()
    qualifier = 0
    base = name
    if lower.startswith("foranyvalue:"):
        qualifier, base = ANY_VALUE, name[len("foranyvalue:"):]
    elif lower.startswith("forallvalues:"):
        qualifier, base = ALL_VALUES, name[len("forallvalues:"):]
    if base.lower().endswith("ifexists"):
        return qualifier, base[: -len("ifexists")], True
    return qualifier, base, False


# --- strings ----------------------------------------------------------------------------------

def _templates(values: list[str], variables: bool) -> tuple[list[str], list[Template]]:
    static: list[str] = []
    dynamic: list[Template] = []
    for value in values:
        template = parse_template(value) if variables else None
        if template is None:
            static.append(value)
        else:
            dynamic.append(template)
    return static, dynamic


def _string_equals(fold: bool) -> Factory:
    def factory(values: list[str], variables: bool) -> BaseTest:
        static, dynamic = _templates(values, variables)
        exact = frozenset(v.lower() for v in static) if fold else frozenset(static)
        if not dynamic:
            if fold:
                return lambda value, _context: value.lower() in exact
            return lambda value, _context: value in exact

        def test(value: str, context: EvalContext) -> bool:
            probe = value.lower() if fold else value
            if probe in exact:
                return True
            for template in dynamic:
                text = template.text(context)
                if text is not None and (text.lower() if fold else text) == probe:
                    return True
            return False

        return test

    return factory


def _string_like(values: list[str], variables: bool) -> BaseTest:
    static, dynamic = _templates(values, variables)
    exact = frozenset(v for v in static if not has_wildcard(v))
    wild = [v for v in static if has_wildcard(v)]
    regex = any_of(glob(v) for v in wild) if wild else None
    matchers = [template_matcher(template, arn=False) for template in dynamic]

    def test(value: str, context: EvalContext) -> bool:
        if value in exact or (regex is not None and regex(value)):
            return True
        return any(match(value, context) for match in matchers)

    return test


def _arn_like(values: list[str], variables: bool) -> BaseTest:
    static, dynamic = _templates(values, variables)
    statics = [arn_matcher(v) for v in static]
    matchers = [template_matcher(template, arn=True) for template in dynamic]

    def test(value: str, context: EvalContext) -> bool:
        if any(match(value) for match in statics):
            return True
        return any(match(value, context) for match in matchers)

    return test


def _bool(values: list[str], variables: bool) -> BaseTest:
    static, dynamic = _templates(values, variables)
    exact = frozenset(v.lower() for v in static)

    def test(value: str, context: EvalContext) -> bool:
        probe = value.lower()
        if probe in exact:
            return True
        for template in dynamic:
            text = template.text(context)
            if text is not None and text.lower() == probe:
                return True
        return False

    return test


# --- numbers and dates -----------------------------------------------------------------------

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def parse_number(text: str) -> float | None:
    text = text.strip()
    if not _NUMBER.fullmatch(text):
        return None
    return float(text)


_W3C_DATE = re.compile(
    r"(?P<y>\d{4})(?:-(?P<mo>\d{2})(?:-(?P<d>\d{2})"
    r"(?:[Tt ](?P<h>\d{2}):?(?P<mi>\d{2})(?::?(?P<s>\d{2})(?:[.,](?P<f>\d+))?)?"
    r"(?P<tz>[Zz]|[+-]\d{2}(?::?\d{2})?)?)?)?)?")
_BASIC_DATE = re.compile(
    r"(?P<y>\d{4})(?P<mo>\d{2})(?P<d>\d{2})(?:[Tt](?P<h>\d{2})(?P<mi>\d{2})(?P<s>\d{2})?"
    r"(?:[.,](?P<f>\d+))?(?P<tz>[Zz]|[+-]\d{2}(?::?\d{2})?)?)?")


def parse_date(text: str) -> float | None:
    """Seconds since the epoch for a W3C/ISO 8601 date-time or an epoch number, else None."""
    text = text.strip()
    number = parse_number(text)
    if number is not None and not re.fullmatch(r"\d{4}|\d{8}", text):
        return number
    match = _W3C_DATE.fullmatch(text) or _BASIC_DATE.fullmatch(text)
    if match is None:
        return None
    parts = match.groupdict()
    try:
        moment = datetime(int(parts["y"]), int(parts["mo"] or 1), int(parts["d"] or 1),
                          int(parts["h"] or 0), int(parts["mi"] or 0), int(parts["s"] or 0),
                          tzinfo=_zone(parts["tz"]))
    except ValueError:
        return None
    fraction = float("0." + parts["f"]) if parts["f"] else 0.0
    return moment.timestamp() + fraction


def _zone(text: str | None) -> timezone:
    if not text or text in ("Z", "z"):
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    minutes = int(digits[:2]) * 60 + (int(digits[2:4]) if len(digits) > 2 else 0)
    if minutes >= 24 * 60:
        raise ValueError(text)
    return timezone(sign * timedelta(minutes=minutes))


def _ordered(parse: Callable[[str], float | None], compare: Callable[[float, float], bool]) -> Factory:
    def factory(values: list[str], _variables: bool) -> BaseTest:
        bounds = [b for b in (parse(v) for v in values) if b is not None]

        def test(value: str, _context: EvalContext) -> bool:
            number = parse(value)
            return number is not None and any(compare(number, bound) for bound in bounds)

        return test

    return factory


# --- binary and IP addresses -------------------------------------------------------------------

def _decode(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def _binary_equals(values: list[str], _variables: bool) -> BaseTest:
    expected = frozenset(b for b in (_decode(v) for v in values) if b is not None)

    def test(value: str, _context: EvalContext) -> bool:
        decoded = _decode(value)
        return (decoded if decoded is not None else value.encode()) in expected

    return test


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _network(text: str) -> Network | None:
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None


def _ip_address(values: list[str], _variables: bool) -> BaseTest:
    networks = [n for n in (_network(v) for v in values) if n is not None]

    def test(value: str, _context: EvalContext) -> bool:
        try:
            address = ipaddress.ip_address(value.strip())
        except ValueError:
            return False
        return any(address in network for network in networks)

    return test


_OPERATORS: dict[str, tuple[Factory | None, bool]] = {
    "stringequals": (_string_equals(False), False),
    "stringnotequals": (_string_equals(False), True),
    "stringequalsignorecase": (_string_equals(True), False),
    "stringnotequalsignorecase": (_string_equals(True), True),
    "stringlike": (_string_like, False),
    "stringnotlike": (_string_like, True),
    "numericequals": (_ordered(parse_number, operator.eq), False),
    "numericnotequals": (_ordered(parse_number, operator.eq), True),
    "numericlessthan": (_ordered(parse_number, operator.lt), False),
    "numericlessthanequals": (_ordered(parse_number, operator.le), False),
    "numericgreaterthan": (_ordered(parse_number, operator.gt), False),
    "numericgreaterthanequals": (_ordered(parse_number, operator.ge), False),
    "dateequals": (_ordered(parse_date, operator.eq), False),
    "datenotequals": (_ordered(parse_date, operator.eq), True),
    "datelessthan": (_ordered(parse_date, operator.lt), False),
    "datelessthanequals": (_ordered(parse_date, operator.le), False),
    "dategreaterthan": (_ordered(parse_date, operator.gt), False),
    "dategreaterthanequals": (_ordered(parse_date, operator.ge), False),
    "bool": (_bool, False),
    "binaryequals": (_binary_equals, False),
    "ipaddress": (_ip_address, False),
    "notipaddress": (_ip_address, True),
    "arnequals": (_arn_like, False),
    "arnlike": (_arn_like, False),
    "arnnotequals": (_arn_like, True),
    "arnnotlike": (_arn_like, True),
    "null": (None, False),
}
