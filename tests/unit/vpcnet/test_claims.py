from __future__ import annotations

from pathlib import Path

import pytest

from minicloud.vpcnet.claims import PlaneLock, PublicIpClaims
from minicloud.vpcnet.model import Conflict


def test_a_public_ip_is_held_by_one_holder_at_a_time(tmp_path: Path) -> None:
    first, second = PublicIpClaims(tmp_path), PublicIpClaims(tmp_path)
    first.claim("127.100.0.1")
    first.claim("127.100.0.1")  # again: still ours
    with pytest.raises(Conflict):
        second.claim("127.100.0.1")
    second.claim("127.100.0.2")
    first.release("127.100.0.1")
    assert not (tmp_path / "127.100.0.1").exists()
    second.claim("127.100.0.1")
    assert second.held() == {"127.100.0.1", "127.100.0.2"}
    second.release_all()
    assert list(tmp_path.iterdir()) == []


def test_a_file_left_by_a_dead_holder_is_reused(tmp_path: Path) -> None:
    (tmp_path / "127.100.0.7").write_text("")  # the file of a holder that died (its lock died with it)
    claims = PublicIpClaims(tmp_path)
    claims.claim("127.100.0.7")
    assert claims.held() == {"127.100.0.7"}
    claims.release_all()


def test_sweep_removes_only_claims_nobody_holds(tmp_path: Path) -> None:
    (tmp_path / "127.100.0.7").write_text("")
    holder = PublicIpClaims(tmp_path)
    holder.claim("127.100.0.8")
    PublicIpClaims(tmp_path).sweep()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["127.100.0.8"]
    holder.release_all()


def test_one_live_data_plane_per_state_directory_and_dead_ones_are_orphans(tmp_path: Path) -> None:
    running = PlaneLock(tmp_path, "aaaa", Path("/data/one"))
    running.acquire()
    with pytest.raises(Conflict):
        PlaneLock(tmp_path, "aaaa", Path("/data/one")).acquire()
    (tmp_path / "bbbb").write_text("/data/gone")  # a data plane that died
    other = PlaneLock(tmp_path, "cccc", Path("/data/two"))
    other.acquire()
    orphans = other.orphans()
    assert [(o.tag, o.state_dir) for o in orphans] == [("bbbb", Path("/data/gone"))]  # not the live "aaaa"
    orphans[0].forget()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["aaaa", "cccc"]
    running.release()
    other.release()
    assert list(tmp_path.iterdir()) == []
