"""Healthchecks (``HEALTHCHECK``, ``docker run --health-*``), as Docker runs them: the test is an
exec in the container every ``Interval`` (``StartInterval`` during ``StartPeriod``), failed when it
exits non-zero or outlives ``Timeout``; ``Retries`` failures in a row make the container
unhealthy (failures inside the start period do not count), one success makes it healthy. The
last five results are kept in ``State.Health``; a change of status is a ``health_status`` event.

The monitor follows the engine's events (a container's start and die), so the lifecycle code
knows nothing about it; containers already running when the engine starts are picked up too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from minicloud.engine.containers.model import Container, now_rfc3339
from minicloud.engine.containers.state import Status
from minicloud.engine.errors import EngineError

if TYPE_CHECKING:
    from minicloud.engine.containers.exec import ExecManager
    from minicloud.engine.containers.manager import ContainerManager
    from minicloud.engine.events import Events

log = logging.getLogger("minicloud.engine.health")

SECOND = 1_000_000_000  # Docker's durations are in nanoseconds
DEFAULTS = {"Interval": 30 * SECOND, "Timeout": 30 * SECOND, "StartPeriod": 0, "StartInterval": 5 * SECOND}
DEFAULT_RETRIES = 3
KEEP_RESULTS = 5
MAX_OUTPUT = 4096
STARTING, HEALTHY, UNHEALTHY = "starting", "healthy", "unhealthy"


def probe_command(healthcheck: dict[str, Any] | None) -> list[str] | None:
    """The exec's command line, or None when there is no check (none set, or ``NONE``)."""
    test = (healthcheck or {}).get("Test") or []
    if not test or test[0] == "NONE":
        return None
    if test[0] == "CMD":
        return list(test[1:]) or None
    if test[0] == "CMD-SHELL":
        return ["/bin/sh", "-c", " ".join(test[1:])]
    return list(test)  # Docker takes a bare list as CMD


def _seconds(healthcheck: dict[str, Any], key: str) -> float:
    value = int(healthcheck.get(key) or 0)
    return (value if value > 0 else DEFAULTS[key]) / SECOND


class HealthMonitor:
    def __init__(self, containers: ContainerManager, execs: ExecManager, events: Events) -> None:
        self.containers = containers
        self.execs = execs
        self.events = events
        self._probes: dict[str, asyncio.Task[None]] = {}
        self._follower: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._follower = asyncio.get_running_loop().create_task(self._follow())
        for container in list(self.containers.containers.values()):
            if container.state.status in (Status.RUNNING, Status.PAUSED):
                self._watch(container)

    async def stop(self) -> None:
        tasks = [t for t in [self._follower, *self._probes.values()] if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._probes.clear()

    async def _follow(self) -> None:
        async for event in self.events.subscribe():
            if event.get("Type") != "container":
                continue
            action, container_id = event.get("Action"), event["Actor"]["ID"]
            if action == "start":
                container = self.containers.containers.get(container_id)
                if container is not None:
                    self._watch(container)
            elif action in ("die", "destroy"):
                task = self._probes.pop(container_id, None)
                if task is not None:
                    task.cancel()

    def _watch(self, container: Container) -> None:
        command = probe_command(container.config.get("Healthcheck"))
        if command is None or container.id in self._probes:
            return
        container.health = {"Status": STARTING, "FailingStreak": 0, "Log": []}
        task = asyncio.get_running_loop().create_task(self._probe_loop(container, command))
        self._probes[container.id] = task
        task.add_done_callback(lambda _: self._probes.pop(container.id, None) if self._probes.get(
            container.id) is task else None)

    async def _probe_loop(self, container: Container, command: list[str]) -> None:
        check = container.config.get("Healthcheck") or {}
        interval, timeout = _seconds(check, "Interval"), _seconds(check, "Timeout")
        start_period, start_interval = _seconds(check, "StartPeriod"), _seconds(check, "StartInterval")
        retries = int(check.get("Retries") or 0) or DEFAULT_RETRIES
        loop = asyncio.get_running_loop()
        started = loop.time()
        while True:
            in_start_period = loop.time() - started < start_period
            health = container.health or {}
            await asyncio.sleep(start_interval if in_start_period and health.get("Status") == STARTING else interval)
            if container.state.status is Status.PAUSED:
                continue
            if container.state.status is not Status.RUNNING:
                return
            result = await self._probe(container, command, timeout)
            in_start_period = loop.time() - started < start_period
            await self._record(container, result, retries, in_start_period)

    async def _probe(self, container: Container, command: list[str], timeout: float) -> dict[str, Any]:
        begun = now_rfc3339()
        try:
            exec_ = self.execs.create(container.id, {"Cmd": command, "AttachStdout": True, "AttachStderr": True})
            handle = await self.execs.start(exec_.id)
        except EngineError as exc:
            return {"Start": begun, "End": now_rfc3339(), "ExitCode": -1, "Output": str(exc)}
        proc = handle.proc

        async def output() -> bytes:
            assert proc.stdout is not None and proc.stderr is not None
            out, err = await asyncio.gather(proc.stdout.read(), proc.stderr.read())
            await exec_.done.wait()
            return out + err

        try:
            text = await asyncio.wait_for(output(), timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            return {"Start": begun, "End": now_rfc3339(), "ExitCode": -1,
                    "Output": f"Health check exceeded timeout ({timeout:g}s)"}
        finally:
            self.execs.execs.pop(exec_.id, None)  # a probe is not one of the container's ExecIDs
        code = exec_.exit_code if exec_.exit_code is not None else -1
        return {"Start": begun, "End": now_rfc3339(), "ExitCode": code,
                "Output": text[:MAX_OUTPUT].decode(errors="replace")}

    async def _record(self, container: Container, result: dict[str, Any], retries: int,
                      in_start_period: bool) -> None:
        health = dict(container.health or {"Status": STARTING, "FailingStreak": 0, "Log": []})
        before = health["Status"]
        health["Log"] = [*health.get("Log", []), result][-KEEP_RESULTS:]
        if result["ExitCode"] == 0:
            health["Status"], health["FailingStreak"] = HEALTHY, 0
        elif not (in_start_period and before == STARTING):
            health["FailingStreak"] = int(health.get("FailingStreak", 0)) + 1
            if health["FailingStreak"] >= retries:
                health["Status"] = UNHEALTHY
        container.health = health
        if health["Status"] != before:
            with contextlib.suppress(Exception):
                await self.containers.save(container)
            self.events.publish("container", f"health_status: {health['Status']}", container.id,
                                {"name": container.name, "image": container.image_name})
