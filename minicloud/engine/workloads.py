"""The engine as minicloud's services use it: EC2 instances, Lambda execution environments, RDS
servers and load balancers are containers in the service's own engine namespace (never shown by
the Docker API), described by a typed ``WorkloadSpec`` rather than a Docker request body.

    spec = WorkloadSpec(namespace="ec2", name="i-0123", image="library/debian:bookworm",
                        command=["/sbin/init"], memory_bytes=512 << 20, nano_cpus=2 * 10**9,
                        netns="/run/minicloud/vpc/i-0123")
    container = await workloads.create(spec)
    await workloads.start(container.id, "ec2")
"""

from __future__ import annotations

import signal
from dataclasses import dataclass, field
from typing import Any

from minicloud.engine.containers.manager import ContainerManager
from minicloud.engine.containers.model import DOCKER, Container
from minicloud.engine.errors import InvalidArgument, NotFound
from minicloud.engine.images.pull import Puller
from minicloud.engine.images.reference import parse
from minicloud.engine.images.store import ImageStore


@dataclass(frozen=True, slots=True)
class Bind:
    source: str  # a host path
    target: str  # where it appears in the container
    read_only: bool = True


@dataclass(frozen=True, slots=True)
class WorkloadSpec:
    namespace: str  # "ec2", "lambda", "rds", "elb": never "docker"
    name: str  # unique in the namespace, e.g. the instance id
    image: str  # a reference the engine knows or can pull (minicloud's registry mirrors docker.io)
    command: list[str] | None = None  # Cmd (the image's when None)
    entrypoint: list[str] | None = None  # Entrypoint (the image's when None)
    env: dict[str, str] = field(default_factory=dict)
    hostname: str | None = None
    user: str | None = None
    working_dir: str | None = None
    memory_bytes: int = 0  # 0: no limit; swap is limited to the same amount (no swap)
    nano_cpus: int = 0  # 10**9 per CPU
    pids_limit: int = 0
    netns: str | None = None  # join this network namespace (made by the service); None: no network
    binds: tuple[Bind, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    restart: str = "no"  # Docker restart policy name: no, always, unless-stopped, on-failure
    open_stdin: bool = False
    cap_add: tuple[str, ...] = ()
    privileged: bool = False
    stop_signal: str | None = None

    def body(self) -> dict[str, Any]:
        """The Docker create request this spec amounts to."""
        if self.namespace == DOCKER:
            raise InvalidArgument("workloads belong to a service's namespace, not the Docker API's")
        config: dict[str, Any] = {
            "Image": self.image,
            "Env": [f"{k}={v}" for k, v in self.env.items()],
            "Labels": dict(self.labels),
            "OpenStdin": self.open_stdin,
            "AttachStdin": False, "AttachStdout": False, "AttachStderr": False, "Tty": False,
        }
        if self.command is not None:
            config["Cmd"] = list(self.command)
        if self.entrypoint is not None:
            config["Entrypoint"] = list(self.entrypoint)
        if self.hostname:
            config["Hostname"] = self.hostname
        if self.user:
            config["User"] = self.user
        if self.working_dir:
            config["WorkingDir"] = self.working_dir
        if self.stop_signal:
            config["StopSignal"] = self.stop_signal
        host: dict[str, Any] = {
            "NetworkMode": f"ns:{self.netns}" if self.netns else "none",
            "Binds": [f"{b.source}:{b.target}:{'ro' if b.read_only else 'rw'}" for b in self.binds],
            "RestartPolicy": {"Name": self.restart, "MaximumRetryCount": 0},
            "Privileged": self.privileged,
            "CapAdd": list(self.cap_add),
        }
        if self.memory_bytes:
            host["Memory"] = self.memory_bytes
            host["MemorySwap"] = self.memory_bytes
        if self.nano_cpus:
            host["NanoCpus"] = self.nano_cpus
        if self.pids_limit:
            host["PidsLimit"] = self.pids_limit
        config["HostConfig"] = host
        return config


class Workloads:
    """Create, run and remove a service's containers; every call names the namespace it acts in."""

    def __init__(self, containers: ContainerManager, images: ImageStore, puller: Puller) -> None:
        self.containers = containers
        self.images = images
        self.puller = puller

    async def ensure_image(self, reference: str) -> None:
        """Pull ``reference`` unless the engine has it already (progress is discarded)."""
        if self.images.lookup(reference) is not None:
            return
        await self.puller.pull(parse(reference), None, lambda _progress: None)
        if self.images.lookup(reference) is None:
            raise NotFound(f"image {reference} could not be pulled")

    async def create(self, spec: WorkloadSpec) -> Container:
        await self.ensure_image(spec.image)
        return await self.containers.create(spec.body(), spec.name, namespace=spec.namespace)

    def find(self, namespace: str, name_or_id: str) -> Container | None:
        try:
            return self.containers.get(name_or_id, namespace)
        except (NotFound, InvalidArgument):
            return None

    def list(self, namespace: str) -> list[Container]:
        return self.containers.in_namespace(namespace)

    async def start(self, container_id: str, namespace: str) -> None:
        await self.containers.start(container_id, namespace=namespace)

    async def stop(self, container_id: str, namespace: str, timeout: int = 10) -> None:
        await self.containers.stop(container_id, timeout, namespace=namespace)

    async def kill(self, container_id: str, namespace: str, sig: int = signal.SIGKILL) -> None:
        await self.containers.kill(container_id, sig, namespace=namespace)

    async def pause(self, container_id: str, namespace: str) -> None:
        """Freeze every process of the container (cgroup freezer)."""
        await self.containers.pause(container_id, namespace=namespace)

    async def unpause(self, container_id: str, namespace: str) -> None:
        await self.containers.unpause(container_id, namespace=namespace)

    async def wait(self, container_id: str, namespace: str) -> Container:
        """Until the container is no longer running."""
        return await self.containers.waiter(container_id, "not-running", namespace=namespace)

    async def remove(self, container_id: str, namespace: str) -> None:
        await self.containers.remove(container_id, force=True, volumes=True, namespace=namespace)

    def log_path(self, container: Container) -> str:
        """The container's json-file log (one JSON object per line: log, stream, time)."""
        return str(self.containers.files(container).log)
