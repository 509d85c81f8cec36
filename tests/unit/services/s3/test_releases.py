"""Released blobs (``services.s3.releases``): each deleted once its grace period is over, later while
a read streams it, many by one call (so that their deletions share one query and the writer's
commits), none after the server stops, and a failed deletion does not hold up the others."""

from __future__ import annotations

import asyncio
import gc
import logging

import pytest

from minicloud.services.s3.releases import BATCH, Releases
from tests.support.polling import until

GRACE = 0.1


class _Deleter:
    def __init__(self, fail: set[str] | None = None, pause: float = 0.0) -> None:
        self.deleted: list[tuple[str, float]] = []
        self.calls: list[int] = []  # the size of each call's batch
        self.running = self.most = 0
        self.fail = fail or set()
        self.pause = pause

    async def __call__(self, digests: list[str]) -> None:
        self.calls.append(len(digests))
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            await asyncio.sleep(self.pause)
            if self.fail.intersection(digests):
                raise OSError(f"cannot delete {sorted(self.fail.intersection(digests))}")
            self.deleted.extend((digest, asyncio.get_running_loop().time()) for digest in digests)
        finally:
            self.running -= 1


def test_each_blob_is_deleted_after_its_grace_period_in_release_order() -> None:
    async def scenario() -> None:
        deleter = _Deleter()
        releases = Releases(deleter, lambda digest: False, GRACE, gather=0)
        loop = asyncio.get_running_loop()
        start = loop.time()
        releases.add(["a", "b"])
        await asyncio.sleep(GRACE / 2)
        releases.add(["c"])
        assert deleter.deleted == [] and len(releases) == 3
        await asyncio.sleep(GRACE * 2)
        await until(lambda: len(deleter.deleted) == 3)
        assert [d for d, _ in deleter.deleted] == ["a", "b", "c"]
        times = dict(deleter.deleted)
        assert times["a"] - start >= GRACE and times["c"] - start >= GRACE * 1.5
        assert len(releases) == 0

    asyncio.run(scenario())


def test_a_blob_being_read_waits_another_grace_period() -> None:
    async def scenario() -> None:
        deleter = _Deleter()
        streaming = {"read"}
        releases = Releases(deleter, lambda digest: digest in streaming, GRACE, gather=0)
        releases.add(["read", "idle"])
        await asyncio.sleep(GRACE * 1.5)
        await until(lambda: len(deleter.deleted) >= 1)
        assert [d for d, _ in deleter.deleted] == ["idle"]
        await asyncio.sleep(GRACE)  # another grace period: still read, still kept
        assert [d for d, _ in deleter.deleted] == ["idle"]
        streaming.clear()  # the download ended
        await asyncio.sleep(GRACE)
        await until(lambda: len(deleter.deleted) == 2)
        assert [d for d, _ in deleter.deleted] == ["idle", "read"]

    asyncio.run(scenario())


def test_due_blobs_are_deleted_many_by_one_call_up_to_a_batch() -> None:
    async def scenario() -> None:
        deleter = _Deleter(pause=0.02)
        releases = Releases(deleter, lambda digest: False, GRACE, gather=0)
        releases.add([f"d{i}" for i in range(BATCH + 44)])
        await asyncio.sleep(GRACE + 0.3)
        await until(lambda: len(deleter.deleted) == BATCH + 44)
        assert len(deleter.deleted) == BATCH + 44
        assert deleter.calls == [BATCH, 44] and deleter.most == 1  # one batch after the other

    asyncio.run(scenario())


def test_blobs_falling_due_one_by_one_are_gathered_into_one_batch() -> None:
    """Released one after the other, they fall due one after the other: the first waits up to
    ``gather`` for the batch to fill, so that they share one call; a batch that fills meanwhile
    goes at once (within a step)."""
    async def scenario() -> None:
        deleter = _Deleter()
        gather = 1.5
        releases = Releases(deleter, lambda digest: False, GRACE, gather=gather)
        loop = asyncio.get_running_loop()
        start = loop.time()
        for i in range(5):
            releases.add([f"s{i}"])
            await asyncio.sleep(0.02)
        await asyncio.sleep(GRACE + 0.3)
        assert deleter.deleted == []  # due, gathering
        await until(lambda: deleter.calls != [])
        assert deleter.calls == [5]
        assert all(when - start >= GRACE + gather for _, when in deleter.deleted)
        releases.add(["t0"])
        await asyncio.sleep(GRACE + 0.05)  # due, gathering...
        released = loop.time()
        releases.add([f"f{i}" for i in range(BATCH)])  # ...then a full batch is released
        await asyncio.sleep(GRACE + 0.25)
        await until(lambda: len(deleter.calls) >= 2)
        assert deleter.calls == [5, BATCH]  # it did not wait for the gathering to end (at released + 1.45 s)
        assert deleter.deleted[-1][1] - released < GRACE + 0.9

    asyncio.run(scenario())


def test_a_failed_deletion_is_logged_and_the_rest_go_on(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        deleter = _Deleter(fail={"bad"})
        releases = Releases(deleter, lambda digest: False, GRACE, gather=0)
        releases.add(["bad", "good"])
        await asyncio.sleep(GRACE * 2)
        assert deleter.deleted == []  # (their batch failed: left to the scrubber's orphan sweep)
        releases.add(["later"])  # the queue still works
        await asyncio.sleep(GRACE * 2)
        await until(lambda: len(deleter.deleted) >= 1)
        assert [d for d, _ in deleter.deleted] == ["later"]

    with caplog.at_level(logging.ERROR, logger="minicloud.s3.releases"):
        asyncio.run(scenario())
    assert "bad" in caplog.text


def test_nothing_is_deleted_after_stop() -> None:
    async def scenario() -> None:
        deleter = _Deleter()
        releases = Releases(deleter, lambda digest: False, GRACE, gather=0)
        releases.add(["x", "y"])
        releases.stop()
        assert len(releases) == 0
        await asyncio.sleep(GRACE * 2)
        assert deleter.deleted == []

    asyncio.run(scenario())


def test_a_later_event_loop_gets_a_task_of_its_own() -> None:
    deleter = _Deleter()
    releases = Releases(deleter, lambda digest: False, GRACE, gather=0)

    async def release(digest: str) -> None:
        releases.add([digest])

    first = asyncio.new_event_loop()
    first.run_until_complete(release("first"))
    first.close()  # closed with the queue's task still pending: it never runs again

    async def scenario() -> None:
        releases.add(["second"])
        await asyncio.sleep(GRACE * 3)
        await until(lambda: len(deleter.deleted) >= 2)

    asyncio.run(scenario())
    assert [d for d, _ in deleter.deleted] == ["first", "second"]  # the new loop's task took both
    del first
    gc.collect()  # the abandoned task's coroutine is finalized here, not at some later moment
