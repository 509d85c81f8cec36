"""Run a real ``minicloud up`` for tests: a free port, a temporary data dir, stopped by PID."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config as BotoConfig

REPO = Path(__file__).resolve().parents[2]
MINICLOUD = [sys.executable, "-m", "minicloud.cli"]


_PORTS = random.SystemRandom()  # (never the tests' seeded random)


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A loopback port free now, for a server about to start. It is chosen below the kernel's
    ephemeral range: a port the kernel handed out (bind to port 0) is free only until the server
    binds it, and meanwhile any client's connect() may take the same port as its source port (then
    the server fails to start with EADDRINUSE); the kernel never picks a source port below that range."""
    low = _ephemeral_low()
    for _ in range(200):
        if low <= 11_000:
            break
        port = _PORTS.randrange(10_000, low)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Keys:
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None


@dataclass
class MinicloudServer:
    data_dir: Path
    port: int = field(default_factory=free_port)
    env: dict[str, str] = field(default_factory=dict)
    extra_args: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None
    account_id: str = ""
    root: Keys | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90.0) -> MinicloudServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.data_dir / "server.log", "ab")  # noqa: SIM115 - owned by the process
        env = {**os.environ, **self.env}
        self.process = subprocess.Popen(
            [*MINICLOUD, "up", "--port", str(self.port), "--data-dir", str(self.data_dir), *self.extra_args],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"minicloud exited with {self.process.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.endpoint}/_minicloud/health", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.05)
        else:
            self.stop()
            raise RuntimeError(f"minicloud did not become healthy:\n{self.log()}")
        creds = json.loads((self.data_dir / "credentials.json").read_text())
        self.account_id = creds["account_id"]
        self.root = Keys(creds["access_key_id"], creds["secret_access_key"])
        return self

    def check_alive(self) -> None:
        """Raise, with the end of its log, when the server exited while tests still use it."""
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"minicloud on port {self.port} exited with {self.process.returncode} while "
                               f"tests were using it; its log ends:\n{self.log()}")

    def log(self) -> str:
        path = self.data_dir / "server.log"
        return path.read_text(errors="replace")[-5000:] if path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        code = self.process.returncode
        self.process = None
        return code

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    # -- clients ----------------------------------------------------------------------------------
    def client(self, service: str, keys: Keys | None = None, region: str = "us-east-1", **kw: Any) -> Any:
        keys = keys or self.root
        assert keys is not None
        return boto3.session.Session().client(
            service, endpoint_url=self.endpoint, region_name=region,
            aws_access_key_id=keys.access_key_id, aws_secret_access_key=keys.secret_access_key,
            aws_session_token=keys.session_token,
            config=BotoConfig(retries={"max_attempts": 1}, **kw),
        )

    def cli_env(self, keys: Keys | None = None, region: str = "us-east-1") -> dict[str, str]:
        keys = keys or self.root
        assert keys is not None
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(AWS_ACCESS_KEY_ID=keys.access_key_id, AWS_SECRET_ACCESS_KEY=keys.secret_access_key,
                   AWS_DEFAULT_REGION=region, AWS_CONFIG_FILE="/dev/null",
                   AWS_SHARED_CREDENTIALS_FILE="/dev/null", AWS_MAX_ATTEMPTS="1")
        if keys.session_token:
            env["AWS_SESSION_TOKEN"] = keys.session_token
        return env

    def aws(self, *args: str, keys: Keys | None = None, region: str = "us-east-1",
            check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run the unmodified AWS CLI (v1, from PyPI) against this server."""
        aws = str(Path(sys.executable).with_name("aws"))
        result = subprocess.run(
            [aws, "--endpoint-url", self.endpoint, "--output", "json", *args],
            env=self.cli_env(keys, region), capture_output=True, text=True, timeout=60,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"aws {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result

    def aws_json(self, *args: str, **kw: Any) -> Any:
        out = self.aws(*args, **kw).stdout
        return json.loads(out) if out.strip() else None


def release_mounts_under(root: Path) -> list[str]:
    """Unmount (lazily) whatever is still mounted under ``root``: the network-namespace files and
    private directories of servers that were killed (``kill -9``) and never restarted, which nobody
    else would ever release. Deepest first; returns the mount points released."""
    import ctypes

    prefix = str(root.resolve()) + "/"
    points = []
    with open("/proc/self/mountinfo", encoding="utf-8") as mountinfo:
        for line in mountinfo:
            point = line.split()[4].encode().decode("unicode_escape")  # \040 and friends
            if point.startswith(prefix):
                points.append(point)
    libc = ctypes.CDLL(None, use_errno=True)
    released = []
    for point in sorted(set(points), key=lambda p: p.count("/"), reverse=True):
        if libc.umount2(point.encode(), 2) == 0:  # MNT_DETACH
            released.append(point)
    return released

