"""Engine events (Docker's ``/events``): published in memory to whoever listens right now; the last
``HISTORY`` are kept for ``docker events --since``, as dockerd keeps its last 256."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncGenerator
from typing import Any

HISTORY = 256


class Events:
    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[dict[str, Any]]] = set()
        self.history: deque[dict[str, Any]] = deque(maxlen=HISTORY)
        self.owners: dict[str, str] = {}  # container id -> engine namespace (the Docker API shows "docker"'s)

    def publish(self, kind: str, action: str, actor_id: str, attributes: dict[str, str] | None = None) -> None:
        ns = time.time_ns()
        event = {"Type": kind, "Action": action, "Actor": {"ID": actor_id, "Attributes": attributes or {}},
                 "scope": "local", "time": ns // 1_000_000_000, "timeNano": ns}
        if kind == "container":
            event.update(status=action, id=actor_id, **({"from": attributes["image"]}
                                                      if attributes and "image" in attributes else {}))
        self.history.append(event)
        for queue in self._queues:
            queue.put_nowait(event)

    def listen(self, since_ns: int | None = None) -> tuple[list[dict[str, Any]], asyncio.Queue[dict[str, Any]]]:
        """The kept events from ``since_ns`` on, and a queue of the events from now on (no gap:
        it is registered in the same step as the history is read). ``unlisten`` it when done."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._queues.add(queue)
        backlog = [e for e in self.history if e["timeNano"] >= since_ns] if since_ns is not None else []
        return backlog, queue

    def unlisten(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self._queues.discard(queue)

    async def subscribe(self) -> AsyncGenerator[dict[str, Any], None]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._queues.add(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._queues.discard(queue)
