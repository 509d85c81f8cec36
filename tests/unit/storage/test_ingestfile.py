"""An ingest's copy on one replica: buffered or direct I/O, the bytes are the bytes appended."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from minicloud.storage.blobs.ingestfile import BLOCK, IngestFile


@pytest.mark.parametrize("direct", [False, True])
def test_appends_of_any_size_give_the_same_bytes(tmp_path: Path, direct: bool) -> None:
    rng = random.Random(7)
    data = os.urandom(3 * (4 << 20) + 12345)
    f = IngestFile(tmp_path / "data", direct)
    sizes = [1, BLOCK - 1, BLOCK, BLOCK + 1, 65536, 4 << 20, 100, 3]
    written = 0
    while written < len(data):
        n = min(rng.choice(sizes), len(data) - written)
        f.append(data[written:written + n], early_writeback=True)
        written += n
        assert f.tell() == written
    f.flush()
    assert not f.direct
    os.fsync(f.fileno())
    f.close()
    assert (tmp_path / "data").read_bytes() == data


def test_direct_io_is_used_where_the_file_system_has_it(tmp_path: Path) -> None:
    probe = tmp_path / "probe"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_DIRECT)
        os.close(fd)
        supported = True
    except OSError:
        supported = False
    f = IngestFile(tmp_path / "data", direct=True)
    assert f.direct is supported
    f.close()


def test_resume_truncate_and_an_unaligned_start(tmp_path: Path) -> None:
    path = tmp_path / "data"
    f = IngestFile(path, direct=True)
    f.append(b"a" * 10000)
    f.close()
    assert path.read_bytes() == b"a" * 10000
    f = IngestFile(path, direct=True)  # 10000 is not a whole number of blocks: buffered
    assert not f.direct and f.tell() == 10000
    f.truncate(5000)
    f.append(b"b" * 3)
    f.close()
    assert path.read_bytes() == b"a" * 5000 + b"bbb"
    f = IngestFile(path, direct=False)
    f.seek(4096)
    f.close()
    assert path.stat().st_size == 4096


@pytest.mark.parametrize("direct", [False, True])
def test_appends_of_chunk_lists_give_the_same_bytes(tmp_path: Path, direct: bool) -> None:
    rng = random.Random(11)
    data = os.urandom(6 << 20)
    f = IngestFile(tmp_path / "data", direct)
    written = 0
    while written < len(data):
        chunks: list[bytes | bytearray] = []
        for _ in range(rng.choice([1, 2, 64, 700])):  # 700: more buffers than one pwritev takes
            n = min(rng.choice([1, 100, BLOCK, 65536, 70001]), len(data) - written)
            chunks.append(data[written:written + n])
            written += n
        f.append_all(chunks, early_writeback=True)
        assert f.tell() == written
    f.close()
    assert (tmp_path / "data").read_bytes() == data
