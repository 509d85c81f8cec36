"""The build context: the tarball the client sends (plain, gzip, bzip2 or xz), unpacked into a
directory without letting any entry escape it, with ``.dockerignore`` applied (the CLI already
leaves ignored files out; the engine applies it again, as a client may not); the sources of a
COPY or ADD found by pattern; and a content hash of them for the build cache.

Blocking (tar, hashing, file I/O): the builder calls these in a thread.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from minicloud.engine.errors import InvalidArgument, NotFound


@dataclass(frozen=True, slots=True)
class _Pattern:
    regex: re.Pattern[str]
    negated: bool
    text: str


def glob_regex(pattern: str) -> re.Pattern[str]:
    """Go's ``filepath.Match`` syntax (``*``, ``?``, ``[...]``, ``\\`` escapes) plus ``**`` for any
    number of directories, as ``.dockerignore`` uses it."""
    out: list[str] = []
    index = 0
    while index < len(pattern):
        ch = pattern[index]
        if pattern.startswith("**", index):
            index += 2
            if pattern.startswith("/", index):
                index += 1
                out.append("(?:.*/)?")
            else:
                out.append(".*")
            continue
        if ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[":
            end = pattern.find("]", index + 1)
            if end < 0:
                raise InvalidArgument(f"syntax error in pattern: {pattern}")
            body = pattern[index + 1:end]
            if body.startswith("^"):
                body = "!" + body[1:]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body).replace("\\", "\\\\") + "]")
            index = end
        elif ch == "\\" and index + 1 < len(pattern):
            index += 1
            out.append(re.escape(pattern[index]))
        else:
            out.append(re.escape(ch))
        index += 1
    return re.compile("^" + "".join(out) + "$")


def _clean(path: str) -> str:
    cleaned = os.path.normpath("/" + path.strip()).lstrip("/")
    return "" if cleaned == "." else cleaned


class DockerIgnore:
    """``.dockerignore``: the last matching pattern decides; ``!`` re-includes; a pattern that
    matches a directory excludes what is inside it."""

    def __init__(self, text: str = "") -> None:
        self.patterns: list[_Pattern] = []
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            negated = line.startswith("!")
            if negated:
                line = line[1:].strip()
            cleaned = _clean(line)
            if cleaned:
                self.patterns.append(_Pattern(glob_regex(cleaned), negated, cleaned))

    def excluded(self, path: str) -> bool:
        path = _clean(path)
        if not path:
            return False
        parents = [str(p) for p in reversed(PurePosixPath(path).parents) if str(p) != "."]
        result = False
        for pattern in self.patterns:
            if pattern.regex.match(path) or any(pattern.regex.match(parent) for parent in parents):
                result = not pattern.negated
        return result


def unpack_context(source: IO[bytes], target: Path, dockerfile: str = "Dockerfile") -> None:
    """Unpack the context tarball into ``target`` (which exists), minus ``.dockerignore``'s matches
    (the Dockerfile and ``.dockerignore`` themselves are always kept, for the builder to read)."""
    try:
        with tarfile.open(fileobj=source, mode="r:*") as tar:
            members = tar.getmembers()
            ignore = DockerIgnore()
            for member in members:
                if _clean(member.name) == ".dockerignore" and member.isfile():
                    stream = tar.extractfile(member)
                    ignore = DockerIgnore(stream.read().decode(errors="replace") if stream else "")
            keep = {_clean(dockerfile), ".dockerignore"}
            for member in members:
                name = _clean(member.name)
                if not name or (ignore.excluded(name) and name not in keep):
                    continue
                if member.isdev() or member.isfifo():
                    continue
                _extract(tar, member, name, target)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise InvalidArgument(f"failed to read the build context: {exc}") from None
    except KeyError as exc:  # tarfile: a hard link to a name the archive does not have
        raise InvalidArgument(f"failed to read the build context: {exc.args[0] if exc.args else exc}") from None


def _extract(tar: tarfile.TarFile, member: tarfile.TarInfo, name: str, target: Path) -> None:
    """One entry, written only beneath ``target``: never through a symlink of the context (which
    may point anywhere, as Docker allows, and is copied as a link), never over one."""
    parent = target
    for part in name.split("/")[:-1]:
        parent = parent / part
        if parent.is_symlink():
            raise InvalidArgument(f"failed to read the build context: {name} passes through the symlink "
                                  f"{parent.relative_to(target)}")
    path = target / name
    if path.is_symlink() or (path.exists() and not (member.isdir() and path.is_dir())):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    member.name = name
    if member.islnk():
        member.linkname = _clean(member.linkname)
        source = target / member.linkname
        if any(p.is_symlink() for p in [source, *source.parents] if target in p.parents or p == target):
            raise InvalidArgument(f"failed to read the build context: the hard link {name} goes through a symlink")
    member.mode &= 0o7777 & ~0o6000  # no set-user-id or set-group-id bits from a client
    tar.extract(member, target, set_attrs=not member.issym(), numeric_owner=True, filter="fully_trusted")


def read_dockerfile(root: Path, name: str) -> str:
    path = inside(root, name or "Dockerfile")
    try:
        return path.read_text(errors="replace")
    except (FileNotFoundError, IsADirectoryError):
        raise NotFound(f"Cannot locate specified Dockerfile: {name or 'Dockerfile'}") from None


def inside(root: Path, relative: str) -> Path:
    """``relative`` resolved under ``root`` (``..`` and symlinks never leave it)."""
    resolved = (root / _clean(relative)).resolve()
    base = root.resolve()
    if resolved != base and base not in resolved.parents:
        raise InvalidArgument(f"forbidden path outside the build context: {relative}")
    return resolved


def find_sources(root: Path, pattern: str) -> list[Path]:
    """The paths under ``root`` that ``pattern`` names (a glob per path segment, as Docker's)."""
    cleaned = _clean(pattern)
    if not cleaned:
        return [root]
    if not any(ch in cleaned for ch in "*?["):
        path = inside(root, cleaned)
        return [path] if os.path.lexists(path) else []
    matches = [root]
    for segment in cleaned.split("/"):
        regex = glob_regex(segment)
        found: list[Path] = []
        for base in matches:
            if base.is_dir() and not base.is_symlink():
                found += [base / name for name in sorted(os.listdir(base)) if regex.match(name)]
        matches = found
    return matches


def _walk(path: Path) -> Iterator[Path]:
    yield path
    if path.is_dir() and not path.is_symlink():
        for name in sorted(os.listdir(path)):
            yield from _walk(path / name)


def content_hash(paths: list[Path], root: Path) -> str:
    """A digest of names, modes, link targets and bytes of ``paths`` (what COPY's cache key uses)."""
    digest = hashlib.sha256()
    for top in paths:
        for path in _walk(top):
            st = os.lstat(path)
            digest.update(f"{path.relative_to(root)}\0{stat.S_IMODE(st.st_mode)}\0{stat.S_IFMT(st.st_mode)}\0".encode())
            if stat.S_ISLNK(st.st_mode):
                digest.update(os.readlink(path).encode())
            elif stat.S_ISREG(st.st_mode):
                with open(path, "rb") as f:
                    while chunk := f.read(1 << 20):
                        digest.update(chunk)
    return digest.hexdigest()
