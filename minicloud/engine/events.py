"""Engine events (Docker's ``/events``): published in memory to whoever listens right now."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any


class Events:
    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[dict[str, Any]]] = set()

    def publish(self, kind: str, action: str, actor_id: str, attributes: dict[str, str] | None = None) -> None:
        ns = time.time_ns()
        event = {"Type": kind, "Action": action, "Actor": {"ID": actor_id, "Attributes": attributes or {}},
                 "scope": "local", "time": ns // 1_000_000_000, "timeNano": ns}
        if kind == "container":
            event.update(status=action, id=actor_id, **({"from": attributes["image"]}
                                                      if attributes and "image" in attributes else {}))
        for queue in self._queues:
            queue.put_nowait(event)

    async def subscribe(self) -> AsyncIterator[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._queues.add(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._queues.discard(queue)
