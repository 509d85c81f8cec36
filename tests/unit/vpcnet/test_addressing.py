from __future__ import annotations

import ipaddress

import pytest

from minicloud.vpcnet import addressing as addr
from minicloud.vpcnet.model import InvalidInput


def test_names_fit_the_kernel_limit_and_are_stable() -> None:
    tag = addr.instance_tag("/var/lib/minicloud/vpcnet")
    assert len(tag) == 4 and tag == addr.instance_tag("/var/lib/minicloud/vpcnet")
    link = addr.host_link(tag, "vpc-0123456789abcdef0")
    assert len(link) == 15 and link.startswith(addr.host_link_prefix(tag))
    assert link != addr.host_link(tag, "vpc-0123456789abcdef1")
    assert len(addr.router_port("i-0123456789abcdef0")) <= 15
    assert addr.host_table(tag) == f"minicloud_vpc_{tag}"


def test_gateway_is_the_first_host() -> None:
    assert str(addr.gateway(ipaddress.IPv4Network("10.0.16.0/20"))) == "10.0.16.1"


@pytest.mark.parametrize("ip", ["10.0.1.0", "10.0.1.1", "10.0.1.255", "10.0.2.5", "10.0.1.300", "fe80::1"])
def test_private_ip_must_be_a_usable_host_of_the_subnet(ip: str) -> None:
    with pytest.raises(InvalidInput):
        addr.check_private_ip(ipaddress.IPv4Network("10.0.1.0/24"), ip)


def test_validation() -> None:
    assert str(addr.check_private_ip(ipaddress.IPv4Network("10.0.1.0/24"), "10.0.1.2")) == "10.0.1.2"
    assert addr.check_mac("02:AB:00:00:00:01") == "02:ab:00:00:00:01"
    for bad in ("01:00:00:00:00:01", "02:00:00:00:00", "zz:00:00:00:00:01"):
        with pytest.raises(InvalidInput):
            addr.check_mac(bad)
    pool = ipaddress.IPv4Network("127.100.0.0/16")
    assert str(addr.check_public_ip("127.100.3.4", pool)) == "127.100.3.4"
    for bad in ("127.0.0.1", "10.0.0.1", "127.100.0.0"):
        with pytest.raises(InvalidInput):
            addr.check_public_ip(bad, pool)
    for bad in ("10.0.0.0/8x", "10.0.0.1/16", "10.0.0.0/29", "fd00::/64"):
        with pytest.raises(InvalidInput):
            addr.network(bad)
    for bad in ("../etc", "", "a b", "x" * 200):
        with pytest.raises(InvalidInput):
            addr.check_id(bad, "id")


def test_transit_candidates_skip_used_addresses() -> None:
    pool = ipaddress.IPv4Network("198.18.0.0/30")
    assert list(addr.transit_candidates(pool, ["198.18.0.1"])) == ["198.18.0.2"]
