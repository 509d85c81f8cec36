from __future__ import annotations

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


def test_parse_link_names() -> None:
    out = ("1: lo: <LOOPBACK,UP> mtu 65536\n    link/loopback 00:00\n"
           "5: mvabc0@if4: <BROADCAST> mtu 1500 master mcb-x\n    link/ether 02:42\n")
    assert parse_link_names(out) == {"lo", "mvabc0"}
