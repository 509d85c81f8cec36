"""Apply one layer tarball to a directory, as a separate process:
``python -m minicloud.engine.snapshots.untar <blob> <target>`` prints ``{"diff_id", "size"}``.

The process chroots into the target before reading any entry, so no name, symlink or hard link in
a layer can reach outside it (Docker's chrootarchive does the same). Layers may be uncompressed,
gzip or zstd (the last needs the ``zstandard`` module; without it the layer is refused by name).
OCI whiteouts become overlayfs whiteouts: ``.wh.NAME`` a 0:0 character device ``NAME``,
``.wh..wh..opq`` the ``trusted.overlay.opaque=y`` attribute of its directory.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import stat
import sys
import tarfile
from typing import IO, Any

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class LayerError(Exception):
    pass


class HashingReader:
    """Hashes (and counts) the uncompressed bytes as tarfile reads them: the diff id."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.hash = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.hash.update(data)
        self.size += len(data)
        return data

    def drain(self) -> None:
        while self.read(1 << 20):
            pass


def decompressed(blob: IO[bytes]) -> IO[bytes]:
    magic = blob.read(4)
    blob.seek(0)
    if magic.startswith(GZIP_MAGIC):
        stream: IO[bytes] = gzip.GzipFile(fileobj=blob, mode="rb")  # type: ignore[assignment]
        return stream
    if magic == ZSTD_MAGIC:
        try:
            import zstandard  # type: ignore[import-not-found,unused-ignore]
        except ImportError:
            raise LayerError("zstd-compressed layers need the 'zstandard' Python module, which is not "
                             "installed") from None
        reader: IO[bytes] = zstandard.ZstdDecompressor().stream_reader(blob)
        return reader
    return blob


def whiteout_target(name: str) -> tuple[str, bool] | None:
    """``(path, opaque)`` for a whiteout entry, ``None`` for an ordinary one."""
    directory, base = os.path.split(name.rstrip("/"))
    if base == OPAQUE:
        return directory or ".", True
    if base.startswith(WHITEOUT):
        return os.path.join(directory, base[len(WHITEOUT):]), False
    return None


def apply_whiteout(path: str, opaque: bool) -> None:
    if opaque:
        os.makedirs(path, exist_ok=True)
        os.setxattr(path, "trusted.overlay.opaque", b"y")
        return
    os.makedirs(os.path.dirname(path) or "/", exist_ok=True)
    if os.path.lexists(path):
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)
    os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(0, 0))


def apply_xattrs(member: tarfile.TarInfo, path: str) -> None:
    for key, value in member.pax_headers.items():
        if key.startswith("SCHILY.xattr."):
            os.setxattr(path, key[len("SCHILY.xattr."):], value.encode("utf-8", "surrogateescape"),
                        follow_symlinks=False)


def apply_layer(stream: IO[bytes]) -> None:
    """Extract into the current root (the caller has chrooted)."""
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        for member in tar:
            name = os.path.normpath("/" + member.name).lstrip("/")
            if not name or name == ".":
                continue
            whiteout = whiteout_target(name)
            if whiteout is not None:
                apply_whiteout("/" + whiteout[0], whiteout[1])
                continue
            member.name = name
            if member.islnk():
                member.linkname = os.path.normpath("/" + member.linkname).lstrip("/")
            path = "/" + name
            if os.path.lexists(path) and not (member.isdir() and os.path.isdir(path)):
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path)
                else:
                    os.unlink(path)
            tar.extract(member, path="/", numeric_owner=True, filter="fully_trusted")
            if member.pax_headers:
                apply_xattrs(member, path)


def main(argv: list[str]) -> int:
    blob_path, target = argv
    blob = open(blob_path, "rb")  # noqa: SIM115 - kept open across the chroot
    try:
        reader = HashingReader(decompressed(blob))
    except LayerError as exc:
        print(json.dumps({"error": str(exc)}))
        return 2
    os.chroot(target)
    os.chdir("/")
    os.umask(0)
    result: dict[str, Any]
    try:
        apply_layer(reader)  # type: ignore[arg-type]
        reader.drain()
        result = {"diff_id": "sha256:" + reader.hash.hexdigest(), "size": reader.size}
    except (tarfile.TarError, OSError, EOFError, LayerError) as exc:
        result = {"error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(result))
    return 0 if "diff_id" in result else 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
