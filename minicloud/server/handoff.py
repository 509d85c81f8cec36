"""Moving an accepted connection, with what was already read from it, to another minicloud process.

The API server is one process per core: the primary (which runs everything: the APIs, the
registry, the console, controllers, the engine) and S3 workers forked from it (see ``workers``),
which answer signed S3 requests: the hot path, whose state is all in the metadata and blob
stores. A connection's first request decides where it is served. The primary reads its head, and
when it is signed for S3 it passes the socket (``SCM_RIGHTS``) and the bytes read so far to a
worker, which goes on as if it had accepted the connection itself. A worker looks at every request
that starts a new exchange on an idle connection the same way: anything but a signed S3 request
goes back to the primary with its bytes. The TCP connection never notices: the kernel socket is the
same, only the process reading it changes.

The head is recognised from its raw bytes (the request line and the Authorization header), before
anything is parsed: a SigV4 credential scoped to ``s3`` (in the header or a pre-signed query) or
S3's SigV2 forms. A request that only looks like one (a forged scope) is still authenticated, and
refused, by whichever process serves it.
"""

from __future__ import annotations

import array
import contextlib
import os
import socket

# Bytes of a request read before the hand-off that travel with the connection (one datagram). A
# head with more already read (a large body right behind it) stays where it is.
MAX_CARRIED = 60 * 1024
# The longest head looked at: a longer one is served where it arrived.
MAX_SNIFFED = 16 * 1024
_LONGEST_METHOD = 16  # (OPTIONS, PROPFIND, ... are far shorter)


def may_be_request(data: bytes | bytearray) -> bool:
    """Whether ``data`` can be the start of an HTTP/1.x request: a method (capital letters) then a
    space. Anything else (a TLS ClientHello from a client trying HTTPS first, say) is not worth
    waiting for: the parser answers it at once (400), so the client falls back instead of waiting."""
    token = bytes(data[:_LONGEST_METHOD + 1])
    space = token.find(b" ")
    method = token if space < 0 else token[:space]
    return bool(method) and method.isalpha() and method.isupper() and (space > 0 or len(token) <= _LONGEST_METHOD)


def head_end(buffer: bytes | bytearray) -> int:
    """The length of the request head at the start of ``buffer`` (through its blank line), or -1."""
    end = buffer.find(b"\r\n\r\n")
    return end + 4 if end >= 0 else -1


def is_signed_s3(head: bytes | bytearray) -> bool:
    """Whether ``head`` (a request line and headers) is a request signed for S3."""
    line_end = head.find(b"\r\n")
    line = bytes(head[:line_end]).lower()
    if b"x-amz-credential=" in line:
        return b"%2fs3%2faws4_request" in line or b"/s3/aws4_request" in line
    if b"awsaccesskeyid=" in line:  # SigV2 pre-signed: S3's only
        return True
    lowered = bytes(head).lower()
    start = lowered.find(b"\r\nauthorization:")
    if start < 0:
        return False
    start += len(b"\r\nauthorization:")
    value = lowered[start:lowered.find(b"\r\n", start)].strip()
    if value.startswith(b"aws "):  # SigV2 header: S3's only
        return True
    return value.startswith(b"aws4-hmac-sha256") and b"/s3/aws4_request" in value


def channel_pair() -> tuple[socket.socket, socket.socket]:
    """Two connected ends for handing connections over (datagrams: one connection per message)."""
    return socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)


def send_connection(channel: socket.socket, fd: int, carried: bytes) -> bool:
    """Send the connection ``fd`` and the bytes already read from it; False when the channel
    cannot take it right now (full, or the other end is gone): the caller keeps the connection."""
    if len(carried) > MAX_CARRIED:
        return False
    try:
        channel.sendmsg([carried or b"\0"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))],
                       socket.MSG_DONTWAIT | socket.MSG_NOSIGNAL)
    except OSError:
        return False
    return True


def receive_connections(channel: socket.socket) -> list[tuple[socket.socket, bytes]] | None:
    """Every connection waiting on ``channel`` (non-blocking): each as a socket and its carried
    bytes. None when the other end has closed the channel."""
    received: list[tuple[socket.socket, bytes]] = []
    fd_size = array.array("i").itemsize
    while True:
        try:
            data, ancillary, _flags, _addr = channel.recvmsg(MAX_CARRIED + 1, socket.CMSG_SPACE(fd_size),
                                                             socket.MSG_DONTWAIT | socket.MSG_CMSG_CLOEXEC)
        except (BlockingIOError, InterruptedError):
            return received
        except OSError:
            return received or None
        fds = array.array("i")
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(payload[:len(payload) - len(payload) % fd_size])
        if not data and not fds:
            return received or None  # end of file: the other process is gone
        for extra in fds[1:]:
            with contextlib.suppress(OSError):
                os.close(extra)
        if not fds:
            continue
        sock = socket.socket(fileno=fds[0])
        sock.setblocking(False)
        with contextlib.suppress(OSError):  # (the accepting loop's setting is not always there)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        received.append((sock, b"" if data == b"\0" else data))
