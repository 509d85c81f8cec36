"""Host-wide claims on public IPs: two minicloud processes on one machine (two data directories)
must never map the same 127.x.y.z address, or the host's connections would go to whichever
table the kernel evaluates first. A claim is an exclusive ``flock`` on a file named after the
address, held while it is mapped; the kernel drops it when the process dies, so a crash leaves
no stale claim (the file, if left, is reused, and removed by ``sweep``).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from minicloud.vpcnet.model import Conflict

DEFAULT_CLAIMS_DIR = Path("/run/minicloud/vpc-public-ips")


class PublicIpClaims:
    def __init__(self, directory: Path = DEFAULT_CLAIMS_DIR) -> None:
        self.directory = directory
        self._held: dict[str, int] = {}

    def claim(self, address: str) -> None:
        """Blocking (a few system calls). Raise ``Conflict`` when another process holds it."""
        if address in self._held:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / address
        while True:
            fd = os.open(path, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise Conflict(f"public IP {address} is mapped by another minicloud on this host") from None
            try:
                current = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                current = False
            if current:  # not a file its previous holder unlinked while we opened it
                self._held[address] = fd
                return
            os.close(fd)

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
