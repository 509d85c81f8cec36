from __future__ import annotations

import ipaddress

import pytest

from minicloud.engine.errors import Conflict, InvalidArgument
from minicloud.engine.network import ipam

A = ipaddress.IPv4Address
N = ipaddress.IPv4Network


def test_pools_skip_taken_subnets() -> None:
    assert ipam.choose_subnet(None, [N("172.17.0.0/16")]) == N("172.18.0.0/16")
    assert ipam.choose_subnet(None, [N("172.17.0.0/16"), N("172.18.0.0/16")]) == N("172.19.0.0/16")
    taken = [N(f"172.{i}.0.0/16") for i in range(17, 32)]
    assert ipam.choose_subnet(None, taken) == N("192.168.0.0/20")


def test_requested_subnet_must_not_overlap() -> None:
    assert ipam.choose_subnet("10.1.0.0/24", [N("172.17.0.0/16")]) == N("10.1.0.0/24")
    with pytest.raises(Conflict, match="overlaps"):
        ipam.choose_subnet("172.17.5.0/24", [N("172.17.0.0/16")])
    for bad in ("nonsense", "fd00::/64", "10.0.0.0/31"):
        with pytest.raises(InvalidArgument):
            ipam.choose_subnet(bad, [])


def test_gateway() -> None:
    assert ipam.choose_gateway(N("10.1.0.0/24"), None) == A("10.1.0.1")
    assert ipam.choose_gateway(N("10.1.0.0/24"), "10.1.0.254") == A("10.1.0.254")
    with pytest.raises(InvalidArgument):
        ipam.choose_gateway(N("10.1.0.0/24"), "10.2.0.1")


def test_allocation_in_order_skipping_gateway_and_used() -> None:
    subnet, gw = N("10.1.0.0/29"), A("10.1.0.1")
    assert ipam.allocate(subnet, gw, []) == A("10.1.0.2")
    assert ipam.allocate(subnet, gw, [A("10.1.0.2"), A("10.1.0.3")]) == A("10.1.0.4")
    assert ipam.allocate(subnet, gw, [], ip_range=N("10.1.0.4/30")) == A("10.1.0.5")
    full = [A(f"10.1.0.{i}") for i in range(2, 7)]
    with pytest.raises(Conflict, match="no available"):
        ipam.allocate(subnet, gw, full)


def test_requested_address() -> None:
    subnet, gw = N("10.1.0.0/24"), A("10.1.0.1")
    assert ipam.allocate(subnet, gw, [], "10.1.0.77") == A("10.1.0.77")
    with pytest.raises(Conflict, match="in use"):
        ipam.allocate(subnet, gw, [A("10.1.0.77")], "10.1.0.77")
    with pytest.raises(Conflict, match="in use"):
        ipam.allocate(subnet, gw, [], "10.1.0.1")
    with pytest.raises(InvalidArgument):
        ipam.allocate(subnet, gw, [], "10.9.0.5")


def test_mac_follows_the_address() -> None:
    assert ipam.mac_for(A("172.17.0.2")) == "02:42:ac:11:00:02"
