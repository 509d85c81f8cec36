from __future__ import annotations

import asyncio
from pathlib import Path

from minicloud.controllers.runner import ControllerRunner
from minicloud.storage.metadata.db import Database
from tests.support.polling import until


class Counting:
    def __init__(self, name: str, fail_times: int = 0) -> None:
        self.name = name
        self.interval = 0.01
        self.calls = 0
        self.fail_times = fail_times

    async def reconcile(self) -> None:
        self.calls += 1
        if self.calls <= self.fail_times:
            raise RuntimeError("not yet")


def _db(tmp_path: Path) -> Database:
    db = Database(f"sqlite:///{tmp_path / 'm.sqlite3'}")
    db.migrate()
    return db


def test_runs_only_one_leader_and_recovers_from_failures(tmp_path: Path) -> None:
    db = _db(tmp_path)

    async def scenario() -> tuple[Counting, Counting, ControllerRunner, ControllerRunner]:
        ok, flaky = Counting("ok"), Counting("flaky", fail_times=2)
        first = ControllerRunner(db, [ok, flaky])
        other = Counting("other")
        second = ControllerRunner(db, [other], lease_ttl=0.6)
        await first.start()
        await asyncio.sleep(0.3)
        await second.start()
        await asyncio.sleep(0.5)  # (the second runner has had time to try, and fail, to lead)
        await until(lambda: ok.calls > 3 and flaky.calls >= 3 and first.states["flaky"].failures == 0)
        assert first.is_leader and not second.is_leader
        assert ok.calls > 3 and flaky.calls >= 3 and first.states["flaky"].failures == 0
        assert other.calls == 0
        await first.stop()  # releases the lease: the other runner takes over
        await until(lambda: second.is_leader and other.calls > 0)
        assert second.is_leader and other.calls > 0
        await second.stop()
        return ok, flaky, first, second

    asyncio.run(scenario())
    db.close()


def test_backoff_grows_while_failing(tmp_path: Path) -> None:
    db = _db(tmp_path)
    runner = ControllerRunner(db, [Counting("x")])
    state = runner.states["x"]
    delays = []
    for failures in range(0, 12):
        state.failures = failures
        delays.append(runner._delay(state))
    assert delays[0] == 0.01 and delays[1] == 0.02 and delays == sorted(delays)
    assert max(delays) <= runner.max_backoff
    db.close()
