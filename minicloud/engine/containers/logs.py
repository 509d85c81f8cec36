"""Reading the json-file log: ``docker logs`` (tail, since/until, timestamps, follow) and the
output half of ``attach``, and Docker's stream multiplexing (8-byte frame headers).
"""

from __future__ import annotations

import asyncio
import json
import os
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

STDIN, STDOUT, STDERR = 0, 1, 2
_STREAMS = {"stdout": STDOUT, "stderr": STDERR}
POLL_SECONDS = 0.02


@dataclass(frozen=True, slots=True)
class Entry:
    stream: int
    data: bytes
    time: str


def frame(stream: int, data: bytes) -> bytes:
    """Docker's multiplexed stream: ``[stream, 0, 0, 0, size(4, big-endian)]`` then the data."""
    return struct.pack(">BxxxI", stream, len(data)) + data


def parse_line(line: bytes) -> Entry | None:
    try:
        doc = json.loads(line)
    except ValueError:
        return None
    return Entry(_STREAMS.get(doc.get("stream", "stdout"), STDOUT), doc.get("log", "").encode(), doc.get("time", ""))


def timestamp(value: str) -> float:
    """Seconds since the epoch for RFC 3339 (nanoseconds allowed) or Docker's ``secs.nanos``."""
    if not value:
        return 0.0
    try:
        return float(value)
    except ValueError:
        pass
    text = value.rstrip("Z")
    main, _, frac = text.partition(".")
    seconds = datetime.fromisoformat(main + "+00:00").timestamp()
    return seconds + (float("0." + frac) if frac else 0.0)


def read_entries(path: Path, tail: int | None) -> tuple[list[Entry], int]:
    """All (or the last ``tail``) entries, and the offset where following continues."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return [], 0
    end = data.rfind(b"\n") + 1
    lines = data[:end].splitlines()
    if tail is not None:
        lines = lines[-tail:] if tail > 0 else []
    entries = [e for e in (parse_line(line) for line in lines) if e is not None]
    return entries, end


def render(entry: Entry, *, tty: bool, timestamps: bool) -> bytes:
    data = entry.data
    if timestamps:
        data = entry.time.encode() + b" " + data
    return data if tty else frame(entry.stream, data)


async def follow(path: Path, offset: int, running: Callable[[], bool],
                 nap: Callable[[float], Awaitable[object]] = asyncio.sleep,
                 opened: BinaryIO | None = None) -> AsyncIterator[Entry]:
    """Entries appended after ``offset``, until ``running()`` turns false and the file is drained.
    Between polls it ``nap``s; a nap that returns early on a state change ends the follow sooner.
    The file stays open once found, so a removal (``--rm``) cannot cut the last lines off."""
    pending = b""
    log = opened
    try:
        while True:
            alive = running()
            if log is None:
                log = _open_at(path, offset)
            chunk = b""
            if log is not None and os.fstat(log.fileno()).st_size > log.tell():
                chunk = await asyncio.to_thread(log.read, 1 << 20)
            if chunk:
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    entry = parse_line(line)
                    if entry is not None:
                        yield entry
                continue
            if not alive:
                return
            await nap(POLL_SECONDS)
    finally:
        if log is not None:
            log.close()


def open_for_attach(path: Path) -> BinaryIO:
    """The log opened (created if need be: the supervisor appends to the same file) before the
    container starts, so that an attach sees every line even if the container is gone at once."""
    fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o640)
    log = os.fdopen(fd, "rb")
    log.seek(0, os.SEEK_END)
    return log


def _open_at(path: Path, offset: int) -> BinaryIO | None:
    try:
        log = open(path, "rb")  # noqa: SIM115 - closed by follow
    except FileNotFoundError:
        return None
    log.seek(offset)
    return log


def log_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
