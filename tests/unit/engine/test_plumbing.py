from __future__ import annotations

import socket
import struct

import pytest

from minicloud.engine.network import rtnl
from minicloud.engine.network.model import Network
from minicloud.engine.network.plumbing import bridge_commands, host_ifname, parse_link_names

NET = Network(id="ab" * 32, name="appnet", subnet="172.18.0.0/16", gateway="172.18.0.1", created="now")


def test_bridge_is_named_within_the_interface_limit() -> None:
    assert NET.bridge == "mcb-ababababab" + "a" and len(NET.bridge) <= 15
    assert len(host_ifname("f" * 64, 12)) <= 15


def test_bridge_commands_create_only_missing_bridges() -> None:
    assert bridge_commands(NET, set())[0] == f"link add {NET.bridge} type bridge"
    existing = bridge_commands(NET, {NET.bridge})
    assert existing == [f"addr replace 172.18.0.1/16 dev {NET.bridge}", f"link set {NET.bridge} up"]


def _attrs(data: bytes) -> dict[int, bytes]:
    found = {}
    offset = 0
    while offset + 4 <= len(data):
        length, kind = struct.unpack_from("=HH", data, offset)
        found[kind] = data[offset + 4:offset + length]
        offset += (length + 3) & ~3
    return found


def test_veth_request_names_both_ends_and_moves_the_peer() -> None:
    body = rtnl.veth_body("mvc0ffee00000", "eth0", "02:42:ac:12:00:02", 7)
    top = _attrs(body[16:])  # after struct ifinfomsg
    assert top[rtnl.IFLA_IFNAME] == b"mvc0ffee00000\0"
    info = _attrs(top[rtnl.IFLA_LINKINFO])
    assert info[rtnl.IFLA_INFO_KIND] == b"veth\0"
    peer = _attrs(_attrs(info[rtnl.IFLA_INFO_DATA])[rtnl.VETH_INFO_PEER][16:])
    assert peer[rtnl.IFLA_IFNAME] == b"eth0\0"
    assert peer[rtnl.IFLA_ADDRESS] == bytes.fromhex("0242ac120002")
    assert struct.unpack("=I", peer[rtnl.IFLA_NET_NS_FD]) == (7,)


def test_attributes_are_padded_to_four_bytes() -> None:
    assert rtnl.attr(3, b"eth0\0") == struct.pack("=HH", 9, 3) + b"eth0\0" + b"\0" * 3
    assert len(rtnl.attr(1, b"")) == 4


def test_address_request() -> None:
    body = rtnl.address_body(5, "172.18.0.2", 16)
    family, prefixlen, _flags, _scope, index = struct.unpack_from("=BBBBI", body)
    assert (family, prefixlen, index) == (socket.AF_INET, 16, 5)
    assert _attrs(body[8:]) == {rtnl.IFA_LOCAL: bytes([172, 18, 0, 2]), rtnl.IFA_ADDRESS: bytes([172, 18, 0, 2])}


def test_a_bad_mac_is_refused() -> None:
    with pytest.raises(ValueError):
        rtnl.mac_bytes("02:42:ac")


def test_parse_link_names() -> None:
    out = ("1: lo: <LOOPBACK,UP> mtu 65536\n    link/loopback 00:00\n"
           "5: mvabc0@if4: <BROADCAST> mtu 1500 master mcb-x\n    link/ether 02:42\n")
    assert parse_link_names(out) == {"lo", "mvabc0"}
