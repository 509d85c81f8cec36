"""Commit's layer writer: overlayfs whiteouts become OCI whiteouts; runtime mount points are left out;
a layer written from an upper directory applies back to the same files."""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from minicloud.engine.content import ContentStore, Digest
from minicloud.engine.images.commit import OPAQUE_XATTR, adopt_snapshot, store_layer, write_layer
from minicloud.engine.images.store import MEDIA_LAYER_TAR, Layer
from minicloud.engine.snapshots.overlay import OverlaySnapshotter
from minicloud.engine.snapshots.unpack import chain_ids

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="whiteouts are devices and trusted.* xattrs")


def names(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: m for m in tar.getmembers()}


def upper_dir(tmp_path: Path) -> Path:
    upper = tmp_path / "upper"
    (upper / "app" / "sub").mkdir(parents=True)
    (upper / "app" / "sub" / "file").write_text("content")
    os.symlink("sub/file", upper / "app" / "link")
    os.link(upper / "app" / "sub" / "file", upper / "app" / "hard")
    (upper / "etc").mkdir()
    os.mknod(upper / "etc" / "group", stat.S_IFCHR | 0o600, os.makedev(0, 0))  # deleted
    (upper / "opaque").mkdir()
    os.setxattr(upper / "opaque", OPAQUE_XATTR, b"y")
    (upper / "opaque" / "kept").write_text("new")
    (upper / "proc").mkdir()  # runc's mount points: not part of the layer
    (upper / "etc" / "hosts").write_text("")
    return upper


@needs_root
def test_whiteouts_become_oci_whiteouts(tmp_path: Path) -> None:
    buf = io.BytesIO()
    write_layer(upper_dir(tmp_path), buf)
    members = names(buf.getvalue())
    assert "etc/.wh.group" in members and members["etc/.wh.group"].isfile() and members["etc/.wh.group"].size == 0
    assert "etc/group" not in members
    assert "opaque/.wh..wh..opq" in members and "opaque/kept" in members
    assert list(members).index("opaque") < list(members).index("opaque/.wh..wh..opq")
    assert "proc" not in members and "etc/hosts" not in members
    assert members["app/link"].issym() and members["app/link"].linkname == "sub/file"
    assert members["app/hard"].isfile() and members["app/sub/file"].islnk()  # the first seen holds the data
    assert members["app/sub/file"].linkname == "app/hard"
    assert members["app/sub/file"].uname == ""


@needs_root
def test_a_runtime_mount_point_with_content_is_kept(tmp_path: Path) -> None:
    upper = tmp_path / "upper"
    (upper / "etc").mkdir(parents=True)
    (upper / "etc" / "hosts").write_text("127.0.0.1 mine\n")
    buf = io.BytesIO()
    write_layer(upper, buf)
    assert "etc/hosts" in names(buf.getvalue())


@needs_root
def test_the_stored_layer_applies_back(tmp_path: Path) -> None:
    content = ContentStore(tmp_path / "content")
    layer = store_layer(content, upper_dir(tmp_path))
    assert layer.digest.startswith("sha256:") and layer.size == content.info(Digest(layer.digest)).size
    target = tmp_path / "applied"
    target.mkdir()
    out = subprocess.run([sys.executable, "-I", "-m", "minicloud.engine.snapshots.untar",
                          str(content.blob_path(Digest(layer.digest))), str(target)],
                         capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parents[3])
    assert json.loads(out.stdout)["diff_id"] == layer.digest
    assert (target / "app" / "sub" / "file").read_text() == "content"
    st = os.lstat(target / "etc" / "group")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert os.getxattr(target / "opaque", OPAQUE_XATTR) == b"y"



def test_a_layer_made_meanwhile_by_another_build_is_adopted_once(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # adopt_snapshot checks that the layer has no snapshot, then commits: a build or a pull making
    # the same layer in between made the commit a Conflict, and the build failed.
    snaps = OverlaySnapshotter(tmp_path / "snapshots")
    layer = Layer("sha256:" + "1" * 64, 10, MEDIA_LAYER_TAR)
    chain = chain_ids([layer.digest])[-1]
    snaps.prepare("first", None)
    snaps.prepare("second", None)
    assert adopt_snapshot(snaps, "first", [], layer) is True
    real_exists = snaps.exists
    answers = [False]  # the second build looked before the first one committed

    def racing_exists(key: str) -> bool:
        return answers.pop() if key == chain and answers else real_exists(key)

    monkeypatch.setattr(snaps, "exists", racing_exists)
    assert adopt_snapshot(snaps, "second", [], layer) is False
    assert snaps.stat("second").kind == "active"  # left to its owner
    assert snaps.stat(chain).kind == "committed"
