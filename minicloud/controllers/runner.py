"""Reconcile loops: each controller makes actual state match desired state, again and again.

A controller has a ``name``, an ``interval`` and ``async reconcile()``. The runner calls it every
``interval`` seconds (or sooner when ``wake(name)`` is called), backs off exponentially while it
fails, and runs controllers only while this process holds the leader lease, so that with several
API servers on one metadata store exactly one of them reconciles.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

import sqlalchemy as sa

from minicloud.storage.metadata.db import Database
from minicloud.storage.metadata.schema import leases

log = logging.getLogger("minicloud.controllers")

LEADER_LEASE = "controllers"


class Controller(Protocol):
    name: str
    interval: float

    async def reconcile(self) -> None: ...


@dataclass
class ControllerState:
    controller: Controller
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    failures: int = 0
    last_error: str | None = None
    last_run: datetime | None = None
    runs: int = 0


class LeaderLease:
    """A row in ``leases`` that one holder renews; others take it over once it has expired."""

    def __init__(self, db: Database, name: str = LEADER_LEASE, ttl: float = 15.0) -> None:
        self.db = db
        self.name = name
        self.ttl = ttl
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._valid_until = 0.0  # monotonic time until which the lease is surely still ours

    def held(self) -> bool:
        """True while the lease is ours by this process's own clock: a process stalled past the
        lease's end stops reconciling even before its renewal task gets to run again."""
        return time.monotonic() < self._valid_until

    def _try_acquire(self, conn: sa.Connection) -> bool:
        now = datetime.now(UTC)
        expires = now + timedelta(seconds=self.ttl)
        taken = conn.execute(
            leases.update()
            .where(leases.c.name == self.name,
                   sa.or_(leases.c.holder == self.holder, leases.c.expires_at < now))
            .values(holder=self.holder, expires_at=expires)
        ).rowcount
        if taken:
            return True
        if conn.execute(sa.select(leases.c.name).where(leases.c.name == self.name)).first() is None:
            conn.execute(leases.insert().values(name=self.name, holder=self.holder, expires_at=expires))
            return True
        return False

    async def acquire(self) -> bool:
        started = time.monotonic()
        try:
            acquired = await self.db.write(self._try_acquire)
        except sa.exc.IntegrityError:
            acquired = False
        self._valid_until = started + self.ttl if acquired else 0.0
        return acquired

    async def release(self) -> None:
        self._valid_until = 0.0
        await self.db.write(lambda conn: conn.execute(
            leases.delete().where(leases.c.name == self.name, leases.c.holder == self.holder)))


class ControllerRunner:
    max_backoff = 60.0

    def __init__(self, db: Database, controllers: Sequence[Controller], lease_ttl: float = 15.0) -> None:
        self.lease = LeaderLease(db, ttl=lease_ttl)
        self.states = {c.name: ControllerState(c) for c in controllers}
        self.is_leader = False
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()

    def wake(self, name: str) -> None:
        state = self.states.get(name)
        if state is not None:
            state.wake.set()

    async def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._lead(), name="controllers-leader"))
        for state in self.states.values():
            self._tasks.append(asyncio.create_task(self._loop(state), name=f"controller-{state.controller.name}"))

    async def stop(self) -> None:
        self._stopping.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self.is_leader:
            try:
                await self.lease.release()
            except Exception:  # the store may already be gone; the lease expires by itself
                log.warning("could not release the controllers lease", exc_info=True)
        self.is_leader = False

    async def _lead(self) -> None:
        while not self._stopping.is_set():
            try:
                self.is_leader = await self.lease.acquire()
            except Exception:
                log.warning("leader lease renewal failed", exc_info=True)
                self.is_leader = False
            if self.is_leader:
                for state in self.states.values():
                    if state.runs == 0:
                        state.wake.set()
            await self._sleep(self.lease.ttl / 3)

    async def _sleep(self, seconds: float, wake: asyncio.Event | None = None) -> None:
        waiters = [asyncio.ensure_future(self._stopping.wait())]
        if wake is not None:
            waiters.append(asyncio.ensure_future(wake.wait()))
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    def _delay(self, state: ControllerState) -> float:
        if state.failures == 0:
            return state.controller.interval
        return float(min(self.max_backoff, state.controller.interval * 2 ** min(state.failures, 10)))

    async def _loop(self, state: ControllerState) -> None:
        while not self._stopping.is_set():
            if self.is_leader and self.lease.held():
                state.wake.clear()
                try:
                    await state.controller.reconcile()
                    state.failures = 0
                    state.last_error = None
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    state.failures += 1
                    state.last_error = f"{type(exc).__name__}: {exc}"
                    log.warning("controller %s failed (%d in a row)", state.controller.name,
                                state.failures, exc_info=True)
                state.runs += 1
                state.last_run = datetime.now(UTC)
                await self._sleep(self._delay(state), state.wake)
            else:
                await self._sleep(1.0, state.wake)

    def health(self) -> dict[str, object]:
        return {
            name: {"runs": s.runs, "failures": s.failures, "last_error": s.last_error,
                   "leader": self.is_leader}
            for name, s in self.states.items()
        }
