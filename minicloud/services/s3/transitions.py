"""Storage-class transitions of lifecycle rules: S3's waterfall, the checks S3 makes of the
transitions of one rule, and the class the lifecycle controller (``expiry.py``) moves a version to.

The waterfall (S3 User Guide, "Transitioning objects using Amazon S3 Lifecycle"): from STANDARD to
any class; from STANDARD_IA to INTELLIGENT_TIERING, ONEZONE_IA, GLACIER_IR, GLACIER, DEEP_ARCHIVE;
from INTELLIGENT_TIERING to ONEZONE_IA, GLACIER_IR, GLACIER, DEEP_ARCHIVE; from ONEZONE_IA and
GLACIER_IR to GLACIER, DEEP_ARCHIVE; from GLACIER to DEEP_ARCHIVE; from any class to GLACIER and
DEEP_ARCHIVE. Never back up, never to STANDARD or REDUCED_REDUNDANCY.

Object size: by default (``all_storage_classes_128K``) S3 transitions no object smaller than
128 KB; with ``varies_by_storage_class`` such objects still go to GLACIER and DEEP_ARCHIVE; a
rule whose filter names an object size decides alone.

One rule's transitions to two classes must leave the first class its minimum storage duration
(30 days for STANDARD_IA and ONEZONE_IA, 90 for GLACIER_IR and GLACIER) before the next, colder
one, and its Expiration must come after every transition.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

from minicloud.services.s3.errors import InvalidArgument, InvalidRequest

TRANSITION_CLASSES = ("STANDARD_IA", "INTELLIGENT_TIERING", "ONEZONE_IA", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE")
_RANK = {name: rank for rank, name in enumerate(TRANSITION_CLASSES, start=1)}  # STANDARD is 0: warmest
_ARCHIVES = frozenset({"GLACIER", "DEEP_ARCHIVE"})
_ALLOWED: dict[str, frozenset[str]] = {
    "STANDARD": frozenset(TRANSITION_CLASSES),
    "STANDARD_IA": frozenset(TRANSITION_CLASSES[1:]),
    "INTELLIGENT_TIERING": frozenset(TRANSITION_CLASSES[2:]),
    "ONEZONE_IA": _ARCHIVES,
    "GLACIER_IR": _ARCHIVES,
    "GLACIER": frozenset({"DEEP_ARCHIVE"}),
    "REDUCED_REDUNDANCY": _ARCHIVES,
}
# What one class must be kept before a rule's next transition (its minimum storage duration).
_MINIMUM_DAYS = {"STANDARD_IA": 30, "ONEZONE_IA": 30, "GLACIER_IR": 90, "GLACIER": 90, "DEEP_ARCHIVE": 180}

SMALL_OBJECT = 128 * 1024
DEFAULT_MINIMUM_SIZE = "all_storage_classes_128K"
MINIMUM_SIZES = ("all_storage_classes_128K", "varies_by_storage_class")


def allowed(source: str, target: str) -> bool:
    """Whether a lifecycle rule may move a version of class ``source`` to ``target``."""
    return target in _ALLOWED.get(source, frozenset())


def listed(rule: dict[str, Any], plural: str, singular: str) -> list[dict[str, Any]]:
    """A rule's transitions: the lifecycle configuration's lists, or the older API's single one."""
    return [*(rule.get(plural) or []), *([rule[singular]] if rule.get(singular) else [])]


def current_transitions(rule: dict[str, Any]) -> list[dict[str, Any]]:
    return listed(rule, "Transitions", "Transition")


def noncurrent_transitions(rule: dict[str, Any]) -> list[dict[str, Any]]:
    return listed(rule, "NoncurrentVersionTransitions", "NoncurrentVersionTransition")


# -- checks of one rule (each transition on its own is checked by ``lifecycle.check_rule``) ---------

def filter_text(rule: dict[str, Any]) -> str:
    """How S3's messages name a rule's filter: ``(prefix=logs/)``, parts joined by `` and ``."""
    if "Filter" not in rule:
        return f"(prefix={rule.get('Prefix') or ''})"
    flt = rule.get("Filter") or {}
    source = flt.get("And") or flt
    parts = [f"prefix={source['Prefix']}"] if source.get("Prefix") else []
    tags = [*(source.get("Tags") or []), *([flt["Tag"]] if flt.get("Tag") else [])]
    parts += [f"tag: key={tag.get('Key', '')}, value={tag.get('Value', '')}" for tag in tags]
    for name in ("ObjectSizeGreaterThan", "ObjectSizeLessThan"):
        if source.get(name) is not None:
            parts.append(f"{name.lower()}={source[name]}")
    return f"({' and '.join(parts) or 'prefix='})"


def check_transitions(rule: dict[str, Any]) -> None:
    """What S3 checks between the actions of one rule with transitions (after each on its own)."""
    flt = filter_text(rule)
    transitions = current_transitions(rule)
    if transitions:
        _distinct(transitions, "Transition", flt)
        kinds = {"Days" if t.get("Days") is not None else "Date" for t in transitions}
        if len(kinds) > 1:
            raise InvalidRequest(f"Found mixed 'Date' and 'Days' based Transition actions in lifecycle rule for "
                                 f"filter '{flt}'")
        kind = kinds.pop()
        _after_expiration(rule, transitions, kind, flt)
        _waterfall(transitions, kind, "Transition", flt)
    noncurrent = noncurrent_transitions(rule)
    if noncurrent:
        _distinct(noncurrent, "NoncurrentVersionTransition", flt)
        for transition in noncurrent:
            _newer_versions(transition)
        expiration = (rule.get("NoncurrentVersionExpiration") or {}).get("NoncurrentDays")
        if expiration is not None and any(int(expiration) <= int(t["NoncurrentDays"]) for t in noncurrent):
            raise InvalidArgument(f"'NoncurrentDays' in the NoncurrentVersionExpiration action for filter '{flt}' "
                                  "must be greater than 'NoncurrentDays' in the NoncurrentVersionTransition action")
        _waterfall(noncurrent, "NoncurrentDays", "NoncurrentVersionTransition", flt)


def _distinct(transitions: list[dict[str, Any]], action: str, flt: str) -> None:
    classes = [t["StorageClass"] for t in transitions]
    if len(classes) != len(set(classes)):
        raise InvalidRequest(f"'StorageClass' must be different for '{action}' actions in same 'Rule' with "
                             f"filter '{flt}'")


def _after_expiration(rule: dict[str, Any], transitions: list[dict[str, Any]], kind: str, flt: str) -> None:
    """An Expiration by Days (Date) comes after every transition, which must use Days (Date) too."""
    expiration = rule.get("Expiration") or {}
    other = "Date" if kind == "Days" else "Days"
    if expiration.get(other) is not None:
        raise InvalidRequest(f"Found mixed 'Date' and 'Days' based Expiration and Transition actions in lifecycle "
                             f"rule for filter '{flt}'")
    end = expiration.get(kind)
    if end is not None and any(_value(end, kind) <= _value(t[kind], kind) for t in transitions):
        raise InvalidArgument(f"'{kind}' in the Expiration action for filter '{flt}' must be greater than "
                              f"'{kind}' in the Transition action")


def _waterfall(transitions: list[dict[str, Any]], field: str, action: str, flt: str) -> None:
    """Colder classes later, each after the warmer one's minimum storage duration (one day at least)."""
    ordered = sorted(transitions, key=lambda t: _RANK[t["StorageClass"]])
    for warmer, colder in pairwise(ordered):
        gap = max(1, _MINIMUM_DAYS.get(warmer["StorageClass"], 0))
        start, end = _value(warmer[field], field), _value(colder[field], field)
        if end - start < (timedelta(days=gap) if field == "Date" else gap):  # (no sum: 9999-12-31 + 90 days overflows)
            raise InvalidArgument(
                f"'{field}' in the {action} action for StorageClass '{colder['StorageClass']}' for filter '{flt}' "
                f"must be {gap} days more than 'filter '{flt}'' in the {action} action for StorageClass "
                f"'{warmer['StorageClass']}'")


def _value(value: Any, field: str) -> Any:
    if field == "Date":
        return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return int(value)


def _newer_versions(transition: dict[str, Any]) -> None:
    newer = transition.get("NewerNoncurrentVersions")
    if newer is not None and not 1 <= int(newer) <= 100:
        raise InvalidArgument("'NewerNoncurrentVersions' for NoncurrentVersionTransition action must be a positive "
                              "integer up to 100")


# -- which class a version moves to ----------------------------------------------------------------

def sized_by_filter(rule: dict[str, Any]) -> bool:
    """Whether the rule's filter names an object size (then S3's default minimum does not apply)."""
    flt = rule.get("Filter") or {}
    source = flt.get("And") or flt
    return source.get("ObjectSizeGreaterThan") is not None or source.get("ObjectSizeLessThan") is not None


def size_allows(size: int, target: str, minimum_size: str, sized_rule: bool) -> bool:
    """S3's default minimum object size for transitions (``TransitionDefaultMinimumObjectSize``)."""
    if sized_rule or size >= SMALL_OBJECT:
        return True
    return minimum_size == "varies_by_storage_class" and target in _ARCHIVES


def sources(targets: list[str]) -> list[str]:
    """The classes from which a lifecycle rule may move a version to one of ``targets`` (a scan
    reads only versions of these: those at their coldest class stay where they are)."""
    wanted = set(targets)
    return sorted(source for source, allowed_targets in _ALLOWED.items() if allowed_targets & wanted)


def coldest(source: str, targets: list[str]) -> str | None:
    """Of the classes whose transitions are due, the coldest the waterfall allows from ``source``
    (S3 prefers GLACIER to an IA class when both are due)."""
    candidates = [target for target in targets if allowed(source, target)]
    return max(candidates, key=lambda target: _RANK[target]) if candidates else None
