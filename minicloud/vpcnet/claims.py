"""Host-wide claims, as exclusive ``flock``s on files under /run/minicloud, which the kernel drops
when the holding process dies (so a crash leaves no stale claim; a file left is reused or swept):

- a public IP: two minicloud processes on one machine (two data directories) must never map the
  same 127.x.y.z address, or the host's connections would go to whichever table the kernel
  evaluates first (``PublicIpClaims``);
- a running data plane (``PlaneLock``): one process per state directory, and the leftovers of a
  dead one found and removed even when its state directory is gone.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from minicloud.vpcnet.model import Conflict

RUN_DIR = Path("/run/minicloud")  # claims in vpc-public-ips/, running data planes in vpc-planes/


class PublicIpClaims:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._held: dict[str, int] = {}

    def claim(self, address: str) -> None:
        """Blocking (a few system calls). Raise ``Conflict`` when another process holds it."""
        if address in self._held:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = _lock_file(self.directory / address, create=True)
        if fd is None:
            raise Conflict(f"public IP {address} is mapped by another minicloud on this host")
        self._held[address] = fd

    def release(self, address: str) -> None:
        fd = self._held.pop(address, None)
        if fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            (self.directory / address).unlink()
        os.close(fd)

    def release_all(self) -> None:
        for address in list(self._held):
            self.release(address)

    def sweep(self) -> None:
        """Blocking. Remove the files of claims nobody holds (their holders died)."""
        if not self.directory.is_dir():
            return
        for path in self.directory.iterdir():
            if path.name in self._held:
                continue
            try:
                fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            except BlockingIOError:
                pass  # held: another process's
            finally:
                os.close(fd)

    def held(self) -> set[str]:
        return set(self._held)


class PlaneLock:
    """Marks a running data plane host-wide: an exclusive ``flock`` on ``<directory>/<tag>``, the
    file holding its state directory. A second process on the same state directory is refused;
    a file nobody holds is an orphan (its process died and its state directory may be gone), whose
    leftovers a starting data plane removes."""

    def __init__(self, directory: Path, tag: str, state_dir: Path) -> None:
        self.directory = directory
        self.tag = tag
        self.state_dir = state_dir
        self._fd: int | None = None

    def acquire(self) -> None:
        """Blocking. Raise ``Conflict`` when another live process runs this data plane."""
        if self._fd is not None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = _lock_file(self.directory / self.tag, create=True)
        if fd is None:
            raise Conflict(f"another process runs the VPC data plane of {self.state_dir}")
        os.ftruncate(fd, 0)
        os.write(fd, str(self.state_dir).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            (self.directory / self.tag).unlink()
        os.close(self._fd)
        self._fd = None

    def orphans(self) -> list[Orphan]:
        """Blocking. The data planes whose process died, each locked until ``Orphan.forget``."""
        found = []
        if self.directory.is_dir():
            for path in sorted(self.directory.iterdir()):
                if path.name == self.tag:
                    continue
                fd = _lock_file(path, create=False)
                if fd is not None:
                    state_dir = os.pread(fd, 4096, 0).decode(errors="replace")
                    found.append(Orphan(path, path.name, Path(state_dir) if state_dir else None, fd))
        return found


class Orphan:
    def __init__(self, path: Path, tag: str, state_dir: Path | None, fd: int) -> None:
        self.path, self.tag, self.state_dir, self._fd = path, tag, state_dir, fd

    def forget(self) -> None:
        """Its leftovers are gone: remove its file."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        os.close(self._fd)


def _lock_file(path: Path, *, create: bool) -> int | None:
    """An open, exclusively locked descriptor of ``path`` (still linked there), or None when
    another process holds it (or, without ``create``, it is gone)."""
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC | (os.O_CREAT if create else 0), 0o600)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        try:
            current = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            current = False
        if current:
            return fd
        os.close(fd)
        if not create:
            return None
