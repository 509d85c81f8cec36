"""The S3 scrub controller against a real ``minicloud up`` (scrubbing every second): a replica
copy corrupted or deleted on disk (a file, or a row of a zone's small-blob pack) is found and
repaired from a good zone; a one-zone object is not copied to other zones; an unreferenced blob
older than the orphan grace period (a packed row or a file) is removed, referenced ones stay."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.server import MinicloudServer

ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")


@pytest.fixture(scope="module")
def scrubbing_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MinicloudServer]:
    srv = MinicloudServer(Path(tmp_path_factory.mktemp("scrub")), env={"MINICLOUD_S3_SCRUB_SECONDS": "1",
                                                                        "MINICLOUD_S3_ORPHAN_SECONDS": "5"})
    srv.start()
    yield srv
    srv.stop()


def copies(server: MinicloudServer, name: str) -> dict[str, Path]:
    found = {}
    for zone in ZONES:
        path = server.data_dir / "s3" / zone / "sha256" / name[:2] / name
        if path.exists():
            found[zone] = path
    return found


def pack(server: MinicloudServer, zone: str) -> sqlite3.Connection:
    return sqlite3.connect(server.data_dir / "s3" / zone / "small-pack.sqlite", isolation_level=None, timeout=30)


def packed(server: MinicloudServer, name: str) -> dict[str, bytes]:
    """The zones whose pack holds the blob, with its bytes there."""
    found = {}
    for zone in ZONES:
        row = pack(server, zone).execute("SELECT data FROM blobs WHERE digest=?", (name,)).fetchone()
        if row is not None:
            found[zone] = bytes(row[0])
    return found


def newest_packed(server: MinicloudServer, zone: str) -> str:
    return str(pack(server, zone).execute("SELECT digest FROM blobs ORDER BY created DESC LIMIT 1").fetchone()[0])


def newest_blob(server: MinicloudServer, zone: str) -> str:
    root = server.data_dir / "s3" / zone / "sha256"
    return max((p for p in root.rglob("*") if p.is_file() and "." not in p.name),
               key=lambda p: p.stat().st_mtime_ns).name


def intact(path: Path) -> bool:
    return path.exists() and hashlib.sha256(path.read_bytes()).hexdigest() == path.name


def wait_for(check: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError("the scrubber did not repair the replica in time")


def test_corrupt_and_missing_copies_are_repaired(scrubbing_server: MinicloudServer) -> None:
    s3 = scrubbing_server.client("s3")
    bucket = f"scrub-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    body = os.urandom(300_000)
    s3.put_object(Bucket=bucket, Key="k", Body=body)
    name = newest_blob(scrubbing_server, "us-east-1a")
    wait_for(lambda: len(copies(scrubbing_server, name)) == 3)
    paths = copies(scrubbing_server, name)
    corrupted = paths["us-east-1b"]
    corrupted.chmod(0o600)
    data = bytearray(corrupted.read_bytes())
    data[100] ^= 0x01
    corrupted.write_bytes(bytes(data))
    paths["us-east-1c"].unlink()
    assert not intact(corrupted) and not paths["us-east-1c"].exists()
    wait_for(lambda: intact(corrupted) and intact(paths["us-east-1c"]))
    assert corrupted.with_suffix(".corrupt").exists()  # the bad copy was set aside, not silently dropped
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == body


def test_corrupt_and_missing_packed_copies_are_repaired(scrubbing_server: MinicloudServer) -> None:
    s3 = scrubbing_server.client("s3")
    bucket = f"scrub-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    body = os.urandom(5000)
    s3.put_object(Bucket=bucket, Key="small", Body=body)
    name = newest_packed(scrubbing_server, "us-east-1a")
    wait_for(lambda: len(packed(scrubbing_server, name)) == 3)
    assert copies(scrubbing_server, name) == {}  # small copies are rows of each zone's pack, not files
    good = packed(scrubbing_server, name)["us-east-1a"]
    bad = bytearray(good)
    bad[100] ^= 0x01
    pack(scrubbing_server, "us-east-1b").execute("UPDATE blobs SET data=? WHERE digest=?", (bytes(bad), name))
    pack(scrubbing_server, "us-east-1c").execute("DELETE FROM blobs WHERE digest=?", (name,))
    wait_for(lambda: packed(scrubbing_server, name) == dict.fromkeys(ZONES, good))
    assert hashlib.sha256(good).hexdigest() == name
    assert s3.get_object(Bucket=bucket, Key="small")["Body"].read() == body


def test_one_zone_objects_stay_in_one_zone(scrubbing_server: MinicloudServer) -> None:
    s3 = scrubbing_server.client("s3")
    bucket = f"scrub-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=os.urandom(1000), StorageClass="ONEZONE_IA")
    newest = {zone: newest_packed(scrubbing_server, zone) for zone in ZONES}
    held = [name for name in newest.values() if len(packed(scrubbing_server, name)) == 1]
    assert held, "the one-zone object's blob was not found on exactly one zone"
    time.sleep(3)  # several scrub passes
    assert len(packed(scrubbing_server, held[0])) == 1


def test_orphaned_blobs_are_removed_and_referenced_ones_stay(scrubbing_server: MinicloudServer) -> None:
    s3 = scrubbing_server.client("s3")
    bucket = f"scrub-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    kept = os.urandom(3000)
    s3.put_object(Bucket=bucket, Key="kept", Body=kept)
    kept_name = newest_packed(scrubbing_server, "us-east-1a")
    orphan_row = os.urandom(2000)
    row_name = hashlib.sha256(orphan_row).hexdigest()
    with pack(scrubbing_server, "us-east-1a") as conn:  # copies of a PUT whose metadata never committed
        key = int(row_name[:16], 16)
        conn.execute("INSERT INTO blobs (id, digest, size, created, data) VALUES (?, ?, ?, 0, ?)",
                     (key - (1 << 64) if key >= 1 << 63 else key, row_name, len(orphan_row), orphan_row))
    orphan_file = os.urandom(400_000)
    file_name = hashlib.sha256(orphan_file).hexdigest()
    path = scrubbing_server.data_dir / "s3" / "us-east-1b" / "sha256" / file_name[:2] / file_name
    path.write_bytes(orphan_file)
    os.utime(path, (time.time() - 3600, time.time() - 3600))
    young = os.urandom(1000)  # unreferenced but new: a PUT about to commit its metadata keeps it
    young_name = hashlib.sha256(young).hexdigest()
    young_path = scrubbing_server.data_dir / "s3" / "us-east-1c" / "sha256" / young_name[:2] / young_name
    young_path.write_bytes(young)
    os.utime(young_path, (time.time() + 3600, time.time() + 3600))  # (young for the whole test, however slow)
    wait_for(lambda: packed(scrubbing_server, row_name) == {} and not path.exists(), timeout=20)
    assert young_path.exists()
    assert len(packed(scrubbing_server, kept_name)) == 3  # referenced: kept everywhere
    assert s3.get_object(Bucket=bucket, Key="kept")["Body"].read() == kept
    young_path.unlink()
