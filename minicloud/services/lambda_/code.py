"""Function code: zip archives kept by digest under ``<data-dir>/lambda/code``, each unpacked once
into a read-only directory that environments mount at /var/task. Layers have a store of their own
(``<data-dir>/lambda/layers``): each version unpacked once, on first use, and the layers of a
function merged, in order, into one directory mounted at /opt (``merged``: hard links to the
unpacked files, later layers replacing what earlier ones hold at the same path).

Crash-safe: the zip is written to a temporary file, fsynced and renamed; the directory is unpacked
beside its final name and renamed into place, so a half-written one is never used.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import os
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from minicloud.services.lambda_.errors import InvalidParameterValueException, RequestEntityTooLargeException
from minicloud.storage.durable import replace_file

MAX_ZIPPED = 50 * 1024 * 1024  # a zip uploaded directly (ZipFile)
MAX_UNZIPPED = 250 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class StoredCode:
    sha256_hex: str
    size: int
    unzipped_size: int = 0

    @property
    def sha256_b64(self) -> str:
        return base64.b64encode(bytes.fromhex(self.sha256_hex)).decode()


class CodeStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "zips").mkdir(parents=True, exist_ok=True)
        (root / "tasks").mkdir(parents=True, exist_ok=True)

    def zip_path(self, sha256_hex: str) -> Path:
        return self.root / "zips" / f"{sha256_hex}.zip"

    def task_dir(self, sha256_hex: str) -> Path:
        return self.root / "tasks" / sha256_hex

    def put(self, data: bytes, operation: str = "CreateFunction", unpack: bool = True) -> StoredCode:
        """Blocking. Check and keep a zip; raise AWS's errors for what Lambda would refuse."""
        if len(data) > MAX_ZIPPED:
            raise RequestEntityTooLargeException("Request must be smaller than 69905067 bytes for the "
                                                 f"{operation} operation")
        unzipped = check_zip(data)
        digest = hashlib.sha256(data).hexdigest()
        target = self.zip_path(digest)
        if not target.exists():
            replace_file(target, data, mode=0o600)
        if unpack:
            self.unpack(digest)
        return StoredCode(digest, len(data), unzipped)

    def unzipped_size(self, sha256_hex: str) -> int:
        """Blocking. The sum of the sizes of a kept zip's files."""
        with zipfile.ZipFile(self.zip_path(sha256_hex)) as archive:
            return sum(m.file_size for m in archive.infolist())

    def unpack(self, sha256_hex: str) -> Path:
        """Blocking. The code's directory (made on first use)."""
        target = self.task_dir(sha256_hex)
        if target.is_dir():
            return target
        def fill(staging: Path) -> None:
            with zipfile.ZipFile(self.zip_path(sha256_hex)) as archive:
                for member in archive.infolist():
                    _extract(archive, member, staging)

        _build_directory(target, fill)
        return target

    def read(self, sha256_hex: str) -> bytes:
        return self.zip_path(sha256_hex).read_bytes()

    def discard(self, sha256_hex: str) -> None:
        """Blocking. Remove code no version uses any more (and the merged directories it is part of)."""
        with contextlib.suppress(FileNotFoundError):
            self.zip_path(sha256_hex).unlink()
        shutil.rmtree(self.task_dir(sha256_hex), ignore_errors=True)
        merged = self.root / "merged"
        for listing in merged.glob("*.json") if merged.is_dir() else []:
            with contextlib.suppress(OSError, ValueError):
                if sha256_hex in json.loads(listing.read_text()):
                    shutil.rmtree(merged / listing.stem, ignore_errors=True)
                    listing.unlink()

    def merged(self, digests: Sequence[str]) -> Path:
        """Blocking. One directory holding the unpacked zips ``digests`` one over the other, in order
        (a later one's file replaces an earlier one's), made once per sequence of digests."""
        if len(digests) == 1:
            return self.unpack(digests[0])
        key = hashlib.sha256("\n".join(digests).encode()).hexdigest()
        root = self.root / "merged"
        target = root / key
        if target.is_dir():
            return target
        root.mkdir(parents=True, exist_ok=True)

        def fill(staging: Path) -> None:
            for digest in digests:
                _overlay(self.unpack(digest), staging)
            replace_file(root / f"{key}.json", json.dumps(list(digests)).encode(), mode=0o600)

        _build_directory(target, fill)
        return target


def _build_directory(target: Path, fill: Callable[[Path], None]) -> None:
    """Make the directory ``target`` whole or not at all: ``fill`` a staging directory beside it,
    then rename it into place (a concurrent builder that got there first wins; a crash leaves only
    a staging directory, which the next build does not use)."""
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name[:12]}-", dir=target.parent))
    try:
        fill(staging)
        os.chmod(staging, 0o755)
        try:
            os.rename(staging, target)
        except OSError:  # another caller got there first
            if not target.is_dir():
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def check_zip(data: bytes) -> int:
    """Lambda's checks on a deployment package: a readable zip, unzipped size within the limit (returned)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
            total = sum(m.file_size for m in members)
            bad = archive.testzip()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, NotImplementedError):
        raise InvalidParameterValueException("Could not unzip uploaded file. Please check your file, then try "
                                             "to upload again.") from None
    if bad is not None:
        raise InvalidParameterValueException("Could not unzip uploaded file. Please check your file, then try "
                                             "to upload again.")
    if total > MAX_UNZIPPED:
        raise InvalidParameterValueException(f"Unzipped size must be smaller than {MAX_UNZIPPED} bytes")
    for member in members:
        name = member.filename
        if name.startswith("/") or ".." in Path(name).parts:
            raise InvalidParameterValueException("Could not unzip uploaded file. Please check your file, then try "
                                                 "to upload again.")
    return total


def _overlay(source: Path, target: Path) -> None:
    """Hard-link the tree ``source`` into ``target``, replacing what is already there at the same path."""
    for top, dirs, files in os.walk(source):
        relative = Path(top).relative_to(source)
        for name in [d for d in dirs if os.path.islink(os.path.join(top, d))]:
            dirs.remove(name)  # a link to a directory is a link, not a directory to enter
            files.append(name)
        for name in dirs:
            place = target / relative / name
            if place.is_symlink() or (place.exists() and not place.is_dir()):
                place.unlink()
            place.mkdir(exist_ok=True)
            os.chmod(place, 0o755)
        for name in files:
            origin, place = Path(top) / name, target / relative / name
            if place.is_dir() and not place.is_symlink():
                shutil.rmtree(place)
            elif place.is_symlink() or place.exists():
                place.unlink()
            if origin.is_symlink():
                os.symlink(os.readlink(origin), place)
            else:
                os.link(origin, place)


def _extract(archive: zipfile.ZipFile, member: zipfile.ZipInfo, root: Path) -> None:
    target = root / member.filename
    mode = (member.external_attr >> 16) & 0o7777
    kind = (member.external_attr >> 16) & 0o170000
    if member.is_dir():
        target.mkdir(parents=True, exist_ok=True)
        os.chmod(target, 0o755)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    for parent in target.relative_to(root).parents:
        if str(parent) != ".":
            os.chmod(root / parent, 0o755)
    if kind == stat.S_IFLNK:
        link = archive.read(member).decode()
        if link.startswith("/") or ".." in Path(link).parts:
            return  # never a link out of the task root
        os.symlink(link, target)
        return
    with archive.open(member) as source, open(target, "wb") as out:
        shutil.copyfileobj(source, out)
    # As Lambda does: files readable by all, executable when the zip says so (a provided bootstrap).
    os.chmod(target, 0o755 if mode & 0o111 else 0o644)


