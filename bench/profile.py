"""Sampling a server under load with py-spy (installed on first use into ``bench/.venvs/tools``).

``PySpy(pid, out).start()`` ... ``.stop()`` records folded stacks (py-spy's ``raw`` format:
``frame;frame;... count`` per line, outermost frame first); ``summarize`` turns them into the
hottest functions by self samples and by inclusive samples.
"""

from __future__ import annotations

import contextlib
import re
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench.peers import VENVS

TOOLS = VENVS / "tools"


def ensure_py_spy() -> Path:
    exe = TOOLS / "bin" / "py-spy"
    if not exe.exists():
        print("# installing py-spy into bench/.venvs/tools (first use only)", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(TOOLS)], check=True, timeout=300)
        subprocess.run([str(TOOLS / "bin" / "python"), "-m", "pip", "install", "--quiet",
                        "--disable-pip-version-check", "py-spy"], check=True, timeout=600)
    return exe


@dataclass
class PySpy:
    pid: int
    out: Path
    rate: int = 250
    process: subprocess.Popen[bytes] | None = None

    def start(self, max_seconds: int = 120) -> None:
        exe = ensure_py_spy()
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [str(exe), "record", "--pid", str(self.pid), "--format", "raw", "--rate", str(self.rate),
             "--nonblocking", "--duration", str(max_seconds), "--output", str(self.out)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def stop(self) -> str:
        """Stop sampling (py-spy writes its output on SIGINT); py-spy's stderr."""
        proc, self.process = self.process, None
        if proc is None:
            return ""
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate(timeout=5)
        return err.decode(errors="replace")[-2000:]


_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")


def _short(frame: str) -> str:
    """``handle (minicloud/aws/dispatch.py:123)`` -> ``minicloud/aws/dispatch.py:handle``."""
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    path = m.group("file")
    for marker in ("/site-packages/", "/lib/python3."):
        if marker in path:
            path = path.split(marker, 1)[1]
            if marker == "/lib/python3.":
                path = "stdlib/" + path.split("/", 1)[-1]
            break
    else:
        if "/minicloud/" in path:
            path = "minicloud/" + path.split("/minicloud/", 1)[1]
    return f"{path}:{m.group('func')}"


@dataclass
class Summary:
    samples: int
    self_top: list[tuple[str, int]]
    inclusive_top: list[tuple[str, int]]

    def render(self, limit: int = 15) -> str:
        if not self.samples:
            return "(no samples)"
        lines = [f"{self.samples} samples", "", "self (where the CPU was):"]
        lines += [f"  {n / self.samples:6.1%}  {name}" for name, n in self.self_top[:limit]]
        lines += ["", "inclusive (on the stack):"]
        lines += [f"  {n / self.samples:6.1%}  {name}" for name, n in self.inclusive_top[:limit]]
        return "\n".join(lines)


def summarize(folded: Path) -> Summary:
    """Busy samples only: py-spy drops idle threads unless asked (``--idle``); a leaf in the event loop's
    ``run`` is time in native code (uvloop/libuv I/O, httptools parsing), not waiting."""
    self_counts: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    total = 0
    with contextlib.suppress(FileNotFoundError), open(folded) as f:
        for line in f:
            stack, _, count_s = line.rstrip("\n").rpartition(" ")
            if not stack or not count_s.isdigit():
                continue
            frames = [_short(x) for x in stack.split(";") if x and not x.startswith(("process ", "thread "))]
            if not frames:
                continue
            count = int(count_s)
            total += count
            self_counts[frames[-1]] += count
            for name in set(frames):
                incl[name] += count
    return Summary(total, self_counts.most_common(40), incl.most_common(40))
