"""exec_parent.py with a stand-in for ``runc exec -d``: a command that starts a process, writes
its pid and exits before it, as runc does."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from minicloud.engine.containers.exec import EXEC_PARENT


def run(tmp_path: Path, script: str) -> tuple[dict[str, object], int]:
    pid_file = tmp_path / "pid"
    proc = subprocess.run([sys.executable, "-I", "-S", str(EXEC_PARENT), str(pid_file), "sh", "-c", script],
                          capture_output=True, timeout=30, check=False, env={"PIDFILE": str(pid_file),
                                                                             "PATH": "/usr/bin:/bin"})
    return json.loads(proc.stdout), proc.returncode


def test_waits_for_the_process_the_runner_left_behind(tmp_path: Path) -> None:
    report, code = run(tmp_path, 'sh -c "sleep 0.3; exit 5" & echo $! > "$PIDFILE"')
    assert isinstance(report["pid"], int) and code == 5


def test_a_killed_process_exits_128_plus_the_signal(tmp_path: Path) -> None:
    _, code = run(tmp_path, 'sh -c "sleep 0.3; kill -9 \\$\\$" & echo $! > "$PIDFILE"')
    assert code == 137


def test_reports_why_the_runner_failed(tmp_path: Path) -> None:
    report, code = run(tmp_path, "echo 'exec failed: no such file' >&2; exit 3")
    assert report == {"error": "exec failed: no such file", "code": 3} and code == 3
