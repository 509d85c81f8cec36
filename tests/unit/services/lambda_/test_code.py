"""Deployment packages: Lambda's checks on zips, and how they are unpacked for /var/task."""

from __future__ import annotations

import io
import os
import stat
import zipfile
from pathlib import Path

import pytest

from minicloud.services.lambda_.code import CodeStore, check_zip
from minicloud.services.lambda_.errors import InvalidParameterValueException, RequestEntityTooLargeException


def make_zip(entries: dict[str, tuple[bytes, int]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, (content, mode) in entries.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = mode << 16
            archive.writestr(info, content)
    return buffer.getvalue()


def test_a_readable_zip_passes() -> None:
    check_zip(make_zip({"app.py": (b"x = 1\n", 0o100644)}))


@pytest.mark.parametrize("data", [b"", b"not a zip", b"PK\x03\x04garbage"])
def test_unreadable_zips_are_refused(data: bytes) -> None:
    with pytest.raises(InvalidParameterValueException, match="Could not unzip uploaded file"):
        check_zip(data)


def test_paths_out_of_the_task_root_are_refused() -> None:
    with pytest.raises(InvalidParameterValueException):
        check_zip(make_zip({"../evil.py": (b"", 0o100644)}))


def test_a_corrupt_member_is_refused() -> None:
    data = bytearray(make_zip({"app.py": (b"hello world" * 100, 0o100644)}))
    index = data.index(b"hello world")
    data[index] ^= 0xFF
    with pytest.raises(InvalidParameterValueException):
        check_zip(bytes(data))


def test_over_50_mb_is_too_large(tmp_path: Path) -> None:
    store = CodeStore(tmp_path)
    with pytest.raises(RequestEntityTooLargeException):
        store.put(b"\0" * (50 * 1024 * 1024 + 1))
    assert not list((tmp_path / "zips").iterdir())


def test_put_keeps_the_zip_by_digest_and_unpacks_it_with_lambdas_modes(tmp_path: Path) -> None:
    store = CodeStore(tmp_path)
    data = make_zip({"bootstrap": (b"#!/bin/sh\n", 0o100700), "lib/util.py": (b"", 0o100600),
                     "link": (b"lib/util.py", stat.S_IFLNK | 0o777)})
    stored = store.put(data)
    assert store.read(stored.sha256_hex) == data and stored.size == len(data)
    task = store.task_dir(stored.sha256_hex)
    assert stat.S_IMODE(os.stat(task / "bootstrap").st_mode) == 0o755
    assert stat.S_IMODE(os.stat(task / "lib" / "util.py").st_mode) == 0o644
    assert os.readlink(task / "link") == "lib/util.py"
    assert store.put(data) == stored  # idempotent
    store.discard(stored.sha256_hex)
    assert not task.exists() and not store.zip_path(stored.sha256_hex).exists()


def test_links_out_of_the_task_root_are_skipped(tmp_path: Path) -> None:
    store = CodeStore(tmp_path)
    stored = store.put(make_zip({"escape": (b"/etc/passwd", stat.S_IFLNK | 0o777)}))
    assert not (store.task_dir(stored.sha256_hex) / "escape").exists()
