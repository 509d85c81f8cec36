"""Hijacked connections: ``/containers/{id}/attach`` and ``/exec/{id}/start``, plus exec create
and inspect.

After ``101 UPGRADED`` the connection carries the container's output (Docker's multiplexed
frames, or raw bytes for a TTY) one way and the client's stdin the other; the client's half-close
ends stdin. Attach output follows the json-file log from the moment of attaching until the run
that was attached to exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import TYPE_CHECKING

from minicloud.engine.containers import logs as logfile
from minicloud.engine.containers.exec import ExecProcess
from minicloud.engine.containers.model import Container
from minicloud.engine.containers.state import Status
from minicloud.engine.dockerapi.http import Hijack, Request, Response, json_response
from minicloud.engine.dockerapi.views import require_body
from minicloud.engine.errors import Conflict, InvalidArgument

if TYPE_CHECKING:
    from minicloud.engine.dockerapi.server import Route
    from minicloud.engine.service import Engine

RAW = "application/vnd.docker.raw-stream"
MULTIPLEXED = "application/vnd.docker.multiplexed-stream"


async def attach(engine: Engine, request: Request) -> Hijack:
    manager = engine.containers
    container = manager.get(request.params["id"])
    if container.state.status is Status.PAUSED:
        raise Conflict("You cannot attach to a paused container, unpause it first")
    if request.flag("logs"):
        raise InvalidArgument("attach with logs=1 is not available yet in minicloud's engine")
    want_in, want_out, want_err = request.flag("stdin"), request.flag("stdout"), request.flag("stderr")
    handle = manager.handle(container)
    running = container.state.status is Status.RUNNING
    runs, exits = container.runs, handle.exits
    path = manager.files(container).log
    log = logfile.open_for_attach(path)
    offset = log.tell()

    def attached_run_active() -> bool:
        if handle.removed:
            return False
        if running:
            return handle.exits == exits
        return container.runs == runs or handle.exits == exits

    async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        stdin_task = None
        if want_in and container.config.get("OpenStdin"):
            stdin_task = asyncio.create_task(_pump_stdin(engine, container, reader))
        try:
            async for entry in logfile.follow(path, offset, attached_run_active, handle.nap, log):
                if (entry.stream == logfile.STDOUT and not want_out) or \
                        (entry.stream == logfile.STDERR and not want_err):
                    continue
                writer.write(logfile.render(entry, tty=container.tty, timestamps=False))
                await writer.drain()
        finally:
            if stdin_task is not None:
                stdin_task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await stdin_task
            with contextlib.suppress(Exception):
                writer.write_eof()
                await writer.drain()

    return Hijack(run, RAW if container.tty else MULTIPLEXED)


async def _pump_stdin(engine: Engine, container: Container, reader: asyncio.StreamReader) -> None:
    handle = engine.containers.handle(container)
    while True:
        data = await reader.read(32 * 1024)
        if not data:
            break
        if handle.stdin < 0:
            async with handle.changed:  # attached before start: the pipe exists once it starts
                await handle.changed.wait_for(lambda: handle.stdin >= 0 or handle.removed or
                                              container.state.status is Status.EXITED)
            if handle.stdin < 0:
                return
        view = memoryview(data)
        while view:
            try:
                written = os.write(handle.stdin, view)
            except BlockingIOError:
                await asyncio.sleep(0.01)
                continue
            except OSError:
                return
            view = view[written:]
    if container.config.get("StdinOnce"):
        handle.close_stdin()


async def exec_create(engine: Engine, request: Request) -> Response:
    body = require_body(await request.json())
    exec_ = engine.execs.create(request.params["id"], body)
    return json_response({"Id": exec_.id}, 201)


async def exec_inspect(engine: Engine, request: Request) -> Response:
    exec_ = engine.execs.get(request.params["id"])
    return json_response({
        "ID": exec_.id, "Running": exec_.running, "ExitCode": exec_.exit_code, "ContainerID": exec_.container_id,
        "OpenStdin": exec_.attach_stdin, "OpenStdout": exec_.attach_stdout, "OpenStderr": exec_.attach_stderr,
        "CanRemove": not exec_.running, "DetachKeys": "", "Pid": exec_.pid,
        "ProcessConfig": {"tty": exec_.tty, "entrypoint": exec_.cmd[0], "arguments": exec_.cmd[1:],
                          "privileged": False, "user": exec_.user},
    })


async def exec_start(engine: Engine, request: Request) -> Response | Hijack:
    body = require_body(await request.json() or {})
    exec_id = request.params["id"]
    if body.get("Detach"):
        await engine.execs.start(exec_id, detach=True)
        return Response(200)
    size = body.get("ConsoleSize") or []
    console = (int(size[0]), int(size[1])) if len(size) == 2 and size[0] and size[1] else None
    process = await engine.execs.start(exec_id, console_size=console)
    if process.master >= 0:
        return Hijack(lambda reader, writer: _pump_terminal(process, reader, writer), RAW)
    if process.error:  # on a terminal, and runc could not start it: say why, as runc would have
        return Hijack(lambda reader, writer: _report_failure(process, process.error, writer), RAW)
    proc = process.proc

    async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async def copy_out(source: asyncio.StreamReader | None, stream: int) -> None:
            if source is None:
                return
            while data := await source.read(32 * 1024):
                writer.write(logfile.frame(stream, data))
                await writer.drain()

        async def copy_in() -> None:
            if proc.stdin is None:
                return
            try:
                while data := await reader.read(32 * 1024):
                    proc.stdin.write(data)
                    await proc.stdin.drain()
            finally:  # also when cancelled (the process ended first): its pipe is closed now
                proc.stdin.close()

        feeder = asyncio.create_task(copy_in())
        try:
            await asyncio.gather(copy_out(proc.stdout, logfile.STDOUT), copy_out(proc.stderr, logfile.STDERR))
            await proc.wait()
        finally:
            await _finish(feeder, writer)

    return Hijack(run, MULTIPLEXED)


async def _pump_terminal(process: ExecProcess, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Raw bytes between the connection and the terminal's master side, until the process exits
    (the master then reads EIO)."""
    loop = asyncio.get_running_loop()
    master = process.master
    output: asyncio.Queue[bytes] = asyncio.Queue()

    def readable() -> None:
        try:
            data = os.read(master, 32 * 1024)
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(master)
        output.put_nowait(data)

    async def copy_in() -> None:
        while data := await reader.read(32 * 1024):
            view = memoryview(data)
            while view:
                try:
                    view = view[os.write(master, view):]
                except BlockingIOError:
                    await asyncio.sleep(0.01)
                except OSError:
                    return

    os.set_blocking(master, False)
    loop.add_reader(master, readable)
    feeder = asyncio.create_task(copy_in())
    try:
        while data := await output.get():
            writer.write(data)
            await writer.drain()
        await process.proc.wait()
    finally:
        with contextlib.suppress(Exception):
            loop.remove_reader(master)
        process.close()
        await _finish(feeder, writer)


async def _report_failure(process: ExecProcess, error: str, writer: asyncio.StreamWriter) -> None:
    try:
        writer.write(error.encode() + b"\r\n")
        await writer.drain()
        await process.proc.wait()
    finally:
        with contextlib.suppress(Exception):
            writer.write_eof()
            await writer.drain()


async def _finish(feeder: asyncio.Task[None], writer: asyncio.StreamWriter) -> None:
    feeder.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await feeder
    with contextlib.suppress(Exception):
        writer.write_eof()
        await writer.drain()


async def exec_resize(engine: Engine, request: Request) -> Response:
    engine.execs.resize(request.params["id"], request.int_arg("h", 0) or 0, request.int_arg("w", 0) or 0)
    return Response(200)


ROUTES: list[Route] = [
    ("POST", r"/containers/(?P<id>[^/]+)/attach", attach),
    ("POST", r"/containers/(?P<id>[^/]+)/exec", exec_create),
    ("POST", r"/exec/(?P<id>[^/]+)/start", exec_start),
    ("GET", r"/exec/(?P<id>[^/]+)/json", exec_inspect),
    ("POST", r"/exec/(?P<id>[^/]+)/resize", exec_resize),
]
