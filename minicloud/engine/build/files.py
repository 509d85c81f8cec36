"""Files into an image being built (COPY, ADD): a tarball of the sources, owned and moded as the
instruction asks, extracted by the chrooted ``copyin`` process into the image's overlay; local
archives given to ADD are extracted as they are. Also the sweep of mounts and contexts that an
interrupted build left. Blocking: the builder calls these in a thread.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

from minicloud.engine.build.dockerfile import Instruction
from minicloud.engine.build.errors import BuildError
from minicloud.engine.containers.spec import resolve_user
from minicloud.engine.errors import InvalidArgument
from minicloud.engine.snapshots.mounts import unmount


def sweep_leftovers(root: Path) -> None:
    """Blocking, at start-up: mounts and contexts of builds that a crash interrupted."""
    if not root.is_dir():
        return
    for entry in (root / "mnt").iterdir() if (root / "mnt").is_dir() else []:
        release(entry)
    for entry in root.glob("ctx-*"):
        shutil.rmtree(entry, ignore_errors=True)


def release(path: Path) -> None:
    unmount(path)
    shutil.rmtree(path, ignore_errors=True)


def _owner(root: Path, chown: str, line: int) -> tuple[int, int]:
    if not chown:
        return 0, 0
    try:
        user = resolve_user(chown, root)
    except InvalidArgument as exc:
        raise BuildError(f"dockerfile parse error line {line}: {exc}") from None
    return user.uid, user.gid


def put_files(root: Path, matched: list[Path], dest: str, ins: Instruction) -> None:
    """Blocking: the matched files into ``root`` at ``dest``, through the chrooted ``copyin``."""
    uid, gid = _owner(root, ins.flags.get("chown", ""), ins.line)
    chmod = ins.flags.get("chmod", "")
    if chmod and not all(c in "01234567" for c in chmod):
        raise BuildError(f"dockerfile parse error line {ins.line}: invalid chmod value {chmod}")
    mode = int(chmod, 8) if chmod else None
    for source in matched:
        if ins.keyword == "ADD" and source.is_file() and not source.is_symlink() and tarfile.is_tarfile(source):
            _copyin(root, dest.rstrip("/") or "/", False, _sender(source))
            continue
        into_dir = dest.endswith("/") or source.is_dir() or len(matched) > 1
        target = dest.rstrip("/") or "/"

        def write(out: IO[bytes], source: Path = source) -> None:
            _tar_source(out, source, uid, gid, mode)

        _copyin(root, target, not into_dir, write)


def _sender(path: Path) -> Callable[[IO[bytes]], None]:
    def send(out: IO[bytes]) -> None:
        with open(path, "rb") as f:
            shutil.copyfileobj(f, out, 1 << 20)

    return send


def _tar_source(out: IO[bytes], source: Path, uid: int, gid: int, mode: int | None) -> None:
    def owned(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid, info.gid, info.uname, info.gname = uid, gid, "", ""
        if mode is not None and not info.issym():
            info.mode = mode
        return info

    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        if source.is_dir() and not source.is_symlink():
            for child in sorted(source.iterdir()):
                tar.add(child, arcname=child.name, recursive=True, filter=owned)
        else:
            tar.add(source, arcname=source.name, recursive=False, filter=owned)


def _copyin(root: Path, dest: str, rename: bool, write: Callable[[IO[bytes]], None]) -> None:
    command = [sys.executable, "-I", "-m", "minicloud.engine.build.copyin", str(root), dest, *(["1"] if rename else [])]
    proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None
    try:
        write(proc.stdin)
    except BrokenPipeError:
        pass
    finally:
        proc.stdin.close()
    assert proc.stdout is not None and proc.stderr is not None
    out, err = proc.stdout.read(), proc.stderr.read()
    proc.wait()
    try:
        result = json.loads(out.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise BuildError(f"copying files failed: {err.decode(errors='replace')[-500:]}") from None
    if "error" in result:
        raise BuildError(f"copying files failed: {result['error']}")
