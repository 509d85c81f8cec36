from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from minicloud.vpcnet.hosttable import removal, ruleset


def test_host_table_only_matches_our_links_and_public_addresses() -> None:
    text = ruleset("minicloud_vpc_ab12", ["vxab12bbb", "vxab12aaa"], {"127.100.0.10": "198.18.0.2",
                                                                       "127.100.0.9": "198.18.0.1"})
    assert text.splitlines()[:2] == ["table inet minicloud_vpc_ab12", "delete table inet minicloud_vpc_ab12"]
    assert 'elements = { "vxab12aaa", "vxab12bbb" }' in text
    assert "dnat ip to ip daddr map { 127.100.0.9 : 198.18.0.1, 127.100.0.10 : 198.18.0.2 }" in text
    assert "oifname @links masquerade" in text
    for line in text.splitlines():  # every filtering rule names our links: nothing else of the host is affected
        if line.strip().endswith(("drop", "accept")) and "policy" not in line:
            assert "@links" in line
    assert "policy drop" not in text


def test_empty_host_table_has_no_translation() -> None:
    text = ruleset("minicloud_vpc_ab12", [], {})
    assert "dnat" not in text and "elements" not in text
    assert removal("minicloud_vpc_ab12") == "table inet minicloud_vpc_ab12\ndelete table inet minicloud_vpc_ab12\n"


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("nft") or not shutil.which("unshare"),
                    reason="checking a ruleset with nft needs root")
def test_nft_accepts_the_host_table() -> None:
    for text in (ruleset("minicloud_vpc_ab12", ["vxab12aaa"], {"127.100.0.9": "198.18.0.1"}),
                 ruleset("minicloud_vpc_ab12", [], {})):
        result = subprocess.run(["unshare", "--net", "nft", "-c", "-f", "-"], input=text, capture_output=True,
                                text=True, check=False)
        assert result.returncode == 0, result.stderr
