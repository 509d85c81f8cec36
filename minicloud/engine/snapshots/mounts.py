"""Mounts as data, and the two system calls that perform and undo them."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from dataclasses import dataclass, field
from pathlib import Path

MNT_DETACH = 2
_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]

_FLAGS = {"ro": 1, "nosuid": 2, "nodev": 4, "noexec": 8, "bind": 4096, "rbind": 4096 | 16384}


@dataclass(frozen=True, slots=True)
class Mount:
    type: str
    source: str
    options: tuple[str, ...] = field(default_factory=tuple)

    def to_oci(self, destination: str) -> dict[str, object]:
        return {"destination": destination, "type": self.type, "source": self.source,
                "options": list(self.options)}


def mount(m: Mount, target: Path) -> None:
    flags = 0
    data: list[str] = []
    for option in m.options:
        if option in _FLAGS:
            flags |= _FLAGS[option]
        else:
            data.append(option)
    joined = ",".join(data).encode()
    if len(joined) >= os.sysconf("SC_PAGE_SIZE"):
        raise OSError(f"mount options for {target} exceed one page ({len(joined)} bytes): too many layers")
    kind = None if m.type == "bind" else m.type.encode()
    if _libc.mount(m.source.encode(), str(target).encode(), kind, flags, joined or None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {m.type} on {target}: {os.strerror(err)}")


def unmount(target: Path) -> None:
    """Unmount; a target that is not mounted is fine; a busy one is detached lazily."""
    if _libc.umount2(str(target).encode(), 0) == 0:
        return
    err = ctypes.get_errno()
    if err == 22:  # EINVAL: not a mount point
        return
    if err == 2:  # ENOENT
        return
    if _libc.umount2(str(target).encode(), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"umount {target}: {os.strerror(err)}")


def is_mounted(target: Path) -> bool:
    text = str(target)
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == text for line in f)
