"""wrk (Debian's package: C, epoll, LuaJIT) replaying pre-signed requests, for the 4 KiB phases.

The Python generator (``bench/loadgen.py``) costs ~50 us of CPU per request: at 8,000 GETs/s that
is ~0.4 of this machine's two cores, taken from the server under test. wrk replays the same raw
requests (``bench/lua/replay.lua``) for ~35 us per request, kernel included. The figures count
2xx/3xx responses over wrk's own measured duration, after a warm-up run of its own.
"""

from __future__ import annotations

import resource
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from bench.loadgen import LoadResult

SCRIPT = Path(__file__).with_name("lua") / "replay.lua"


def available() -> bool:
    return shutil.which("wrk") is not None


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(url: str, replay: Path, connections: int, threads: int, seconds: float) -> tuple[str, float]:
    before = _children_cpu()
    done = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s",
         "-s", str(SCRIPT), url],
        capture_output=True, text=True, timeout=seconds + 120,
        env={"REPLAY_FILE": str(replay), "PATH": "/usr/bin:/bin"})
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip()[:300]}")
    return done.stdout, _children_cpu() - before


def replay(host: str, port: int, requests: Sequence[bytes], connections: int, threads: int, warmup_s: float,
           duration_s: float, on_window: Callable[[bool], None] | None = None) -> LoadResult:
    """Replay ``requests`` (cycling) over ``connections`` keep-alive connections for a warm-up, then a
    measured ``duration_s``; ``on_window`` is called around the measured run."""
    url = f"http://{host}:{port}/"
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        path = Path(tmp) / "requests"
        with path.open("wb") as out:
            for raw in requests:
                out.write(b"%d\n" % len(raw))
                out.write(raw)
        if warmup_s > 0:
            _run(url, path, connections, threads, warmup_s)
        if on_window is not None:
            on_window(True)
        try:
            stdout, cpu = _run(url, path, connections, threads, duration_s)
        finally:
            if on_window is not None:
                on_window(False)
    lines = [line.split() for line in stdout.splitlines() if line.startswith("RESULT ")]
    if not lines:
        raise RuntimeError(f"wrk printed no result: {stdout[-300:]}")
    total, duration_us, bad_status, connect, read_write, timeout = (int(v) for v in lines[-1][1:7])
    result = LoadResult(ok=total - bad_status, non_200=bad_status, failures=connect + read_write + timeout,
                        window_s=duration_us / 1e6, client_cpu_s=cpu)
    if bad_status:
        result.error_samples.append(f"wrk: {bad_status} responses neither 2xx nor 3xx")
    if result.failures:
        result.error_samples.append(f"wrk: connect {connect}, read/write {read_write}, timeout {timeout} errors")
    return result
