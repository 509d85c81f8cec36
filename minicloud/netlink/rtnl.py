"""The rtnetlink requests that build our interfaces (veth pairs, optionally with MACs and with the
peer moved into another namespace; links up, enslaved to a bridge, deleted; IPv4 addresses;
routes of the main table), sent on a NETLINK_ROUTE socket from the calling thread: no ``ip``
process on the path of a start.

A netlink socket belongs to the network namespace of the thread that opened it, and names of
interfaces are looked up there (see ``namespaces`` for moving a thread). Blocking, but each
request is answered by the kernel at once.

Message layout (``man 7 rtnetlink``): ``nlmsghdr`` + ``ifinfomsg``/``ifaddrmsg``/``rtmsg`` +
attributes, each ``rtattr`` (length, type) padded to 4 bytes; every request asks for an
acknowledgement, an ``NLMSG_ERROR`` whose code is 0 on success.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import struct

NETLINK_ROUTE = 0
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE = 0x1, 0x4, 0x200, 0x400
NLMSG_ERROR, NLMSG_DONE = 2, 3
RTM_NEWLINK, RTM_DELLINK, RTM_NEWADDR, RTM_DELADDR, RTM_NEWROUTE, RTM_DELROUTE = 16, 17, 20, 21, 24, 25
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MASTER, IFLA_LINKINFO, IFLA_NET_NS_FD = 1, 3, 10, 18, 28
IFLA_INFO_KIND, IFLA_INFO_DATA, VETH_INFO_PEER = 1, 2, 1
IFA_ADDRESS, IFA_LOCAL = 1, 2
RTA_DST, RTA_OIF, RTA_GATEWAY = 1, 4, 5
IFF_UP = 0x1
RT_TABLE_MAIN, RTPROT_BOOT, RTN_UNICAST = 254, 3, 1
RT_SCOPE_UNIVERSE, RT_SCOPE_LINK = 0, 253
RTNH_F_ONLINK = 4
_HEADER = struct.Struct("=IHHII")  # nlmsghdr: length, type, flags, sequence, port


def attr(kind: int, payload: bytes) -> bytes:
    """One ``rtattr``: length, type, payload, padded to 4 bytes."""
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * (-length % 4)


def name_attr(value: str) -> bytes:
    """``IFLA_IFNAME``: the interface's name, NUL-terminated."""
    return attr(IFLA_IFNAME, value.encode() + b"\0")


def ifinfo(index: int = 0, flags: int = 0, change: int = 0) -> bytes:
    """``struct ifinfomsg``: family, type, index, flags, change mask."""
    return struct.pack("=BxHiII", socket.AF_UNSPEC, 0, index, flags, change)


def ipv4(value: str) -> bytes:
    return ipaddress.IPv4Address(value).packed


def mac_bytes(mac: str) -> bytes:
    raw = bytes.fromhex(mac.replace(":", ""))
    if len(raw) != 6:
        raise ValueError(f"not a MAC address: {mac}")
    return raw


def veth_body(name: str, peer: str, peer_netns_fd: int, *, mac: str | None = None,
              peer_mac: str | None = None) -> bytes:
    """RTM_NEWLINK of a veth pair: ``name`` (with ``mac``, else a random one) here, ``peer`` (with
    ``peer_mac``, else a random one) in the namespace open as ``peer_netns_fd``."""
    peer_info = ifinfo() + name_attr(peer)
    if peer_mac is not None:
        peer_info += attr(IFLA_ADDRESS, mac_bytes(peer_mac))
    peer_info += attr(IFLA_NET_NS_FD, struct.pack("=I", peer_netns_fd))
    info = attr(IFLA_INFO_KIND, b"veth\0") + attr(IFLA_INFO_DATA, attr(VETH_INFO_PEER, peer_info))
    body = ifinfo() + name_attr(name)
    if mac is not None:
        body += attr(IFLA_ADDRESS, mac_bytes(mac))
    return body + attr(IFLA_LINKINFO, info)


def address_body(index: int, address: str, prefixlen: int) -> bytes:
    """RTM_NEWADDR/RTM_DELADDR: ``struct ifaddrmsg`` (family, prefix length, flags, scope, index)
    + local/address."""
    packed = ipv4(address)
    return (struct.pack("=BBBBI", socket.AF_INET, prefixlen, 0, RT_SCOPE_UNIVERSE, index)
            + attr(IFA_LOCAL, packed) + attr(IFA_ADDRESS, packed))


def route_body(dst: str, prefixlen: int, device_index: int, gateway: str | None = None, *,
               onlink: bool = False) -> bytes:
    """RTM_NEWROUTE/RTM_DELROUTE of the main table: ``struct rtmsg`` + destination, device, gateway."""
    scope = RT_SCOPE_UNIVERSE if gateway else RT_SCOPE_LINK
    body = struct.pack("=BBBBBBBBI", socket.AF_INET, prefixlen, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, scope,
                       RTN_UNICAST, RTNH_F_ONLINK if onlink else 0)
    if prefixlen:
        body += attr(RTA_DST, ipv4(dst))
    body += attr(RTA_OIF, struct.pack("=I", device_index))
    if gateway:
        body += attr(RTA_GATEWAY, ipv4(gateway))
    return body


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

    def add_veth(self, name: str, peer: str, peer_netns_fd: int, *, mac: str | None = None,
                 peer_mac: str | None = None) -> None:
        """A veth pair (``veth_body``); one already there under ``name``: ``FileExistsError``."""
        self.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL,
                     veth_body(name, peer, peer_netns_fd, mac=mac, peer_mac=peer_mac))

    def set_up(self, name: str) -> None:
        self.request(RTM_NEWLINK, 0, ifinfo(0, IFF_UP, IFF_UP) + name_attr(name))

    def set_master(self, name: str, master_index: int, *, up: bool = False) -> None:
        """``ip link set NAME master BRIDGE [up]`` in one request."""
        flags = IFF_UP if up else 0
        self.request(RTM_NEWLINK, 0, ifinfo(0, flags, flags) + name_attr(name)
                     + attr(IFLA_MASTER, struct.pack("=I", master_index)))

    def delete_link(self, name: str) -> None:
        """Delete an interface (a veth: both ends); one already gone is fine."""
        try:
            self.request(RTM_DELLINK, 0, ifinfo() + name_attr(name))
        except OSError as exc:
            if exc.errno not in (errno.ENODEV, errno.ENOENT):
                raise

    def add_address(self, name: str, address: str, prefixlen: int, *, exist_ok: bool = False) -> None:
        """Add an IPv4 address to ``name`` (looked up in the calling thread's namespace); one
        already there: ``FileExistsError`` unless ``exist_ok``."""
        body = address_body(socket.if_nametoindex(name), address, prefixlen)
        try:
            self.request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, body)
        except FileExistsError:
            if not exist_ok:
                raise

    def delete_address(self, name: str, address: str, prefixlen: int) -> None:
        """Delete an IPv4 address of ``name``; one already gone is fine."""
        try:
            self.request(RTM_DELADDR, 0, address_body(socket.if_nametoindex(name), address, prefixlen))
        except OSError as exc:
            if exc.errno != errno.EADDRNOTAVAIL:
                raise

    def route(self, dst: str, prefixlen: int, device: str, gateway: str | None = None, *, onlink: bool = False,
              delete: bool = False) -> None:
        """Add (refused when it exists: ``FileExistsError``) or delete a route of the main table."""
        body = route_body(dst, prefixlen, socket.if_nametoindex(device), gateway, onlink=onlink)
        if delete:
            self.request(RTM_DELROUTE, 0, body)
        else:
            self.request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, body)
