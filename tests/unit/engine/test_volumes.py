from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from minicloud.engine.errors import Conflict, InvalidArgument, NotFound, NotImplementedYet
from minicloud.engine.volumes.mounts import (
    MountSpec,
    oci_mount,
    ordered,
    parse_bind,
    parse_mount,
    populate,
    requested,
)
from minicloud.engine.volumes.store import VolumeStore


def test_bind_specs() -> None:
    assert parse_bind("data:/var/lib/data") == MountSpec("volume", "data", "/var/lib/data")
    ro = parse_bind("/srv/www/:/www:ro")
    assert (ro.type, ro.source, ro.destination, ro.readonly, ro.create_source) == ("bind", "/srv/www", "/www", True,
                                                                                   True)
    anonymous = parse_bind("/cache")
    assert anonymous.type == "volume" and anonymous.anonymous and anonymous.source == ""
    for bad in ("data:relative", "a:/b:bogus", "./rel:/x", "x:/"):
        with pytest.raises(InvalidArgument):
            parse_bind(bad)


def test_mount_specs() -> None:
    bind = parse_mount({"Type": "bind", "Source": "/h", "Target": "/c", "ReadOnly": True})
    assert (bind.type, bind.readonly, bind.create_source) == ("bind", True, False)
    volume = parse_mount({"Type": "volume", "Target": "/v", "VolumeOptions": {"NoCopy": True}})
    assert volume.anonymous and volume.nocopy
    tmpfs = parse_mount({"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1024, "Mode": 0o1777}})
    assert tmpfs.options == ["size=1024", "mode=1777"]
    with pytest.raises(NotImplementedYet):
        parse_mount({"Type": "npipe", "Target": "/p"})
    with pytest.raises(InvalidArgument):
        parse_mount({"Type": "bind", "Source": "rel", "Target": "/p"})


def test_requested_adds_image_volumes_and_refuses_duplicates() -> None:
    specs = requested({"Binds": ["d:/data"], "Tmpfs": {"/run": "size=1m"}}, {"/data": {}, "/logs": {}})
    assert [(s.type, s.destination, s.anonymous) for s in specs] == [
        ("volume", "/data", False), ("tmpfs", "/run", False), ("volume", "/logs", True)]
    with pytest.raises(InvalidArgument, match="Duplicate mount point"):
        requested({"Binds": ["a:/x"], "Mounts": [{"Type": "volume", "Source": "b", "Target": "/x"}]}, None)


def test_oci_mounts_and_order() -> None:
    specs = [MountSpec("bind", "/h", "/a/b", readonly=True), MountSpec("volume", "v", "/a")]
    assert [s.destination for s in ordered(specs)] == ["/a", "/a/b"]
    assert oci_mount(specs[0], "/h")["options"] == ["rbind", "rprivate", "ro"]
    tmpfs = oci_mount(MountSpec("tmpfs", "", "/t", options=["size=1m"]), "")
    assert tmpfs["type"] == "tmpfs" and "size=1m" in tmpfs["options"]


def test_store_create_remove(tmp_path: Path) -> None:
    store = VolumeStore(tmp_path)
    volume = store.create("data", "t", labels={"a": "b"})
    assert store.create("data", "later") is volume  # Docker's create is idempotent
    assert store.data("data").is_dir()
    anonymous = store.create(None, "t", anonymous=True)
    assert anonymous.anonymous and len(anonymous.name) == 64
    assert set(VolumeStore(tmp_path).volumes) == {"data", anonymous.name}  # read back from disk
    with pytest.raises(Conflict, match="in use"):
        store.remove("data", ["c1"])
    store.remove("data", [])
    assert not (tmp_path / "data").exists()
    with pytest.raises(NotFound):
        store.get("data")
    store.remove("data", [], force=True)
    with pytest.raises(InvalidArgument):
        store.create("bad/name", "t")
    with pytest.raises(NotImplementedYet):
        store.create("x", "t", options={"type": "nfs"})


def test_populate_copies_the_image_files_into_an_empty_volume(tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs"
    (rootfs / "etc" / "app").mkdir(parents=True)
    (rootfs / "etc" / "app" / "conf").write_text("x=1\n")
    os.symlink("conf", rootfs / "etc" / "app" / "link")
    os.symlink("/", rootfs / "escape")
    data = tmp_path / "vol"
    data.mkdir()
    populate(data, rootfs, "/etc/app")
    assert (data / "conf").read_text() == "x=1\n" and os.readlink(data / "link") == "conf"
    (data / "conf").write_text("changed\n")
    populate(data, rootfs, "/etc/app")  # not empty any more: left alone
    assert (data / "conf").read_text() == "changed\n"
    other = tmp_path / "vol2"
    other.mkdir()
    populate(other, rootfs, "/escape/etc")  # a link out of the rootfs is never followed
    assert list(other.iterdir()) == []


def _race(racers: int, work: Callable[[], object]) -> list[object]:
    """``work`` run by ``racers`` threads at once: what each returned or raised."""
    start = threading.Barrier(racers)

    def one(_: int) -> object:
        start.wait()
        try:
            return work()
        except Exception as exc:
            return exc

    with ThreadPoolExecutor(racers) as pool:
        return list(pool.map(one, range(racers)))


def test_racing_creates_of_one_name_make_one_volume(tmp_path: Path) -> None:
    # Two `docker run -v data:/x` at once both create `data` (in worker threads). Before, both
    # passed the "exists?" check and wrote the one volume.json.tmp: one of them failed with
    # FileNotFoundError, and they were handed different Volume objects.
    store = VolumeStore(tmp_path)
    for attempt in range(30):
        name = f"data{attempt}"
        results = _race(8, lambda name=name: store.create(name, "now"))
        assert all(r is store.volumes[name] for r in results), results
        assert sorted(p.name for p in (tmp_path / name).iterdir()) == ["_data", "volume.json"]
    assert sorted(VolumeStore(tmp_path).volumes) == sorted(store.volumes)

