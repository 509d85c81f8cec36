"""Container lifecycle: create, start, stop, kill, wait, pause, restart, remove, and re-adoption of
running containers after minicloud restarts. Every state change goes through ``Container.transition``
and is saved before it is announced.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import shutil
import signal
from collections.abc import Awaitable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from minicloud.engine.containers.attachments import Attachments, volume_users
from minicloud.engine.containers.bundle import prepare
from minicloud.engine.containers.model import (
    DOCKER,
    Container,
    ContainerFiles,
    name_key,
    new_id,
    now_rfc3339,
    random_name,
)
from minicloud.engine.containers.requests import merge_config, parse_signal, validate_host_config
from minicloud.engine.containers.runtime import (
    ExitWatch,
    Runc,
    Zygote,
    process_alive,
    signal_process,
    swap_accounting,
)
from minicloud.engine.containers.state import Status
from minicloud.engine.errors import Conflict, InvalidArgument, NotFound, NotModified
from minicloud.engine.events import Events
from minicloud.engine.images.reference import parse
from minicloud.engine.images.store import ImageStore
from minicloud.engine.network.model import network_mode_is_path
from minicloud.engine.snapshots.mounts import unmount
from minicloud.engine.snapshots.overlay import OverlaySnapshotter
from minicloud.engine.snapshots.unpack import Unpacker
from minicloud.storage.durable import fsync_file

log = logging.getLogger("minicloud.engine.containers")
_NAME = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
CGROUP_PARENT = "/minicloud"
SHUTDOWN_GRACE = 5.0


@dataclass
class Handle:
    """The in-memory side of a container: watchers, signal handle, stdin, waiters."""

    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    watch: ExitWatch | None = None
    init_pidfd: int = -1
    stdin: int = -1  # write end of the container's stdin pipe
    exits: int = 0
    removed: bool = False
    cleanup: asyncio.Task[None] | None = None  # `runc delete` of the last run, off the exit's path

    async def cleaned(self) -> None:
        if self.cleanup is not None:
            with contextlib.suppress(Exception):
                await self.cleanup
            self.cleanup = None

    async def nap(self, seconds: float) -> None:
        """Sleep, but wake up at the next state change (an exit ends attach streams at once)."""
        async with self.changed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), seconds)

    def close_stdin(self) -> None:
        if self.stdin >= 0:
            os.close(self.stdin)
            self.stdin = -1

    def release(self) -> None:
        if self.watch is not None:
            self.watch.close()
            self.watch = None
        if self.init_pidfd >= 0:
            os.close(self.init_pidfd)
            self.init_pidfd = -1
        self.close_stdin()


class ContainerManager:
    def __init__(self, root: Path, images: ImageStore, snapshots: OverlaySnapshotter, unpacker: Unpacker,
                 runc: Runc, events: Events, attachments: Attachments) -> None:
        self.root = root
        self.attachments = attachments
        root.mkdir(parents=True, exist_ok=True)
        self.images = images
        self.snapshots = snapshots
        self.unpacker = unpacker
        self.runc = runc
        self.events = events
        self.containers: dict[str, Container] = {}
        self.handles: dict[str, Handle] = {}
        self.names: dict[str, str] = {}
        self._swap = swap_accounting()
        self.zygote = Zygote(root.parent / "zygote.log")
        self.trash = root.parent / "trash"
        self.trash.mkdir(exist_ok=True)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._cleanups: set[asyncio.Task[None]] = set()
        self._closing = False

    # -- lookup ---------------------------------------------------------------------------------
    def files(self, container: Container | str) -> ContainerFiles:
        return ContainerFiles(self.root, container if isinstance(container, str) else container.id)

    def get(self, ref: str, namespace: str = DOCKER) -> Container:
        """The container ``ref`` (id, name or id prefix) names in ``namespace``: the Docker API sees
        only the user's own containers; EC2, Lambda and the others see only theirs."""
        ref = ref.removeprefix("/")
        found = self.containers.get(ref)
        if found is not None and found.namespace == namespace:
            return found
        key = name_key(namespace, ref)
        if self.names.get(key):
            return self.containers[self.names[key]]
        matches = [c for c in self.containers.values()
                   if c.id.startswith(ref) and c.namespace == namespace] if ref else []
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise InvalidArgument(f"multiple IDs found with provided prefix: {ref}")
        raise NotFound(f"No such container: {ref}")

    def in_namespace(self, namespace: str = DOCKER) -> list[Container]:
        return [c for c in self.containers.values() if c.namespace == namespace]

    def handle(self, container: Container) -> Handle:
        return self.handles[container.id]

    # -- create ---------------------------------------------------------------------------------
    async def create(self, body: dict[str, Any], name: str | None, namespace: str = DOCKER) -> Container:
        self.zygote.warm()  # (a container is coming: its supervisor's zygote boots meanwhile)
        image_name = body.get("Image") or ""
        if not image_name:
            raise InvalidArgument("config.Image is required")
        image = self.images.lookup(image_name)
        if image is None:
            try:
                shown = parse(image_name).familiar()
            except InvalidArgument:
                shown = image_name
            raise NotFound(f"No such image: {shown}")
        if namespace == DOCKER and network_mode_is_path(body.get("HostConfig") or {}):
            raise InvalidArgument(f"invalid network mode: {body['HostConfig']['NetworkMode']}")
        name = self._claim_name(name, namespace)
        container_id = new_id()
        try:
            image_config = self.images.config(image).get("config") or {}
            config = merge_config(body, image_config)
            if not config.get("Entrypoint") and not config.get("Cmd"):
                raise InvalidArgument("no command specified")
            host_config = dict(body.get("HostConfig") or {})
            validate_host_config(host_config)
            await self.attachments.reserve(container_id, name, body, config, host_config, self.get)
            mounts = await self.attachments.create_volumes(config, host_config)
            chain = await self.unpacker.unpack([layer.digest for layer in image.layers], image.diff_ids)
            container = Container(id=container_id, name=name, created=now_rfc3339(), image_id=image.id,
                                  image_name=image_name, config=config, host_config=host_config,
                                  endpoints=self.attachments.endpoints(container_id), mounts=mounts,
                                  namespace=namespace)
            await asyncio.to_thread(self._lay_down, container, chain)
        except BaseException:
            self.attachments.abandon(container_id)
            self.names.pop(name_key(namespace, name), None)
            if self.snapshots.exists(container_id):
                await asyncio.to_thread(self.snapshots.remove, container_id)
            raise
        self.containers[container.id] = container
        self.events.owners[container.id] = namespace
        self.handles[container.id] = Handle()
        self.names[name_key(namespace, name)] = container.id
        self.events.publish("container", "create", container.id, {"name": name, "image": image_name})
        return container

    def _lay_down(self, container: Container, chain: str | None) -> None:
        """Blocking. The writable layer and the record, both written first and then made durable
        (the second fsync finds much of its journal commit done: ~2.2 ms here against ~3.2 ms for
        two write-then-fsync in turn)."""
        self.snapshots.prepare(container.id, chain, durable=False)
        files = self.files(container)
        files.dir.mkdir(parents=True, exist_ok=True)
        files.save(container, durable=False)
        self.snapshots.sync()
        fsync_file(files.record)

    def _claim_name(self, name: str | None, namespace: str = DOCKER) -> str:
        if not name:
            for _ in range(100):
                candidate = random_name()
                if name_key(namespace, candidate) not in self.names:
                    name = candidate
                    break
            else:
                name = f"{random_name()}_{new_id()[:6]}"
        if not _NAME.match(name):
            raise InvalidArgument(f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
        name = name.removeprefix("/")
        key = name_key(namespace, name)
        if key in self.names:
            raise Conflict(f'Conflict. The container name "/{name}" is already in use by container '
                           f'"{self.names[key]}". You have to remove (or rename) that container to be able '
                           f"to reuse that name.")
        self.names[key] = ""  # reserved until created
        return name

    # -- start ----------------------------------------------------------------------------------
    async def start(self, ref: str, console_size: tuple[int, int] | None = None, namespace: str = DOCKER) -> None:
        container = self.get(ref, namespace)
        handle = self.handle(container)
        async with handle.lock:
            if container.state.status is Status.RUNNING:
                raise NotModified("container already started")
            container.stopped_by_user = False
            try:
                await self._launch(container, handle, console_size)
                return
            except Exception as exc:
                error = exc
        if container.host_config.get("AutoRemove"):  # as Docker does: --rm also when the start fails
            with contextlib.suppress(NotFound, Conflict):
                await self.remove(container.id, force=True, namespace=container.namespace)
        raise error

    async def _launch(self, container: Container, handle: Handle, console_size: tuple[int, int] | None) -> None:
        from minicloud.engine.containers.state import check

        check(container.state.status, Status.RUNNING, container.id[:12])
        await handle.cleaned()  # the previous run's runtime state must be gone before a new run
        files = self.files(container)
        mounts = self.snapshots.mounts(container.id)
        stdin_r = -1
        try:
            volumes = self.attachments.volume_plan(container)
            network, connecting = self.attachments.connect(container, self.get, self.files)
            with_stdin = bool(container.config.get("OpenStdin"))

            def bundle() -> None:  # one trip to a worker thread for the whole bundle
                prepare(container, files, mounts, swap_accounting=self._swap, console_size=console_size,
                        network=network, volumes=volumes,
                        finish=lambda doc: self.runc.use_compiled_seccomp(container.id, doc))
                self.runc.write_shim_config(files, container.id, tty=container.tty, stdin=with_stdin,
                                            cgroup=f"{CGROUP_PARENT}/{container.id}")

            await _all_or_raise(connecting, asyncio.to_thread(bundle))  # the namespace made meanwhile
            container.ports = await self.attachments.publish(container)
            if with_stdin:
                stdin_r, handle.stdin = os.pipe()
                os.set_blocking(handle.stdin, False)
            started = await self.zygote.spawn(files, stdin_r if stdin_r >= 0 else None, self.runc.name)
            self.runc.learn_compiled_seccomp(container.id)  # before the exit's clean-up deletes it
        except Exception as exc:
            self.runc.forget_compiling(container.id)
            handle.close_stdin()
            await asyncio.to_thread(unmount, files.rootfs)
            await self.attachments.disconnect(container)
            container.ports = {}
            container.state.error = str(exc)
            reason = str(exc).lower()  # runc's messages and crun's (which keep strerror's capitals)
            container.state.exit_code = 127 if "not found" in reason or "no such file" in reason else 126 \
                if "permission denied" in reason else 128
            await self.save(container)
            handle.exits += 1  # ends attach streams and next-exit waits, as Docker's failed start does
            async with handle.changed:
                handle.changed.notify_all()
            raise
        finally:
            if stdin_r >= 0:
                os.close(stdin_r)
        container.transition(Status.RUNNING)
        container.runs += 1
        container.state.pid, container.state.shim_pid = started.init_pid, started.shim_pid
        container.state.started_at, container.state.error = now_rfc3339(), ""
        container.state.exit_code, container.state.oom_killed = 0, False
        # durable only when a restart policy must find it after a crash of the host; otherwise a
        # few KiB written and renamed, no fsync: done here, as a worker thread's wake-up (several ms
        # on a loaded machine) would delay the start's answer and the exit's handling more
        if _restart_policy(container) != "no":
            await self.save(container, durable=True)
        else:
            files.save(container, durable=False)
        self._watch(container, handle)
        self.events.publish("container", "start", container.id, {"name": container.name,
                                                                  "image": container.image_name})
        async with handle.changed:
            handle.changed.notify_all()

    def _watch(self, container: Container, handle: Handle) -> None:
        with contextlib.suppress(ProcessLookupError):
            handle.init_pidfd = os.pidfd_open(container.state.pid)
        handle.watch = ExitWatch(container.state.shim_pid, lambda: self._spawn(self._exited(container)))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _exited(self, container: Container) -> None:
        handle = self.handle(container)
        handle.watch = None
        files = self.files(container)
        try:
            report = json.loads(files.exit.read_text())
        except (OSError, ValueError):
            report = {"code": 255, "finished_at": now_rfc3339(), "oom_killed": False}
            container.state.error = "the container's supervisor exited without recording an exit status"
        # off the exit's path (a next run, a removal and a copy wait for it): the rootfs's unmount
        # (overlayfs syncs its whole upper filesystem then), `runc delete` and the network's teardown
        handle.cleanup = self._background(_together(asyncio.to_thread(unmount, files.rootfs),
                                                    self.runc.delete(container.id),
                                                    self.attachments.disconnect(container)))
        container.ports = {}
        handle.release()
        state = container.state
        if state.status is not Status.EXITED:
            container.transition(Status.EXITED)
        state.exit_code, state.finished_at = int(report["code"]), report["finished_at"]
        state.oom_killed, state.pid, state.shim_pid = bool(report.get("oom_killed")), 0, 0
        auto_remove = bool(container.host_config.get("AutoRemove")) and not self._closing
        if not auto_remove:  # removed just below: a crash before that finds it running and removes it
            await self.save(container, durable=False)
        handle.exits += 1
        if state.oom_killed:
            self.events.publish("container", "oom", container.id, {"name": container.name})
        self.events.publish("container", "die", container.id,
                            {"name": container.name, "exitCode": str(state.exit_code)})
        async with handle.changed:
            handle.changed.notify_all()
        if self._closing:
            return
        if auto_remove:  # gone from the API at once; its files go just after (``settled`` waits)
            with contextlib.suppress(NotFound, Conflict):
                await self.remove(container.id, force=True, volumes=True, namespace=container.namespace,
                                  settle=False)
        elif self._should_restart(container):
            container.transition(Status.RESTARTING)  # Docker's state during the back-off
            container.restart_count += 1
            await self.save(container)
            self._spawn(self._restart_later(container))

    def _should_restart(self, container: Container) -> bool:
        policy = container.host_config.get("RestartPolicy") or {}
        kind = _restart_policy(container)
        if container.stopped_by_user or kind == "no":
            return False
        if kind == "on-failure":
            limit = int(policy.get("MaximumRetryCount") or 0)
            return container.state.exit_code != 0 and (limit == 0 or container.restart_count < limit)
        return kind in ("always", "unless-stopped")

    async def _restart_later(self, container: Container) -> None:
        delay = min(0.1 * 2 ** max(0, container.restart_count - 1), 60.0)
        await asyncio.sleep(delay)
        handle = self.handles.get(container.id)
        if handle is None or self._closing:
            return
        async with handle.lock:
            if container.state.status is Status.RESTARTING and not container.stopped_by_user:
                try:
                    await self._launch(container, handle, None)
                except Exception:
                    log.exception("restarting container %s failed", container.id[:12])
                    container.transition(Status.EXITED)
                    await self.save(container)

    # -- signals --------------------------------------------------------------------------------
    async def kill(self, ref: str, sig: int = signal.SIGKILL, namespace: str = DOCKER) -> None:
        container = self.get(ref, namespace)
        if container.state.status not in (Status.RUNNING, Status.PAUSED):
            raise Conflict(f"Cannot kill container: {ref}: Container {container.id} is not running")
        await self._signal(container, sig)

    async def _signal(self, container: Container, sig: int) -> None:
        handle = self.handle(container)
        if handle.init_pidfd >= 0:
            signal_process(handle.init_pidfd, sig)
        if container.state.status is Status.PAUSED and sig == signal.SIGKILL:
            await self.runc.resume(container.id)  # a frozen process takes its SIGKILL when thawed
            if container.state.status is Status.PAUSED:  # it may have exited before the resume returned
                container.transition(Status.RUNNING)
        self.events.publish("container", "kill", container.id, {"name": container.name, "signal": str(sig)})

    async def stop(self, ref: str, timeout: int | None = None, sig: int | None = None,
                   namespace: str = DOCKER) -> None:
        container = self.get(ref, namespace)
        if container.state.status is Status.RESTARTING:  # stopping ends the restart loop
            container.stopped_by_user = True
            container.transition(Status.EXITED)
            await self.save(container)
            return
        if container.state.status not in (Status.RUNNING, Status.PAUSED):
            raise NotModified("container already stopped")
        container.stopped_by_user = True
        if sig is None:
            sig = parse_signal(container.config.get("StopSignal") or "SIGTERM")
        if timeout is None:
            timeout = container.config.get("StopTimeout")
            timeout = 10 if timeout is None else int(timeout)
        await self._stop(container, sig, timeout)
        self.events.publish("container", "stop", container.id, {"name": container.name})

    async def _stop(self, container: Container, sig: int, timeout: float) -> None:
        handle = self.handle(container)
        exits = handle.exits
        if sig != signal.SIGKILL and container.state.status is Status.PAUSED:
            await self._signal(container, sig)
            await self.runc.resume(container.id)
            if container.state.status is Status.PAUSED:  # it may have exited before the resume returned
                container.transition(Status.RUNNING)
        elif sig != signal.SIGKILL:
            await self._signal(container, sig)
        if sig == signal.SIGKILL or not await self._wait_exit(handle, exits, timeout if timeout >= 0 else None):
            await self._signal(container, signal.SIGKILL)
            await self._wait_exit(handle, exits, None)

    async def _wait_exit(self, handle: Handle, exits: int, timeout: float | None) -> bool:
        async with handle.changed:
            try:
                await asyncio.wait_for(handle.changed.wait_for(lambda: handle.exits > exits), timeout)
                return True
            except TimeoutError:
                return False

    async def restart(self, ref: str, timeout: int | None = None, namespace: str = DOCKER) -> None:
        container = self.get(ref, namespace)
        if container.state.status in (Status.RUNNING, Status.PAUSED):
            await self.stop(ref, timeout, namespace=namespace)
        handle = self.handle(container)
        async with handle.lock:
            container.stopped_by_user = False
            await self._launch(container, handle, None)
        self.events.publish("container", "restart", container.id, {"name": container.name})

    async def pause(self, ref: str, namespace: str = DOCKER) -> None:
        container = self.get(ref, namespace)
        if container.state.status is not Status.RUNNING:
            container.transition(Status.PAUSED)  # raises the right conflict
        await self.runc.pause(container.id)
        if container.state.status is not Status.RUNNING:  # it exited meanwhile: nothing is paused
            return
        container.transition(Status.PAUSED)
        await self.save(container)
        self.events.publish("container", "pause", container.id, {"name": container.name})

    async def unpause(self, ref: str, namespace: str = DOCKER) -> None:
        container = self.get(ref, namespace)
        if container.state.status is not Status.PAUSED:
            raise Conflict(f"Container {container.id} is not paused")
        await self.runc.resume(container.id)
        if container.state.status is not Status.PAUSED:  # it exited (or was killed) meanwhile
            return
        container.transition(Status.RUNNING)
        await self.save(container)
        self.events.publish("container", "unpause", container.id, {"name": container.name})

    # -- wait and remove ------------------------------------------------------------------------
    def waiter(self, ref: str, condition: str = "not-running",
               namespace: str = DOCKER) -> Coroutine[Any, Any, Container]:
        """A wait registered now (``next-exit`` counts exits from this moment), awaited later."""
        container = self.get(ref, namespace)
        handle = self.handle(container)
        exits = handle.exits

        def done() -> bool:
            if condition == "removed":
                return handle.removed
            if condition == "next-exit":
                return handle.exits > exits or handle.removed
            return container.state.status not in (Status.RUNNING, Status.PAUSED, Status.RESTARTING)

        async def wait() -> Container:
            async with handle.changed:
                await handle.changed.wait_for(done)
            return container

        return wait()

    async def remove(self, ref: str, force: bool = False, volumes: bool = False, namespace: str = DOCKER,
                     settle: bool = True) -> None:
        """Remove the container; with ``volumes`` (``rm -v``, ``--rm``) its anonymous volumes too.
        The container is gone once its record is renamed (the commit point); its directory and
        writable layer are deleted after, at once unless ``settle`` is False (``--rm``: then
        ``settled`` waits for them)."""
        container = self.get(ref, namespace)
        handle = self.handle(container)
        if container.state.status in (Status.RUNNING, Status.PAUSED):
            if not force:
                container.transition(Status.REMOVING)  # raises Docker's conflict
            container.stopped_by_user = True
            await self._stop(container, signal.SIGKILL, 0)
            if handle.removed or status_of(container) is Status.REMOVING:  # --rm got there first
                async with handle.changed:
                    await handle.changed.wait_for(lambda: handle.removed)
                return
        container.transition(Status.REMOVING)
        files = self.files(container)
        files.retire()  # one rename, no data: done here rather than in a thread
        discard = self._background(self._discard_later(container, handle))
        self.containers.pop(container.id, None)
        self.handles.pop(container.id, None)
        key = name_key(container.namespace, container.name)
        if self.names.get(key) == container.id:
            del self.names[key]
        await self.attachments.release(container, volumes, self.volume_users)
        handle.release()
        handle.removed = True
        self.events.publish("container", "destroy", container.id, {"name": container.name})
        async with handle.changed:
            handle.changed.notify_all()
        if settle:
            await discard

    async def _discard_later(self, container: Container, handle: Handle) -> None:
        await handle.cleaned()  # the rootfs is unmounted before its directories are deleted
        try:
            await asyncio.to_thread(self._discard, container)
        except Exception as exc:  # its leftovers are swept at the next start-up
            log.warning("deleting the files of removed container %s failed: %s", container.id[:12], exc)
            raise

    async def settled(self) -> None:
        """Wait for the work left running after exits and removals (unmounts, deletions)."""
        while pending := [t for t in self._cleanups if not t.done()]:
            await asyncio.gather(*pending, return_exceptions=True)

    def _background(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(work)
        self._cleanups.add(task)
        task.add_done_callback(self._cleanups.discard)
        task.add_done_callback(_retrieved)  # reported where it failed; awaited only by some callers
        return task

    def _discard(self, container: Container) -> None:
        """Blocking. The record was renamed (the commit point): after a crash the container is
        gone, and ``load`` sweeps what is left of it (its directory, the trash, its snapshot)."""
        files = self.files(container)
        unmount(files.rootfs)
        trash = self.trash / f"{container.id}-{new_id()[:8]}"
        with contextlib.suppress(FileNotFoundError):
            os.rename(files.dir, trash)
        files.forget()
        if self.snapshots.exists(container.id):
            self.snapshots.remove(container.id)
        shutil.rmtree(trash, ignore_errors=True)

    def volume_users(self, name: str) -> list[str]:
        return volume_users(list(self.containers.values()), name)

    async def save(self, container: Container, *, durable: bool = True) -> None:
        """Write the container's record from a worker thread, as it is now (taken here, on the loop)."""
        files = self.files(container)
        await asyncio.to_thread(files.write, files.take(container), durable=durable)

    # -- start-up and shut-down -----------------------------------------------------------------
    async def load(self) -> None:
        """Read every container back; re-adopt running ones whose supervisor is still alive."""
        await asyncio.to_thread(self._sweep)
        # The supervisors' zygote is warmed by the first container's create, or now when there are
        # containers already: an engine nobody uses keeps no warm interpreter (~13 MiB) around.
        if any(self.root.glob("*/container.json")):
            self.zygote.warm()
        for path in sorted(self.root.glob("*/container.json")):
            try:
                container = Container.from_json(json.loads(path.read_text()))
            except (OSError, ValueError, TypeError) as exc:
                log.warning("skipping unreadable container record %s: %s", path, exc)
                continue
            self.containers[container.id] = container
            self.events.owners[container.id] = container.namespace
            self.handles[container.id] = Handle()
            self.names[name_key(container.namespace, container.name)] = container.id
            self.attachments.networks.register(container.id, container.name, container.endpoints)
            await self._adopt(container)
        await self.attachments.networks.sweep()
        for container in list(self.containers.values()):
            policy = (container.host_config.get("RestartPolicy") or {}).get("Name") or "no"
            if container.state.status is Status.EXITED and not container.stopped_by_user and \
                    policy in ("always", "unless-stopped"):
                container.transition(Status.RESTARTING)
                self._spawn(self._restart_later(container))

    def _sweep(self) -> None:
        """What a crash in the middle of a removal left: trash, and writable layers nobody owns."""
        for entry in self.trash.iterdir():
            unmount(entry / "rootfs")
            shutil.rmtree(entry, ignore_errors=True)
        for removed in self.root.glob("*/removed.json"):
            if not (removed.parent / "container.json").exists():
                unmount(removed.parent / "rootfs")
                shutil.rmtree(removed.parent, ignore_errors=True)
        known = {path.parent.name for path in self.root.glob("*/container.json")}
        for key in self.snapshots.list_keys():
            if self.snapshots.stat(key).kind == "active" and not key.startswith("extract-") and key not in known:
                self.snapshots.remove(key)

    async def _adopt(self, container: Container) -> None:
        handle = self.handle(container)
        status = container.state.status
        if status is Status.REMOVING:
            container.state.status = Status.DEAD
            await self.remove(container.id, force=True, namespace=container.namespace)
        elif status in (Status.RUNNING, Status.PAUSED) and process_alive(container.state.shim_pid, "shim.py"):
            await self.attachments.readopt(container)
            self._watch(container, handle)
        elif status in (Status.RUNNING, Status.PAUSED):
            await self._exited(container)
        elif status is Status.RESTARTING:  # stopped during a back-off: the policy decides below
            container.state.status = Status.EXITED
            await asyncio.to_thread(unmount, self.files(container).rootfs)
        else:
            await asyncio.to_thread(unmount, self.files(container).rootfs)

    async def close(self) -> None:
        """Stop running containers (restart policies bring them back at the next start-up)."""
        self._closing = True
        running = [c for c in self.containers.values() if c.state.status in (Status.RUNNING, Status.PAUSED)]
        await asyncio.gather(*(self._stop(c, signal.SIGTERM, SHUTDOWN_GRACE) for c in running),
                             return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.zygote.close()  # it exits at once when its socket closes
        await self.settled()
        for handle in self.handles.values():
            handle.release()


def _retrieved(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()


def _restart_policy(container: Container) -> str:
    return str((container.host_config.get("RestartPolicy") or {}).get("Name") or "no")


def status_of(container: Container) -> Status:
    """The current status (a call, so that type narrowing from before an ``await`` does not stick)."""
    return container.state.status


async def _all_or_raise(*work: Awaitable[None]) -> None:
    """Await all of ``work`` (none left running), then raise the first failure."""
    results = await asyncio.gather(*work, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result


async def _together(*work: Awaitable[None]) -> None:
    results = await asyncio.gather(*work, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            log.warning("cleaning up after a container failed: %s", result)
