from __future__ import annotations

import socket
import struct

import pytest

from minicloud.netlink import rtnl


def _attrs(data: bytes) -> dict[int, bytes]:
    found = {}
    offset = 0
    while offset + 4 <= len(data):
        length, kind = struct.unpack_from("=HH", data, offset)
        found[kind] = data[offset + 4:offset + length]
        offset += (length + 3) & ~3
    return found


def test_attributes_are_padded_to_four_bytes() -> None:
    assert rtnl.attr(3, b"eth0\0") == struct.pack("=HH", 9, 3) + b"eth0\0" + b"\0" * 3
    assert rtnl.attr(28, struct.pack("=I", 7)) == struct.pack("=HHI", 8, 28, 7)
    assert len(rtnl.attr(1, b"")) == 4
    nested = rtnl.attr(18, rtnl.attr(1, b"veth\0"))
    assert struct.unpack_from("=HH", nested) == (16, 18) and len(nested) == 16


def test_ifinfomsg_is_sixteen_bytes() -> None:
    assert len(rtnl.ifinfo()) == 16
    assert struct.unpack("=BxHiII", rtnl.ifinfo(5, 1, 1)) == (0, 0, 5, 1, 1)


def test_veth_request_names_both_ends_and_moves_the_peer() -> None:
    body = rtnl.veth_body("mvc0ffee00000", "eth0", 7, peer_mac="02:42:ac:12:00:02")
    top = _attrs(body[16:])  # after struct ifinfomsg
    assert top[rtnl.IFLA_IFNAME] == b"mvc0ffee00000\0"
    assert rtnl.IFLA_ADDRESS not in top  # a random MAC for the host end
    info = _attrs(top[rtnl.IFLA_LINKINFO])
    assert info[rtnl.IFLA_INFO_KIND] == b"veth\0"
    peer = _attrs(_attrs(info[rtnl.IFLA_INFO_DATA])[rtnl.VETH_INFO_PEER][16:])
    assert peer[rtnl.IFLA_IFNAME] == b"eth0\0"
    assert peer[rtnl.IFLA_ADDRESS] == bytes.fromhex("0242ac120002")
    assert struct.unpack("=I", peer[rtnl.IFLA_NET_NS_FD]) == (7,)


def test_veth_request_with_the_local_end_s_mac_only() -> None:
    body = rtnl.veth_body("eth0", "mvp1", 9, mac="0e:00:00:00:00:01")
    top = _attrs(body[16:])
    assert top[rtnl.IFLA_ADDRESS] == bytes.fromhex("0e0000000001")
    peer = _attrs(_attrs(_attrs(top[rtnl.IFLA_LINKINFO])[rtnl.IFLA_INFO_DATA])[rtnl.VETH_INFO_PEER][16:])
    assert rtnl.IFLA_ADDRESS not in peer and struct.unpack("=I", peer[rtnl.IFLA_NET_NS_FD]) == (9,)


def test_address_request() -> None:
    body = rtnl.address_body(5, "172.18.0.2", 16)
    family, prefixlen, _flags, _scope, index = struct.unpack_from("=BBBBI", body)
    assert (family, prefixlen, index) == (socket.AF_INET, 16, 5)
    assert _attrs(body[8:]) == {rtnl.IFA_LOCAL: bytes([172, 18, 0, 2]), rtnl.IFA_ADDRESS: bytes([172, 18, 0, 2])}


def test_route_requests() -> None:
    default = rtnl.route_body("0.0.0.0", 0, 3, "10.0.0.1")
    family, prefixlen, *_rest, table, _proto, scope, kind, flags = struct.unpack_from("=BBBBBBBBI", default)
    assert (family, prefixlen, table, scope, kind, flags) == (socket.AF_INET, 0, rtnl.RT_TABLE_MAIN,
                                                              rtnl.RT_SCOPE_UNIVERSE, rtnl.RTN_UNICAST, 0)
    assert _attrs(default[12:]) == {rtnl.RTA_OIF: struct.pack("=I", 3), rtnl.RTA_GATEWAY: bytes([10, 0, 0, 1])}
    host = rtnl.route_body("10.0.1.5", 32, 4, onlink=True)
    assert struct.unpack_from("=BBBBBBBBI", host)[6] == rtnl.RT_SCOPE_LINK
    assert struct.unpack_from("=BBBBBBBBI", host)[8] == rtnl.RTNH_F_ONLINK
    assert _attrs(host[12:]) == {rtnl.RTA_DST: bytes([10, 0, 1, 5]), rtnl.RTA_OIF: struct.pack("=I", 4)}


def test_a_bad_mac_is_refused() -> None:
    with pytest.raises(ValueError):
        rtnl.mac_bytes("02:42:ac")
