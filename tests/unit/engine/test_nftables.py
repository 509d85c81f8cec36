from __future__ import annotations

from minicloud.engine.network.nftables import TABLE, BridgeRule, ruleset


def test_ruleset_replaces_the_table_atomically_and_drops_by_default() -> None:
    text = ruleset([BridgeRule("mcb-b", "172.18.0.1"), BridgeRule("mcb-a", "172.17.0.1")])
    lines = text.splitlines()
    assert lines[:2] == [f"table inet {TABLE}", f"delete table inet {TABLE}"]
    assert text.count("policy drop;") == 2  # input and forward
    assert 'iifname "mcb-a" ip daddr 172.17.0.1 udp dport 53 accept' in text
    assert text.index("mcb-a") < text.index("mcb-b")
    assert "masquerade" not in text and "nat" not in text  # nothing ever leaves the machine


def test_empty_ruleset_still_closes_the_namespace() -> None:
    text = ruleset([])
    assert "policy drop" in text and "dport 53" not in text
