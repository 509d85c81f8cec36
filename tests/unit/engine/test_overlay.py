from __future__ import annotations

from pathlib import Path

import pytest

from minicloud.engine.errors import Conflict, NotFound
from minicloud.engine.snapshots.overlay import OverlaySnapshotter
from minicloud.engine.snapshots.unpack import chain_ids


def test_chain_ids() -> None:
    a, b = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    chain = chain_ids([a, b])
    assert chain[0] == a
    assert chain[1].startswith("sha256:") and chain[1] not in (a, b)
    assert chain_ids([a, b]) == chain


def test_mounts_are_returned_not_performed(tmp_path: Path) -> None:
    snaps = OverlaySnapshotter(tmp_path)
    mounts = snaps.prepare("extract-1", None)
    assert mounts[0].type == "overlay"
    snaps.commit("layer1", "extract-1")
    snaps.prepare("extract-2", "layer1")
    snaps.commit("layer2", "extract-2")
    # a committed single layer is a read-only bind mount; two layers, an overlay without upper
    assert snaps.mounts("layer1")[0].type == "bind"
    (view,) = snaps.mounts("layer2")
    assert view.options == (f"lowerdir={snaps.fs_dir('layer2')}:{snaps.fs_dir('layer1')}",)
    (rw,) = snaps.prepare("container", "layer2")
    options = dict(o.split("=", 1) for o in rw.options if "=" in o)
    assert options["lowerdir"] == f"{snaps.fs_dir('layer2')}:{snaps.fs_dir('layer1')}"
    assert options["upperdir"] == str(snaps.fs_dir("container"))
    assert Path(options["workdir"]).is_dir()


def test_rules_and_persistence(tmp_path: Path) -> None:
    snaps = OverlaySnapshotter(tmp_path)
    snaps.prepare("a", None)
    with pytest.raises(Conflict):
        snaps.prepare("a", None)
    with pytest.raises(Conflict):
        snaps.prepare("b", "a")  # parent must be committed
    snaps.commit("base", "a")
    snaps.prepare("child", "base")
    with pytest.raises(Conflict):
        snaps.remove("base")  # has a child
    reopened = OverlaySnapshotter(tmp_path)
    assert set(reopened.list_keys()) == {"base", "child"}
    assert reopened.stat("child").parent == "base"
    reopened.remove("child")
    reopened.remove("base")
    with pytest.raises(NotFound):
        reopened.stat("base")
    assert not list((tmp_path / "snapshots").iterdir())


def test_orphan_directories_swept(tmp_path: Path) -> None:
    OverlaySnapshotter(tmp_path)
    (tmp_path / "snapshots" / "99" / "fs").mkdir(parents=True)
    OverlaySnapshotter(tmp_path)
    assert not (tmp_path / "snapshots" / "99").exists()
