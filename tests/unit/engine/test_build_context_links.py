"""A build context whose hard link names an entry the archive does not have is refused as a bad
argument (regression test of the security review: tarfile's KeyError escaped as a server error)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from minicloud.engine.build.context import unpack_context
from minicloud.engine.errors import InvalidArgument


def _context(*members: tuple[tarfile.TarInfo, bytes | None]) -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    buffer.seek(0)
    return buffer


def _file(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _hard_link(name: str, target: str) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.LNKTYPE, target
    return info, None


def test_a_hard_link_to_a_missing_name_is_invalid(tmp_path: Path) -> None:
    context = _context(_file("Dockerfile", b"FROM scratch\n"), _hard_link("copy", "missing"))
    with pytest.raises(InvalidArgument, match="failed to read the build context"):
        unpack_context(context, tmp_path)


def test_a_hard_link_to_an_entry_is_kept(tmp_path: Path) -> None:
    unpack_context(_context(_file("Dockerfile", b"FROM scratch\n"), _hard_link("copy", "Dockerfile")), tmp_path)
    assert (tmp_path / "copy").read_bytes() == b"FROM scratch\n"
    assert (tmp_path / "copy").stat().st_ino == (tmp_path / "Dockerfile").stat().st_ino
