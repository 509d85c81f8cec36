"""A running ``minicloud up`` seen from /proc: its descendants, its S3 workers and writer, and which of
its processes holds the server's end of a client's TCP connection."""

from __future__ import annotations

import http.client
import os
from pathlib import Path

from tests.support.server import MinicloudServer


def parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def descendants(root: int) -> list[int]:
    parents = {int(entry): parent(int(entry)) for entry in os.listdir("/proc") if entry.isdigit()}
    found, frontier = [], [root]
    while frontier:
        pid = frontier.pop()
        children = [child for child, parent in parents.items() if parent == pid]
        found += children
        frontier += children
    return found


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def s3_workers(srv: MinicloudServer) -> list[int]:
    """The server's S3 workers (forked ``minicloud.cli up`` processes)."""
    assert srv.process is not None
    return [pid for pid in descendants(srv.process.pid) if b"minicloud.cli" in cmdline(pid)]


def small_writers(srv: MinicloudServer) -> list[int]:
    assert srv.process is not None
    return [pid for pid in descendants(srv.process.pid) if b"minicloud.storage.blobs.writerproc" in cmdline(pid)]


def serving_pid(srv: MinicloudServer, conn: http.client.HTTPConnection) -> int | None:
    """The process (the server or one of its workers) holding the server's end of ``conn``."""
    assert conn.sock is not None and srv.process is not None
    client_port = conn.sock.getsockname()[1]
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == srv.port and int(fields[2].split(":")[1], 16) == client_port:
            inode = fields[9]
    if inode is None:
        return None
    for pid in [srv.process.pid, *s3_workers(srv)]:
        try:
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]" for fd in os.listdir(f"/proc/{pid}/fd")):
                return pid
        except OSError:
            continue
    return None
