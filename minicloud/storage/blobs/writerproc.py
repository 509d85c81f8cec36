"""Small blobs written by a helper process: the storage's system calls off the server's GIL.

S3's replicas keep small copies in a per-zone SQLite pack written with group commit (``pack.py``:
one transaction and one WAL fsync per batch); larger ones, and replicas without a pack, as files
(six system calls a copy: ``small.write_batch``). This module runs those writers in a child
process (``python -m minicloud.storage.blobs.writerproc``) with its own interpreter and GIL, on
the machine's other core:

    server: submit() ==(one message per copy, from the caller's thread)==> child: main thread
                      reads every request waiting, commits each packed root's batch (PackWriter.commit)
    server: done(err) <- receiver thread <==(one message per committed batch)== child: acks
                      (copies for roots without a pack, or too large for it: SmallBlobWriter threads)

Why a process, measured with the pack (4 KiB PUTs, ONEZONE_IA, 16 connections, 2 shared cores):
the pack writer's Python and SQLite work, run by threads of the server
(``MINICLOUD_SMALL_WRITER=threads``), adds ~80-100 us of CPU per copy to the one core the event
loop already saturates: ~900 PUT/s against ~1,050-1,600 PUT/s with the child, whose socket
message costs the server less. Why the child commits on its one thread instead of a writer
thread per root: no GIL hand-offs between a reader thread and writers; the child's CPU per copy
fell from ~215 us (82 user + 134 sys) to ~150 us (65 user + 85 sys) for ONEZONE_IA, and from ~338
to ~230 us for STANDARD (three copies per object).

Each request names the replica root (and whether it has a pack), the digest and carries the
bytes; the child answers with the request's number and 0 once that copy is durable (its batch's
transaction committed, or the file fsynced, renamed into place and its directory fsynced), or an
errno. A request may also remove a replica's copy of a blob (a released S3 blob: its row, or
file, is removed off the server's GIL too). Nothing is acknowledged before its copy is durable,
exactly as with in-process writes.

The child ends when its socket closes (the server exited or was killed: the kernel closes it).
If the child dies, every copy waiting for it fails with ``EIO`` (the caller's quorum logic treats
it as a failed copy) and the next ``submit`` starts a new one. When no child can be started, the
copies are written in-process (``SmallBlobWriter``) instead.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import logging
import os
import queue
import socket
import struct
import subprocess
import sys
import threading
from pathlib import Path

from minicloud.storage.blobs.core import Digest
from minicloud.storage.blobs.pack import BATCH_BYTES, BATCH_COPIES, PackWriter, packable
from minicloud.storage.blobs.replica import Replica
from minicloud.storage.blobs.small import BlobWriter, Done, make_writer, writer_for

log = logging.getLogger("minicloud.blobs.writerproc")

_REQUEST = struct.Struct("<BIQHH")  # operation, data length, request number, root length, digest length
_WRITE, _DELETE = 0, 1
_PACKED = 0x80  # or'ed into the operation: the replica keeps small blobs in its pack
_ACK = struct.Struct("<Qi")  # request number, errno (0: durable)
_SOCKET_BUFFER = 8 << 20
_MAX_MESSAGE = 2 << 20  # a request larger than this (a blob over ~2 MiB) is written in-process


def _os_error(code: int) -> OSError | None:
    if code == 0:
        return None
    return OSError(code, os.strerror(code) if code > 0 else "the small-blob writer failed")


class _Connection:
    """One child process and its socket; ``pending`` holds the completions of requests sent."""

    def __init__(self) -> None:
        # SOCK_SEQPACKET: each request and each batch of acknowledgements is one message, sent whole
        # or not at all, so any thread may send without a lock and without splitting a request.
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        for sock in (parent, child):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SOCKET_BUFFER)
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "minicloud.storage.blobs.writerproc", str(child.fileno())],
                # its own session: a Ctrl-C at the terminal is the server's to handle (the writer
                # finishes what it holds and ends when the server closes the socket)
                pass_fds=[child.fileno()], stdin=subprocess.DEVNULL, close_fds=True, start_new_session=True)
        finally:
            child.close()
        self.sock = parent
        self.pending: dict[int, Done] = {}
        self.alive = True
        self._outbox: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        threading.Thread(target=self._send_loop, name="small-writer-send", daemon=True).start()
        threading.Thread(target=self._receive_loop, name="small-writer-acks", daemon=True).start()

    def send(self, number: int, frame: bytes, done: Done) -> bool:
        """Send a request (False: this connection has ended or the request is too large; ``done``
        was not taken). Sent right away from the caller's thread when the socket has room (no
        thread hand-off), else by the sender thread. No lock: the event loop's thread must never
        wait for one the receiver holds while it waits for the GIL; the dict operations are
        atomic, and a race with ``_end`` is settled by who pops ``number``."""
        if not self.alive or len(frame) > _MAX_MESSAGE:
            return False
        pending = self.pending
        pending[number] = done
        if not self.alive or pending is not self.pending:  # ended meanwhile: whoever pops it owns it
            return pending.pop(number, None) is None
        try:
            self.sock.send(frame, socket.MSG_DONTWAIT)
        except BlockingIOError:
            self._outbox.put(frame)
        except OSError as exc:
            self._end(f"sending to the small-blob writer failed: {exc}")
        return True

    def _send_loop(self) -> None:
        while True:
            frame = self._outbox.get()
            if frame is None:
                return
            try:
                self.sock.send(frame)
            except OSError as exc:
                self._end(f"sending to the small-blob writer failed: {exc}")
                return

    def _receive_loop(self) -> None:
        while True:
            try:
                data = self.sock.recv(_MAX_MESSAGE)
            except OSError as exc:
                self._end(f"the small-blob writer's socket failed: {exc}")
                return
            if not data:
                self._end("the small-blob writer process ended")
                return
            for number, code in _ACK.iter_unpack(data):
                done = self.pending.pop(number, None)
                if done is not None:
                    _complete(done, _os_error(code))

    def _end(self, reason: str) -> None:
        with self._lock:
            if not self.alive:
                return
            self.alive = False
            pending, self.pending = self.pending, {}
        self._outbox.put(None)
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        failed = 0
        while True:  # popped one by one: a racing ``send`` pops its own request back or leaves it here
            try:
                _, done = pending.popitem()
            except KeyError:
                break
            failed += 1
            _complete(done, OSError(errno.EIO, reason))
        if failed:
            log.error("%s: %d small writes failed", reason, failed)

    def close(self) -> None:
        self._end("the small-blob writer was closed")
        with contextlib.suppress(OSError):
            self.sock.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)


def _complete(done: Done, error: OSError | None) -> None:
    try:
        done(error)
    except Exception:
        log.exception("a small write's completion failed")


class WriterProcess:
    """The server side: ``submit`` a copy for a replica; ``done`` is called (on a thread of this
    module) with None once it is durable, or the error."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._numbers = itertools.count(1)
        self._connection: _Connection | None = None
        # MINICLOUD_SMALL_WRITER=threads: write in this process's threads (slower: see the module's doc)
        self._failed = os.environ.get("MINICLOUD_SMALL_WRITER", "process") == "threads"

    def _current(self) -> _Connection | None:
        connection = self._connection
        if connection is not None and connection.alive:
            return connection
        with self._lock:
            if self._connection is not None and self._connection.alive:
                return self._connection
            if self._failed:
                return None
            try:
                self._connection = _Connection()
            except OSError as exc:
                log.error("no small-blob writer process (%s): writing small blobs in-process", exc)
                self._failed = True
                return None
            return self._connection

    def submit(self, replica: Replica, data: bytes, digest: Digest, done: Done) -> None:
        if not self._send(_WRITE, replica, data, digest, done):
            writer_for(replica).submit(data, digest, done)

    def submit_delete(self, replica: Replica, digest: Digest, done: Done) -> None:
        """Remove the replica's copy (``SmallBlobWriter.submit_delete``)."""
        if not self._send(_DELETE, replica, b"", digest, done):
            writer_for(replica).submit_delete(digest, done)

    def _send(self, operation: int, replica: Replica, data: bytes, digest: Digest, done: Done) -> bool:
        connection = self._current()
        if connection is None:
            return False
        number = next(self._numbers)
        root = str(replica.root).encode()
        name = str(digest).encode()
        if replica.pack is not None:
            operation |= _PACKED
        frame = b"".join((_REQUEST.pack(operation, len(data), number, len(root), len(name)), root, name, data))
        return connection.send(number, frame, done)

    def close(self) -> None:
        with self._lock:
            connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()


_shared: WriterProcess | None = None
_shared_lock = threading.Lock()


def shared_writer() -> WriterProcess:
    """The process-wide writer (one child serves every replica root of this server)."""
    global _shared
    if _shared is None:
        with _shared_lock:
            if _shared is None:
                _shared = WriterProcess()
    return _shared


# -- the child ------------------------------------------------------------------------------------------
class _Acks:
    """Acknowledgements gathered while a batch completes, sent together after it."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.lock = threading.Lock()
        self.waiting: list[bytes] = []

    def add(self, number: int, error: OSError | None) -> None:
        code = 0 if error is None else (error.errno or -1)
        with self.lock:
            self.waiting.append(_ACK.pack(number, code))

    def flush(self) -> None:
        with self.lock:
            out, self.waiting = self.waiting, []
            if out:
                try:
                    self.sock.sendall(b"".join(out))
                except OSError:  # the server is gone: nobody waits for these any more
                    os._exit(0)


Batch = list[tuple[bytes | None, Digest, Done]]


def serve(sock: socket.socket) -> None:
    """Read requests until the socket closes. A packed root's copies are group-committed on this
    thread: every request waiting in the socket is read (up to ``BATCH_COPIES`` or ``BATCH_BYTES``), then each
    root's batch is committed and acknowledged, then the socket is read again (requests arriving
    during a commit make the next batch). One thread: no GIL hand-offs between a reader and
    writers. Other copies go to a ``SmallBlobWriter``'s threads per root."""
    acks = _Acks(sock)
    writers: dict[bytes, BlobWriter] = {}
    buffer = bytearray(_MAX_MESSAGE)
    view = memoryview(buffer)
    pending: dict[bytes, Batch] = {}
    while True:
        taken = taken_bytes = 0
        flags = 0  # the first read waits; the others take only what is already there
        while taken < BATCH_COPIES and taken_bytes < BATCH_BYTES:
            try:
                got = sock.recv_into(buffer, 0, flags)
            except BlockingIOError:
                break
            if not got:
                _commit(writers, pending)
                return
            flags = socket.MSG_DONTWAIT
            taken += 1
            taken_bytes += got
            _take(buffer, view, got, writers, pending, acks)
        _commit(writers, pending)


def _commit(writers: dict[bytes, BlobWriter], pending: dict[bytes, Batch]) -> None:
    for root, batch in pending.items():
        writer = writers[root]
        assert isinstance(writer, PackWriter)
        writer.commit(batch)
    pending.clear()


def _take(buffer: bytearray, view: memoryview, got: int, writers: dict[bytes, BlobWriter],
          pending: dict[bytes, Batch], acks: _Acks) -> None:
    """One request: into its root's pending batch (packed), or to its root's file writer."""
    number = 0
    try:
        operation, size, number, root_len, name_len = _REQUEST.unpack_from(buffer)
        start = _REQUEST.size
        if start + root_len + name_len + size != got:
            raise ValueError(f"a request of {got} bytes says it has {start + root_len + name_len + size}")
        root = bytes(view[start:start + root_len])
        digest = Digest.parse(bytes(view[start + root_len:start + root_len + name_len]).decode())
        writer = writers.get(root)
        if writer is None:
            replica = Replica(Path(root.decode()))
            if operation & _PACKED:  # the server's replica has a pack (made at its start): use it
                replica.enable_pack(create=False)
            writer = writers[root] = make_writer(replica, after_batch=acks.flush)

        def done(error: OSError | None, number: int = number) -> None:
            acks.add(number, error)
        delete = operation & ~_PACKED == _DELETE
        if isinstance(writer, PackWriter) and (delete or packable(digest, size)):
            pending.setdefault(root, []).append((None if delete else bytes(view[got - size:got]), digest, done))
        elif delete:
            writer.submit_delete(digest, done)
        else:
            writer.submit(bytes(view[got - size:got]), digest, done)
    except Exception as exc:  # a malformed request fails alone
        log.error("small-blob writer: bad request %d: %s", number, exc)
        acks.add(number, OSError(errno.EINVAL, str(exc)))
        acks.flush()


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    sock = socket.socket(fileno=int(argv[0]))
    with contextlib.suppress(OSError):
        serve(sock)
    # The server closed the socket or died (the kernel closes it then: kill -9 included). Copies in
    # flight are unreferenced (no ack went out); a temporary file left behind is swept at start-up.
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
