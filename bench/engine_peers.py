"""Peers and fixtures of the engine benchmark: podman in its own folders, a CNCF registry (Debian's
``docker-registry``) every engine pulls from, a 5-layer image of random bytes pushed into it with
skopeo, and the memory of an engine's processes (its daemons and per-container supervisors, never
the containers' own processes).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from bench.proc import clean_env, free_port

# podman may not raise RLIMIT_NOFILE past this machine's hard limit (20000); it asks for 1048576 by default
PODMAN_ULIMITS = ["--ulimit", "nofile=20000:20000", "--ulimit", "nproc=20000:20000"]


class Podman:
    """Debian's podman with its own --root/--runroot, cgroupfs, file events and runc. Containers get
    ``--network none``: podman's bridge would add firewall rules to the host's, which is not ours to touch."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.binary = shutil.which("podman")

    @property
    def available(self) -> bool:
        return self.binary is not None

    def argv(self, *args: str) -> list[str]:
        assert self.binary is not None
        return [self.binary, "--root", str(self.root / "root"), "--runroot", str(self.root / "run"),
                "--tmpdir", str(self.root / "tmp"), "--cgroup-manager", "cgroupfs", "--events-backend", "file",
                "--runtime", "runc", "--storage-driver", "overlay", "--network-config-dir", str(self.root / "net"),
                *args]

    def run_argv(self, *args: str) -> list[str]:
        return self.argv("run", "--network", "none", *PODMAN_ULIMITS, *args)

    def stop(self) -> None:
        """Remove every container (their conmons go with them), then the storage's mounts."""
        if not self.available or not (self.root / "root").exists():
            return
        subprocess.run(self.argv("rm", "-f", "-a", "-t", "0"), capture_output=True, timeout=120, check=False)
        subprocess.run(self.argv("system", "reset", "-f"), capture_output=True, timeout=120, check=False,
                       env=clean_env())


@dataclass
class Registry:
    """Debian's docker-registry (CNCF distribution) on a loopback port, stopped by its PID."""

    root: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> bool:
        binary = shutil.which("docker-registry")
        if binary is None:
            return False
        self.port = free_port()
        config = self.root / "config.yml"
        config.write_text(f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {self.root / 'data'}\n"
                          f"http:\n  addr: 127.0.0.1:{self.port}\n")
        with open(self.root / "registry.log", "ab") as log:
            self.process = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                urllib.request.urlopen(f"http://{self.host}/v2/", timeout=1).close()
                return True
            time.sleep(0.1)
        self.stop()
        return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _blob(layout: Path, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256" / digest).write_bytes(data)
    return f"sha256:{digest}"


def random_layer(index: int, mib: int, files: int = 6) -> bytes:
    """An uncompressed layer tar: ``files`` files of random bytes under ``/data<index>/``."""
    out = io.BytesIO()
    size = (mib << 20) // files
    with tarfile.open(fileobj=out, mode="w") as tar:
        for n in range(files):
            info = tarfile.TarInfo(f"data{index}/part{n}.bin")
            info.size, info.mode, info.mtime = size, 0o644, 1_700_000_000
            tar.addfile(info, io.BytesIO(os.urandom(size)))
    return out.getvalue()


def big_image(target: Path, layers: int = 5, total_mib: int = 300) -> Path:
    """An OCI image layout of ``layers`` gzip layers of random bytes (``total_mib`` in all)."""
    layout = target / "big-oci"
    (layout / "blobs" / "sha256").mkdir(parents=True)
    descriptors, diff_ids = [], []
    for index in range(layers):
        raw = random_layer(index, total_mib // layers)
        diff_ids.append(f"sha256:{hashlib.sha256(raw).hexdigest()}")
        packed = gzip.compress(raw, compresslevel=1, mtime=0)
        descriptors.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "size": len(packed),
                            "digest": _blob(layout, packed)})
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": len(config),
                   "digest": _blob(layout, config)},
        "layers": descriptors}).encode()
    listing = {"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "size": len(manifest),
        "digest": _blob(layout, manifest), "annotations": {"org.opencontainers.image.ref.name": "bench"}}]}
    (layout / "index.json").write_text(json.dumps(listing))
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    return layout


def push_layout(layout: Path, reference: str) -> None:
    subprocess.run(["skopeo", "copy", "--dest-tls-verify=false", f"oci:{layout}:bench", f"docker://{reference}"],
                   check=True, capture_output=True, timeout=600)


# -- memory -------------------------------------------------------------------------------------------
def _in_host_pid_namespace(pid: int) -> bool:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid") == os.readlink("/proc/self/ns/pid")
    except OSError:
        return False


def _kib(pid: int, path: str, key: str) -> int:
    with contextlib.suppress(OSError, ValueError, IndexError), open(f"/proc/{pid}/{path}") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1])
    return 0


def engine_processes(roots: list[int], marker: str) -> list[int]:
    """Engine processes: ``roots`` and their descendants, plus every process whose command line or
    working directory names ``marker`` (daemonized shims, conmons, supervisors), leaving out what
    runs inside containers (another PID namespace)."""
    from bench.proc import process_tree

    found: set[int] = set()
    for root in roots:
        found.update(process_tree(root))
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(entry / "cwd") if marker else ""
            if marker in cmdline or cwd.startswith(marker):
                found.update(process_tree(int(entry.name)))
    return sorted(p for p in found if _in_host_pid_namespace(p) and _kib(p, "status", "VmRSS:") > 0)


@dataclass(frozen=True)
class Memory:
    processes: int
    rss_mib: float
    pss_mib: float


def memory_of(pids: list[int]) -> Memory:
    rss = sum(_kib(p, "status", "VmRSS:") for p in pids)
    pss = sum(_kib(p, "smaps_rollup", "Pss:") for p in pids)
    return Memory(len(pids), rss / 1024, pss / 1024)
