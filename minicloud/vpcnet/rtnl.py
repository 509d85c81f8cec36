"""The few rtnetlink requests a port needs (veth pair, link up, address, route, delete), sent on a
NETLINK_ROUTE socket from the calling thread, so that building a port starts no process: a
socket belongs to the network namespace of the thread that creates it, so these functions are
called from a thread living in the namespace to change (the host's: any ordinary thread).
Blocking, but each request is answered by the kernel at once.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import ipaddress
import os
import socket
import struct
from pathlib import Path

NETLINK_ROUTE = 0
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE = 0x1, 0x4, 0x200, 0x400
NLMSG_ERROR, NLMSG_DONE = 2, 3
RTM_NEWLINK, RTM_DELLINK, RTM_NEWADDR, RTM_DELADDR, RTM_NEWROUTE, RTM_DELROUTE = 16, 17, 20, 21, 24, 25
IFLA_ADDRESS, IFLA_IFNAME, IFLA_LINKINFO, IFLA_NET_NS_FD = 1, 3, 18, 28
IFLA_INFO_KIND, IFLA_INFO_DATA, VETH_INFO_PEER = 1, 2, 1
IFA_ADDRESS, IFA_LOCAL = 1, 2
RTA_DST, RTA_OIF, RTA_GATEWAY = 1, 4, 5
IFF_UP = 0x1
RT_TABLE_MAIN, RTPROT_BOOT, RTN_UNICAST = 254, 3, 1
RT_SCOPE_UNIVERSE, RT_SCOPE_LINK = 0, 253
RTNH_F_ONLINK = 4
CLONE_NEWNET = 0x40000000
MS_BIND = 4096
_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_libc.unshare.argtypes = [ctypes.c_int]
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]


def _attr(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * ((4 - length % 4) % 4)


def _name(value: str) -> bytes:
    return value.encode() + b"\0"


def _ifinfo(index: int = 0, flags: int = 0, change: int = 0) -> bytes:
    return struct.pack("=BxHiII", socket.AF_UNSPEC, 0, index, flags, change)


def _ip(value: str) -> bytes:
    return ipaddress.IPv4Address(value).packed


class Rtnl:
    """A route netlink socket of the calling thread's namespace."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE)
        self._sock.bind((0, 0))
        self._seq = 0

    def __enter__(self) -> Rtnl:
        return self

    def __exit__(self, *exc: object) -> None:
        self._sock.close()

    def request(self, kind: int, flags: int, body: bytes) -> None:
        """Send one request and wait for its acknowledgement; raise ``OSError`` on a refusal."""
        self._seq += 1
        header = struct.pack("=IHHII", 16 + len(body), kind, flags | NLM_F_REQUEST | NLM_F_ACK, self._seq, 0)
        self._sock.send(header + body)
        while True:
            data = self._sock.recv(65536)
            offset = 0
            while offset + 16 <= len(data):
                length, msg_type, _flags, seq, _pid = struct.unpack_from("=IHHII", data, offset)
                if seq == self._seq and msg_type == NLMSG_ERROR:
                    code = -struct.unpack_from("=i", data, offset + 16)[0]
                    if code:
                        raise OSError(code, f"netlink: {os.strerror(code)}")
                    return
                if seq == self._seq and msg_type == NLMSG_DONE:
                    return
                offset += max(16, (length + 3) & ~3)

    def add_veth(self, name: str, mac: str | None, peer: str, peer_netns: int) -> None:
        """A veth pair: ``name`` (with ``mac``, else a random one) here, ``peer`` in the namespace
        open as ``peer_netns``."""
        peer_info = _ifinfo() + _attr(IFLA_IFNAME, _name(peer)) + _attr(IFLA_NET_NS_FD, struct.pack("=I", peer_netns))
        info = _attr(IFLA_INFO_KIND, _name("veth")) + _attr(IFLA_INFO_DATA, _attr(VETH_INFO_PEER, peer_info))
        body = _ifinfo() + _attr(IFLA_IFNAME, _name(name))
        if mac is not None:
            body += _attr(IFLA_ADDRESS, bytes.fromhex(mac.replace(":", "")))
        self.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body + _attr(IFLA_LINKINFO, info))

    def set_up(self, name: str) -> None:
        self.request(RTM_NEWLINK, 0, _ifinfo(0, IFF_UP, IFF_UP) + _attr(IFLA_IFNAME, _name(name)))

    def delete_link(self, name: str) -> None:
        """Delete an interface (a veth: both ends); a missing one is fine."""
        try:
            self.request(RTM_DELLINK, 0, _ifinfo() + _attr(IFLA_IFNAME, _name(name)))
        except OSError as exc:
            if exc.errno not in (errno.ENODEV, errno.ENOENT):
                raise

    def add_address(self, name: str, address: str, prefixlen: int, *, delete: bool = False) -> None:
        """Add an address (one already there is fine), or delete it (one gone is fine)."""
        body = struct.pack("=BBBBI", socket.AF_INET, prefixlen, 0, RT_SCOPE_UNIVERSE, socket.if_nametoindex(name))
        body += _attr(IFA_LOCAL, _ip(address)) + _attr(IFA_ADDRESS, _ip(address))
        try:
            self.request(RTM_DELADDR if delete else RTM_NEWADDR, 0 if delete else NLM_F_CREATE | NLM_F_EXCL, body)
        except OSError as exc:
            if exc.errno != (errno.EADDRNOTAVAIL if delete else errno.EEXIST):
                raise

    def route(self, dst: str, prefixlen: int, device: str, gateway: str | None = None, *, onlink: bool = False,
              delete: bool = False) -> None:
        """Add (refused when it exists: ``EEXIST``) or delete a route of the main table."""
        scope = RT_SCOPE_UNIVERSE if gateway else RT_SCOPE_LINK
        body = struct.pack("=BBBBBBBBI", socket.AF_INET, prefixlen, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, scope,
                           RTN_UNICAST, RTNH_F_ONLINK if onlink else 0)
        if prefixlen:
            body += _attr(RTA_DST, _ip(dst))
        body += _attr(RTA_OIF, struct.pack("=I", socket.if_nametoindex(device)))
        if gateway:
            body += _attr(RTA_GATEWAY, _ip(gateway))
        if delete:
            self.request(RTM_DELROUTE, 0, body)
        else:
            self.request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, body)


def enter_new_namespace(path: Path) -> None:
    """Blocking. Move the calling thread into a new network namespace (only ``lo``, down) and keep
    it by bind-mounting it on ``path`` (an empty file, created here), like ``unshare --net=path``.
    Only for a thread of its own, which ends afterwards."""
    if _libc.unshare(CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"unshare: {os.strerror(err)}")
    path.touch()
    if _libc.mount(b"/proc/thread-self/ns/net", str(path).encode(), None, MS_BIND, None) != 0:
        err = ctypes.get_errno()
        path.unlink(missing_ok=True)
        raise OSError(err, f"cannot keep the namespace at {path}: {os.strerror(err)}")
