"""The busybox image's one layer: Debian's static busybox binary, hard-linked under every applet
name in ``/bin`` as the official image has it, with the few files a shell needs."""

from __future__ import annotations

import os
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from io import BytesIO
from pathlib import Path
from typing import IO

from minicloud.images.layers import Blob, LayerError, normalise_name, write_layer

PASSWD = b"root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\n" \
         b"www-data:x:33:33:www-data:/var/www:/bin/false\nnobody:x:65534:65534:nobody:/home:/bin/false\n"
GROUP = b"root:x:0:\ndaemon:x:1:\nwheel:x:10:root\nwww-data:x:33:\nnogroup:x:65534:\n"
DIRECTORIES = {"bin": 0o755, "etc": 0o755, "home": 0o755, "root": 0o700, "tmp": 0o1777, "usr": 0o755,
               "usr/sbin": 0o755, "var": 0o755, "var/spool": 0o755, "var/spool/mail": 0o755, "var/www": 0o755}
FILES = {"etc/passwd": PASSWD, "etc/group": GROUP}
Entry = tuple[tarfile.TarInfo, Callable[[], IO[bytes] | None]]


def _binary(extracted: Path) -> bytes:
    with tarfile.open(extracted) as tar:
        for member in tar:
            if normalise_name(member.name) in ("bin/busybox", "usr/bin/busybox") and member.isreg():
                source = tar.extractfile(member)
                assert source is not None
                return source.read()
    raise LayerError("busybox-static's package holds no /bin/busybox")


def applets(binary: bytes) -> list[str]:
    """The applet names, asked of the binary itself (it is static: it runs on any x86-64 Linux)."""
    with tempfile.NamedTemporaryFile(prefix="busybox-", delete=False) as handle:
        handle.write(binary)
    try:
        os.chmod(handle.name, 0o755)
        listing = subprocess.run([handle.name, "--list"], capture_output=True, text=True, check=True, timeout=30)
    finally:
        os.unlink(handle.name)
    return sorted({name for name in listing.stdout.split() if name and "/" not in name} | {"busybox"})


def _info(name: str, kind: bytes, mode: int, mtime: int, size: int = 0, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime, info.size, info.linkname = kind, mode, mtime, size, linkname
    info.uname = info.gname = ""
    return info


def _opener(data: bytes) -> Callable[[], IO[bytes] | None]:
    return lambda: BytesIO(data)


def entries(binary: bytes, names: list[str], mtime: int) -> Iterator[Entry]:
    items: dict[str, Entry] = {}
    for path, mode in DIRECTORIES.items():
        items[path] = (_info(path, tarfile.DIRTYPE, mode, mtime), lambda: None)
    for path, data in FILES.items():
        items[path] = (_info(path, tarfile.REGTYPE, 0o644, mtime, len(data)), _opener(data))
    links = sorted(f"bin/{name}" for name in names)
    first = links[0]  # the first in the layer's order holds the data, the others link to it
    items[first] = (_info(first, tarfile.REGTYPE, 0o755, mtime, len(binary)), _opener(binary))
    for path in links[1:]:
        items[path] = (_info(path, tarfile.LNKTYPE, 0o755, mtime, linkname=first), lambda: None)
    for path in sorted(items):
        yield items[path]


def busybox_layer(extracted: Path, blob_dir: Path, mtime: int) -> Blob:
    binary = _binary(extracted)
    return write_layer(entries(binary, applets(binary), mtime), blob_dir)
