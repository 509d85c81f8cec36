"""Layer tarballs from root filesystems: normalised, deterministic, whiteout-free.

A root filesystem arrives as a tar (mmdebstrap's output). A layer is written from it with:
names relative to the root without ``./`` (the root entry itself left out), entries sorted by name,
uid/gid and modes preserved, user/group names dropped, modification times clamped to a fixed
epoch, only ``SCHILY.xattr.*`` kept of the PAX headers (file capabilities survive), hard links
re-pointed at the first member of their group that the layer holds, and no device nodes under
``/dev``, nothing under ``/proc`` and ``/sys``, no ``/etc/hostname`` and ``/etc/resolv.conf`` (the
runtime provides them). A name that looks like an OCI whiteout is refused: a plain root
filesystem has none, and a layer built here never deletes anything from the one below.

The layer is gzip-compressed with a fixed header (no name, mtime 0), so the same input always
gives the same bytes, and both digests (``diff_id`` of the tar, ``digest`` of the gzip) are
computed while it is written.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO

SKIPPED_TREES = ("dev/", "proc/", "sys/")
SKIPPED_FILES = frozenset({"etc/hostname", "etc/resolv.conf"})
WHITEOUT_PREFIX = ".wh."
_COPY = 1 << 20
Signature = tuple[object, ...]


class LayerError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Blob:
    """A layer written to the blob directory."""

    digest: str  # sha256:... of the compressed bytes
    diff_id: str  # sha256:... of the uncompressed tar
    size: int  # compressed bytes
    path: Path


def normalise_name(name: str) -> str:
    while name.startswith("./"):
        name = name[2:]
    name = name.strip("/")
    return "" if name == "." else name


def kept(name: str) -> bool:
    """Whether a normalised rootfs path belongs in a layer."""
    if not name or name in SKIPPED_FILES:
        return False
    if any(name.startswith(tree) for tree in SKIPPED_TREES):
        return False
    if os.path.basename(name).startswith(WHITEOUT_PREFIX):
        raise LayerError(f"refusing {name!r}: a root filesystem must not contain OCI whiteouts")
    return True


def _xattrs(member: tarfile.TarInfo) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in member.pax_headers.items() if k.startswith("SCHILY.xattr.")))


class _HashingWriter:
    """A write-only file that hashes and counts what passes through to ``target``."""

    def __init__(self, target: IO[bytes]) -> None:
        self.target = target
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        self.size += len(data)
        self.target.write(data)
        return len(data)

    def flush(self) -> None:
        self.target.flush()

    def digest(self) -> str:
        return "sha256:" + self.hash.hexdigest()


# -- reading a root filesystem --------------------------------------------------------------------
@dataclass(slots=True)
class RootfsTar:
    """A root filesystem tar opened for random access, its members by normalised name."""

    tar: tarfile.TarFile
    members: dict[str, tarfile.TarInfo]

    @classmethod
    def open(cls, path: Path) -> RootfsTar:
        tar = tarfile.open(path, "r:*")  # noqa: SIM115 - closed by close()
        members: dict[str, tarfile.TarInfo] = {}
        for member in tar.getmembers():
            name = normalise_name(member.name)
            if kept(name):
                members[name] = member
        return cls(tar, members)

    def close(self) -> None:
        self.tar.close()

    def data_holder(self, name: str) -> str:
        """For a hard link, the member holding its data; the name itself otherwise."""
        member = self.members[name]
        return normalise_name(member.linkname) if member.islnk() else name


def signatures(path: Path) -> dict[str, Signature]:
    """What makes each entry of a rootfs or layer tar the same file as another (mtimes and hard-link
    identity aside), in one streaming pass (gzip or plain)."""
    result: dict[str, Signature] = {}
    with tarfile.open(path, "r|*") as tar:
        for member in tar:
            name = normalise_name(member.name)
            if not kept(name):
                continue
            common = (member.mode, member.uid, member.gid, _xattrs(member))
            if member.isreg():
                source = tar.extractfile(member)
                assert source is not None
                digest = hashlib.sha256()
                while chunk := source.read(_COPY):
                    digest.update(chunk)
                result[name] = ("file", *common, member.size, digest.hexdigest())
            elif member.islnk():
                holder = result.get(normalise_name(member.linkname))
                if holder is None or holder[0] != "file":
                    raise LayerError(f"hard link {name!r} points at a missing file")
                result[name] = ("file", *common, *holder[5:])
            elif member.issym():
                result[name] = ("symlink", *common, member.linkname)
            elif member.isdir():
                result[name] = ("dir", *common)
            else:
                result[name] = (f"type{member.type!r}", *common, member.devmajor, member.devminor)
    return result


def changed_paths(lower: dict[str, Signature], upper: dict[str, Signature]) -> tuple[set[str], set[str]]:
    """(paths new or different in ``upper``, paths of ``lower`` that ``upper`` lacks)."""
    changed = {name for name, sig in upper.items() if lower.get(name) != sig}
    return changed, set(lower) - set(upper)


def with_parents(names: set[str], available: Iterable[str]) -> set[str]:
    """``names`` and every directory above them that ``available`` holds: a layer carries the
    parents of what it changes (as Docker's diffs do), so that an engine extracting it never has to
    invent a directory's mode or owner."""
    known = set(available)
    result = set(names)
    for name in names:
        parent = os.path.dirname(name)
        while parent and parent not in result and parent in known:
            result.add(parent)
            parent = os.path.dirname(parent)
    return result


# -- writing a layer ------------------------------------------------------------------------------
def _clean(member: tarfile.TarInfo, name: str, clamp: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = member.type
    info.mode = member.mode
    info.uid, info.gid = member.uid, member.gid
    info.uname = info.gname = ""
    info.mtime = min(int(member.mtime), clamp)
    info.linkname = member.linkname
    info.devmajor, info.devminor = member.devmajor, member.devminor
    info.pax_headers = dict(_xattrs(member))
    return info


def rootfs_entries(rootfs: RootfsTar, names: Iterable[str], clamp: int
                   ) -> Iterator[tuple[tarfile.TarInfo, Callable[[], IO[bytes] | None]]]:
    """The entries for ``names`` (sorted), with hard links re-pointed inside the selection."""
    first_of_group: dict[str, str] = {}
    for name in sorted(names):
        member = rootfs.members[name]
        info = _clean(member, name, clamp)
        if member.isreg() or member.islnk():
            holder_name = rootfs.data_holder(name)
            holder = rootfs.members[holder_name]
            if holder_name in first_of_group:
                info.type, info.size, info.linkname = tarfile.LNKTYPE, 0, first_of_group[holder_name]
                yield info, lambda: None
                continue
            first_of_group[holder_name] = name
            info.type, info.size, info.linkname = tarfile.REGTYPE, holder.size, ""
            info.mode = holder.mode
            yield info, (lambda holder=holder: rootfs.tar.extractfile(holder))  # type: ignore[misc]
        else:
            yield info, lambda: None


def write_layer(entries: Iterable[tuple[tarfile.TarInfo, Callable[[], IO[bytes] | None]]],
                blob_dir: Path, compresslevel: int = 6) -> Blob:
    """Write entries as a gzip-compressed tar into ``blob_dir/sha256/<hex>``; return its digests."""
    (blob_dir / "sha256").mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=blob_dir, prefix=".layer-")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            compressed = _HashingWriter(out)
            with gzip.GzipFile(filename="", mode="wb", fileobj=compressed,
                               compresslevel=compresslevel, mtime=0) as gz:
                plain = _HashingWriter(gz)  # type: ignore[arg-type]
                with tarfile.open(fileobj=plain, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
                    for info, opener in entries:
                        source = opener() if info.isreg() else None
                        tar.addfile(info, source)
            out.flush()
            os.fsync(out.fileno())
        final = blob_dir / "sha256" / compressed.digest()[7:]
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return Blob(compressed.digest(), plain.digest(), compressed.size, final)


def copy_stream(source: BinaryIO, target: IO[bytes]) -> None:
    while chunk := source.read(_COPY):
        target.write(chunk)
