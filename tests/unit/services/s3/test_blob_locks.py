"""A blob's lock excludes other holders in this process and in other processes."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import time
from collections.abc import Iterator
from multiprocessing.synchronize import Event
from pathlib import Path

from minicloud.services.s3.blob_locks import BlobLocks, ReadMarks

DIGEST = "sha256:" + "ab" * 32


def _hold_in_child(path: str, held: Event, release: Event) -> None:
    async def main() -> None:
        locks = BlobLocks(Path(path))
        async with locks.lock(DIGEST):
            held.set()
            release.wait(10)
    asyncio.run(main())


@contextlib.contextmanager
def _held_by_another_process(path: Path) -> Iterator[Event]:
    """A forked child holds ``DIGEST``'s stripe until the yielded event is set (at the end at the latest)."""
    context = multiprocessing.get_context("fork")
    held, release = context.Event(), context.Event()
    child = context.Process(target=_hold_in_child, args=(str(path), held, release))
    child.start()
    try:
        assert held.wait(10)
        yield release
    finally:
        release.set()
        child.join(10)


def test_another_process_waits_for_the_stripe(tmp_path: Path) -> None:
    with _held_by_another_process(tmp_path / "locks") as release:
        locks = BlobLocks(tmp_path / "locks")

        async def take() -> float:
            started = time.monotonic()
            async with locks.lock(DIGEST):
                return time.monotonic() - started

        async def scenario() -> float:
            waiting = asyncio.ensure_future(take())
            await asyncio.sleep(0.3)
            assert not waiting.done()  # the child holds it
            release.set()
            return await asyncio.wait_for(waiting, 10)

        assert asyncio.run(scenario()) >= 0.3
        locks.close()


def test_holders_in_one_process_share_the_stripe(tmp_path: Path) -> None:
    locks = BlobLocks(tmp_path / "locks")
    order: list[str] = []

    async def hold(name: str, digest: str, pause: float) -> None:
        async with locks.lock(digest):
            order.append(f"{name}+")
            await asyncio.sleep(pause)
            order.append(f"{name}-")

    async def scenario() -> None:
        # The same digest: one after the other. Two digests: side by side, even on one stripe.
        await asyncio.gather(hold("a", DIGEST, 0.05), hold("b", DIGEST, 0.0))
        assert order == ["a+", "a-", "b+", "b-"]
        order.clear()
        other = next(d for d in (f"sha256:{i:064x}" for i in range(100_000))
                     if locks.lock(d)._stripe == locks.lock(DIGEST)._stripe and d != DIGEST)
        await asyncio.gather(hold("a", DIGEST, 0.05), hold("c", other, 0.0))
        assert order == ["a+", "c+", "c-", "a-"]
        assert locks._held == {}  # every stripe given back

    asyncio.run(scenario())
    locks.close()


def _read_in_child(path: str, held: Event, release: Event) -> None:
    marks = ReadMarks(Path(path))
    mark = marks.hold([DIGEST, "sha256:" + "cd" * 32])
    held.set()
    release.wait(10)
    mark.close()


def test_a_long_read_in_another_process_is_seen_until_it_ends(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    held, release = context.Event(), context.Event()
    marks = ReadMarks(tmp_path / "reads")
    assert not marks.anyone_reading(DIGEST)
    child = context.Process(target=_read_in_child, args=(str(tmp_path / "reads"), held, release))
    child.start()
    try:
        assert held.wait(10)
        assert marks.anyone_reading(DIGEST)
        assert marks.anyone_reading("sha256:" + "cd" * 32)
        release.set()
        child.join(10)
        assert not marks.anyone_reading(DIGEST)
    finally:
        release.set()
        child.join(10)
    # A read of this process is seen by this process's own check too (each read: its own description).
    mark = marks.hold([DIGEST])
    assert marks.anyone_reading(DIGEST)
    mark.close()
    assert not marks.anyone_reading(DIGEST)
    marks.close()


def test_two_holders_waiting_for_the_same_stripe_both_count(tmp_path: Path) -> None:
    """Two digests of one stripe wait while another process holds it: when it is free, both hold it
    in turn or together, and the stripe is given back only when the last one leaves."""
    with _held_by_another_process(tmp_path / "locks") as release:
        locks = BlobLocks(tmp_path / "locks")
        stripe = locks.lock(DIGEST)._stripe
        other = next(d for d in (f"sha256:{i:064x}" for i in range(100_000))
                     if locks.lock(d)._stripe == stripe and d != DIGEST)

        async def hold(digest: str, pause: float) -> None:
            async with locks.lock(digest):
                await asyncio.sleep(pause)

        async def scenario() -> None:
            both = asyncio.gather(hold(DIGEST, 0.05), hold(other, 0.2))
            await asyncio.sleep(0.05)  # both wait for the child's stripe
            release.set()
            await asyncio.wait_for(both, 10)
            assert locks._held == {}

        asyncio.run(scenario())
        locks.close()


def test_lock_all_takes_every_digest_and_gives_every_stripe_back(tmp_path: Path) -> None:
    locks = BlobLocks(tmp_path / "locks")
    digests = [DIGEST] + ["sha256:" + f"{i:064x}" for i in range(299)]

    async def scenario() -> None:
        async with locks.lock_all(digests + digests[:5]):  # (a digest named twice is taken once)
            assert all(locks.lock(d)._local.locked() for d in digests)
            assert sum(locks._held.values()) == len(digests)
            waiting = asyncio.ensure_future(_take(locks, digests[7]))
            await asyncio.sleep(0.05)
            assert not waiting.done()  # a holder of one of them waits for the batch
        await asyncio.wait_for(waiting, 5)
        assert not any(locks._held.values())

    asyncio.run(scenario())
    with _held_by_another_process(tmp_path / "locks"):  # DIGEST's stripe went back to the file too
        pass
    locks.close()


async def _take(locks: BlobLocks, digest: str) -> None:
    async with locks.lock(digest):
        pass
