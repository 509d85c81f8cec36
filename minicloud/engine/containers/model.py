"""Container records: what Docker's create asked for, and the state the engine observed.

Each container has a directory ``<engine>/containers/<id>/`` holding ``container.json`` (this
record, written atomically), the OCI bundle (``config.json``, ``rootfs/``), the json-file log and
the supervisor's files (``shim.json``, ``shim.pid``, ``init.pid``, ``exit.json``).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import random
import secrets
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from minicloud.engine.containers.state import Status, check
from minicloud.storage.durable import fsync_dir, fsync_file, staged_file

ZERO_TIME = "0001-01-01T00:00:00Z"
# Engine namespaces keep apart who a container belongs to: the Docker API's user ("docker") or a
# minicloud service ("ec2", "lambda", ...). Each sees and names only its own.
DOCKER = "docker"


def name_key(namespace: str, name: str) -> str:
    """Where a container's name is reserved: Docker names never contain "/", so a service's names
    (``ec2/i-0123``) can never collide with the user's."""
    return name if namespace == DOCKER else f"{namespace}/{name}"


def now_rfc3339() -> str:
    ns = time.time_ns()
    return datetime.fromtimestamp(ns // 1_000_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + \
        f"{ns % 1_000_000_000:09d}Z"


def new_id() -> str:
    return secrets.token_hex(32)


_LEFT = ("admiring", "brave", "calm", "clever", "eager", "focused", "gallant", "happy", "jolly",
         "keen", "lucid", "nifty", "quirky", "serene", "tender", "vibrant", "wizardly", "zealous")
_RIGHT = ("babbage", "curie", "darwin", "euler", "faraday", "galois", "hopper", "hypatia", "kepler",
          "lovelace", "meitner", "noether", "pascal", "ritchie", "shannon", "thompson", "turing", "wu")


def random_name() -> str:
    return f"{random.choice(_LEFT)}_{random.choice(_RIGHT)}"


@dataclass(slots=True)
class State:
    status: Status = Status.CREATED
    pid: int = 0
    shim_pid: int = 0
    exit_code: int = 0
    error: str = ""
    oom_killed: bool = False
    started_at: str = ZERO_TIME
    finished_at: str = ZERO_TIME


@dataclass(slots=True)
class Container:
    id: str
    name: str  # without the leading slash
    created: str
    image_id: str
    image_name: str  # as the client gave it
    config: dict[str, Any]  # Docker's Config, merged with the image's
    host_config: dict[str, Any]
    state: State = field(default_factory=State)
    restart_count: int = 0
    stopped_by_user: bool = False
    runs: int = 0  # how many times it was started (attach and wait count runs)
    endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)  # by network id: network.model.Endpoint
    mounts: list[dict[str, Any]] = field(default_factory=list)  # volumes.mounts.MountSpec, resolved at create
    ports: dict[str, list[dict[str, str]]] = field(default_factory=dict)  # published now, as Docker shows them
    namespace: str = DOCKER
    health: dict[str, Any] | None = None  # Docker's State.Health while a healthcheck runs (containers/health.py)

    @property
    def tty(self) -> bool:
        return bool(self.config.get("Tty"))

    def transition(self, target: Status) -> None:
        check(self.state.status, target, self.id[:12])
        self.state.status = target

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["state"]["status"] = self.state.status.value
        return doc

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Container:
        raw = dict(raw)
        state = dict(raw.pop("state"))
        state["status"] = Status(state["status"])
        return cls(state=State(**state), **raw)


_SAVING = [threading.Lock() for _ in range(64)]  # by record: saves of one container one at a time
_ORDER = itertools.count(1)  # the order in which records were taken (on the event loop)
_WRITTEN: dict[Path, int] = {}  # by record: the place of the one on disk (under its _SAVING lock)


@dataclass(frozen=True, slots=True)
class Record:
    """A container's record as it was when taken (``ContainerFiles.take``), to be written later."""

    order: int
    data: bytes


class ContainerFiles:
    """Paths of one container's directory."""

    def __init__(self, root: Path, container_id: str) -> None:
        self.dir = root / container_id
        self.record = self.dir / "container.json"
        self.removed = self.dir / "removed.json"  # the record, once the container is removed
        self.bundle = self.dir
        self.rootfs = self.dir / "rootfs"
        self.log = self.dir / f"{container_id}-json.log"
        self.shim_config = self.dir / "shim.json"
        self.shim_pid = self.dir / "shim.pid"
        self.init_pid = self.dir / "init.pid"
        self.exit = self.dir / "exit.json"
        self.resize = self.dir / "resize"

    def _saving(self) -> threading.Lock:
        return _SAVING[hash(self.record) % len(_SAVING)]

    def save(self, container: Container, *, durable: bool = True) -> None:
        """Write the record atomically; ``durable`` also survives a crash of the host. A start or
        an exit need not be durable: after a host crash no container runs, whichever of the
        records is found (one found running gets exit code 255)."""
        self.write(self.take(container), durable=durable)

    @staticmethod
    def take(container: Container) -> Record:
        """The record as the container is now: taken on the event loop, which changes containers
        (a worker thread serialising one while the loop changes it could fail, or mix states)."""
        return Record(next(_ORDER), json.dumps(container.to_json()).encode())

    def write(self, record: Record, *, durable: bool = True) -> None:
        """Blocking. Write ``record`` unless one taken later is on disk already. Saves of one
        container overlap (worker threads: an exit, a health status, an update) and finish in any
        order: each writes a file of its own (fsynced outside the lock, which the event loop takes
        too), renamed into place one at a time, and the latest taken stays."""
        with (staged_file(self.record, record.data, durable=durable) as staged,
              self._saving()):
            stale = _WRITTEN.get(self.record, 0) > record.order
            if not stale:
                os.replace(staged, self.record)
                _WRITTEN[self.record] = record.order
        if not durable:
            return
        if stale:  # what is on disk is newer, maybe not durable; this caller needs it to last
            with contextlib.suppress(FileNotFoundError):  # (or the container was removed)
                fsync_file(self.record)
        fsync_dir(self.dir)

    def retire(self) -> None:
        """Blocking (one rename). The record becomes ``removed`` (a removal's commit point), and no
        save still under way writes it back."""
        with self._saving():
            _WRITTEN[self.record] = sys.maxsize
            with contextlib.suppress(FileNotFoundError):
                os.rename(self.record, self.removed)

    def forget(self) -> None:
        """The record's place in the order of saves is dropped (its directory is gone)."""
        with self._saving():
            _WRITTEN.pop(self.record, None)
