"""The S3 benchmark's table and goals: ratios point the right way, the faster Python peer is picked per figure."""

from __future__ import annotations

from bench.s3 import FIGURES, Options, Phase, Result, faster_python_peer, goals, render


def _result(key: str, name: str, put: float | None, get: float | None, put_mb: float | None, get_mb: float | None,
            list_s: float | None, rss: float | None) -> Result:
    r = Result(key, name)
    r.put_ops = Phase(put) if put is not None else None
    r.get_ops = Phase(get)
    r.put_mbps = Phase(put_mb) if put_mb is not None else None
    r.get_mbps = Phase(get_mb)
    r.list_s = Phase(list_s) if list_s is not None else None
    r.rss_get_mib = rss
    return r


def _results() -> dict[str, Result]:
    return {
        "minicloud-std": _result("minicloud-std", "minicloud STANDARD", 1000, 6000, 300, 1200, 0.1, 150),
        "minicloud-1z": _result("minicloud-1z", "minicloud ONEZONE_IA", 4000, 6000, 500, 1200, 0.1, 150),
        "moto": _result("moto", "moto", 300, 400, 60, 900, 2.0, 1500),
        "ministack": _result("ministack", "MiniStack", 700, 900, 90, 300, 0.5, 800),
        "seaweedfs": _result("seaweedfs", "SeaweedFS", 700, 1200, 80, 500, 0.2, 600),
        "nginx": _result("nginx", "nginx", None, 20000, None, 1600, None, 15),
    }


def test_faster_python_peer_depends_on_the_figure() -> None:
    results = _results()
    assert faster_python_peer(results, FIGURES[0]) == ("MiniStack", 700)   # higher is better
    assert faster_python_peer(results, FIGURES[3]) == ("moto", 900)
    assert faster_python_peer(results, FIGURES[4]) == ("MiniStack", 0.5)   # lower is better
    assert faster_python_peer({}, FIGURES[0]) is None


def test_table_ratios_favour_minicloud_above_one() -> None:
    table = render(_results(), Options(), "1 GiB")
    rows = {line.split(" | ")[0].lstrip("| "): line for line in table.splitlines() if line.startswith("| ")}
    assert "| 1.43x / 5.71x (MiniStack) | 1.43x / 5.71x |  |" in rows["4 KiB PUT ops/s @16"]
    assert "| 0.30x / 0.30x |" in rows["4 KiB GET ops/s @16"]                    # vs nginx's 20,000
    assert "| 5.00x / 5.00x (MiniStack) | 2.00x / 2.00x |" in rows["list 10,000 keys, s"]  # times: theirs / ours
    assert "| 5.33x / 5.33x (MiniStack) |" in rows["peak RSS during the 1 GiB transfer, MiB"]


def test_goals_met_and_missed() -> None:
    lines = goals(_results())
    by_start = {line.split(":")[0]: line for line in lines}
    assert by_start["4 KiB PUT ops/s @16, minicloud ONEZONE_IA"].endswith("MET")       # 4000 >= 5 x 700, > 700
    assert by_start["4 KiB PUT ops/s @16, minicloud STANDARD"].endswith("MISSED")      # 1000 < 3500
    assert by_start["1 GiB PUT MB/s (multipart, 1 stream), minicloud ONEZONE_IA"].endswith("MET")  # 500 >= 180
    assert by_start["1 GiB GET MB/s (1 stream), minicloud ONEZONE_IA"].endswith("MISSED")  # 1200 < 1800
    assert by_start["large GET >= 70% of nginx, minicloud ONEZONE_IA"].endswith("MET")  # 1200 >= 1120
    assert by_start["list 10k keys < 0.3 s, minicloud STANDARD"].endswith("MET")
    assert by_start["peak RSS < 200 MiB, minicloud STANDARD"].endswith("MET")
