"""The engine facade: builds the stores under ``<data-dir>/engine/``, re-adopts containers at start,
stops them at shutdown, and serves the Docker Engine API on ``<data-dir>/docker.sock``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from minicloud.config import Config
from minicloud.engine.containers.attachments import Attachments
from minicloud.engine.containers.exec import ExecManager
from minicloud.engine.containers.health import HealthMonitor
from minicloud.engine.containers.manager import ContainerManager
from minicloud.engine.containers.model import new_id, now_rfc3339
from minicloud.engine.containers.runtime import choose_runtime
from minicloud.engine.content import ContentStore
from minicloud.engine.events import Events
from minicloud.engine.images.pull import Puller
from minicloud.engine.images.registry import Credentials
from minicloud.engine.images.store import ImageStore
from minicloud.engine.network.manager import NetworkManager
from minicloud.engine.snapshots.overlay import OverlaySnapshotter
from minicloud.engine.snapshots.unpack import Unpacker
from minicloud.engine.volumes.store import VolumeStore
from minicloud.engine.workloads import Workloads

log = logging.getLogger("minicloud.engine")


@dataclass(frozen=True, slots=True)
class EngineSettings:
    data_dir: Path
    socket_path: Path
    mirror: str | None = None  # where docker.io references are pulled from
    mirror_credentials: Credentials | None = None  # used there when the client sends none
    runc: str | None = None  # path to runc; found on PATH when None
    runtime: str = ""  # "runc" or "crun"; "" = crun when installed, else runc


class Engine:
    def __init__(self, settings: EngineSettings) -> None:
        self.settings = settings
        root = settings.data_dir / "engine"
        self.root = root
        self.events = Events()
        self.content = ContentStore(root / "content")
        self.images = ImageStore(root / "images", self.content)
        self.snapshots = OverlaySnapshotter(root / "snapshots")
        self.unpacker = Unpacker(self.content, self.snapshots)
        self.puller = Puller(self.content, self.images, self.unpacker, settings.mirror, settings.mirror_credentials)
        self.runc = choose_runtime(root, settings.runc, wanted=settings.runtime)
        log.info("OCI runtime: %s (%s)%s", self.runc.name, self.runc.binary,
                 ", in a mount namespace without the cgroup2 hierarchy" if self.runc.hide_cgroup2 else "")
        self.networks = NetworkManager(root, new_id, now_rfc3339)
        self.volumes = VolumeStore(root / "volumes")
        self.containers = ContainerManager(root / "containers", self.images, self.snapshots, self.unpacker,
                                           self.runc, self.events, Attachments(self.networks, self.volumes))
        self.execs = ExecManager(self.containers)
        self.health = HealthMonitor(self.containers, self.execs, self.events)
        self.workloads = Workloads(self.containers, self.images, self.puller)
        self._server: object | None = None

    @property
    def runc_available(self) -> bool:
        return os.path.exists(self.runc.binary) or shutil.which(self.runc.binary) is not None

    async def commit(self, container_id: str, repo_tag: str | None = None, changes: tuple[str, ...] = (),
                     namespace: str = "docker") -> str:
        """The container's writable layer as a new image (``docker commit``); returns the image id."""
        from minicloud.engine.images.commit import commit_container
        return (await commit_container(self, container_id, repo_tag, changes, namespace=namespace)).id

    async def start(self) -> None:
        from minicloud.engine.dockerapi.server import DockerApiServer

        for key in self.snapshots.list_keys():  # extractions interrupted by a crash
            if key.startswith("extract-"):
                self.snapshots.remove(key)
        from minicloud.engine.build.files import sweep_leftovers
        await asyncio.to_thread(sweep_leftovers, self.root / "build")  # before the snapshots they mount go
        await asyncio.to_thread(self.volumes.sweep)
        await self.networks.start()
        await self.containers.load()
        self.health.start()
        server = DockerApiServer(self)
        await server.start(self.settings.socket_path)
        self._server = server
        log.info("Docker Engine API on unix://%s", self.settings.socket_path)

    async def stop(self) -> None:
        from minicloud.engine.dockerapi.server import DockerApiServer

        if isinstance(self._server, DockerApiServer):
            await self._server.stop()
        await self.health.stop()
        await self.containers.close()
        try:
            await self.networks.stop()
        except Exception:
            log.exception("removing the engine's networking failed")
        with contextlib.suppress(OSError):
            self.settings.socket_path.unlink()


async def start_engine(config: Config, own_registry_keys: tuple[str, str] | None = None) -> Engine | None:
    """Start the engine for ``minicloud up``; a failure is logged and leaves the rest of minicloud up.
    Without a configured mirror, docker.io images come from minicloud's own registry, which the
    engine signs in to with ``own_registry_keys``."""
    own = not config.engine_mirror
    mirror = config.engine_mirror or f"http://{_loopback(config.host)}:{config.port}"
    credentials = Credentials(*own_registry_keys) if own and own_registry_keys else None
    engine = Engine(EngineSettings(data_dir=config.data_dir, socket_path=config.data_dir / "docker.sock",
                                   mirror=mirror, mirror_credentials=credentials, runtime=config.engine_runtime))
    try:
        await engine.start()
    except Exception:
        log.exception("the container engine failed to start")
        await engine.stop()
        return None
    return engine


def _loopback(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
