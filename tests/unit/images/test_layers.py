"""Layer tarballs: normalised and deterministic, digests that match their bytes, diffs whiteout-free."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from minicloud.images import layers as L

CLAMP = 1_700_000_000


def _add(tar: tarfile.TarFile, name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", mode: int = 0o644,
         uid: int = 0, gid: int = 0, linkname: str = "", mtime: int = CLAMP + 500,
         pax: dict[str, str] | None = None) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.uid, info.gid, info.mtime, info.linkname = kind, mode, uid, gid, mtime, linkname
    info.uname, info.gname = "someone", "somegroup"
    if kind == tarfile.CHRTYPE:
        info.devmajor, info.devminor = 1, 3
    if pax:
        info.pax_headers = pax
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def make_rootfs(path: Path, files: dict[str, bytes], extra: bool = True, perl: bytes = b"perl binary") -> Path:
    """A tar shaped like mmdebstrap's: ./ prefixes, /dev nodes, hostname, owners, xattrs, hard links."""
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        _add(tar, "./", tarfile.DIRTYPE, mode=0o755)
        if extra:
            _add(tar, "./dev/", tarfile.DIRTYPE, mode=0o755)
            _add(tar, "./dev/null", tarfile.CHRTYPE, mode=0o666)
            _add(tar, "./etc/", tarfile.DIRTYPE, mode=0o755)
            _add(tar, "./etc/hostname", data=b"buildhost\n")
            _add(tar, "./etc/resolv.conf", data=b"nameserver 10.0.0.1\n")
            _add(tar, "./usr/", tarfile.DIRTYPE, mode=0o755)
            _add(tar, "./usr/bin/", tarfile.DIRTYPE, mode=0o755)
            _add(tar, "./usr/bin/ping", data=b"\x7fELF ping", mode=0o755,
                 pax={"SCHILY.xattr.security.capability": "\x01\x00\x00\x02", "atime": "1.5"})
            _add(tar, "./usr/bin/perl", data=perl, mode=0o755)
            _add(tar, "./usr/bin/perl5.36", tarfile.LNKTYPE, linkname="./usr/bin/perl", mode=0o755)
            _add(tar, "./var/", tarfile.DIRTYPE, mode=0o755)
            _add(tar, "./var/mail/", tarfile.DIRTYPE, mode=0o2775, gid=8)
            _add(tar, "./bin", tarfile.SYMTYPE, linkname="usr/bin", mode=0o777)
        for name, data in files.items():
            _add(tar, name, data=data)
    return path


def layer_from(rootfs: Path, blob_dir: Path, names: set[str] | None = None) -> L.Blob:
    tree = L.RootfsTar.open(rootfs)
    try:
        return L.write_layer(L.rootfs_entries(tree, set(tree.members) if names is None else names, CLAMP), blob_dir)
    finally:
        tree.close()


def members(blob: L.Blob) -> list[tarfile.TarInfo]:
    with tarfile.open(blob.path, "r:gz") as tar:
        return tar.getmembers()


def test_digests_match_the_bytes(tmp_path: Path) -> None:
    blob = layer_from(make_rootfs(tmp_path / "root.tar", {"./var/mail/x": b"hello"}), tmp_path / "blobs")
    raw = blob.path.read_bytes()
    assert blob.digest == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert blob.path.name == blob.digest[7:]
    assert blob.size == len(raw)
    assert blob.diff_id == "sha256:" + hashlib.sha256(gzip.decompress(raw)).hexdigest()
    assert blob.diff_id != blob.digest


def test_output_is_deterministic(tmp_path: Path) -> None:
    first = layer_from(make_rootfs(tmp_path / "a.tar", {"./var/mail/x": b"hello"}), tmp_path / "b1")
    second = layer_from(make_rootfs(tmp_path / "b.tar", {"./var/mail/x": b"hello"}), tmp_path / "b2")
    assert (first.digest, first.diff_id, first.size) == (second.digest, second.diff_id, second.size)
    changed = layer_from(make_rootfs(tmp_path / "c.tar", {"./var/mail/x": b"hellO"}), tmp_path / "b3")
    assert changed.digest != first.digest


def test_entries_are_normalised(tmp_path: Path) -> None:
    blob = layer_from(make_rootfs(tmp_path / "root.tar", {"./var/mail/x": b"hello"}), tmp_path / "blobs")
    entries = members(blob)
    names = [m.name for m in entries]
    assert names == sorted(names)
    assert "" not in names and "." not in names and not any(n.startswith(("./", "/")) for n in names)
    assert not any(n.startswith("dev/") for n in names) and "etc/hostname" not in names
    assert "etc/resolv.conf" not in names
    assert not any(n.rsplit("/", 1)[-1].startswith(".wh.") for n in names)
    by_name = {m.name: m for m in entries}
    assert by_name["var/mail"].gid == 8 and by_name["var/mail"].mode == 0o2775
    assert all(m.uname == "" and m.gname == "" and m.mtime <= CLAMP for m in entries)
    ping = by_name["usr/bin/ping"]
    assert ping.pax_headers.get("SCHILY.xattr.security.capability") == "\x01\x00\x00\x02"
    assert "atime" not in ping.pax_headers
    assert by_name["bin"].issym() and by_name["bin"].linkname == "usr/bin"


def test_hard_links_point_inside_the_layer(tmp_path: Path) -> None:
    root = make_rootfs(tmp_path / "root.tar", {})
    whole = {m.name: m for m in members(layer_from(root, tmp_path / "b1"))}
    assert whole["usr/bin/perl"].isreg() and whole["usr/bin/perl5.36"].islnk()
    assert whole["usr/bin/perl5.36"].linkname == "usr/bin/perl"
    only_link = members(layer_from(root, tmp_path / "b2", {"usr/bin/perl5.36"}))
    assert [(m.name, m.isreg(), m.size) for m in only_link] == [("usr/bin/perl5.36", True, len(b"perl binary"))]


def test_whiteout_names_are_refused(tmp_path: Path) -> None:
    with pytest.raises(L.LayerError, match="whiteout"):
        L.RootfsTar.open(make_rootfs(tmp_path / "root.tar", {"./var/.wh.gone": b""}))


def test_diff_holds_changes_and_their_parents_only(tmp_path: Path) -> None:
    lower_blob = layer_from(make_rootfs(tmp_path / "lower.tar", {"./var/mail/keep": b"same"}), tmp_path / "b")
    upper = make_rootfs(tmp_path / "upper.tar", {"./var/mail/keep": b"same", "./usr/bin/new": b"new"},
                        perl=b"changed")
    changed, deleted = L.changed_paths(L.signatures(lower_blob.path), L.signatures(upper))
    assert deleted == set()
    # perl changed, so its hard link (same data) did too; mtimes alone never count
    assert changed == {"usr/bin/new", "usr/bin/perl", "usr/bin/perl5.36"}
    tree = L.RootfsTar.open(upper)
    try:
        assert L.with_parents(changed, tree.members) == changed | {"usr", "usr/bin"}
    finally:
        tree.close()


def test_diff_reports_deleted_paths(tmp_path: Path) -> None:
    lower = L.signatures(make_rootfs(tmp_path / "lower.tar", {"./var/mail/old": b"x"}))
    upper = L.signatures(make_rootfs(tmp_path / "upper.tar", {}))
    assert L.changed_paths(lower, upper) == (set(), {"var/mail/old"})


def test_mode_owner_and_xattr_changes_count(tmp_path: Path) -> None:
    base = {"./var/mail/f": b"x"}
    lower = L.signatures(make_rootfs(tmp_path / "a.tar", base))
    path = tmp_path / "b.tar"
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        _add(tar, "./var/mail/f", data=b"x", mode=0o600)
    assert L.signatures(path)["var/mail/f"] != lower["var/mail/f"]
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        _add(tar, "./var/mail/f", data=b"x", mtime=1)
    assert L.signatures(path)["var/mail/f"] == lower["var/mail/f"]
