"""minicloud for benchmarks: ``python -m minicloud.cli up`` on a free loopback port with a temporary data dir.

Runs with its defaults: every request authenticated with SigV4 and authorised by IAM policy
evaluation. The root keys come from ``<data_dir>/credentials.json`` (the same contract as
``tests/support/server.py``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bench.proc import LOOPBACK, ServerProcess, clean_env, free_port

REPO = Path(__file__).resolve().parents[1]


def _version() -> str:
    try:
        out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10)
        return f"git {out.stdout.strip()}" if out.returncode == 0 else "?"
    except OSError:
        return "?"


@dataclass
class Minicloud:
    server: ServerProcess
    tmp: tempfile.TemporaryDirectory[str]
    data_dir: Path
    access_key_id: str
    secret_access_key: str
    account_id: str
    version: str
    name: str = "minicloud"
    auth_checks: str = "on: SigV4 + IAM policy evaluation"

    @property
    def pid(self) -> int:
        return self.server.pid

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def endpoint(self) -> str:
        return self.server.endpoint

    def stop(self) -> None:
        try:
            self.server.stop()
        finally:
            self.tmp.cleanup()


def start_minicloud(timeout: float = 60.0, python: str | None = None,
                    env: Mapping[str, str] | None = None) -> Minicloud:
    """``env``: MINICLOUD_* settings for this run (the harness's own environment's are dropped)."""
    tmp = tempfile.TemporaryDirectory(prefix="bench-minicloud-")
    root = Path(tmp.name)
    data_dir = root / "data"
    data_dir.mkdir()
    port = free_port()
    server = ServerProcess(
        name="minicloud",
        argv=[python or sys.executable, "-m", "minicloud.cli", "up", "--host", LOOPBACK, "--port", str(port),
              "--data-dir", str(data_dir)],
        env=clean_env({"HOME": str(root), **(env or {})}, tmp_dir=root), cwd=REPO, log_path=root / "server.log",
        port=port,
        ready_path="/_minicloud/health", ready=lambda status, body: status == 200,
    )
    try:
        server.start(timeout)
        creds = json.loads((data_dir / "credentials.json").read_text())
    except BaseException:
        server.stop()
        tmp.cleanup()
        raise
    return Minicloud(server, tmp, data_dir, creds["access_key_id"], creds["secret_access_key"],
                     str(creds.get("account_id", "")), _version())
