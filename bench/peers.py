"""Peers for side-by-side benchmarks: moto server and MiniStack, each from PyPI in its own virtualenv.

The virtualenvs live under ``bench/.venvs/<name>`` (gitignored) and are created on first use with
``python3 -m venv`` and ``pip install``. Every peer binds 127.0.0.1 on a free port, keeps its files
in a temporary directory, runs with its default settings (its own auth checks off), and is stopped
by its PID.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench.proc import LOOPBACK, ServerProcess, clean_env, free_port

BENCH = Path(__file__).resolve().parent
VENVS = BENCH / ".venvs"

# Any well-formed keys: the peers do not check signatures by default.
PEER_ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
PEER_SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


@dataclass(frozen=True)
class PeerSpec:
    name: str           # display name
    venv: str           # bench/.venvs/<venv>
    requirement: str    # what pip installs
    distribution: str   # the distribution whose version is reported
    script: str         # console script inside the venv


MOTO = PeerSpec("moto", "moto", "moto[server]", "moto", "moto_server")
MINISTACK = PeerSpec("MiniStack", "ministack", "ministack", "ministack", "ministack")
PEERS = {"moto": MOTO, "ministack": MINISTACK}


def _python3() -> str:
    return shutil.which("python3") or sys.executable


def ensure_venv(spec: PeerSpec, log: bool = True) -> Path:
    """The venv's bin directory, creating the venv and installing the peer when missing."""
    venv = VENVS / spec.venv
    bin_dir = venv / "bin"
    if (bin_dir / spec.script).exists():
        return bin_dir
    if log:
        print(f"# creating {venv} and installing {spec.requirement} (first run only)", file=sys.stderr)
    VENVS.mkdir(parents=True, exist_ok=True)
    subprocess.run([_python3(), "-m", "venv", str(venv)], check=True, timeout=300)
    subprocess.run([str(bin_dir / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    spec.requirement], check=True, timeout=900)
    if not (bin_dir / spec.script).exists():
        raise RuntimeError(f"{spec.requirement} installed no {spec.script} in {bin_dir}")
    return bin_dir


def installed_version(spec: PeerSpec) -> str:
    python = VENVS / spec.venv / "bin" / "python"
    out = subprocess.run(
        [str(python), "-c", f"import importlib.metadata as m; print(m.version({spec.distribution!r}))"],
        capture_output=True, text=True, timeout=60)
    return out.stdout.strip() or "?"


@dataclass
class Peer:
    """A running peer: its server process and the credentials a client signs with."""

    spec: PeerSpec
    server: ServerProcess
    tmp: tempfile.TemporaryDirectory[str]
    version: str
    access_key_id: str = PEER_ACCESS_KEY_ID
    secret_access_key: str = PEER_SECRET_ACCESS_KEY
    auth_checks: str = "off (default)"

    @property
    def name(self) -> str:
        return self.spec.name

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


def start_moto(timeout: float = 60.0) -> Peer:
    """``moto_server -H 127.0.0.1 -p <port>`` (werkzeug, threaded) with its state in memory."""
    bin_dir = ensure_venv(MOTO)
    tmp = tempfile.TemporaryDirectory(prefix="bench-moto-")
    root = Path(tmp.name)
    port = free_port()
    env = clean_env({"HOME": str(root)}, tmp_dir=root)
    server = ServerProcess(
        name="moto", argv=[str(bin_dir / MOTO.script), "-H", LOOPBACK, "-p", str(port)], env=env,
        cwd=root, log_path=root / "server.log", port=port, ready_path="/moto-api/",
        ready=lambda status, body: status == 200,
    )
    try:
        server.start(timeout)
    except BaseException:
        tmp.cleanup()
        raise
    return Peer(MOTO, server, tmp, installed_version(MOTO))


def start_ministack(timeout: float = 60.0) -> Peer:
    """MiniStack (hypercorn) on loopback only, with nothing else listening and nothing outside its tmp dir.

    From its source (``ministack/app.py``, ``core/persistence.py``): ``BIND_HOST`` is the bind
    interface (default 0.0.0.0); ``GATEWAY_PORT`` the port; ``IOT_MTLS_ENABLED=0`` keeps the IoT
    mTLS listener (port 8883) closed and ``SFTP_ENABLED=0`` the Transfer Family SFTP listener;
    ``USE_SSL`` unset keeps it off 443; its PID file and logs go to ``TMPDIR``; ``PERSIST_STATE=0``
    and ``S3_PERSIST=0`` keep state in memory (their dirs point into the tmp dir anyway); a
    ``DOCKER_HOST`` naming a socket that does not exist keeps it from touching a Docker daemon on
    this machine (its container reaper and Lambda/RDS containers); ``AUTH`` unset = no auth checks.
    """
    bin_dir = ensure_venv(MINISTACK)
    tmp = tempfile.TemporaryDirectory(prefix="bench-ministack-")
    root = Path(tmp.name)
    port = free_port()
    env = clean_env({
        "HOME": str(root),
        "BIND_HOST": LOOPBACK,
        "GATEWAY_PORT": str(port),
        "IOT_MTLS_ENABLED": "0",
        "SFTP_ENABLED": "0",
        "PERSIST_STATE": "0",
        "S3_PERSIST": "0",
        "STATE_DIR": str(root / "state"),
        "S3_DATA_DIR": str(root / "s3"),
        "DOCKER_HOST": f"unix://{root}/no-docker.sock",
    }, tmp_dir=root)
    for key in ("USE_SSL", "AUTH", "EDGE_PORT", "SERVICES"):
        env.pop(key, None)
    server = ServerProcess(
        name="MiniStack", argv=[str(bin_dir / MINISTACK.script)], env=env, cwd=root,
        log_path=root / "server.log", port=port, ready_path="/_ministack/health",
        ready=lambda status, body: status == 200,
    )
    try:
        server.start(timeout)
    except BaseException:
        tmp.cleanup()
        raise
    return Peer(MINISTACK, server, tmp, installed_version(MINISTACK))


STARTERS = {"moto": start_moto, "ministack": start_ministack}
