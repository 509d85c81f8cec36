"""Layer application: OCI whiteouts become overlayfs whiteouts; nothing escapes the target."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import stat
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from minicloud.engine.snapshots.untar import whiteout_target

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="applying layers chroots and makes devices")


def layer(entries: list[tuple[str, str, bytes | str]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, kind, value in entries:
            info = tarfile.TarInfo(name)
            if kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif kind == "file":
                data = value if isinstance(value, bytes) else value.encode()
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
            elif kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, str(value)
                tar.addfile(info)
            elif kind == "hardlink":
                info.type, info.linkname = tarfile.LNKTYPE, str(value)
                tar.addfile(info)
    return buf.getvalue()


def apply(tmp_path: Path, data: bytes) -> dict[str, object]:
    blob = tmp_path / "blob"
    blob.write_bytes(data)
    target = tmp_path / "fs"
    target.mkdir(exist_ok=True)
    out = subprocess.run([sys.executable, "-m", "minicloud.engine.snapshots.untar", str(blob), str(target)],
                         capture_output=True, check=False)
    result: dict[str, object] = json.loads(out.stdout.decode().strip().splitlines()[-1])
    return result


def test_whiteout_names() -> None:
    assert whiteout_target("etc/.wh.passwd") == ("etc/passwd", False)
    assert whiteout_target("etc/.wh..wh..opq") == ("etc", True)
    assert whiteout_target(".wh..wh..opq") == (".", True)
    assert whiteout_target("etc/passwd") is None


@needs_root
def test_files_links_and_diff_id(tmp_path: Path) -> None:
    data = layer([("bin", "dir", ""), ("bin/tool", "file", "#!/bin/sh\n"), ("bin/alias", "symlink", "tool"),
                  ("bin/hard", "hardlink", "bin/tool")])
    result = apply(tmp_path, data)
    assert result["diff_id"] == "sha256:" + hashlib.sha256(data).hexdigest()
    fs = tmp_path / "fs"
    assert (fs / "bin" / "tool").read_text() == "#!/bin/sh\n"
    assert os.readlink(fs / "bin" / "alias") == "tool"
    assert (fs / "bin" / "hard").stat().st_ino == (fs / "bin" / "tool").stat().st_ino


@needs_root
def test_gzip_layer_diff_id_is_uncompressed_digest(tmp_path: Path) -> None:
    data = layer([("a.txt", "file", "a")])
    result = apply(tmp_path, gzip.compress(data))
    assert result["diff_id"] == "sha256:" + hashlib.sha256(data).hexdigest()


@needs_root
def test_whiteouts_become_overlay_whiteouts(tmp_path: Path) -> None:
    data = layer([("etc", "dir", ""), ("etc/.wh.passwd", "file", ""), ("var", "dir", ""),
                  ("var/.wh..wh..opq", "file", ""), ("var/new", "file", "x")])
    apply(tmp_path, data)
    fs = tmp_path / "fs"
    st = os.lstat(fs / "etc" / "passwd")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(0, 0)
    assert not (fs / "etc" / ".wh.passwd").exists()
    assert os.getxattr(fs / "var", "trusted.overlay.opaque") == b"y"
    assert (fs / "var" / "new").read_text() == "x"


@needs_root
def test_nothing_escapes_the_target(tmp_path: Path) -> None:
    data = layer([("escape", "symlink", "/"), ("escape/pwned", "file", "x"),
                  ("up", "symlink", "../../.."), ("up/pwned2", "file", "x"),
                  ("../../dotdot", "file", "y"), ("/abs", "file", "z")])
    assert "diff_id" in apply(tmp_path, data)
    fs = tmp_path / "fs"
    assert (fs / "pwned").read_text() == "x" and (fs / "pwned2").read_text() == "x"
    assert not (tmp_path / "pwned").exists() and not Path("/pwned2").exists()
    assert not (tmp_path / "dotdot").exists() and not (tmp_path.parent / "dotdot").exists()
    assert (fs / "dotdot").read_text() == "y" and (fs / "abs").read_text() == "z"


@needs_root
def test_dangling_parent_symlink_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    result = apply(tmp_path, layer([("escape", "symlink", str(outside)), ("escape/pwned", "file", "x")]))
    assert "error" in result
    assert not (outside / "pwned").exists()


@needs_root
def test_corrupt_layer_is_an_error(tmp_path: Path) -> None:
    result = apply(tmp_path, gzip.compress(layer([("a", "file", os.urandom(50000))]))[:20000])
    assert "error" in result
