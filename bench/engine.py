"""Container engine, minicloud side by side with Debian's dockerd (``docker.io``, own folders,
``--bridge none --iptables=false``), podman (own --root/--runroot, cgroupfs, file events, runc,
``--network none``) and raw ``runc run`` (and ``crun run``, minicloud's runtime when installed) as
the floor:

- ``docker run --rm busybox true`` latency (median and p90 of ``--runs``, runs alternating between
  the engines so that machine noise hits everyone alike);
- a cold and a warm pull of a 5-layer image of random bytes (``--pull-mib``, 300 MiB) that all pull
  from one local CNCF registry (Debian's docker-registry, the image pushed with skopeo);
- the memory of ``--idle`` (50) idle containers: RSS (and PSS) of the engine's own processes --
  minicloud's process and its per-container supervisors, dockerd + containerd + containerd-shims,
  podman's conmons -- never the containers' processes;
- a 6-step classic build (``DOCKER_BUILDKIT=0 docker build --network none``: FROM, COPY of 4 MiB,
  two RUNs, ENV, CMD) uncached (``--no-cache``) and cached, minicloud and dockerd.

The same busybox root filesystem (Debian's busybox-static) is imported into every engine.

    .venv/bin/python bench/run.py engine [--runs 20] [--build-runs 5] [--pull-mib 300] [--idle 50]
                                         [--baseline <another checkout>]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.engine_peers import Memory, Podman, Registry, big_image, engine_processes, memory_of, push_layout
from bench.minicloud_server import start_minicloud
from bench.proc import LOOPBACK, ServerProcess, clean_env, free_port

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


def timed(argv: list[str], env: dict[str, str], timeout: float = 60) -> float:
    """The command's wall time, its exit seen by a blocking wait. (``subprocess.run(timeout=...)``
    polls for the exit, sleeping up to 50 ms between two looks: every figure came out rounded up
    to 31.5, 63.5, 113.5, 163.5... ms. The timeout is a timer that kills the command instead.)"""
    started = time.perf_counter()
    with subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL) as proc:
        killer = threading.Timer(timeout, proc.kill)
        killer.start()
        try:
            code = proc.wait()
        finally:
            killer.cancel()
    elapsed = time.perf_counter() - started
    if code != 0:
        raise subprocess.CalledProcessError(code, argv)
    return elapsed


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


@dataclass
class Baseline:
    server: ServerProcess
    data_dir: Path
    version: str

    def stop(self) -> None:
        self.server.stop()


def start_baseline(checkout: Path, root: Path) -> Baseline:
    """``minicloud up`` from another checkout (run from its folder, so that its own package is the
    one imported), in a data dir of its own."""
    data_dir = root / "baseline-data"
    data_dir.mkdir()
    port = free_port()
    server = ServerProcess(
        name="minicloud baseline",
        argv=[sys.executable, "-m", "minicloud.cli", "up", "--host", LOOPBACK, "--port", str(port),
              "--data-dir", str(data_dir)],
        env=clean_env({"HOME": str(root)}, tmp_dir=root), cwd=checkout, log_path=root / "baseline.log", port=port,
        ready_path="/_minicloud/health", ready=lambda status, body: status == 200)
    server.start(60)
    commit = subprocess.run(["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, check=False).stdout.strip()
    return Baseline(server, data_dir, f"git {commit}" if commit else str(checkout))


def crun_prefix() -> list[str]:
    """crun refuses a cgroups v1 host with cgroup2 mounted beside (hybrid): it runs where that
    hierarchy is hidden, as minicloud runs it (minicloud/engine/containers/runtime.py)."""
    from minicloud.engine.containers.runtime import HIDE_CGROUP2, cgroup_hybrid

    return list(HIDE_CGROUP2) if cgroup_hybrid() else []


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


def latency_bench(contenders: dict[str, Callable[[], float]], runs: int) -> dict[str, list[float]]:
    """``run --rm busybox true`` on every contender, alternating, after one warm-up each."""
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for warm_up in contenders.values():
        warm_up()
    for _ in range(runs):
        for name, run in contenders.items():
            samples[name].append(run())
    print("\n== engine: docker run --rm busybox true ==")
    for name, values in samples.items():
        print(f"  {name:22} {summary(values)}")
    return samples


def pull_bench(pullers: dict[str, Callable[[], float]], warm_runs: int) -> dict[str, tuple[float, float]]:
    """A cold pull (nothing of the image local) once per engine, then ``warm_runs`` pulls of the
    image already there (median); engines in turn, so they never pull at the same time."""
    results: dict[str, tuple[float, float]] = {}
    for name, pull in pullers.items():
        cold = pull()
        warm = statistics.median([pull() for _ in range(warm_runs)])
        results[name] = (cold, warm)
    print("\n== engine: pull of a 5-layer image of random bytes from a local registry ==")
    for name, (cold, warm) in results.items():
        print(f"  {name:22} cold {cold:7.2f} s   warm {warm * 1000:7.1f} ms")
    return results


def idle_memory(start: Callable[[int], object], measure: Callable[[], Memory], count: int) -> tuple[Memory, Memory]:
    """An engine's memory with no container, then with ``count`` idle containers."""
    before = measure()
    for n in range(count):
        start(n)
    time.sleep(2)  # supervisors settle
    return before, measure()


def print_table(latency: dict[str, list[float]], pulls: dict[str, tuple[float, float]],
                memory: dict[str, tuple[Memory, Memory]], idle: int) -> None:
    """The side-by-side table, minicloud's figure divided by each peer's."""
    names = [n for n in ("minicloud", "minicloud --network none", "dockerd (docker.io)", "podman", "raw runc run",
                         "raw crun run") if n in latency] + [n for n in latency if n.startswith("baseline ")]
    rows: list[tuple[str, dict[str, float], str]] = [
        ("run --rm busybox true, median", {n: statistics.median(latency[n]) * 1000 for n in names}, "ms"),
        ("run --rm busybox true, p90", {n: sorted(latency[n])[int(0.9 * (len(latency[n]) - 1))] * 1000
                                        for n in names}, "ms"),
        ("cold pull, 5 layers", {n: pulls[n][0] for n in pulls}, "s"),
        ("warm pull (image present)", {n: pulls[n][1] * 1000 for n in pulls}, "ms"),
        (f"RSS, engine + supervisors, {idle} idle", {n: memory[n][1].rss_mib for n in memory}, "MiB"),
        (f"RSS added by {idle} idle containers", {n: memory[n][1].rss_mib - memory[n][0].rss_mib for n in memory},
         "MiB"),
        (f"PSS, engine + supervisors, {idle} idle", {n: memory[n][1].pss_mib for n in memory}, "MiB"),
    ]
    print("\n== engine: side by side (ratio = minicloud / peer; lower is better) ==")
    header = f"  {'figure':40}" + "".join(f"{n:>26}" for n in names)
    print(header + "   ratios")
    for label, values, unit in rows:
        cells = "".join(f"{values[n]:>22.1f} {unit:3}" if n in values else f"{'-':>26}" for n in names)
        base = values.get("minicloud")
        ratios = ", ".join(f"{n.removesuffix(' (docker.io)')} {base / values[n]:.2f}x" for n in names
                           if n != "minicloud" and n in values and base is not None and values[n] > 0)
        print(f"  {label:40}{cells}   {ratios}")
    for name, (before, after) in memory.items():
        print(f"  {name}: {before.processes} processes idle ({before.rss_mib:.1f} MiB RSS), "
              f"{after.processes} with {idle} containers")
    load = os.getloadavg()
    print(f"  load average during the run: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} (a shared, busy machine)")


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench/run.py engine", description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--build-runs", type=int, default=5, help="0 skips the build benchmark")
    parser.add_argument("--pull-mib", type=int, default=300, help="size of the 5-layer image; 0 skips pulls")
    parser.add_argument("--warm-pulls", type=int, default=3)
    parser.add_argument("--idle", type=int, default=50, help="idle containers per engine; 0 skips memory")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="another checkout of minicloud (e.g. a git worktree of an older commit) whose run "
                             "latency is measured too, interleaved with this one's")
    args = parser.parse_args(list(argv))
    with tempfile.TemporaryDirectory(prefix="bench-engine-") as tmp:
        root = Path(tmp)
        stops: list[Callable[[], None]] = []
        try:
            return run_all(root, args, stops)
        finally:
            for stop in reversed(stops):
                stop()


def run_all(root: Path, args: argparse.Namespace, stops: list[Callable[[], None]]) -> int:
    rootfs = busybox_rootfs(root)
    tar = rootfs_tar(rootfs, root / "busybox.tar")
    minicloud = start_minicloud()
    stops.append(minicloud.stop)
    docker_envs: dict[str, dict[str, str]] = {}
    env_mc = clean_env({"DOCKER_HOST": f"unix://{minicloud.data_dir / 'docker.sock'}",
                        "DOCKER_CONFIG": str(root / "cfg"), "HOME": str(root)})
    subprocess.run([DOCKER, "import", str(tar), "busybox"], env=env_mc, check=True, capture_output=True)
    docker_envs["minicloud"] = env_mc
    (root / "dockerd").mkdir()
    dockerd = Dockerd(root / "dockerd")
    stops.append(dockerd.stop)
    if dockerd.start():
        env_d = clean_env({"DOCKER_HOST": f"unix://{root / 'dockerd' / 'docker.sock'}",
                           "DOCKER_CONFIG": str(root / "cfg"), "HOME": str(root)})
        subprocess.run([DOCKER, "import", str(tar), "busybox"], env=env_d, check=True, capture_output=True)
        docker_envs["dockerd (docker.io)"] = env_d
    else:
        print("dockerd did not start: no dockerd column", file=sys.stderr)
    podman = Podman(root / "podman")
    if podman.available:
        stops.append(podman.stop)
        subprocess.run(podman.argv("import", str(tar), "busybox"), check=True, capture_output=True)
    else:
        print("podman is not installed (scripts/install.sh installs it): no podman column", file=sys.stderr)
    contenders: dict[str, Callable[[], float]] = {
        name: functools.partial(timed, [DOCKER, "run", "--rm", "busybox", "true"], env)
        for name, env in docker_envs.items()}
    # dockerd (--bridge none) and podman (--network none) run without a network: the same for minicloud
    contenders["minicloud --network none"] = functools.partial(
        timed, [DOCKER, "run", "--rm", "--network", "none", "busybox", "true"], env_mc)
    if podman.available:
        contenders["podman"] = lambda: timed(podman.run_argv("--rm", "busybox", "true"), clean_env())
    bundle = runc_bundle(root, rootfs)
    counter = iter(range(1_000_000))
    contenders["raw runc run"] = lambda: timed(
        ["runc", "--root", str(root / "runc"), "run", "--bundle", str(bundle), f"b{next(counter)}"], clean_env())
    if args.baseline is not None:
        baseline = start_baseline(args.baseline.resolve(), root)
        stops.append(baseline.stop)
        env_base = clean_env({"DOCKER_HOST": f"unix://{baseline.data_dir / 'docker.sock'}",
                              "DOCKER_CONFIG": str(root / "cfg"), "HOME": str(root)})
        subprocess.run([DOCKER, "import", str(tar), "busybox"], env=env_base, check=True, capture_output=True)
        contenders[f"baseline {baseline.version}"] = functools.partial(
            timed, [DOCKER, "run", "--rm", "busybox", "true"], env_base)
    if shutil.which("crun"):  # the floor of minicloud's runtime when crun is installed
        crun_counter = iter(range(1_000_000))
        contenders["raw crun run"] = lambda: timed(
            [*crun_prefix(), "crun", "--root", str(root / "crun"), "run", "--bundle", str(bundle),
             f"c{next(crun_counter)}"], clean_env())
    runtime = subprocess.run([DOCKER, "info", "--format", "{{.DefaultRuntime}}"], env=env_mc, capture_output=True,
                             text=True, check=False).stdout.strip()
    print(f"\nminicloud's OCI runtime: {runtime or '?'}")
    latency = latency_bench(contenders, args.runs)
    pulls = pull_section(root, args, docker_envs, podman, stops)
    memory = memory_section(root, args, minicloud.pid, minicloud.data_dir, docker_envs, dockerd, podman)
    print_table(latency, pulls, memory, args.idle)
    if args.build_runs > 0:
        build_bench(docker_envs, build_context(root), args.build_runs)
    return 0


def pull_section(root: Path, args: argparse.Namespace, docker_envs: dict[str, dict[str, str]], podman: Podman,
                 stops: list[Callable[[], None]]) -> dict[str, tuple[float, float]]:
    if args.pull_mib <= 0:
        return {}
    (root / "registry").mkdir()
    registry = Registry(root / "registry")
    stops.append(registry.stop)
    if not registry.start():
        print("docker-registry did not start: no pull figures", file=sys.stderr)
        return {}
    reference = f"{registry.host}/bench/big:1"
    started = time.perf_counter()
    layout = big_image(root, 5, args.pull_mib)
    push_layout(layout, reference)
    shutil.rmtree(layout)
    print(f"\n(image of 5 x {args.pull_mib // 5} MiB random layers built and pushed in "
          f"{time.perf_counter() - started:.1f} s)")
    pullers: dict[str, Callable[[], float]] = {
        name: functools.partial(timed, [DOCKER, "pull", "-q", reference], env, 600)
        for name, env in docker_envs.items()}
    if podman.available:
        pullers["podman"] = lambda: timed(podman.argv("pull", "-q", "--tls-verify=false", reference), clean_env(),
                                          600)
    results = pull_bench(pullers, args.warm_pulls)
    for env in docker_envs.values():
        subprocess.run([DOCKER, "rmi", reference], env=env, capture_output=True, check=False)
    if podman.available:
        subprocess.run(podman.argv("rmi", reference), capture_output=True, check=False)
    return results


def memory_section(root: Path, args: argparse.Namespace, minicloud_pid: int, data_dir: Path,
                   docker_envs: dict[str, dict[str, str]], dockerd: Dockerd,
                   podman: Podman) -> dict[str, tuple[Memory, Memory]]:
    """``--idle`` idle containers per engine (one engine at a time, removed after), and the memory
    of the engine's own processes: minicloud (its one process, every service included) and its
    per-container supervisors; dockerd, containerd and the containerd-shims; podman's conmons."""
    if args.idle <= 0:
        return {}
    results: dict[str, tuple[Memory, Memory]] = {}
    idle_cmd = ["busybox", "sleep", "3600"]
    for name, env in docker_envs.items():
        if name == "minicloud":
            roots, marker = [minicloud_pid], str(data_dir)
        else:
            roots, marker = [dockerd.process.pid] if dockerd.process else [], str(dockerd.root)

        def start(n: int, env: dict[str, str] = env) -> float:
            return timed([DOCKER, "run", "-d", "--name", f"idle{n}", *idle_cmd], env)

        results[name] = idle_memory(start, functools.partial(lambda r, m: memory_of(engine_processes(r, m)),
                                                             roots, marker), args.idle)
        subprocess.run([DOCKER, "rm", "-f", *(f"idle{n}" for n in range(args.idle))], env=env, capture_output=True,
                       check=False, timeout=300)
    if podman.available:
        marker = str(podman.root)
        results["podman"] = idle_memory(
            lambda n: timed(podman.run_argv("-d", "--name", f"idle{n}", *idle_cmd), clean_env()),
            lambda: memory_of(engine_processes([], marker)), args.idle)
        subprocess.run(podman.argv("rm", "-f", "-t", "0", *(f"idle{n}" for n in range(args.idle))),
                       capture_output=True, check=False, timeout=300)
    return results
