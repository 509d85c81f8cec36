"""Process helpers shared by the benchmarks: free ports, servers stopped by PID, RSS of a process tree.

Every server a benchmark starts runs in its own session (so a Ctrl-C in the terminal reaches only
the harness, which then stops them), binds 127.0.0.1, and is stopped by its PID: SIGTERM, then
SIGKILL after a grace period, then SIGKILL to whatever is left in its own process group.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def clean_env(extra: Mapping[str, str] | None = None, tmp_dir: Path | None = None) -> dict[str, str]:
    """The harness's environment without AWS_/MINICLOUD_ settings that would change a server's behaviour."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "MINICLOUD_", "MOTO_", "MINISTACK_", "LOCALSTACK_"))}
    if tmp_dir is not None:
        env.update(TMPDIR=str(tmp_dir), TMP=str(tmp_dir), TEMP=str(tmp_dir))
    env.update(extra or {})
    return env


# -- /proc ------------------------------------------------------------------------------------------
def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out.extend(int(c) for c in f.read().split())
        except OSError:
            continue
    return out


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants that are alive now."""
    seen: list[int] = []
    stack = [pid]
    while stack:
        p = stack.pop()
        if p in seen or not Path(f"/proc/{p}").exists():
            continue
        seen.append(p)
        stack.extend(_children(p))
    return seen


def _status_kib(pid: int, key: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


@dataclass(frozen=True)
class Rss:
    rss_kib: int  # sum of VmRSS over the tree
    hwm_kib: int  # sum of VmHWM (each process's own peak) over the tree
    processes: int

    @property
    def rss_mib(self) -> float:
        return self.rss_kib / 1024

    @property
    def hwm_mib(self) -> float:
        return self.hwm_kib / 1024


def tree_rss(pid: int) -> Rss:
    pids = process_tree(pid)
    return Rss(sum(_status_kib(p, "VmRSS:") for p in pids), sum(_status_kib(p, "VmHWM:") for p in pids),
               len(pids))


def tree_pss_kib(pid: int) -> int:
    """Proportional set size of ``pid`` and its descendants (``smaps_rollup``): pages shared by several
    of them (a forked worker's copy-on-write code, shared libraries) counted once in all, not once each."""
    total = 0
    for p in process_tree(pid):
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
                        break
        except (OSError, ValueError, IndexError):
            continue
    return total


def cpu_seconds(pid: int) -> float:
    """User+system CPU time of ``pid`` and its descendants alive now (from /proc/<pid>/stat)."""
    total = 0
    for p in process_tree(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
        except (OSError, ValueError, IndexError):
            continue
    return total / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU seconds all CPUs spent busy since boot (/proc/stat: everything but idle and iowait)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    busy = sum(fields[:8]) - idle  # user nice system idle iowait irq softirq steal
    return busy / os.sysconf("SC_CLK_TCK")


# -- a managed server process -----------------------------------------------------------------------
def set_autogroup_nice(pid: int, nice: int) -> bool:
    """Give ``pid``'s scheduler autogroup this niceness (Linux with autogroups: one per session).

    With autogroups on, a process's own niceness only ranks it within its session; a server started
    in its own session competes with other sessions as a whole, so its group gets the niceness too.
    """
    try:
        with open(f"/proc/{pid}/autogroup", "w") as f:
            f.write(str(nice))
        return True
    except OSError:
        return False


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the harness dies, even by SIGKILL (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


@dataclass
class ServerProcess:
    """A server started by the harness, stopped by its PID."""

    name: str
    argv: Sequence[str]
    env: dict[str, str]
    cwd: Path
    log_path: Path
    port: int
    ready_path: str
    ready: Callable[[int, bytes], bool] = field(default=lambda status, body: status < 500)
    process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None, f"{self.name} is not running"
        return self.process.pid

    @property
    def endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                list(self.argv), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=self.env, cwd=self.cwd, start_new_session=True, preexec_fn=_die_with_parent,
            )
        nice = os.getpriority(os.PRIO_PROCESS, 0)
        if nice < 0:  # the harness runs with a raised priority: so does the server's own session
            set_autogroup_nice(self.process.pid, nice)
        deadline = time.monotonic() + timeout
        url = f"{self.endpoint}{self.ready_path}"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")
            status, body = http_get(url)
            if status and self.ready(status, body):
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} did not become ready in {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self, grace: float = 10.0) -> int | None:
        proc, self.process = self.process, None
        if proc is None:
            return None
        pgid = proc.pid  # start_new_session: the server leads its own process group
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait(5)
        # Anything the server left behind in its own group (it never leaves it by itself).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
        return proc.returncode


def http_get(url: str, timeout: float = 1.0) -> tuple[int, bytes]:
    """(status, body) of a GET, or (0, b"") when nothing answered."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return int(r.status), r.read()
    except urllib.error.HTTPError as e:
        return int(e.code), e.read() if e.fp else b""
    except (OSError, ValueError):
        return 0, b""
