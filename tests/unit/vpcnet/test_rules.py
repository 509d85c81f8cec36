from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from minicloud.vpcnet.model import InvalidInput, Rule, SecurityGroup
from minicloud.vpcnet.rules import TABLE, PortView, Service, cidr_selector, compile_rule, protocol_match, ruleset


def test_protocols_and_ranges_as_ec2_names_them() -> None:
    assert protocol_match(Rule("tcp", 22, 22)) == "tcp dport 22"
    assert protocol_match(Rule("6", 8000, 8080)) == "tcp dport 8000-8080"
    assert protocol_match(Rule("udp", 0, 65535)) == "meta l4proto udp"
    assert protocol_match(Rule("tcp", -1, -1)) == "meta l4proto tcp"
    assert protocol_match(Rule("icmp", -1, -1)) == "meta l4proto icmp"
    assert protocol_match(Rule("icmp", 8, -1)) == "icmp type 8"
    assert protocol_match(Rule("1", 3, 4)) == "icmp type 3 icmp code 4"
    assert protocol_match(Rule("all", -1, -1)) == ""
    assert protocol_match(Rule("-1", -1, -1)) == ""
    assert protocol_match(Rule("47", -1, -1)) == "meta l4proto 47"
    assert protocol_match(Rule("icmpv6", -1, -1)) is None  # never matches IPv4


@pytest.mark.parametrize("rule", [Rule("tcp", 80, 22), Rule("udp", 0, 70000), Rule("gre", -1, -1),
                                  Rule("icmp", 300, -1), Rule("256", -1, -1)])
def test_bad_rules_are_refused(rule: Rule) -> None:
    with pytest.raises(InvalidInput):
        protocol_match(rule)


def test_cidrs_are_merged_and_the_whole_internet_matches_any_source() -> None:
    assert cidr_selector(["10.0.0.0/8", "10.1.0.0/16", "192.168.1.7/32"], "saddr") == \
        "ip saddr { 10.0.0.0/8, 192.168.1.7/32 }"
    assert cidr_selector(["0.0.0.0/0", "10.0.0.0/8"], "daddr") == ""
    assert cidr_selector([], "saddr") is None
    assert cidr_selector(["::/0"], "saddr") is None  # IPv6 ranges do not apply
    with pytest.raises(InvalidInput):
        cidr_selector(["10.0.0.0/33"], "saddr")


def test_a_rule_with_cidrs_and_groups_accepts_either() -> None:
    rule = Rule("tcp", 22, 22, ("10.0.0.0/16",), ("sg-b", "sg-a"))
    lines = compile_rule(rule, "saddr", {"sg-a": "m0", "sg-b": "m1"})
    assert lines == ["ip saddr { 10.0.0.0/16 } tcp dport 22 accept", "ip saddr @m0 tcp dport 22 accept",
                     "ip saddr @m1 tcp dport 22 accept"]
    assert compile_rule(Rule("all", -1, -1, ("0.0.0.0/0",)), "daddr", {}) == ["accept"]
    assert compile_rule(Rule("all", -1, -1), "daddr", {}) == []  # no peer at all: matches nothing


def _groups() -> dict[str, SecurityGroup]:
    ingress = (Rule("tcp", 80, 80, ("0.0.0.0/0",)), Rule("tcp", 22, 22, (), ("sg-admin",)))
    web = SecurityGroup("sg-web", "vpc-1", ingress, (Rule("all", -1, -1, ("0.0.0.0/0",)),))
    admin = SecurityGroup("sg-admin", "vpc-1", (), ())
    return {"sg-web": web, "sg-admin": admin}


def test_ruleset_shape() -> None:
    ports = [PortView("pb", "10.0.1.20", ("sg-web",), "198.18.0.1"), PortView("pa", "10.0.1.10", ("sg-admin",))]
    text = ruleset(ports, _groups(), [Service("169.254.169.254", 80)], ["10.0.1.1"])
    lines = text.splitlines()
    assert lines[:2] == [f"table inet {TABLE}", f"delete table inet {TABLE}"]
    assert "set m0 { type ipv4_addr; elements = { 10.0.1.10 } }" in text  # members of sg-admin
    assert 'iifname "uplink" dnat ip to ip daddr map { 198.18.0.1 : 10.0.1.20 }' in text
    assert 'iifname vmap { "pa" : jump po0, "pb" : jump po1 }' in text
    assert 'oifname vmap { "pa" : jump pi0, "pb" : jump pi1 }' in text
    assert "ip saddr @m0 tcp dport 22 accept" in text
    assert text.count("policy drop;") == 2  # input, ingress
    assert "iifname != \"uplink\" ip daddr 169.254.169.254 tcp dport 80 accept" in text


def test_an_unknown_group_denies_everything() -> None:
    text = ruleset([PortView("pa", "10.0.1.10", ("sg-none",))], {}, [], [])
    chain_in = text[text.index("chain gi0"):].split("}", 1)[0]
    chain_out = text[text.index("chain po0"):].split("}", 1)[0]
    assert "accept" not in chain_in
    assert chain_out.strip().endswith("drop")


def test_empty_vpc_still_closes_the_router() -> None:
    text = ruleset([], {}, [], [])
    assert "vmap" not in text and "dnat" not in text and "policy drop" in text


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("nft") or not shutil.which("unshare"),
                    reason="checking a ruleset with nft needs root")
def test_nft_accepts_the_ruleset() -> None:
    ports = [PortView("pb", "10.0.1.20", ("sg-web",), "198.18.0.1"), PortView("pa", "10.0.1.10", ("sg-admin",)),
             PortView("pc", "10.0.2.10", ("sg-web", "sg-admin", "sg-unknown"))]
    for text in (ruleset(ports, _groups(), [Service("169.254.169.254", 80)], ["10.0.1.1", "10.0.2.1"]),
                 ruleset([], {}, [], [])):
        result = subprocess.run(["unshare", "--net", "nft", "-c", "-f", "-"], input=text, capture_output=True,
                                text=True, check=False)
        assert result.returncode == 0, result.stderr


def test_ports_with_the_same_groups_share_their_chains() -> None:
    ports = [PortView(f"p{n}", f"10.0.1.{10 + n}", ("sg-web", "sg-admin")) for n in range(50)]
    ports.append(PortView("px", "10.0.1.99", ("sg-admin",)))
    text = ruleset(ports, _groups(), [], [])
    assert len(re.findall(r"chain po\d+ ", text)) == 2 and len(re.findall(r"chain pi\d+ ", text)) == 2
    assert '"p7" : jump po0' in text and '"px" : jump po1' in text
