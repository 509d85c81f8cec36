"""A stop at any moment leaves no Lambda network namespace or mount behind, even one that comes
while Lambda is still preparing its spare namespaces right after start-up."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.server import MinicloudServer

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")


def mounts_under(path: Path) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if str(path) in line.split()[4]]


def test_a_stop_right_after_start_leaves_no_mounts(tmp_path: Path) -> None:
    server = MinicloudServer(tmp_path / "data")
    server.start()
    server.stop()
    assert mounts_under(server.data_dir) == []
    netns = server.data_dir / "lambda" / "netns"
    assert not netns.exists() or list(netns.iterdir()) == []
