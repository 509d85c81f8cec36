"""The rtnetlink requests that connect a container's namespace to its bridges (a veth pair with the
container's end moved into its namespace, the host end enslaved to the bridge, addresses, links
up, links deleted), sent on a NETLINK_ROUTE socket: no ``ip`` process on the path of a start.

A netlink socket belongs to the network namespace of the thread that opened it, and names of
interfaces are looked up there. ``in_own_thread`` runs the work in a thread of its own (ended
afterwards), which may ``enter`` other namespaces or ``unshare`` a new one without changing any
pooled thread's namespace.

Message layout (``man 7 rtnetlink``): ``nlmsghdr`` + ``ifinfomsg``/``ifaddrmsg`` + attributes,
each ``rtattr`` (length, type) padded to 4 bytes; every request asks for an acknowledgement, an
``NLMSG_ERROR`` whose code is 0 on success.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import errno
import ipaddress
import os
import socket
import struct
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

NETLINK_ROUTE = 0
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE = 0x1, 0x4, 0x200, 0x400
NLMSG_ERROR, NLMSG_DONE = 2, 3
RTM_NEWLINK, RTM_DELLINK, RTM_NEWADDR = 16, 17, 20
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MASTER, IFLA_LINKINFO, IFLA_NET_NS_FD = 1, 3, 10, 18, 28
IFLA_INFO_KIND, IFLA_INFO_DATA, VETH_INFO_PEER = 1, 2, 1
IFA_ADDRESS, IFA_LOCAL = 1, 2
IFF_UP = 0x1
RT_SCOPE_UNIVERSE = 0
CLONE_NEWNET = 0x40000000
MS_BIND = 4096
_HEADER = struct.Struct("=IHHII")  # nlmsghdr: length, type, flags, sequence, port
_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_libc.unshare.argtypes = [ctypes.c_int]
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
T = TypeVar("T")


def attr(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * (-length % 4)


def _name(value: str) -> bytes:
    return value.encode() + b"\0"


def ifinfo(index: int = 0, flags: int = 0, change: int = 0) -> bytes:
    """``struct ifinfomsg``: family, type, index, flags, change mask."""
    return struct.pack("=BxHiII", socket.AF_UNSPEC, 0, index, flags, change)


def veth_body(name: str, peer: str, peer_mac: str, peer_netns_fd: int) -> bytes:
    """RTM_NEWLINK of a veth pair: ``name`` here, ``peer`` (with ``peer_mac``) in the namespace
    open as ``peer_netns_fd``."""
    peer_info = (ifinfo() + attr(IFLA_IFNAME, _name(peer)) + attr(IFLA_ADDRESS, mac_bytes(peer_mac))
                 + attr(IFLA_NET_NS_FD, struct.pack("=I", peer_netns_fd)))
    info = attr(IFLA_INFO_KIND, _name("veth")) + attr(IFLA_INFO_DATA, attr(VETH_INFO_PEER, peer_info))
    return ifinfo() + attr(IFLA_IFNAME, _name(name)) + attr(IFLA_LINKINFO, info)


def address_body(index: int, address: str, prefixlen: int) -> bytes:
    """RTM_NEWADDR: ``struct ifaddrmsg`` (family, prefix length, flags, scope, index) + local/address."""
    packed = ipaddress.IPv4Address(address).packed
    return (struct.pack("=BBBBI", socket.AF_INET, prefixlen, 0, RT_SCOPE_UNIVERSE, index)
            + attr(IFA_LOCAL, packed) + attr(IFA_ADDRESS, packed))


def mac_bytes(mac: str) -> bytes:
    raw = bytes.fromhex(mac.replace(":", ""))
    if len(raw) != 6:
        raise ValueError(f"not a MAC address: {mac}")
    return raw


class Rtnl:
    """A route netlink socket of the calling thread's network namespace."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE)
        self._sock.bind((0, 0))
        self._seq = 0

    def __enter__(self) -> Rtnl:
        return self

    def __exit__(self, *exc: object) -> None:
        self._sock.close()

    def request(self, kind: int, flags: int, body: bytes) -> None:
        """Send one request and wait for its acknowledgement; ``OSError`` when refused."""
        self._seq += 1
        self._sock.send(_HEADER.pack(_HEADER.size + len(body), kind, flags | NLM_F_REQUEST | NLM_F_ACK, self._seq, 0)
                        + body)
        while True:
            data = self._sock.recv(65536)
            offset = 0
            while offset + _HEADER.size <= len(data):
                length, msg_type, _flags, seq, _port = _HEADER.unpack_from(data, offset)
                if seq == self._seq and msg_type == NLMSG_ERROR:
                    code = -struct.unpack_from("=i", data, offset + _HEADER.size)[0]
                    if code:
                        raise OSError(code, os.strerror(code))
                    return
                if seq == self._seq and msg_type == NLMSG_DONE:
                    return
                offset += max(_HEADER.size, (length + 3) & ~3)

    def add_veth(self, name: str, peer: str, peer_mac: str, peer_netns_fd: int) -> None:
        self.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, veth_body(name, peer, peer_mac, peer_netns_fd))

    def enslave_up(self, name: str, master_index: int) -> None:
        """``ip link set NAME master BRIDGE up`` in one request."""
        self.request(RTM_NEWLINK, 0, ifinfo(0, IFF_UP, IFF_UP) + attr(IFLA_IFNAME, _name(name))
                     + attr(IFLA_MASTER, struct.pack("=I", master_index)))

    def set_up(self, name: str) -> None:
        self.request(RTM_NEWLINK, 0, ifinfo(0, IFF_UP, IFF_UP) + attr(IFLA_IFNAME, _name(name)))

    def add_address(self, name: str, address: str, prefixlen: int) -> None:
        """Add an IPv4 address to ``name`` (looked up in the calling thread's namespace)."""
        self.request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, address_body(socket.if_nametoindex(name), address,
                                                                           prefixlen))

    def delete_link(self, name: str) -> None:
        """Delete an interface (a veth: both ends); one already gone is fine."""
        try:
            self.request(RTM_DELLINK, 0, ifinfo() + attr(IFLA_IFNAME, _name(name)))
        except OSError as exc:
            if exc.errno not in (errno.ENODEV, errno.ENOENT):
                raise


def enter(path: Path) -> None:
    """Move the calling thread into the network namespace held by ``path``."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns {path}: {os.strerror(err)}")
    finally:
        os.close(fd)


def unshare_to(path: Path) -> None:
    """Move the calling thread into a new network namespace (only ``lo``, down), kept by
    bind-mounting it on ``path`` (an empty file, created here), as ``unshare --net=PATH`` does."""
    if _libc.unshare(CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"unshare: {os.strerror(err)}")
    path.touch()
    if _libc.mount(b"/proc/thread-self/ns/net", str(path).encode(), None, MS_BIND, None) != 0:
        err = ctypes.get_errno()
        path.unlink(missing_ok=True)
        raise OSError(err, f"cannot keep the namespace at {path}: {os.strerror(err)}")


async def in_own_thread(fn: Callable[[], T]) -> T:
    """Run ``fn`` in a new thread that ends with it (free to change its namespace)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(outcome: Callable[[], None]) -> None:
        if not future.cancelled():
            outcome()

    def run() -> None:
        try:
            result = fn()
        except BaseException as exc:  # handed to the awaiting task
            error = exc
            loop.call_soon_threadsafe(settle, lambda: future.set_exception(error))
        else:
            loop.call_soon_threadsafe(settle, lambda: future.set_result(result))

    threading.Thread(target=run, name="netns-work", daemon=True).start()
    return await future
