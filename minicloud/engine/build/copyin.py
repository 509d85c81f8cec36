"""Put files into an image being built, as a separate process:
``python -m minicloud.engine.build.copyin <root> <dest> [<name>]`` reads a tarball on stdin
(plain or compressed) and extracts it at ``dest`` inside ``root``.

The process chroots into ``root`` first, so that no symlink of the image (``/app -> /etc``) and
no name in the tarball can reach outside it (Docker's chrootarchive does the same). With
``name``, the tarball holds one file that is written as ``dest`` itself, unless ``dest`` is an
existing directory, where it keeps its own name (``COPY file /target``).
"""

from __future__ import annotations

import bz2  # noqa: F401 - imported before the chroot: tarfile needs them for compressed archives
import gzip  # noqa: F401
import json
import lzma  # noqa: F401
import os
import shutil
import sys
import tarfile


def _replace(path: str, member: tarfile.TarInfo) -> None:
    if os.path.lexists(path) and not (member.isdir() and os.path.isdir(path)):
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)


def extract(stream: object, dest: str, name: str | None) -> int:
    base = dest
    if name is not None and not os.path.isdir(dest):
        base = os.path.dirname(dest) or "/"
    os.makedirs(base, exist_ok=True)
    count = 0
    with tarfile.open(fileobj=stream, mode="r|*") as tar:  # type: ignore[call-overload]
        for member in tar:
            relative = os.path.normpath("/" + member.name).lstrip("/")
            if name is not None and not os.path.isdir(dest) and relative == os.path.basename(relative):
                relative = os.path.basename(dest)
            if not relative or relative == ".":
                if member.isdir():
                    os.chmod(base, member.mode)
                    os.chown(base, member.uid, member.gid)
                continue
            member.name = relative
            if member.islnk():
                member.linkname = os.path.normpath("/" + member.linkname).lstrip("/")
            target = os.path.join(base, relative)
            _replace(target, member)
            tar.extract(member, path=base, numeric_owner=True, filter="fully_trusted")
            count += 1
    return count


def main(argv: list[str]) -> int:
    root, dest, *rest = argv
    os.chroot(root)
    os.chdir("/")
    os.umask(0)
    try:
        count = extract(sys.stdin.buffer, dest, rest[0] if rest else None)
    except (tarfile.TarError, OSError, EOFError) as exc:
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
        return 2
    print(json.dumps({"count": count}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
