"""Named volumes of the ``local`` driver: ``<engine>/volumes/<name>/_data`` (what containers
mount) beside ``volume.json`` (written atomically). Whether a volume is in use is the containers'
business: callers pass who uses it.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from minicloud.engine.errors import Conflict, InvalidArgument, NotFound, NotImplementedYet
from minicloud.storage.durable import replace_file

ANONYMOUS_LABEL = "com.docker.volume.anonymous"
_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")


@dataclass(slots=True)
class Volume:
    name: str
    created: str
    labels: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    driver: str = "local"

    @property
    def anonymous(self) -> bool:
        return ANONYMOUS_LABEL in self.labels

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Volume:
        return cls(**{k: v for k, v in raw.items() if k in cls.__dataclass_fields__})


def validate_name(name: str) -> str:
    if not _NAME.match(name):
        raise InvalidArgument(f'create {name}: "{name}" includes invalid characters for a local volume name, '
                              'only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host '
                              "directory, use absolute path")
    return name


class VolumeStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.volumes: dict[str, Volume] = {}
        # create and remove run in worker threads, and two creates of one name (two `docker run -v
        # data:/x`) or a create and a remove can overlap: each runs whole, one at a time
        self._lock = threading.Lock()
        for record in sorted(root.glob("*/volume.json")):
            try:
                volume = Volume.from_json(json.loads(record.read_text()))
            except (OSError, ValueError, TypeError):
                continue
            self.volumes[volume.name] = volume

    def data(self, name: str) -> Path:
        return self.root / name / "_data"

    def get(self, name: str) -> Volume:
        try:
            return self.volumes[name]
        except KeyError:
            raise NotFound(f"get {name}: no such volume") from None

    def create(self, name: str | None, now: str, *, labels: dict[str, str] | None = None,
               driver: str = "local", options: dict[str, str] | None = None, anonymous: bool = False) -> Volume:
        """Blocking. Docker's create: an existing name is returned as it is."""
        if driver not in ("", "local"):
            raise NotImplementedYet(f"volume driver {driver} is not available: minicloud's engine has 'local' only")
        if options:
            raise NotImplementedYet("local volume options (-o type=..., device=...) are not available yet in "
                                    "minicloud's engine")
        name = name or secrets.token_hex(32)
        validate_name(name)
        with self._lock:
            if name in self.volumes:
                return self.volumes[name]
            labels = dict(labels or {})
            if anonymous:
                labels[ANONYMOUS_LABEL] = ""
            volume = Volume(name=name, created=now, labels=labels)
            self.data(name).mkdir(parents=True, exist_ok=True)
            self.data(name).chmod(0o755)  # as Docker makes it, whatever minicloud's umask (077)
            replace_file(self.root / name / "volume.json", json.dumps(volume.to_json()).encode())
            self.volumes[name] = volume
            return volume

    def remove(self, name: str, users: list[str], force: bool = False) -> None:
        """Blocking. Refused while a container (running or not) refers to the volume."""
        with self._lock:
            if name not in self.volumes:
                if force:
                    return
                raise NotFound(f"get {name}: no such volume")
            if users:
                raise Conflict(f"remove {name}: volume is in use - [{', '.join(users)}]")
            del self.volumes[name]
            trash = self.root / f".trash-{name}-{secrets.token_hex(4)}"
            os.rename(self.root / name, trash)  # the commit point
        shutil.rmtree(trash, ignore_errors=True)

    def sweep(self) -> None:
        """Blocking. Removals interrupted by a crash."""
        for entry in self.root.glob(".trash-*"):
            shutil.rmtree(entry, ignore_errors=True)

    def size(self, name: str) -> int:
        total = 0
        for directory, _dirs, files in os.walk(self.data(name)):
            for file in files:
                try:
                    total += os.lstat(os.path.join(directory, file)).st_size
                except OSError:
                    continue
        return total
