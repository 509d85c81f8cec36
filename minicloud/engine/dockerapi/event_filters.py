"""``docker events`` options: ``since``/``until`` times and Docker's event filters."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from minicloud.engine.errors import InvalidArgument

_GO_DURATION = re.compile(r"^(?:\d+(?:\.\d+)?(?:h|m|s|ms))+$")
_UNIT = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def event_time(raw: str) -> float | None:
    """A Unix time from Docker's forms: ``secs[.nanos]``, RFC 3339, or a Go duration before now."""
    from minicloud.engine.containers.logs import timestamp

    if not raw:
        return None
    if _GO_DURATION.match(raw):
        return time.time() - sum(float(n) * _UNIT[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", raw))
    try:
        return timestamp(raw)
    except ValueError:
        raise InvalidArgument(f"invalid time: {raw}") from None


def _values(filters: dict[str, Any], name: str) -> list[str]:
    value = filters.get(name) or []
    return list(value.keys()) if isinstance(value, dict) else list(value)


def matches(event: dict[str, Any], filters: dict[str, Any]) -> bool:
    actor = event.get("Actor") or {}
    attributes: dict[str, str] = actor.get("Attributes") or {}
    kind, action, actor_id = event.get("Type", ""), event.get("Action", ""), str(actor.get("ID", ""))
    names = {actor_id, attributes.get("name", "")}

    def named(wanted: list[str]) -> bool:
        return any(w in names or (len(w) >= 1 and actor_id.startswith(w)) for w in wanted)

    checks: dict[str, Callable[[list[str]], bool]] = {
        "type": lambda w: kind in w,
        "event": lambda w: action in w or action.split(":")[0] in w,
        "container": lambda w: kind == "container" and named(w),
        "image": lambda w: attributes.get("image") in w or (kind == "image" and named(w)),
        "network": lambda w: kind == "network" and named(w),
        "volume": lambda w: kind == "volume" and named(w),
        "label": lambda w: all(attributes.get(k) == v if sep else k in attributes
                               for k, sep, v in (item.partition("=") for item in w)),
    }
    for name, check in checks.items():
        wanted = _values(filters, name)
        if wanted and not check(wanted):
            return False
    return True
