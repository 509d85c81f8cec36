"""Small blobs written by a helper process: the storage's system calls off the server's GIL.

S3's replicas keep small copies in a per-zone SQLite pack written with group commit (``pack.py``:
one transaction and one WAL fsync per batch); larger ones, and replicas without a pack, as files
(six system calls a copy: ``small.write_batch``). This module runs those writers in a child
process (``python -m minicloud.storage.blobs.writerproc``) with its own interpreter and GIL, on
the machine's other core:

    server: submit() ==(one message per copy, from the caller's thread)==> child: main thread
                      reads every request waiting, commits each packed root's batch (PackWriter.commit)
    server: done(err) <- event loop (or receiver thread) <==(one message per committed batch)== child: acks
                      (copies for roots without a pack, or too large for it: SmallBlobWriter threads)

Why a process, measured with the pack (4 KiB PUTs, ONEZONE_IA, 16 connections, 2 shared cores):
the pack writer's Python and SQLite work, run by threads of the server
(``MINICLOUD_SMALL_WRITER=threads``), adds ~80-100 us of CPU per copy to the one core the event
loop already saturates: ~900 PUT/s against ~1,050-1,600 PUT/s with the child, whose socket
message costs the server less. Why the child commits on its one thread instead of a writer
thread per root: no GIL hand-offs between a reader thread and writers; the child's CPU per copy
fell from ~215 us (82 user + 134 sys) to ~150 us (65 user + 85 sys) for ONEZONE_IA, and from ~338
to ~230 us for STANDARD (three copies per object).

The acknowledgements are read by the event loop of the first ``submit`` made on one (its
callbacks then run on that loop, with no thread taking the GIL to run them and handing them over:
4 KiB PUTs at 16 connections, ~1,650-1,800 -> ~1,850-2,000 a second in an A/B); until then, and again once that loop
has closed, by a receiver thread.

Each request names the replica root (and whether it has a pack), the digest and carries the
bytes; the child answers with the request's number and 0 once that copy is durable (its batch's
transaction committed, or the file fsynced, renamed into place and its directory fsynced), or an
errno. A request may instead remove a replica's copies of a list of blobs (released S3 blobs:
their rows, or files, are removed off the server's GIL too, the whole list in one message and one
acknowledgement, usually in one commit). Nothing is acknowledged before its copy is durable,
exactly as with in-process writes. A *store* request (``submit_store``, ``storejobs``) carries one
blob for several roots and the metadata write that makes it visible: once a quorum of its copies
committed, a writer hosted with ``run_writes`` commits that write too, on its own thread, and
answers with its result.

One writer for every S3 process of a server, so that every process's copies join the same group
commits (one transaction per pack for what all of them have waiting; two writers made batches half
as big, fought over each pack's lock and cost ~20 MiB each), with one socket per process
(``use_channel``). Each copy is acknowledged on the socket it came from, after its commit. With S3
workers, ``minicloud up`` has the first worker host it on a thread (``SharedWriter.host``): that
worker serves reads (``server.workers``), so the primary, which takes the writes, still has its
copies written off its GIL, and the server saves the writer process's ~20 MiB. A writer process
shared by several server processes (``start_shared``) serves the same way. A process that was given
no channel (a server without workers, or built another way, e.g. by tests) starts its own writer
process on its first copy.

The child ends when all its sockets are closed (every server process exited or was killed: the
kernel closes them). If the child (or the worker hosting the shared writer) dies, every copy
waiting for it fails with ``EIO`` (the caller's quorum logic treats it as a failed copy) and the
next ``submit`` starts a new one, this process's own. When no child can be started, the copies
are written in-process (``SmallBlobWriter``) instead.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import logging
import mmap
import os
import queue
import select
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from minicloud.storage.blobs.core import Digest
from minicloud.storage.blobs.pack import BATCH_BYTES, BATCH_COPIES, PackWriter, packable
from minicloud.storage.blobs.replica import Replica
from minicloud.storage.blobs.small import BlobWriter, Done, delete_all, make_writer, writer_for
from minicloud.storage.blobs.storejobs import (
    MORE,
    NOT_RUN,
    RESULT,
    STORE,
    Answered,
    Ready,
    RunWrites,
    StoreJob,
    StoreWaiter,
    decode,
    encode,
    entries,
    finish,
    messages,
    number_of,
    read_answers,
)

if TYPE_CHECKING:
    import asyncio

log = logging.getLogger("minicloud.blobs.writerproc")

_REQUEST = struct.Struct("<BIQHH")  # operation, data length, request number, root length, digest length
_WRITE, _DELETE = 0, 1  # a write names its digest and carries the bytes; a removal carries digests
_DELETE_CHUNK = 4096  # digests in one removal request (~290 KiB)
_PACKED = 0x80  # or'ed into the operation: the replica keeps small blobs in its pack
_SOCKET_BUFFER = 8 << 20
_MAX_MESSAGE = 2 << 20  # a request larger than this (a blob over ~2 MiB) is written in-process
_PARKED_CHECK = 1.0  # seconds: how often the receiver thread checks whether the reading loop closed


def _os_error(code: int) -> OSError | None:
    if code == 0:
        return None
    return OSError(code, os.strerror(code) if code > 0 else "the small-blob writer failed")


def _socket_pair() -> tuple[socket.socket, socket.socket]:
    # SOCK_SEQPACKET: each request and each batch of acknowledgements is one message, sent whole
    # or not at all, so any thread may send without a lock and without splitting a request.
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    for sock in (parent, child):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SOCKET_BUFFER)
    return parent, child


def _spawn(children: list[socket.socket]) -> subprocess.Popen[bytes]:
    """A writer process serving the other ends of ``children`` (closed here: the child has them)."""
    fds = [child.fileno() for child in children]
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "minicloud.storage.blobs.writerproc", *map(str, fds)],
            # its own session: a Ctrl-C at the terminal is the server's to handle (the writer
            # finishes what it holds and ends when the server closes the socket)
            pass_fds=fds, stdin=subprocess.DEVNULL, close_fds=True, start_new_session=True)
    finally:
        for child in children:
            child.close()


class _Connection:
    """A channel to a writer process; ``pending`` holds the completions of requests sent. Without
    ``channel``, a new child process of this one's; with it, the shared writer at its other end."""

    def __init__(self, channel: socket.socket | None = None,
                 process: subprocess.Popen[bytes] | None = None, runs_writes: bool = False) -> None:
        self.process = process
        self.owned = channel is None
        self.runs_writes = runs_writes  # its writer commits store requests' writes (``storejobs``)
        if channel is None:
            channel, child = _socket_pair()
            try:
                self.process = _spawn([child])
            except BaseException:
                channel.close()
                raise
        self.sock = channel
        self.pending: dict[int, Done] = {}
        self._pieces: dict[int, list[bytes]] = {}  # the pieces of long results received so far
        self.alive = True
        self._outbox: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._reader: asyncio.AbstractEventLoop | None = None  # the loop reading the acks, if any
        self._parked = threading.Event()  # set to wake the receiver thread while a loop reads
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

    def read_on(self, loop: asyncio.AbstractEventLoop) -> None:
        """From now on ``loop`` (running, on this thread) reads the acknowledgements, unless a loop
        that is still open already does."""
        if self._reader is loop:  # (the common case: no lock, see ``send``)
            return
        with self._lock:
            current = self._reader
            if current is loop or not self.alive or (current is not None and not current.is_closed()):
                return
            loop.add_reader(self.sock.fileno(), self._read_ready)
            self._reader = loop

    def _read_ready(self) -> None:
        """On the reading loop: every message waiting."""
        while self._receive(socket.MSG_DONTWAIT):
            pass

    def _receive(self, flags: int = 0) -> bool:
        """One message of acknowledgements handled (False: none waiting, or the connection ended)."""
        try:
            data = self.sock.recv(_MAX_MESSAGE, flags)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError as exc:
            self._end(f"the small-blob writer's socket failed: {exc}")
            return False
        if not data:
            self._end("the small-blob writer process ended")
            return False
        try:
            answers = read_answers(data)
        except ValueError as exc:
            self._end(f"the small-blob writer's answer could not be read: {exc}")
            return False
        for number, code, payload in answers:
            if code == MORE:  # a piece of a long result: the rest follows
                self._pieces.setdefault(number, []).append(payload or b"")
                continue
            if code == RESULT and number in self._pieces:
                payload = b"".join([*self._pieces.pop(number), payload or b""])
            done = self.pending.pop(number, None)
            if done is None:
                continue
            if code in (RESULT, NOT_RUN) and isinstance(done, StoreWaiter):
                _answer(done.answered, code == RESULT, payload)
            else:
                _complete(done, _os_error(code))
        return True

    def _receive_loop(self) -> None:
        while self.alive:
            reader = self._reader
            if reader is not None:  # a loop reads them: wait, and take over once it has closed
                self._parked.wait(_PARKED_CHECK)
                self._parked.clear()
                with self._lock:
                    if self._reader is reader and reader.is_closed():
                        self._reader = None
                continue
            # (a timeout: a loop that starts reading meanwhile parks this thread)
            try:
                ready, _, _ = select.select([self.sock], [], [], _PARKED_CHECK)
            except (OSError, ValueError):  # closed meanwhile
                return
            if ready and self._reader is None:
                self._receive(socket.MSG_DONTWAIT)

    def _end(self, reason: str) -> None:
        with self._lock:
            if not self.alive:
                return
            self.alive = False
            pending, self.pending = self.pending, {}
            reader, self._reader = self._reader, None
        self._outbox.put(None)
        self._parked.set()
        if reader is not None:  # (before the socket closes: its number may be given to another file)
            with contextlib.suppress(RuntimeError, ValueError, OSError):
                if _running_loop() is reader:
                    reader.remove_reader(self.sock.fileno())
                else:
                    reader.call_soon_threadsafe(reader.remove_reader, self.sock.fileno())
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        if self.process is not None:  # reap it if it is gone
            with contextlib.suppress(OSError):
                self.process.poll()
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
        if self.owned and self.process is not None:  # (a shared writer ends when all its processes close)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=5)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    """The event loop running on this thread, if any (asyncio is not imported for it: the writer
    process never loads it)."""
    loaded = sys.modules.get("asyncio")
    if loaded is None:
        return None
    try:
        return loaded.get_running_loop()  # type: ignore[no-any-return]
    except RuntimeError:
        return None


def _complete(done: Done, error: OSError | None) -> None:
    try:
        done(error)
    except Exception:
        log.exception("a small write's completion failed")


def _answer(answered: Answered, ran: bool, payload: bytes | None) -> None:
    try:
        answered(None, ran, payload)
    except Exception:
        log.exception("a store's completion failed")


class WriterProcess:
    """The server side: ``submit`` a copy for a replica; ``done`` is called (on a thread of this
    module) with None once it is durable, or the error."""

    def __init__(self, channel: socket.socket | None = None, process: subprocess.Popen[bytes] | None = None,
                 runs_writes: bool = False) -> None:
        """``channel``: a socket to a shared writer (``start_shared``), used until it ends; then, as
        without one, a writer process of this process's own. ``process``: that writer, when it is
        this process's child (to reap it). ``runs_writes``: that shared writer commits the writes
        of store requests (``submit_store``); a writer of this process's own never does."""
        self._lock = threading.Lock()
        self._numbers = itertools.count(1)
        self._connection: _Connection | None = None
        self._channel = channel
        self._channel_process = process
        self._channel_runs_writes = runs_writes
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
            channel, self._channel = self._channel, None
            try:
                self._connection = (_Connection(channel, self._channel_process, self._channel_runs_writes)
                                    if channel is not None else _Connection())
            except OSError as exc:
                log.error("no small-blob writer process (%s): writing small blobs in-process", exc)
                self._failed = True
                return None
            return self._connection

    def submit(self, replica: Replica, data: bytes, digest: Digest, done: Done) -> None:
        if not self._send(_WRITE, replica, data, digest, done):
            writer_for(replica).submit(data, digest, done)

    def submit_store(self, replicas: Sequence[Replica], data: bytes, digest: Digest, need: int, write: bytes,
                     answered: Answered) -> bool:
        """Copies of a small blob to each of ``replicas`` (all with a pack) and, once ``need`` of
        them are durable, ``write`` (``PortableWrite.dumps``) committed by the writer itself
        (``storejobs``). ``answered(error, ran, result)``: a failed quorum's error; or ``ran``
        with the write's pickled result; or not ``ran``: the data is durable and the write is the
        caller's to run. False (``answered`` not taken): this writer does not run writes, or the
        request is too large; the caller copies and writes as before."""
        connection = self._current()
        if connection is None or not connection.runs_writes:
            return False
        loop = _running_loop()
        if loop is not None:
            connection.read_on(loop)
        number = next(self._numbers)
        frame = encode(number, [str(replica.root) for replica in replicas], need, str(digest), write, data)
        return connection.send(number, frame, StoreWaiter(answered))

    def submit_delete(self, replica: Replica, digests: Sequence[Digest], done: Done) -> None:
        """Remove the replica's copies of ``digests``, in one message per ``_DELETE_CHUNK`` (usually one
        commit of the writer's); ``done`` once, as ``small.delete_all`` reports."""
        if not digests:
            done(None)
            return
        if len(digests) > _DELETE_CHUNK:
            chunks = [digests[i:i + _DELETE_CHUNK] for i in range(0, len(digests), _DELETE_CHUNK)]
            delete_all(lambda chunk, done: self.submit_delete(replica, chunk, done), chunks, done)
            return
        names = b"\n".join(str(digest).encode() for digest in digests)
        if not self._send(_DELETE, replica, names, None, done):
            delete_all(writer_for(replica).submit_delete, digests, done)

    def _send(self, operation: int, replica: Replica, data: bytes, digest: Digest | None, done: Done) -> bool:
        connection = self._current()
        if connection is None:
            return False
        loop = _running_loop()
        if loop is not None:
            connection.read_on(loop)
        number = next(self._numbers)
        root = str(replica.root).encode()
        name = b"" if digest is None else str(digest).encode()
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


def start_shared(processes: int) -> tuple[subprocess.Popen[bytes], list[socket.socket]] | None:
    """Start one writer process for ``processes`` server processes (``minicloud up``: the primary
    and the S3 workers it forks after this, which have no thread yet): one socket each, for
    ``use_channel``; each process must close the others'. None: no writer could be started (each
    process then starts its own)."""
    pairs: list[tuple[socket.socket, socket.socket]] = []
    try:
        for _ in range(processes):
            pairs.append(_socket_pair())
        process = _spawn([child for _, child in pairs])
    except OSError as exc:
        log.error("no shared small-blob writer process (%s): each S3 process starts its own", exc)
        for parent, child in pairs:
            parent.close()
            child.close()
        return None
    return process, [parent for parent, _ in pairs]


class SharedWriter:
    """The sockets of one writer shared by ``processes`` server processes and hosted by one of them
    (``minicloud up`` with S3 workers: the first worker): ``clients[i]`` is process i's (for
    ``use_channel``), ``serving`` the host's. Made before the processes are forked: each process
    keeps its own client socket and closes the rest (``close_all_but``); the host keeps
    ``serving`` too, and serves them on a thread (``host``). No other process may keep a serving
    socket open: a dead host's clients learn of it only when every copy of their peer is closed."""

    def __init__(self, processes: int) -> None:
        pairs: list[tuple[socket.socket, socket.socket]] = []
        try:
            for _ in range(processes):
                pairs.append(_socket_pair())
        except OSError:
            for client, served in pairs:
                client.close()
                served.close()
            raise
        self.clients = [client for client, _ in pairs]
        self.serving = [served for _, served in pairs]

    def close_all_but(self, index: int | None, *, hosting: bool = False) -> None:
        """Close every socket except process ``index``'s client (None: all of them), and the serving
        ones unless ``hosting``."""
        for i, client in enumerate(self.clients):
            if i != index:
                client.close()
        if not hosting:
            for served in self.serving:
                served.close()

    def host(self, run_writes: RunWrites | None = None) -> threading.Thread:
        """Serve the writer's sockets on a thread of this process (it ends once every client closed);
        ``run_writes``: how it commits the writes of store requests (``Database.run_here``)."""
        thread = threading.Thread(target=_serve_hosted, args=tuple(self.serving), kwargs={"run_writes": run_writes},
                                  name="small-writer", daemon=True)
        thread.start()
        return thread


def _serve_hosted(*socks: socket.socket, run_writes: RunWrites | None = None) -> None:
    try:
        serve(*socks, run_writes=run_writes)
    except Exception:
        log.exception("the hosted small-blob writer failed: its copies fail, each process starts its own writer")
    finally:
        for sock in socks:
            sock.close()


def use_channel(channel: socket.socket, process: subprocess.Popen[bytes] | None = None,
                runs_writes: bool = False) -> None:
    """This process's copies go to the shared writer at the other end of ``channel`` (from
    ``start_shared``; ``process``: that writer, in the process that started it; ``runs_writes``:
    it was hosted with a way to commit writes)."""
    global _shared
    with _shared_lock:
        _shared = WriterProcess(channel, process, runs_writes)


# -- the child ------------------------------------------------------------------------------------------
class _Acks:
    """Acknowledgements gathered for one socket while a batch completes, sent together after it."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.lock = threading.Lock()
        self.waiting: list[bytes] = []
        self.gone = False

    def add(self, number: int, error: OSError | None) -> None:
        self.add_code(number, 0 if error is None else (error.errno or -1))

    def add_code(self, number: int, code: int, payload: bytes = b"") -> None:
        """An acknowledgement (``RESULT``'s with its payload, in pieces when long: ``storejobs``)."""
        answer = entries(number, code, payload)
        with self.lock:
            self.waiting.extend(answer)

    def flush(self) -> None:
        with self.lock:
            out, self.waiting = self.waiting, []
            if out and not self.gone:
                try:
                    for message in messages(out):  # (each within what any socket buffer takes)
                        self.sock.sendall(message)
                except OSError:  # that server process is gone: nobody waits for these any more
                    self.gone = True


Batch = list[tuple[bytes | None, Digest, Done]]


def serve(*socks: socket.socket, run_writes: RunWrites | None = None) -> None:
    """Read requests until every socket has closed, answering each on its own socket. A packed
    root's copies are group-committed on this thread: once a request arrives, every request
    waiting in any socket is read (in turn, up to ``BATCH_COPIES`` or ``BATCH_BYTES``), then each
    root's batch is committed, as one transaction, and acknowledged, then the sockets are read
    again (requests arriving during a commit make the next batch). One thread: no GIL hand-offs
    between a reader and writers. Other copies go to a ``SmallBlobWriter``'s threads per root.
    After the commits, the store requests whose quorum was decided are answered, their writes
    committed together by ``run_writes`` (``storejobs``; without it, left to their servers).
    A closed socket is kept open here (a writer's thread may still flush to it) but read no more."""
    answers = [_Acks(sock) for sock in socks]

    def flush() -> None:
        for acks in answers:
            acks.flush()
    writers: dict[bytes, BlobWriter] = {}
    # An anonymous mapping, not a bytearray: only the pages a request reached take memory (4 KiB
    # copies use a few; a zeroed 2 MiB bytearray is resident from the start).
    buffer = mmap.mmap(-1, _MAX_MESSAGE)
    view = memoryview(buffer)
    pending: dict[bytes, Batch] = {}
    poller = select.poll()
    by_fd = {acks.sock.fileno(): acks for acks in answers}
    for fd in by_fd:
        poller.register(fd, select.POLLIN)
    ready = Ready()  # store requests whose quorum is decided
    poller.register(ready.fd, select.POLLIN)
    try:
        _serve_rounds(poller, by_fd, buffer, view, writers, pending, ready, flush, run_writes)
    finally:
        ready.close()


def _serve_rounds(poller: select.poll, by_fd: dict[int, _Acks], buffer: mmap.mmap, view: memoryview,
                  writers: dict[bytes, BlobWriter], pending: dict[bytes, Batch], ready: Ready,
                  flush: Callable[[], None], run_writes: RunWrites | None) -> None:
    while by_fd:
        poller.poll()  # until something arrives (or a socket closes)
        taken = taken_bytes = 0
        reading = list(by_fd.values())
        while reading and taken < BATCH_COPIES and taken_bytes < BATCH_BYTES:
            for acks in list(reading):  # one request from each socket in turn: no process waits behind another
                try:
                    got = acks.sock.recv_into(buffer, 0, socket.MSG_DONTWAIT)
                except BlockingIOError:
                    reading.remove(acks)
                    continue
                except OSError:
                    got = 0
                if not got:  # that server process has gone
                    reading.remove(acks)
                    fd = acks.sock.fileno()
                    poller.unregister(fd)
                    del by_fd[fd]
                    acks.gone = True
                    continue
                taken += 1
                taken_bytes += got
                if buffer[0] == STORE:
                    _take_store(buffer, view, got, writers, pending, acks, ready, flush)
                else:
                    _take(buffer, view, got, writers, pending, acks, flush)
        _commit(writers, pending)
        decided = ready.take()
        if decided:
            finish(decided, run_writes)
            flush()


def _commit(writers: dict[bytes, BlobWriter], pending: dict[bytes, Batch]) -> None:
    for root, batch in pending.items():
        writer = writers[root]
        assert isinstance(writer, PackWriter)
        writer.commit(batch)
    pending.clear()


def _take(buffer: mmap.mmap, view: memoryview, got: int, writers: dict[bytes, BlobWriter],
          pending: dict[bytes, Batch], acks: _Acks, flush: Callable[[], None]) -> None:
    """One request: into its root's pending batch (packed), or to its root's file writer."""
    number = 0
    try:
        operation, size, number, root_len, name_len = _REQUEST.unpack_from(buffer)
        start = _REQUEST.size
        if start + root_len + name_len + size != got:
            raise ValueError(f"a request of {got} bytes says it has {start + root_len + name_len + size}")
        root = bytes(view[start:start + root_len])
        writer = _writer(writers, root, bool(operation & _PACKED), flush)

        def done(error: OSError | None, number: int = number) -> None:
            acks.add(number, error)
        if operation & ~_PACKED == _DELETE:  # the digests, one per line
            digests = [Digest.parse(name) for name in bytes(view[got - size:got]).decode().split("\n")] if size else []
            if isinstance(writer, PackWriter):  # (into this round's commit)
                batch = pending.setdefault(root, [])
                delete_all(lambda digest, done: batch.append((None, digest, done)), digests, done)
            else:
                delete_all(writer.submit_delete, digests, done)
                if not digests:  # (answered at once: no batch of the writer's will flush it)
                    acks.flush()
            return
        digest = Digest.parse(bytes(view[start + root_len:start + root_len + name_len]).decode())
        if isinstance(writer, PackWriter) and packable(digest, size):
            pending.setdefault(root, []).append((bytes(view[got - size:got]), digest, done))
        else:
            writer.submit(bytes(view[got - size:got]), digest, done)
    except Exception as exc:  # a malformed request fails alone
        log.error("small-blob writer: bad request %d: %s", number, exc)
        acks.add(number, OSError(errno.EINVAL, str(exc)))
        acks.flush()


def _writer(writers: dict[bytes, BlobWriter], root: bytes, packed: bool, flush: Callable[[], None]) -> BlobWriter:
    """The writer of replica ``root`` (``packed``: the server's replica has a pack, made at its start)."""
    writer = writers.get(root)
    if writer is None:
        replica = Replica(Path(root.decode()))
        if packed:
            replica.enable_pack(create=False)
        writer = writers[root] = make_writer(replica, after_batch=flush)
    return writer


def _take_store(buffer: mmap.mmap, view: memoryview, got: int, writers: dict[bytes, BlobWriter],
                pending: dict[bytes, Batch], acks: _Acks, ready: Ready, flush: Callable[[], None]) -> None:
    """One store request: its copies into their roots' pending batches (``storejobs``)."""
    number = 0
    job: StoreJob | None = None
    try:
        number = number_of(buffer)
        number, roots, need, name, write, data = decode(view[:got])
        digest = Digest.parse(name)
        targets = [(root, _writer(writers, root, True, flush)) for root in (text.encode() for text in roots)]
        job = StoreJob(number, need, len(roots), write, acks.add_code, ready)
        for root, writer in targets:
            if isinstance(writer, PackWriter) and packable(digest, len(data)):
                pending.setdefault(root, []).append((data, digest, job.copied))
            else:
                writer.submit(data, digest, job.copied)
    except Exception as exc:  # a malformed request fails alone
        log.error("small-blob writer: bad store request %d: %s", number, exc)
        if job is not None:  # (copies queued already: they finish, but the request is answered here)
            job.abandoned = True
        acks.add(number, OSError(errno.EINVAL, str(exc)))
        acks.flush()


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    socks = [socket.socket(fileno=int(fd)) for fd in argv]
    with contextlib.suppress(OSError):
        serve(*socks)
    # The server's processes closed their sockets or died (the kernel closes them then: kill -9
    # included). Copies in flight are unreferenced (no ack went out); a temporary file left behind
    # is swept at start-up.
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
