"""The execution service: warm environments per function version, concurrency limits, timeouts,
freezing idle environments, reaping them, and the START/END/REPORT log lines.

All of it lives in memory: an invocation on a warm environment touches no database.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import math
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from minicloud.services.lambda_.execution.environment import NAMESPACE, Environment, State
from minicloud.services.lambda_.execution.invocation import Invocation, Outcome, error_payload
from minicloud.services.lambda_.execution.slots import SlotPool
from minicloud.services.lambda_.execution.spec import EnvironmentSpec

log = logging.getLogger("minicloud.lambda")
INIT_TIMEOUT = 10.0  # seconds, as Lambda's init phase
TAIL_BYTES = 4096
LOG_SETTLE = 0.05  # seconds after an invocation when its output is written to its log stream

LogEvent = tuple[int, str]  # (epoch milliseconds, message)
LogSink = Callable[[str, str, str, str, list[LogEvent]], None]  # account, region, group, stream, events
CredentialSource = Callable[[EnvironmentSpec], Awaitable[dict[str, str]]]


@dataclass(frozen=True, slots=True)
class ExecutionSettings:
    idle_timeout: float = 300.0  # an idle environment is removed after this long
    freeze_delay: float = 0.5  # an idle environment is frozen (cgroup freezer) after this long
    account_concurrency: int = 1000  # concurrent executions per account
    spare_namespaces: int = 2


@dataclass(slots=True)
class PendingLog:
    """An invocation's log lines, written out once its output has surely been copied by the engine."""

    spec: EnvironmentSpec
    started: float  # epoch seconds
    request_id: str
    output: list[str] = field(default_factory=list)
    trailer: list[str] = field(default_factory=list)  # END, REPORT (and a timeout line)

    def lines(self) -> list[str]:
        return [f"START RequestId: {self.request_id} Version: {self.spec.version}", *self.output, *self.trailer]


class Throttled(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ExecutionService:
    def __init__(self, workloads: Any, slots: SlotPool, settings: ExecutionSettings, endpoint_port: int,
                 credentials: CredentialSource, sink: LogSink) -> None:
        self.workloads = workloads
        self.slots = slots
        self.settings = settings
        self.endpoint_port = endpoint_port
        self.credentials = credentials
        self.sink = sink
        self._idle: dict[str, list[Environment]] = defaultdict(list)
        self._all: set[Environment] = set()
        self._busy_by_function: dict[str, int] = defaultdict(int)
        self._busy_by_account: dict[str, int] = defaultdict(int)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._reaper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.sweep()
        await self.slots.start()
        self._reaper = asyncio.get_running_loop().create_task(self._reap_forever())

    async def close(self) -> None:
        """At shutdown, after the engine has stopped every container: forget the environments
        (their containers are removed by ``sweep`` at the next start) and remove the namespaces."""
        if self._reaper is not None:
            self._reaper.cancel()
        for task in list(self._tasks):
            task.cancel()
        for env in self._all:
            self._flush_log(env)
        self._all.clear()
        self._idle.clear()
        await self.slots.close()

    async def sweep(self) -> None:
        """Remove what a previous run left in the engine's ``lambda`` namespace."""
        for container in self.workloads.list(NAMESPACE):
            try:
                await self.workloads.remove(container.id, NAMESPACE)
            except Exception:
                log.exception("removing a stale execution environment failed")

    def busy(self, function_arn: str) -> int:
        return self._busy_by_function.get(function_arn, 0)

    # -- invoking ---------------------------------------------------------------------------------
    async def invoke(self, spec: EnvironmentSpec, invocation: Invocation, tail: bool = False) -> Outcome:
        self._admit(spec)
        self._busy_by_function[spec.function_arn] += 1
        self._busy_by_account[spec.account_id] += 1
        try:
            return await self._invoke(spec, invocation, tail)
        finally:
            self._busy_by_function[spec.function_arn] -= 1
            self._busy_by_account[spec.account_id] -= 1

    def _admit(self, spec: EnvironmentSpec) -> None:
        reserved = spec.reserved_concurrency
        if reserved is not None and self._busy_by_function.get(spec.function_arn, 0) >= reserved:
            raise Throttled("ReservedFunctionConcurrentInvocationLimitExceeded")
        if self._busy_by_account.get(spec.account_id, 0) >= self.settings.account_concurrency:
            raise Throttled("ConcurrentInvocationLimitExceeded")

    async def _invoke(self, spec: EnvironmentSpec, invocation: Invocation, tail: bool) -> Outcome:
        env, init_failure = await self._environment(spec)
        self._flush_log(env)  # the previous invocation's output has surely arrived by now
        record = PendingLog(spec, time.time(), invocation.request_id)
        if init_failure is not None:
            payload = init_failure.replace(b'"RequestId: init ', f'"RequestId: {invocation.request_id} '.encode())
            error_type: str | None = "Runtime.InitError"
            ended = "init"
            duration = 0.0
        else:
            payload, error_type, ended = await env.run(invocation)
            duration = (time.monotonic() - invocation.started) * 1000
        if ended == "timeout":
            record.trailer.append(f"{_iso(time.time())} {invocation.request_id} Task timed out after "
                                  f"{invocation.timeout:.2f} seconds")
        record.trailer.append(f"END RequestId: {invocation.request_id}")
        record.trailer.append(self._report(env, invocation, duration, ended))
        env.init_duration_ms = None
        env.pending_log = record
        log_tail = ""
        if tail:  # the caller waits for its log: give the engine a moment to copy the last output
            await asyncio.sleep(0.005)
            self._collect(env)
            log_tail = _tail("\n".join(record.lines()) + "\n")
        await self._after(env, ended)
        function_error = "Unhandled" if error_type is not None else None
        return Outcome(payload, function_error, log_tail, spec.version)

    def _collect(self, env: Environment) -> None:
        record = env.pending_log
        if record is not None and env.output is not None:
            record.output.extend(env.output.read())

    def _flush_log(self, env: Environment) -> None:
        record = env.pending_log
        if record is None:
            return
        self._collect(env)
        env.pending_log = None
        stamp = int(record.started * 1000)
        end_stamp = max(stamp, int(time.time() * 1000))
        events = [(stamp, line) for line in record.lines()[:-len(record.trailer)]]
        events += [(end_stamp, line) for line in record.trailer]
        try:
            self.sink(record.spec.account_id, record.spec.region, record.spec.log_group, env.log_stream, events)
        except Exception:
            log.exception("writing the function's log failed")

    def _schedule_log_flush(self, env: Environment) -> None:
        record = env.pending_log

        def later() -> None:
            if env.pending_log is record:
                self._flush_log(env)
        asyncio.get_running_loop().call_later(LOG_SETTLE, later)  # a timer, not a task: cheap per invocation

    async def _environment(self, spec: EnvironmentSpec) -> tuple[Environment, bytes | None]:
        idle = self._idle.get(spec.pool_key)
        while idle:
            env = idle.pop()
            if env.state is not State.IDLE:
                continue
            env.state = State.BUSY  # before thawing: a pending freeze must see it taken
            try:
                await env.thaw()
            except Exception:
                log.exception("thawing an environment failed")
                env.state = State.DEAD
                self._spawn(self._destroy(env))
                continue
            return env, None
        slot = await self.slots.acquire()
        credentials = await self.credentials(spec)
        env = Environment(spec, slot, self.workloads, credentials, self.endpoint_port)
        self._all.add(env)
        try:
            await env.start()
        except Exception as exc:
            log.exception("starting an execution environment failed")
            await self._destroy(env)
            return env, error_payload("init", "Runtime.InitError", f"cannot start the environment: {exc}")
        failure = await env.wait_ready(INIT_TIMEOUT)
        return env, failure

    def _report(self, env: Environment, invocation: Invocation, duration: float, ended: str) -> str:
        spec = env.spec
        used = env.max_memory_bytes()
        used_mb = max(1, math.ceil(used / (1 << 20))) if used else 0
        if ended == "timeout":
            duration = invocation.timeout * 1000
        parts = [f"REPORT RequestId: {invocation.request_id}", f"Duration: {duration:.2f} ms",
                 f"Billed Duration: {max(1, math.ceil(duration))} ms", f"Memory Size: {spec.memory_mb} MB",
                 f"Max Memory Used: {used_mb} MB"]
        if env.init_duration_ms is not None:
            parts.append(f"Init Duration: {env.init_duration_ms:.2f} ms")
        if ended == "timeout":
            parts.append("Status: timeout")
        elif ended in ("exit", "init"):
            parts.append("Status: error")
        return "\t".join(parts) + "\t"

    async def _after(self, env: Environment, ended: str) -> None:
        self._schedule_log_flush(env)
        if env.state is State.IDLE and ended in ("ok", "error"):
            self._idle[env.spec.pool_key].append(env)
            self._schedule_freeze(env)
        else:
            self._spawn(self._destroy(env))

    def _schedule_freeze(self, env: Environment) -> None:
        used = env.last_used

        def later() -> None:
            if env.last_used == used and env.state is State.IDLE:
                self._spawn(env.freeze())
        asyncio.get_running_loop().call_later(self.settings.freeze_delay, later)

    async def _destroy(self, env: Environment) -> None:
        if env not in self._all:
            return
        self._all.discard(env)
        if env.state is not State.DEAD:
            await asyncio.sleep(LOG_SETTLE)
        self._flush_log(env)
        removed = await env.destroy()
        idle = self._idle.get(env.spec.pool_key)
        if idle and env in idle:
            idle.remove(env)
        if removed:
            self.slots.release(env.slot)
        else:  # its container may still run there: the slot is never reused
            self.slots.discard(env.slot)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- housekeeping -----------------------------------------------------------------------------
    async def retire(self, predicate: Callable[[EnvironmentSpec], bool]) -> None:
        """Remove the idle environments whose spec matches (a function updated or deleted)."""
        for key, envs in list(self._idle.items()):
            for env in list(envs):
                if predicate(env.spec):
                    envs.remove(env)
                    await self._destroy(env)
            if not envs:
                self._idle.pop(key, None)

    async def _reap_forever(self) -> None:
        period = max(0.2, min(5.0, self.settings.idle_timeout / 4))
        while True:
            await asyncio.sleep(period)
            cutoff = time.monotonic() - self.settings.idle_timeout
            with contextlib.suppress(Exception):
                await self.retire_idle_before(cutoff)

    async def retire_idle_before(self, cutoff: float) -> None:
        for envs in list(self._idle.values()):
            for env in list(envs):
                if env.last_used < cutoff and env.state is State.IDLE:
                    envs.remove(env)
                    await self._destroy(env)

    def environments(self) -> list[Environment]:
        return list(self._all)


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _tail(text: str) -> str:
    data = text.encode()[-TAIL_BYTES:]
    return base64.b64encode(data).decode()
