"""Filter.N.Name / Filter.N.Value.M as EC2 applies them: a resource matches when every filter has a
value matching one of its own (``*`` and ``?`` are wildcards); ``tag:KEY``, ``tag-key`` and
``tag-value`` work on every resource type. Each resource type declares its filter names."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from minicloud.services.ec2.errors import InvalidParameterValue
from minicloud.services.ec2.store import Resource

Extractor = Callable[[Resource], Iterable[Any]]
FilterSpec = Mapping[str, Extractor]


def member(*path: str) -> Extractor:
    """The value at ``path`` in the document; lists along the path are walked."""
    def extract(resource: Resource) -> list[Any]:
        values: list[Any] = [resource.doc]
        for key in path:
            nxt: list[Any] = []
            for value in values:
                item = value.get(key) if isinstance(value, dict) else None
                if isinstance(item, list):
                    nxt.extend(item)
                elif item is not None:
                    nxt.append(item)
            values = nxt
        return values
    return extract


@lru_cache(maxsize=1024)
def pattern(value: str) -> re.Pattern[str]:
    out = []
    for ch in value:
        out.append(".*" if ch == "*" else "." if ch == "?" else re.escape(ch))
    return re.compile("".join(out), re.DOTALL)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _values(resource: Resource, name: str, spec: FilterSpec) -> Iterable[Any]:
    if name.startswith("tag:"):
        key = name[4:]
        return [v for k, v in resource.tags.items() if k == key]
    if name == "tag-key":
        return list(resource.tags)
    if name == "tag-value":
        return list(resource.tags.values())
    return spec[name](resource)


def check(filters: Sequence[Mapping[str, Any]] | None, spec: FilterSpec) -> None:
    for f in filters or ():
        name = str(f.get("Name") or "")
        if not (name.startswith("tag:") or name in ("tag-key", "tag-value") or name in spec):
            raise InvalidParameterValue(f"The filter '{name}' is invalid")


def matches(resource: Resource, filters: Sequence[Mapping[str, Any]] | None, spec: FilterSpec) -> bool:
    for f in filters or ():
        wanted = [str(v) for v in f.get("Values") or []]
        have = [_text(v) for v in _values(resource, str(f["Name"]), spec)]
        if not any(pattern(w).fullmatch(h) for w in wanted for h in have):
            return False
    return True


def apply(resources: Iterable[Resource], filters: Sequence[Mapping[str, Any]] | None,
          spec: FilterSpec) -> list[Resource]:
    check(filters, spec)
    return [r for r in resources if matches(r, filters, spec)]
