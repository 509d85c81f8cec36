"""One execution environment: a container of the engine's ``lambda`` namespace running a runtime
client that talks to the Runtime API of its slot.

    starting --first GET /next--> idle <--> busy        (idle ones are frozen after a short delay)
        |                          |         |
        +------ exit / init timeout / invocation timeout / removal ------> dead

The first ``GET /invocation/next`` ends the init phase (its time is the REPORT's Init Duration).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any

from minicloud.engine.workloads import Bind, WorkloadSpec
from minicloud.services.lambda_.execution.http import Request, Response
from minicloud.services.lambda_.execution.invocation import Invocation, error_payload
from minicloud.services.lambda_.execution.output import OutputReader
from minicloud.services.lambda_.execution.slots import Slot
from minicloud.services.lambda_.execution.spec import RUNTIME_API_PORT, RUNTIME_CLIENTS, EnvironmentSpec

log = logging.getLogger("minicloud.lambda")
# Functions run as an unprivileged user, as on AWS (uid 993 "sbx_user1051", gid 990), image functions too.
SANDBOX_USER = "993:990"
NAMESPACE = "lambda"
API_PREFIX = "/2018-06-01/runtime/"
MAX_RESPONSE = 6 * 1024 * 1024


class State(Enum):
    STARTING = "starting"
    IDLE = "idle"
    BUSY = "busy"
    DEAD = "dead"


@dataclass(slots=True)
class Exit:
    code: int
    oom_killed: bool


class Environment:
    def __init__(self, spec: EnvironmentSpec, slot: Slot, workloads: Any, credentials: dict[str, str],
                 endpoint_port: int) -> None:
        self.spec = spec
        self.slot = slot
        self.workloads = workloads
        self.credentials = credentials
        self.endpoint_port = endpoint_port
        self.id = uuid.uuid4().hex
        self.state = State.STARTING
        self.log_stream = f"{datetime.now(UTC):%Y/%m/%d}/[{spec.version}]{self.id}"
        self.container_id = ""
        self.frozen = False
        self.last_used = time.monotonic()
        self.init_duration_ms: float | None = None  # reported once, by the first invocation
        self.init_error: bytes | None = None
        self.output: OutputReader | None = None
        self.pending_log: Any = None  # the last invocation's PendingLog until it is written
        self._queue: asyncio.Queue[Invocation] = asyncio.Queue()
        self._current: Invocation | None = None
        self._ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._exit: asyncio.Future[Exit] = asyncio.get_running_loop().create_future()
        self._started_at = 0.0
        self._watch: asyncio.Task[None] | None = None
        self.lock = asyncio.Lock()  # held across freeze/thaw

    # -- lifecycle ---------------------------------------------------------------------------
    def container_env(self) -> dict[str, str]:
        spec = self.spec
        env = dict(spec.variables)
        env.update({
            "AWS_REGION": spec.region, "AWS_DEFAULT_REGION": spec.region,
            "AWS_LAMBDA_FUNCTION_NAME": spec.function_name, "AWS_LAMBDA_FUNCTION_VERSION": spec.version,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": spec.log_group, "AWS_LAMBDA_LOG_STREAM_NAME": self.log_stream,
            "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{RUNTIME_API_PORT}",
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{self.endpoint_port}",
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}" if spec.runtime else "AWS_Lambda_Image",
            "LAMBDA_TASK_ROOT": "/var/task", "LAMBDA_RUNTIME_DIR": "/var/runtime", "_HANDLER": spec.handler,
            "TZ": ":UTC", "LANG": "en_US.UTF-8",
            "PATH": "/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin",
            "LD_LIBRARY_PATH": "/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:"
                               "/var/task/lib:/opt/lib",
        })
        if spec.runtime.startswith("python"):
            env["PYTHONPATH"] = "/var/runtime"
        if spec.runtime.startswith("nodejs"):
            major = spec.runtime.removeprefix("nodejs").split(".")[0]  # nodejs18.x: as AWS's runtime sets it
            env["NODE_PATH"] = (f"/opt/nodejs/node{major}/node_modules:/opt/nodejs/node_modules:"
                                "/var/runtime/node_modules:/var/runtime:/var/task")
        env.update(self.credentials)
        return env

    async def start(self) -> None:
        spec = self.spec
        entrypoint, command = spec.process()
        binds = [Bind(str(RUNTIME_CLIENTS), "/var/runtime")] if spec.runtime else []
        if spec.code_dir is not None:
            binds.append(Bind(spec.code_dir, "/var/task"))
        if spec.opt_dir is not None:
            binds.append(Bind(spec.opt_dir, "/opt"))  # the layers, read-only as on AWS
        workload = WorkloadSpec(
            namespace=NAMESPACE, name=f"{spec.function_name[:40]}-{self.id[:12]}", image=spec.image,
            entrypoint=entrypoint, command=command, env=self.container_env(),
            working_dir=spec.working_dir or ("/var/task" if spec.runtime else None),
            memory_bytes=spec.memory_mb << 20, pids_limit=1024, netns=str(self.slot.path), binds=tuple(binds),
            labels={"minicloud.lambda.function": spec.function_arn, "minicloud.lambda.version": spec.version},
            stop_signal="SIGKILL",  # a runtime has no shutdown phase (no extensions): stopping is killing
            user=SANDBOX_USER,
        )
        self.slot.handler = self.handle
        self._started_at = time.monotonic()
        container = await self.workloads.create(workload)
        self.container_id = container.id
        self.output = OutputReader(Path(self.workloads.log_path(container)))
        waiter = self.workloads.wait(container.id, NAMESPACE)
        try:
            await self.workloads.start(container.id, NAMESPACE)
        except BaseException:
            waiter.close()
            raise
        self._watch = asyncio.get_running_loop().create_task(self._watch_exit(waiter))

    async def _watch_exit(self, waiter: Any) -> None:
        try:
            container = await waiter
            exit_info = Exit(container.state.exit_code, bool(container.state.oom_killed))
        except Exception as exc:  # the container vanished (removed)
            log.debug("environment %s: %s", self.id, exc)
            exit_info = Exit(-1, False)
        if not self._exit.done():
            self._exit.set_result(exit_info)
        self.state = State.DEAD

    async def wait_ready(self, timeout: float) -> bytes | None:
        """Until the runtime asks for its first invocation; an error document when it never does."""
        waits: set[asyncio.Future[Any]] = {self._ready, self._exit}
        done, _ = await asyncio.wait(waits, timeout=timeout,
                                     return_when=asyncio.FIRST_COMPLETED)
        if self._ready in done:
            self.init_duration_ms = (time.monotonic() - self._started_at) * 1000
            self.state = State.IDLE
            return None
        if self.init_error is not None:
            return self.init_error
        if self._exit in done:
            return self._exit_error("init", self._exit.result())
        return error_payload("init", "Sandbox.Timedout", f"Init phase timed out after {timeout:.2f} seconds")

    async def run(self, invocation: Invocation) -> tuple[bytes, str | None, str]:
        """Hand the invocation to the runtime; (payload, error type, how it ended: ok|error|timeout|exit)."""
        self.state = State.BUSY
        invocation.begin()
        assert invocation.done is not None
        self._queue.put_nowait(invocation)
        waits: set[asyncio.Future[Any]] = {invocation.done, self._exit}
        done, _ = await asyncio.wait(waits, timeout=invocation.timeout,
                                     return_when=asyncio.FIRST_COMPLETED)
        self.last_used = time.monotonic()
        if invocation.done in done:
            payload, error_type = invocation.done.result()
            self._current = None
            self.state = State.IDLE if self.state is State.BUSY else self.state
            return payload, error_type, "error" if error_type else "ok"
        self.state = State.DEAD
        if self._exit in done:
            exit_info = self._exit.result()
            payload = self._exit_error(invocation.request_id, exit_info)
            return payload, json.loads(payload)["errorType"], "exit"
        detail = f"Task timed out after {invocation.timeout:.2f} seconds"
        return error_payload(invocation.request_id, "Sandbox.Timedout", detail), "Sandbox.Timedout", "timeout"

    def _exit_error(self, request_id: str, exit_info: Exit) -> bytes:
        if exit_info.oom_killed or (exit_info.code == 137 and self._memory_exhausted()):
            return error_payload(request_id, "Runtime.OutOfMemory", "Runtime exited with error: signal: killed")
        if exit_info.code > 128:
            return error_payload(request_id, "Runtime.ExitError",
                                 f"Runtime exited with error: signal: {_signal_name(exit_info.code - 128)}")
        return error_payload(request_id, "Runtime.ExitError",
                             f"Runtime exited with error: exit status {exit_info.code}")

    def _memory_exhausted(self) -> bool:
        usage = self.max_memory_bytes()
        return usage is not None and usage >= (self.spec.memory_mb << 20) * 0.95

    def max_memory_bytes(self) -> int | None:
        path = Path(f"/sys/fs/cgroup/memory/minicloud/{self.container_id}/memory.max_usage_in_bytes")
        try:
            return int(path.read_text())
        except (OSError, ValueError):
            return None

    # -- freezing ----------------------------------------------------------------------------
    async def freeze(self) -> None:
        async with self.lock:
            if self.state is State.IDLE and not self.frozen:
                with contextlib.suppress(Exception):
                    await self.workloads.pause(self.container_id, NAMESPACE)
                    self.frozen = True

    async def thaw(self) -> None:
        async with self.lock:
            if self.frozen:
                self.frozen = False
                await self.workloads.unpause(self.container_id, NAMESPACE)

    async def destroy(self) -> bool:
        """Stop and remove the container; True when nothing of it is left in the slot (a slot whose
        container could not be removed must not be handed to another environment)."""
        self.state = State.DEAD
        if self.output is not None:
            self.output.close()
        removed = True
        if self.container_id:
            try:
                await self.workloads.remove(self.container_id, NAMESPACE)
            except Exception:
                log.exception("removing the Lambda container %s failed", self.container_id)
                removed = False
        if self._watch is not None:
            self._watch.cancel()
        if self.slot.handler == self.handle:
            self.slot.handler = None
        return removed

    # -- the Runtime API ---------------------------------------------------------------------
    async def handle(self, request: Request) -> Response:
        path = request.path.split("?", 1)[0]
        if not path.startswith(API_PREFIX):
            return _error(404, "InvalidRequest", "not found")
        rest = path[len(API_PREFIX):]
        if rest == "invocation/next" and request.method == "GET":
            return await self._next()
        if rest == "init/error" and request.method == "POST":
            self.init_error = _normalise_error(request, "init")
            if not self._ready.done():
                self._exit_soon()
            elif self._current is not None:
                self._current.finish(self.init_error, "Runtime.InitError")
            return Response(202, b'{"status":"OK"}', {"Content-Type": "application/json"})
        parts = rest.split("/")
        if len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error") \
                and request.method == "POST":
            return self._complete(parts[1], parts[2], request)
        return _error(404, "InvalidRequest", f"unknown path {path}")

    async def _next(self) -> Response:
        if not self._ready.done():
            self._ready.set_result(None)
        invocation = await self._queue.get()
        self._current = invocation
        headers = {
            "Content-Type": "application/json",
            "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
            "Lambda-Runtime-Deadline-Ms": str(invocation.deadline_ms),
            "Lambda-Runtime-Invoked-Function-Arn": invocation.function_arn,
            "Lambda-Runtime-Trace-Id": invocation.trace_id,
        }
        if invocation.client_context:
            headers["Lambda-Runtime-Client-Context"] = invocation.client_context
        return Response(200, invocation.payload, headers)

    def _complete(self, request_id: str, kind: str, request: Request) -> Response:
        current = self._current
        if current is None or current.request_id != request_id:
            return _error(400, "InvalidRequestID", "Invalid request ID")
        if kind == "response":
            if request.oversized or len(request.body) > MAX_RESPONSE:
                current.finish(error_payload(request_id, "Function.ResponseSizeTooLarge",
                                             f"Response payload size exceeded maximum allowed payload size "
                                             f"({MAX_RESPONSE} bytes)."), "Function.ResponseSizeTooLarge")
                return _error(413, "RequestEntityTooLarge",
                              f"Exceeded maximum allowed payload size ({MAX_RESPONSE} bytes).")
            current.finish(request.body, None)
        else:
            body = _normalise_error(request, request_id)
            current.finish(body, json.loads(body).get("errorType") or "Unhandled")
        return Response(202, b'{"status":"OK"}', {"Content-Type": "application/json"})

    def _exit_soon(self) -> None:
        """After an init error the runtime is expected to exit; make sure it does."""
        async def kill() -> None:
            await asyncio.sleep(0.5)
            if not self._exit.done() and self.container_id:
                with contextlib.suppress(Exception):
                    await self.workloads.kill(self.container_id, NAMESPACE)
        asyncio.get_running_loop().create_task(kill())


def _normalise_error(request: Request, request_id: str) -> bytes:
    """The runtime's error document, as Lambda returns it (errorMessage, errorType, stackTrace)."""
    header_type = request.headers.get("lambda-runtime-function-error-type", "")
    try:
        doc = json.loads(request.body or b"{}")
        if not isinstance(doc, dict):
            raise ValueError
    except ValueError:
        doc = {"errorMessage": request.body.decode(errors="replace"), "errorType": header_type or "Unhandled"}
    if "errorType" not in doc and header_type:
        doc["errorType"] = header_type
    return json.dumps(doc).encode()


def _error(status: int, error_type: str, message: str) -> Response:
    return Response(status, json.dumps({"errorMessage": message, "errorType": error_type}).encode(),
                    {"Content-Type": "application/json"})


def _signal_name(number: int) -> str:
    import signal
    try:
        return {9: "killed", 15: "terminated", 6: "aborted", 11: "segmentation fault"}.get(
            number, signal.Signals(number).name.lower())
    except ValueError:
        return str(number)
