"""Has a SQLite database changed since a moment ago? Answered from shared memory, without a query.

In WAL mode every connection to a database, in every process, shares the *WAL-index* (the
``<database>-shm`` file, mapped into memory). It begins with a header that the committing
connection rewrites on every commit: a change counter, the last valid frame of the WAL, its salts
and checksums (the layout is part of SQLite's documented file format, "WAL-index format"). Equal
headers mean that nothing was committed in between; different ones (a commit, a checkpoint that
restarted the WAL, a torn read while a commit is being published) mean "may have changed", which
is always safe to assume. Reading the 48 bytes costs a fraction of a microsecond; ``PRAGMA
data_version`` would cost a statement and a read transaction.

The file lives as long as some connection to the database is open (SQLite removes it with the
last one), so :class:`ChangeWatch` keeps a connection of its own open for as long as it watches.

The ``-shm`` file is opened and mapped once per process and path, and both are kept until the last
watch of it closes: closing any descriptor of a file drops every POSIX lock the process holds on
it, SQLite's included (and a Python ``mmap`` holds a duplicate descriptor, which its ``close``
closes). Without its lock on the WAL-index, the process no longer counts as a user
of the database: the next process to open it (``minicloud accounts create``, a restarted S3
worker) believed itself the first, truncated the ``-shm`` to 3 bytes and rebuilt it, and a server
touching its mapping meanwhile died of SIGBUS (seen in a test run; reproduced with ``strace``: the
newcomer's ``F_WRLCK`` on the lock byte succeeded, then ``ftruncate(shm, 3)``).
"""

from __future__ import annotations

import mmap
import os
import sqlite3
import threading
from pathlib import Path

_HEADER = 48  # the first copy of the WAL-index header (a second copy follows it)

class _Held:
    """One process's descriptor and mapping of a ``-shm`` file, and how many watches use them."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        self.map: mmap.mmap | None = None
        if os.fstat(self.fd).st_size >= 2 * _HEADER:
            self.map = mmap.mmap(self.fd, 2 * _HEADER, mmap.MAP_SHARED, mmap.PROT_READ)
        self.users = 0


_lock = threading.Lock()
_held: dict[str, _Held] = {}


def _hold_shm(path: str) -> mmap.mmap | None:
    """This process's mapping of ``path`` (made once: see the module's notes), None when the file
    is too short to hold a header (it stays held all the same); OSError."""
    with _lock:
        held = _held.get(path)
        if held is None:
            held = _held[path] = _Held(path)
        held.users += 1
        return held.map


def _release_shm(path: str) -> None:
    with _lock:
        held = _held.get(path)
        if held is None:
            return
        held.users -= 1
        if held.users <= 0:
            del _held[path]
            if held.map is not None:
                held.map.close()
            os.close(held.fd)


class ChangeWatch:
    """A token for the database's committed state: equal tokens, no commit in between."""

    def __init__(self, database: Path) -> None:
        self._database = database
        self._keeper: sqlite3.Connection | None = None
        self._map: mmap.mmap | None = None
        self._shm: str | None = None  # the -shm path this watch holds (``_hold_shm``)
        self._unavailable = False

    def token(self) -> bytes | None:
        """The current header, or None when it cannot be read (not WAL mode, no database): then
        always None, decided on the first call."""
        mapped = self._map
        if mapped is None:
            if self._unavailable:
                return None
            mapped = self._open()
            if mapped is None:
                self._unavailable = True
                return None
        return mapped[:_HEADER]

    def _open(self) -> mmap.mmap | None:
        if not self._database.is_file():
            return None
        try:
            keeper = sqlite3.connect(self._database, check_same_thread=False)
            mode = keeper.execute("PRAGMA journal_mode").fetchone()
            keeper.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()  # maps the WAL-index
        except sqlite3.Error:
            return None
        if not mode or str(mode[0]).lower() != "wal":
            keeper.close()
            return None
        shm = os.path.realpath(f"{self._database}-shm")
        try:
            self._map = _hold_shm(shm)
        except OSError:
            keeper.close()
            return None
        self._shm, self._keeper = shm, keeper
        return self._map

    def close(self) -> None:
        """Stop watching (after the process's other connections to the database closed: the last
        watch of a path closes its descriptor, which drops the process's locks on it)."""
        self._map = None  # (the mapping is the process's: ``_release_shm`` closes it with the last watch)
        if self._keeper is not None:
            self._keeper.close()
            self._keeper = None
        if self._shm is not None:
            _release_shm(self._shm)
            self._shm = None
