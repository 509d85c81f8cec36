"""Container engine: ``docker run --rm busybox true`` latency, minicloud side by side with Debian's
dockerd (``docker.io``, own folders, ``--bridge none --iptables=false``) and raw ``runc run`` as
the floor; then a 6-step classic build (``DOCKER_BUILDKIT=0 docker build --network none``: FROM,
COPY of 4 MiB, two RUNs, ENV, CMD) uncached (``--no-cache``) and cached. The same busybox root
filesystem (Debian's busybox-static) is imported into both engines; runs alternate between them
so that machine noise hits everyone alike.

    .venv/bin/python bench/run.py engine [--runs 20] [--build-runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from bench.minicloud_server import start_minicloud
from bench.proc import clean_env

DOCKER = shutil.which("docker", path="/usr/local/bin") or "docker"


def busybox_rootfs(target: Path) -> Path:
    root = target / "rootfs"
    (root / "bin").mkdir(parents=True)
    shutil.copy2("/bin/busybox", root / "bin" / "busybox")
    applets = subprocess.run(["/bin/busybox", "--list"], capture_output=True, text=True, check=True).stdout.split()
    for applet in applets:
        if applet != "busybox":
            os.symlink("busybox", root / "bin" / applet)
    for name in ("etc", "tmp", "proc", "sys", "dev"):
        (root / name).mkdir()
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    return root


def rootfs_tar(root: Path, target: Path) -> Path:
    with tarfile.open(target, "w") as tar:
        tar.add(root, arcname=".")
    return target


def timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
    return time.perf_counter() - started


class Dockerd:
    """Debian's dockerd in its own folders, stopped by its PID."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.sock = root / "docker.sock"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> bool:
        dockerd = shutil.which("dockerd")
        if dockerd is None:
            return False
        with open(self.root / "dockerd.log", "ab") as log:
            self.process = subprocess.Popen(
                [dockerd, "--data-root", str(self.root / "data"), "--exec-root", str(self.root / "exec"),
                 "-H", f"unix://{self.sock}", "--pidfile", str(self.root / "pid"), "--bridge", "none",
                 "--iptables=false"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=clean_env(tmp_dir=self.root),
                start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.process.poll() is None:
            if self.sock.exists() and subprocess.run([DOCKER, "-H", f"unix://{self.sock}", "version"],
                                                     capture_output=True, check=False).returncode == 0:
                return True
            time.sleep(0.2)
        self.stop()
        return False

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def runc_bundle(root: Path, rootfs: Path) -> Path:
    bundle = root / "bundle"
    bundle.mkdir()
    subprocess.run(["runc", "spec"], cwd=bundle, check=True)
    spec = json.loads((bundle / "config.json").read_text())
    spec["root"]["path"] = str(rootfs)  # runc refuses a symlinked rootfs
    spec["process"].update(terminal=False, args=["true"],
                           rlimits=[{"type": "RLIMIT_NOFILE", "hard": 20000, "soft": 20000}])
    (bundle / "config.json").write_text(json.dumps(spec))
    return bundle


BUILD_DOCKERFILE = """\
FROM busybox
COPY data.bin /app/data.bin
RUN md5sum /app/data.bin > /app/sum
RUN mkdir -p /app/out && cp /app/sum /app/out/copy
ENV APP=/app
CMD ["cat", "/app/sum"]
"""


def build_context(root: Path) -> Path:
    context = root / "build-context"
    context.mkdir()
    (context / "Dockerfile").write_text(BUILD_DOCKERFILE)
    (context / "data.bin").write_bytes(os.urandom(4 << 20))
    return context


def build_bench(envs: dict[str, dict[str, str]], context: Path, runs: int) -> None:
    """Uncached and cached builds of the same context, alternating between the engines."""
    def build(env: dict[str, str], *extra: str) -> float:
        return timed([DOCKER, "build", "--network", "none", "-t", "bench-build", *extra, str(context)],
                     {**env, "DOCKER_BUILDKIT": "0"})

    results: dict[str, dict[str, list[float]]] = {name: {"uncached": [], "cached": []} for name in envs}
    for env in envs.values():
        build(env)  # warm-up: base image unpacked, cache filled
    for _ in range(runs):
        for name, env in envs.items():
            results[name]["uncached"].append(build(env, "--no-cache"))
            results[name]["cached"].append(build(env))
    print("\n== engine: 6-step classic build (DOCKER_BUILDKIT=0, --network none) ==")
    for kind in ("uncached", "cached"):
        for name in envs:
            print(f"  {kind:8} {name:22} {summary(results[name][kind])}")
        if "minicloud" in results and len(results) > 1:
            base = statistics.median(results["minicloud"][kind])
            for name in envs:
                if name != "minicloud":
                    print(f"  {kind:8} minicloud / {name}: {base / statistics.median(results[name][kind]):.2f}x")


def summary(samples: list[float]) -> str:
    ordered = sorted(samples)
    p90 = ordered[int(0.9 * (len(ordered) - 1))]
    return f"median {statistics.median(ordered) * 1000:7.1f} ms   p90 {p90 * 1000:7.1f} ms   n={len(ordered)}"


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench/run.py engine", description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--build-runs", type=int, default=5, help="0 skips the build benchmark")
    args = parser.parse_args(list(argv))
    with tempfile.TemporaryDirectory(prefix="bench-engine-") as tmp:
        root = Path(tmp)
        rootfs = busybox_rootfs(root)
        tar = rootfs_tar(rootfs, root / "busybox.tar")
        contenders: dict[str, Callable[[], float]] = {}
        minicloud = start_minicloud()
        stops: list[Callable[[], None]] = [minicloud.stop]
        try:
            env_mc = clean_env({"DOCKER_HOST": f"unix://{minicloud.data_dir / 'docker.sock'}",
                                "DOCKER_CONFIG": str(root / "cfg"), "HOME": str(root)})
            subprocess.run([DOCKER, "import", str(tar), "busybox"], env=env_mc, check=True, capture_output=True)
            contenders["minicloud"] = lambda: timed([DOCKER, "run", "--rm", "busybox", "true"], env_mc)
            (root / "dockerd").mkdir()
            dockerd = Dockerd(root / "dockerd")
            stops.append(dockerd.stop)
            if dockerd.start():
                env_d = clean_env({"DOCKER_HOST": f"unix://{root / 'dockerd' / 'docker.sock'}",
                                   "DOCKER_CONFIG": str(root / "cfg"), "HOME": str(root)})
                subprocess.run([DOCKER, "import", str(tar), "busybox"], env=env_d, check=True, capture_output=True)
                contenders["dockerd (docker.io)"] = lambda: timed([DOCKER, "run", "--rm", "busybox", "true"], env_d)
            bundle = runc_bundle(root, rootfs)
            counter = iter(range(1_000_000))
            contenders["raw runc run"] = lambda: timed(
                ["runc", "--root", str(root / "runc"), "run", "--bundle", str(bundle), f"b{next(counter)}"],
                clean_env())
            samples: dict[str, list[float]] = {name: [] for name in contenders}
            for warm_up in contenders.values():
                warm_up()
            for _ in range(args.runs):
                for name, run in contenders.items():
                    samples[name].append(run())
            print("\n== engine: docker run --rm busybox true ==")
            for name, values in samples.items():
                print(f"  {name:22} {summary(values)}")
            base = statistics.median(samples["minicloud"])
            for name, values in samples.items():
                if name != "minicloud":
                    print(f"  minicloud / {name}: {base / statistics.median(values):.2f}x")
            if args.build_runs > 0:
                envs = {"minicloud": env_mc}
                if "dockerd (docker.io)" in contenders:
                    envs["dockerd (docker.io)"] = env_d
                build_bench(envs, build_context(root), args.build_runs)
        finally:
            for stop in reversed(stops):
                stop()
    return 0
