"""Blobs whose last reference went away, deleted once their grace period is over.

A GET that looked an object up just before it was replaced may still stream the old blob, so a
released blob is deleted only ``grace`` seconds later, and later still while a read (in any
process) is streaming it. An S3 PUT that overwrites an object releases a blob (objects are sealed
with keys of their own, so two writes of the same bytes are two blobs): at ~2,000 PUTs a second,
tens of thousands wait at once. They wait here as (due, digest) pairs in one queue, in the order
they were released (the grace period is the same for all), worked through by one task in
batches of up to ``BATCH``, each deleted by one call: one reference query and one request per
zone to the blob writer, which deletes them in one transaction. A batch waits up to ``GATHER_S``
to fill: the releases of a steady stream of overwrites fall due one by one, and without it
batches held ~9 blobs at 2,000 PUTs a second.

What a deletion costs (4,096 overwritten 4 KiB objects, the CPU of the server and its worker
while their releases fell due): ~1 ms a blob with a task, a query, a message and an answer each
(and a task per blob held ~2 KiB of objects while it slept, measured with tracemalloc); ~600 us
with one call per batch; ~300 us with one writer request per zone for the batch and deletion-only
transactions committed without an fsync; ~130 us once batches fill. GETs served while a PUT
burst's deletions fell due were ~25-35% fewer at the start.

A blob still waiting when the server stops is not deleted: nothing refers to it, and the
scrubber's orphan sweep removes it later.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable

log = logging.getLogger("minicloud.s3.releases")

BATCH = 256  # blobs deleted by one call
GATHER_S = 1.0  # how long the first due blob waits for the batch to fill (unless it is full sooner)
GATHER_STEP_S = 0.1  # how often a batch being gathered is looked at again


class Releases:
    """``delete(digests)`` for the released blobs, ``grace`` seconds after their release (up to
    ``gather`` more, to fill a batch) and not while ``reading(digest)``, up to ``BATCH`` a call; on
    the event loop that released them."""

    def __init__(self, delete: Callable[[list[str]], Awaitable[None]], reading: Callable[[str], bool],
                 grace: float, gather: float = GATHER_S) -> None:
        self._delete = delete
        self._reading = reading
        self._grace = grace
        self._gather = gather
        self._due: deque[tuple[float, str]] = deque()
        self._task: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._due)

    def add(self, digests: Iterable[str]) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time() + self._grace
        self._due.extend((due, digest) for digest in digests)
        task = self._task
        # (a task of a loop that has closed meanwhile, as in tests that run several, never ends)
        if self._due and (task is None or task.done() or task.get_loop() is not loop):
            self._task = loop.create_task(self._run())

    def stop(self) -> None:
        """Forget what is waiting (orphans now, for the scrubber) and stop the task."""
        self._due.clear()
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        me = asyncio.current_task()
        try:
            while self._due:
                due = self._due
                now = loop.time()
                if due[0][0] > now:  # nothing due yet
                    await asyncio.sleep(due[0][0] - now)
                    continue
                # The batch starts when BATCH are due, or ``gather`` after the first was (batches of
                # a few blobs, as the releases of a steady stream of overwrites fall due one by
                # one, cost the writer a transaction each: ~9 a batch at 2,000 PUTs a second);
                # looked at again every GATHER_STEP_S meanwhile, as more are released.
                gathering = due[0][0] + self._gather - now
                if gathering > 0 and not (len(due) >= BATCH and due[BATCH - 1][0] <= now):
                    await asyncio.sleep(min(gathering, GATHER_STEP_S))
                    continue
                batch: list[str] = []
                while self._due and self._due[0][0] <= now and len(batch) < BATCH:
                    digest = self._due.popleft()[1]
                    if self._reading(digest):  # a read is streaming it: once more the grace period
                        self._due.append((now + self._grace, digest))
                    else:
                        batch.append(digest)
                if batch:
                    await self._settle(batch)
        finally:
            if self._task is me:
                self._task = None

    async def _settle(self, batch: list[str]) -> None:
        try:
            await self._delete(batch)
        except Exception:  # left to the scrubber's orphan sweep; the next batches go on
            log.exception("deleting %d released blobs (%s...) failed", len(batch), batch[0])
