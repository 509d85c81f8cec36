"""Foundation benchmark: signed sts:GetCallerIdentity and iam:ListUsers, minicloud vs moto vs MiniStack.

In one run, with all three servers up on loopback (each idle while another is measured):
- sequential latency: one keep-alive connection, ``--requests`` (2,000) pre-signed requests in
  order, every latency recorded -> p50 / p99;
- throughput: ``--connections`` (32) keep-alive connections, closed loop, ``--warmup`` s then a
  ``--duration`` s window -> 200 responses per second (anything else is counted as an error and
  earns no credit);
- RSS of the server's process tree: idle (after start and warm-up) and the peak sampled during
  the throughput phases.
Rounds alternate the order of the servers; the table shows the median over rounds. Before any
server, the same generator runs against ``bench.trivial_server`` to show its own ceiling, and against
``bench.asgi_floor`` (uvicorn as minicloud runs it, with a trivial app) to show the HTTP stack's floor.

minicloud checks every signature and evaluates IAM policy; moto and MiniStack run with their
defaults (no signature or policy checks). A tampered signature is sent to each to show which
servers verify it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from bench import peers
from bench.loadgen import LoadResult, LoadSpec, percentile, run_load
from bench.minicloud_server import start_minicloud
from bench.presign import Operation, Template, capture_template, presign, tamper_signature
from bench.proc import (
    LOOPBACK,
    ServerProcess,
    clean_env,
    cpu_seconds,
    free_port,
    machine_busy_seconds,
    set_autogroup_nice,
    tree_rss,
)
from bench.profile import PySpy, ensure_py_spy, summarize

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
REGION = "us-east-1"

OPERATIONS = (Operation("sts", "GetCallerIdentity"), Operation("iam", "ListUsers"))
EXPECTED_BODY = {"GetCallerIdentity": b"<GetCallerIdentityResult", "ListUsers": b"<ListUsersResult"}
TARGET_NAMES = ("minicloud", "moto", "ministack")
THROUGHPUT_POOL = 4096   # distinct pre-signed requests per throughput phase (replayed cyclically)


class Target(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str: ...

    @property
    def access_key_id(self) -> str: ...

    @property
    def secret_access_key(self) -> str: ...

    @property
    def auth_checks(self) -> str: ...

    @property
    def pid(self) -> int: ...

    @property
    def port(self) -> int: ...

    @property
    def endpoint(self) -> str: ...

    def stop(self) -> None: ...


@dataclass
class OpStats:
    seq_p50_ms: list[float] = field(default_factory=list)    # one per round
    seq_p99_ms: list[float] = field(default_factory=list)
    seq_errors: list[int] = field(default_factory=list)
    seq_reconnects: list[int] = field(default_factory=list)
    seq_other_cpu: list[float] = field(default_factory=list)  # CPU cores busy with anything else (noise)
    rps: list[float] = field(default_factory=list)
    tput_errors: list[int] = field(default_factory=list)
    tput_p50_ms: list[float] = field(default_factory=list)
    tput_p99_ms: list[float] = field(default_factory=list)
    server_cpu: list[float] = field(default_factory=list)     # server CPU cores used during the window
    client_cpu: list[float] = field(default_factory=list)     # generator CPU cores used during the window
    other_cpu: list[float] = field(default_factory=list)      # CPU cores busy with anything else (noise)
    reconnects: list[int] = field(default_factory=list)
    error_samples: list[str] = field(default_factory=list)
    failed: str | None = None                                  # why this operation was not measured

    def note_errors(self, result: LoadResult) -> None:
        for sample in result.error_samples:
            if len(self.error_samples) < 3:
                self.error_samples.append(sample)


@dataclass
class TargetStats:
    name: str
    version: str = ""
    auth_checks: str = ""
    started: bool = False
    failed: str | None = None
    bad_signature_status: int | None = None
    idle_rss_mib: float | None = None
    loaded_rss_mib: float | None = None
    hwm_mib: float | None = None
    ops: dict[str, OpStats] = field(default_factory=lambda: {op.name: OpStats() for op in OPERATIONS})


@dataclass
class Options:
    targets: Sequence[str] = TARGET_NAMES
    rounds: int = 3
    requests: int = 2000
    connections: int = 32
    duration_s: float = 5.0
    warmup_s: float = 1.0
    procs: int = 1
    ceiling: bool = True
    users: int = 0
    max_noise: float = 0.3       # CPU cores other processes may use during a phase before it is re-run
    noise_retries: int = 1
    quiet_wait_s: float = 10.0   # how long to wait for the machine to quieten before a phase
    nice: int = 0                # niceness for the harness, servers and generator (inherited)
    json_path: Path = RESULTS / "foundation.json"
    profile: Path | None = None


def log(msg: str) -> None:
    print(f"# {time.strftime('%H:%M:%S')} {msg}", file=sys.stderr, flush=True)


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


# -- one target ------------------------------------------------------------------------------------
class Runner:
    def __init__(self, target: Target, stats: TargetStats, opts: Options) -> None:
        self.target = target
        self.stats = stats
        self.opts = opts
        self.templates: dict[str, Template] = {}

    def pool(self, op: Operation, count: int) -> list[bytes]:
        template = self.templates.get(op.name)
        if template is None:
            template = capture_template(self.target.endpoint, op, self.target.access_key_id,
                                        self.target.secret_access_key, REGION)
            self.templates[op.name] = template
        return presign(template, self.target.access_key_id, self.target.secret_access_key, count)

    def warm_up(self, requests: int = 300) -> None:
        """Check each operation answers 200 with the right document; mark the ones that do not."""
        for op in OPERATIONS:
            ops = self.stats.ops[op.name]
            result = run_load(LoadSpec(LOOPBACK, self.target.port, self.pool(op, requests), 1,
                                       requests_total=requests, keep_bodies=1, deadline_s=120),
                              procs=1)
            status, body = result.bodies[0] if result.bodies else (0, b"")
            if result.errors or status != 200 or EXPECTED_BODY[op.name] not in body:
                sample = result.error_samples[0] if result.error_samples else f"HTTP {status}: {body[:300]!r}"
                ops.failed = f"{result.errors}/{requests} warm-up requests failed; e.g. {sample}"
                log(f"{self.target.name} {op.name}: NOT MEASURED: {ops.failed}")
        good = next((op for op in OPERATIONS if self.stats.ops[op.name].failed is None), None)
        if good is not None:
            bad = tamper_signature(self.pool(good, 1)[0])
            result = run_load(LoadSpec(LOOPBACK, self.target.port, [bad], 1, requests_total=1, keep_bodies=1),
                              procs=1)
            self.stats.bad_signature_status = result.bodies[0][0] if result.bodies else None

    def _guarded(self, label: str, once: Callable[[], tuple[float, Callable[[], None]]]) -> None:
        """Run a phase; when other processes kept the machine busy meanwhile, wait for quiet and run it again.

        ``once`` measures and returns (CPU cores used by anything but this server and the generator,
        a function that records the measurement); only the last attempt is recorded.
        """
        o = self.opts
        for attempt in range(1 + o.noise_retries):
            wait_for_quiet(o.max_noise, o.quiet_wait_s)
            other, commit = once()
            if other <= o.max_noise or attempt == o.noise_retries:
                commit()
                return
            log(f"{self.target.name} {label}: other processes used {other:.2f} cores meanwhile; measuring again")

    def sequential(self, op: Operation) -> None:
        ops = self.stats.ops[op.name]
        if ops.failed:
            return
        self._guarded(f"{op.name} sequential", lambda: self._sequential_once(op))

    def _sequential_once(self, op: Operation) -> tuple[float, Callable[[], None]]:
        ops = self.stats.ops[op.name]
        n = self.opts.requests
        pool = self.pool(op, n)
        pid = self.target.pid
        cpu0, busy0, t0 = cpu_seconds(pid), machine_busy_seconds(), time.monotonic()
        result = run_load(LoadSpec(LOOPBACK, self.target.port, pool, 1, requests_total=n,
                                   deadline_s=max(60.0, n * 0.1)), procs=1)
        cpu1, busy1, t1 = cpu_seconds(pid), machine_busy_seconds(), time.monotonic()
        # The generator's CPU is known for its run only; its start-up (fork, connect) is counted as other.
        other = max(0.0, ((busy1 - busy0) - (cpu1 - cpu0) - result.client_cpu_s) / max(1e-9, t1 - t0))

        def commit() -> None:
            lat = result.latencies_ns
            ops.seq_p50_ms.append(percentile(lat, 50) / 1e6)
            ops.seq_p99_ms.append(percentile(lat, 99) / 1e6)
            ops.seq_errors.append(result.errors)
            ops.seq_reconnects.append(result.reconnects)
            ops.seq_other_cpu.append(other)
            ops.note_errors(result)
            log(f"{self.target.name:9} {op.name:17} sequential  p50 {ops.seq_p50_ms[-1]:7.3f} ms  "
                f"p99 {ops.seq_p99_ms[-1]:7.3f} ms  errors {result.errors}  other CPU {other:.2f}")

        return other, commit

    def throughput(self, op: Operation) -> None:
        if self.stats.ops[op.name].failed:
            return
        self._guarded(f"{op.name} throughput", lambda: self._throughput_once(op)[:2])

    def _throughput_once(self, op: Operation, profile: Callable[[bool], None] | None = None
                         ) -> tuple[float, Callable[[], None], LoadResult]:
        ops = self.stats.ops[op.name]
        pool = self.pool(op, THROUGHPUT_POOL)
        pid = self.target.pid
        peak = [tree_rss(pid).rss_kib]

        def tick() -> None:
            peak[0] = max(peak[0], tree_rss(pid).rss_kib)

        o = self.opts
        spec = LoadSpec(LOOPBACK, self.target.port, pool, o.connections, warmup_s=o.warmup_s,
                        duration_s=o.duration_s, deadline_s=o.warmup_s + o.duration_s + 30)
        window: dict[str, float] = {}

        def on_window(opening: bool) -> None:
            key = "start" if opening else "end"
            window[f"{key}_cpu"], window[f"{key}_t"] = cpu_seconds(pid), time.monotonic()
            window[f"{key}_machine"] = machine_busy_seconds()
            if profile is not None:
                profile(opening)

        result = run_load(spec, procs=o.procs, on_tick=tick, on_window=on_window)
        tick()
        elapsed = window.get("end_t", 0.0) - window.get("start_t", 0.0)
        server_cpu = (window["end_cpu"] - window["start_cpu"]) / elapsed if elapsed > 0 else 0.0
        machine = (window["end_machine"] - window["start_machine"]) / elapsed if elapsed > 0 else 0.0
        other = max(0.0, machine - server_cpu - result.client_cpu_util)
        rss_mib = peak[0] / 1024

        def commit() -> None:
            self.stats.loaded_rss_mib = max(self.stats.loaded_rss_mib or 0.0, rss_mib)
            ops.rps.append(result.rps)
            ops.tput_errors.append(result.errors)
            ops.tput_p50_ms.append(percentile(result.latencies_ns, 50) / 1e6)
            ops.tput_p99_ms.append(percentile(result.latencies_ns, 99) / 1e6)
            ops.server_cpu.append(server_cpu)
            ops.client_cpu.append(result.client_cpu_util)
            ops.other_cpu.append(other)
            ops.reconnects.append(result.reconnects)
            ops.note_errors(result)
            log(f"{self.target.name:9} {op.name:17} @{o.connections} conns  {result.rps:9.0f} req/s  "
                f"errors {result.errors}  reconnects {result.reconnects}  server CPU {server_cpu:.2f}  "
                f"client CPU {result.client_cpu_util:.2f}  other CPU {other:.2f}  peak RSS {rss_mib:.1f} MiB")

        return other, commit, result


def wait_for_quiet(max_cores: float, timeout_s: float, sample_s: float = 0.5) -> float:
    """Wait (at most ``timeout_s``) until the machine's busy CPU drops to ``max_cores``; the last reading.

    Our own idle servers count too, and use next to nothing.
    """
    deadline = time.monotonic() + timeout_s
    waited = False
    while True:
        b0, t0 = machine_busy_seconds(), time.monotonic()
        time.sleep(sample_s)
        busy = (machine_busy_seconds() - b0) / (time.monotonic() - t0)
        if busy <= max_cores or time.monotonic() >= deadline:
            if waited:
                log(f"machine busy {busy:.2f} cores after waiting for other work to finish")
            return busy
        if not waited:
            log(f"machine busy with other work ({busy:.2f} cores); waiting up to {timeout_s:.0f} s")
            waited = True


def profile_minicloud(runner: Runner, out_dir: Path) -> dict[str, Any]:
    """One extra, unrecorded throughput phase per operation with py-spy sampling minicloud."""
    out: dict[str, Any] = {}
    ensure_py_spy()
    for op in OPERATIONS:
        if runner.stats.ops[op.name].failed:
            continue
        folded = out_dir / f"minicloud-{op.name}.folded"
        folded.unlink(missing_ok=True)
        spy = PySpy(runner.target.pid, folded)
        errors: list[str] = []

        def toggle(opening: bool, spy: PySpy = spy, errors: list[str] = errors) -> None:
            if opening:
                spy.start()
            else:
                errors.append(spy.stop())

        log(f"profiling minicloud {op.name} with py-spy (not counted)")
        _, _, result = runner._throughput_once(op, profile=toggle)
        spy.stop()
        summary = summarize(folded)
        log(f"minicloud {op.name} under py-spy: {result.rps:.0f} req/s; hottest:\n{summary.render(12)}")
        out[op.name] = {"folded": str(folded), "rps_under_profiler": result.rps, "samples": summary.samples,
                        "self_top": summary.self_top[:25], "inclusive_top": summary.inclusive_top[:25],
                        "py_spy_stderr": "".join(errors)[-500:]}
    return out


# -- the load generator's own ceiling, and the floor of minicloud's HTTP stack ----------------------------
REFERENCES = {
    # name: (module run as the server, what it shows)
    "ceiling": ("bench.trivial_server", "the load generator's own ceiling (a trivial asyncio server)"),
    "asgi_floor": ("bench.asgi_floor", "minicloud's HTTP stack alone (uvicorn + a trivial ASGI app)"),
}


def measure_reference(kind: str, opts: Options) -> dict[str, Any]:
    """Sequential latency and throughput of a reference server, with the same generator and settings."""
    module, what = REFERENCES[kind]
    tmp = tempfile.TemporaryDirectory(prefix=f"bench-{kind}-")
    port = free_port()
    server = ServerProcess(
        name=kind, argv=[sys.executable, "-m", module, "--host", LOOPBACK, "--port", str(port)],
        env=clean_env(tmp_dir=Path(tmp.name)), cwd=BENCH.parent, log_path=Path(tmp.name) / "server.log",
        port=port, ready_path="/",
    )
    try:
        server.start(30)
        template = capture_template(server.endpoint, OPERATIONS[0], "AKIDTRIVIAL", "secret", REGION)
        seq = run_load(LoadSpec(LOOPBACK, port, presign(template, "AKIDTRIVIAL", "secret", opts.requests), 1,
                                requests_total=opts.requests), procs=1)
        pool = presign(template, "AKIDTRIVIAL", "secret", THROUGHPUT_POOL)
        marks: list[tuple[float, float]] = []
        tput = run_load(LoadSpec(LOOPBACK, port, pool, opts.connections, warmup_s=opts.warmup_s,
                                 duration_s=opts.duration_s), procs=opts.procs,
                        on_window=lambda _: marks.append((cpu_seconds(server.pid), time.monotonic())))
    finally:
        server.stop()
        tmp.cleanup()
    us_per_request = tput.client_cpu_s / tput.ok * 1e6 if tput.ok else 0.0
    out: dict[str, Any] = {
        "what": what,
        "seq_p50_ms": percentile(seq.latencies_ns, 50) / 1e6,
        "seq_p99_ms": percentile(seq.latencies_ns, 99) / 1e6,
        "rps": tput.rps, "errors": seq.errors + tput.errors, "client_cpu": tput.client_cpu_util,
        "server_cpu": (marks[1][0] - marks[0][0]) / (marks[1][1] - marks[0][1]) if len(marks) == 2 else None,
        "client_us_per_request": us_per_request,
    }
    log(f"{what}: sequential p50 {out['seq_p50_ms'] * 1000:.0f} us, {tput.rps:.0f} req/s "
        f"@{opts.connections}, errors {out['errors']}, generator CPU {tput.client_cpu_util:.2f} "
        f"({us_per_request:.1f} us per request), server CPU {out['server_cpu'] or 0:.2f}")
    return out


# -- orchestration -----------------------------------------------------------------------------------
def _start(name: str) -> Target:
    if name == "minicloud":
        return start_minicloud()
    return peers.STARTERS[name]()


def _create_users(target: Target, count: int) -> None:
    import boto3
    from botocore.config import Config

    iam = boto3.session.Session().client(
        "iam", endpoint_url=target.endpoint, region_name=REGION, aws_access_key_id=target.access_key_id,
        aws_secret_access_key=target.secret_access_key, config=Config(retries={"max_attempts": 1}))
    for i in range(count):
        iam.create_user(UserName=f"bench-user-{i:04d}", Path="/bench/")


def run(opts: Options) -> dict[str, Any]:
    started_at = datetime.now(UTC)
    if opts.nice:
        try:  # every process started from here on (servers, generator workers) inherits it
            os.setpriority(os.PRIO_PROCESS, 0, opts.nice)
            set_autogroup_nice(os.getpid(), opts.nice)  # servers' own sessions get it in ServerProcess.start
        except OSError as exc:
            log(f"could not set niceness {opts.nice}: {exc}")
    report: dict[str, Any] = {"area": "foundation", "started_at": started_at.isoformat(timespec="seconds"),
                              "options": {k: str(v) if isinstance(v, Path) else v
                                          for k, v in vars(opts).items()}}
    if opts.ceiling:
        for kind in REFERENCES:
            report[kind] = measure_reference(kind, opts)
    stats = {name: TargetStats(name) for name in opts.targets}
    targets: dict[str, Target] = {}
    runners: dict[str, Runner] = {}
    try:
        for name in opts.targets:
            log(f"starting {name}")
            try:
                targets[name] = _start(name)
            except Exception as exc:
                stats[name].failed = f"did not start: {exc}".strip()[:2000]
                log(f"{name} did not start: {exc}")
                continue
            target = targets[name]
            stats[name].started = True
            stats[name].version = target.version
            stats[name].auth_checks = target.auth_checks
            stats[name].name = target.name
            log(f"{target.name} {target.version} up at {target.endpoint} (pid {target.pid})")
        for name, target in targets.items():
            if opts.users:
                try:
                    _create_users(target, opts.users)
                except Exception as exc:
                    log(f"{name}: creating {opts.users} users failed: {exc}")
            runners[name] = Runner(target, stats[name], opts)
            runners[name].warm_up()
            time.sleep(1.0)
            rss = tree_rss(target.pid)
            stats[name].idle_rss_mib = rss.rss_mib
            log(f"{target.name} idle RSS {rss.rss_mib:.1f} MiB ({rss.processes} process(es))")
        order = [n for n in opts.targets if n in runners]
        try:
            for rnd in range(opts.rounds):
                rotated = order[rnd % len(order):] + order[:rnd % len(order)] if order else []
                log(f"round {rnd + 1}/{opts.rounds}: order {', '.join(rotated)}")
                for op in OPERATIONS:
                    for name in rotated:
                        runners[name].sequential(op)
                for op in OPERATIONS:
                    for name in rotated:
                        runners[name].throughput(op)
                report["rounds_completed"] = rnd + 1
            for name, target in targets.items():
                stats[name].hwm_mib = tree_rss(target.pid).hwm_mib
            if opts.profile is not None and "minicloud" in runners:
                report["profile"] = profile_minicloud(runners["minicloud"], opts.profile)
        except (KeyboardInterrupt, SystemExit) as exc:
            # Stopped from outside (Ctrl-C, SIGTERM, a timeout): report what was measured so far.
            report["interrupted"] = f"{type(exc).__name__} during round {report.get('rounds_completed', 0) + 1}"
            log(f"interrupted: {report['interrupted']}; reporting what was measured")
    finally:
        for name, target in targets.items():
            log(f"stopping {name} (pid {target.pid})")
            try:
                target.stop()
            except Exception as exc:
                log(f"stopping {name} failed: {exc}")
    report["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    report["targets"] = {name: _target_json(s) for name, s in stats.items()}
    report["table"] = render_table(report)
    return report


def _target_json(s: TargetStats) -> dict[str, Any]:
    ops: dict[str, Any] = {}
    for name, o in s.ops.items():
        ops[name] = {
            "failed": o.failed,
            "seq_p50_ms": _median(o.seq_p50_ms), "seq_p99_ms": _median(o.seq_p99_ms),
            "rps": _median(o.rps), "seq_errors": sum(o.seq_errors), "tput_errors": sum(o.tput_errors),
            "tput_p50_ms": _median(o.tput_p50_ms), "tput_p99_ms": _median(o.tput_p99_ms),
            "server_cpu": _median(o.server_cpu), "client_cpu": _median(o.client_cpu),
            "other_cpu": _median(o.other_cpu), "other_cpu_max": max(o.other_cpu, default=None),
            "seq_other_cpu_max": max(o.seq_other_cpu, default=None),
            "reconnects": sum(o.reconnects), "seq_reconnects": sum(o.seq_reconnects),
            "error_samples": o.error_samples,
            "rounds": {"seq_p50_ms": o.seq_p50_ms, "seq_p99_ms": o.seq_p99_ms, "rps": o.rps,
                       "tput_errors": o.tput_errors, "server_cpu": o.server_cpu, "client_cpu": o.client_cpu,
                       "other_cpu": o.other_cpu, "seq_other_cpu": o.seq_other_cpu},
        }
    return {"name": s.name, "version": s.version, "auth_checks": s.auth_checks, "started": s.started,
            "failed": s.failed, "bad_signature_status": s.bad_signature_status,
            "idle_rss_mib": s.idle_rss_mib, "loaded_rss_mib": s.loaded_rss_mib, "hwm_mib": s.hwm_mib,
            "ops": ops}


# -- the table ---------------------------------------------------------------------------------------
def _fmt(v: float | None, digits: int = 2) -> str:
    return "n/a" if v is None or v != v else f"{v:,.{digits}f}"


def _ratio(mine: float | None, peers_: Sequence[float | None],
           higher_is_better: bool) -> tuple[str, float | None]:
    vals = [p for p in peers_ if p is not None and p == p and p > 0]
    if mine is None or mine != mine or not vals:
        return "n/a", None
    best = max(vals) if higher_is_better else min(vals)
    r = mine / best
    return f"{r:.2f}x", r


def render_table(report: dict[str, Any]) -> str:
    t = report["targets"]
    names = ["minicloud", "moto", "ministack"]
    heads = {"minicloud": "minicloud", "moto": "moto", "ministack": "MiniStack"}
    present = [n for n in names if n in t]
    peer_names = [n for n in present if n != "minicloud"]

    def target_val(name: str, key: str) -> float | None:
        v = t[name][key] if name in t else None
        return float(v) if v is not None else None

    lines = ["| | " + " | ".join(heads[n] for n in present) + " | ratio minicloud/best peer |",
             "|---|" + "---:|" * len(present) + "---:|"]

    def op_val(name: str, op: str, key: str) -> float | None:
        if name not in t or t[name]["failed"] or t[name]["ops"][op]["failed"]:
            return None
        v = t[name]["ops"][op][key]
        return float(v) if v is not None else None

    for op in ("GetCallerIdentity", "ListUsers"):
        row = [f"{op} p50 / p99 ms (sequential)"]
        for n in present:
            p50, p99 = op_val(n, op, "seq_p50_ms"), op_val(n, op, "seq_p99_ms")
            row.append("n/a" if p50 is None else f"{_fmt(p50, 3)} / {_fmt(p99, 3)}")
        r50, _ = _ratio(op_val("minicloud", op, "seq_p50_ms"),
                        [op_val(n, op, "seq_p50_ms") for n in peer_names], False)
        r99, _ = _ratio(op_val("minicloud", op, "seq_p99_ms"),
                        [op_val(n, op, "seq_p99_ms") for n in peer_names], False)
        row.append(f"{r50} / {r99}")
        lines.append("| " + " | ".join(row) + " |")
    conns = report["options"]["connections"]
    for op in ("GetCallerIdentity", "ListUsers"):
        row = [f"{op} req/s @{conns}"]
        for n in present:
            v = op_val(n, op, "rps")
            errors = t[n]["ops"][op]["tput_errors"] if v is not None else 0
            row.append(_fmt(v, 0) + (f" ({errors} errors)" if errors else ""))
        ratio, _ = _ratio(op_val("minicloud", op, "rps"), [op_val(n, op, "rps") for n in peer_names], True)
        row.append(ratio)
        lines.append("| " + " | ".join(row) + " |")
    for key, label in (("idle_rss_mib", "idle RSS MiB"),
                       ("loaded_rss_mib", "loaded RSS MiB (peak under load)")):
        row = [label]
        for n in present:
            row.append(_fmt(target_val(n, key), 1))
        ratio, _ = _ratio(target_val("minicloud", key), [target_val(n, key) for n in peer_names], False)
        row.append(ratio)
        lines.append("| " + " | ".join(row) + " |")
    row = ["tampered signature answered"]
    for n in present:
        status = t[n]["bad_signature_status"]
        row.append("n/a" if status is None else (f"{status} (rejected)" if status in (401, 403) else
                                                 f"{status} (accepted)"))
    row.append("")
    lines.append("| " + " | ".join(row) + " |")
    row = ["version; auth checks"]
    for n in present:
        row.append(f"{t[n]['version'] or '?'}; {t[n]['auth_checks'] or '?'}")
    row.append("")
    lines.append("| " + " | ".join(row) + " |")

    notes = []
    for n in present:
        if t[n]["failed"]:
            notes.append(f"- {heads[n]}: {t[n]['failed'][:300]}")
        for op, o in t[n]["ops"].items():
            if o["failed"] and not t[n]["failed"]:
                notes.append(f"- {heads[n]} {op} not measured: {o['failed'][:300]}")
    if "minicloud" in t and peer_names:
        per_round = []
        for op in ("GetCallerIdentity", "ListUsers"):
            mine = t["minicloud"]["ops"][op]["rounds"]["rps"]
            peers_rps = [t[n]["ops"][op]["rounds"]["rps"] for n in peer_names
                         if not t[n]["failed"] and not t[n]["ops"][op]["failed"]]
            ratios = [m / max(p[i] for p in peers_rps) for i, m in enumerate(mine)
                      if peers_rps and all(i < len(p) for p in peers_rps) and max(p[i] for p in peers_rps) > 0]
            if ratios:
                per_round.append(f"{op} " + ", ".join(f"{r:.2f}x" for r in ratios))
        if per_round:
            notes.append("- throughput ratio to the faster peer in each round (phases of a round run back to back): "
                         + "; ".join(per_round))
        verdicts = []
        for op in ("GetCallerIdentity", "ListUsers"):
            _, r = _ratio(op_val("minicloud", op, "rps"), [op_val(n, op, "rps") for n in peer_names], True)
            p50 = op_val("minicloud", op, "seq_p50_ms")
            verdicts.append(f"{op}: throughput {'n/a' if r is None else f'{r:.2f}x'} the faster peer "
                            f"({'met' if r is not None and r >= 3 else 'missed'}), p50 {_fmt(p50, 3)} ms "
                            f"({'met' if p50 is not None and p50 < 1 else 'missed'})")
        notes.append("- goal (>= 3x the faster peer's throughput, p50 < 1 ms): " + "; ".join(verdicts))
    ceiling = report.get("ceiling")
    if ceiling:
        notes.append(f"- load generator ceiling (same generator vs a trivial Python server, "
                     f"{report['options']['procs']} generator process(es)): "
                     f"{ceiling['rps']:,.0f} req/s @{conns}, "
                     f"sequential p50 {ceiling['seq_p50_ms'] * 1000:.0f} us; "
                     f"{ceiling['client_us_per_request']:.1f} us of generator CPU per request")
    floor = report.get("asgi_floor")
    if floor:
        notes.append(f"- minicloud's HTTP stack alone (uvicorn with uvloop + httptools, as `minicloud up` runs "
                     f"it, serving a trivial ASGI app): {floor['rps']:,.0f} req/s @{conns}, sequential p50 "
                     f"{floor['seq_p50_ms'] * 1000:.0f} us: the most any minicloud request can reach today")
    cpu = []
    for n in present:
        parts = []
        for op in ("GetCallerIdentity", "ListUsers"):
            o = t[n]["ops"][op]
            if o["server_cpu"] is not None:
                parts.append(f"{op} server {o['server_cpu']:.2f} / generator {o['client_cpu']:.2f}")
        if parts:
            cpu.append(f"{heads[n]}: " + ", ".join(parts))
    if cpu:
        notes.append("- CPU cores used during the throughput window: " + "; ".join(cpu))
    for n in present:
        seq_rc = sum(o["seq_reconnects"] for o in t[n]["ops"].values())
        tput_rc = sum(o["reconnects"] for o in t[n]["ops"].values())
        if seq_rc or tput_rc:
            notes.append(f"- {heads[n]} closed the connection {seq_rc:,} times in the sequential runs and "
                         f"{tput_rc:,} times in the throughput runs (e.g. `Connection: close`); the generator "
                         f"reconnects and the connect time counts in that request's latency, as for boto3")
    noisy = max((max(o["other_cpu_max"] or 0.0, o["seq_other_cpu_max"] or 0.0)
                 for n in present for o in t[n]["ops"].values()), default=0.0)
    opts = report["options"]
    notes.append(f"- this machine: {os.cpu_count()} CPUs shared by server and generator; CPU busy with anything "
                 f"else during the recorded phases: up to {noisy:.2f} cores (a phase above "
                 f"{opts['max_noise']:g} is measured again, up to {opts['noise_retries']} time(s))")
    if opts.get("nice"):
        notes.append(f"- all servers and the generator ran at niceness {opts['nice']} (process and scheduler "
                     f"autogroup; the same for every server) so that other work on the machine disturbs less")
    if report.get("interrupted"):
        notes.append(f"- INTERRUPTED ({report['interrupted']}): medians over the phases that completed")
    notes.append(f"- median of {opts['rounds']} round(s); each round: {opts['requests']} sequential "
                 f"requests per operation and server on one keep-alive connection, then "
                 f"{opts['warmup_s']:g} s warm-up + {opts['duration_s']:g} s measured at {conns} "
                 f"connections; only HTTP 200 counts")
    return "\n".join(lines) + "\n\n" + "\n".join(notes) + "\n"


# -- entry point -------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str]) -> Options:
    p = argparse.ArgumentParser(prog="bench/run.py foundation", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--targets", default=",".join(TARGET_NAMES),
                   help="comma-separated subset of minicloud,moto,ministack (default: all)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--requests", type=int, default=2000, help="sequential requests per operation and round")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--duration", type=float, default=5.0, help="measured seconds of each throughput phase")
    p.add_argument("--warmup", type=float, default=1.0,
                   help="unmeasured seconds before each throughput window")
    p.add_argument("--procs", type=int, default=1,
                   help="load generator processes for the throughput phases")
    p.add_argument("--no-ceiling", action="store_true",
                   help="skip the reference servers (the generator's ceiling, the HTTP stack's floor)")
    p.add_argument("--users", type=int, default=0,
                   help="IAM users to create on every server first (default 0)")
    p.add_argument("--max-noise", type=float, default=0.3,
                   help="CPU cores other processes may use during a phase before it is measured again")
    p.add_argument("--noise-retries", type=int, default=1, help="re-runs of a phase disturbed by other work")
    p.add_argument("--quiet-wait", type=float, default=10.0,
                   help="seconds to wait, before each phase, for other work on the machine to finish")
    p.add_argument("--nice", type=int, default=-10 if os.geteuid() == 0 else 0,
                   help="niceness of the harness, every server and the generator (inherited), so other work "
                        "on the machine disturbs them less (default: -10 as root, else 0)")
    p.add_argument("--json", type=Path, default=RESULTS / "foundation.json")
    p.add_argument("--profile", type=Path, default=None,
                   help="directory: after the rounds, py-spy minicloud during one extra (unrecorded) "
                        "throughput phase per operation and print its hottest functions")
    a = p.parse_args(list(argv))
    targets = [x.strip().lower() for x in a.targets.split(",") if x.strip()]
    unknown = [x for x in targets if x not in TARGET_NAMES]
    if unknown:
        p.error(f"unknown target(s): {', '.join(unknown)}")
    return Options(targets=targets, rounds=max(1, a.rounds), requests=a.requests, connections=a.connections,
                   duration_s=a.duration, warmup_s=a.warmup, procs=max(1, a.procs), ceiling=not a.no_ceiling,
                   users=a.users, json_path=a.json, profile=a.profile, max_noise=a.max_noise,
                   noise_retries=max(0, a.noise_retries), quiet_wait_s=max(0.0, a.quiet_wait), nice=a.nice)


def main(argv: Sequence[str]) -> int:
    opts = parse_args(argv)
    report = run(opts)
    opts.json_path.parent.mkdir(parents=True, exist_ok=True)
    opts.json_path.write_text(json.dumps(report, indent=2) + "\n")
    print("## foundation: signed sts:GetCallerIdentity and iam:ListUsers\n")
    print(report["table"])
    for op, prof in report.get("profile", {}).items():
        print(f"\nminicloud {op} under py-spy ({prof['rps_under_profiler']:.0f} req/s while sampled; "
              f"{prof['samples']} busy samples; folded stacks: {prof['folded']}):")
        for title, key in (("self", "self_top"), ("inclusive", "inclusive_top")):
            print(f"  {title}:")
            for name, n in prof[key][:12]:
                print(f"    {n / max(1, prof['samples']):6.1%}  {name}")
    print(f"(JSON: {opts.json_path})")
    failed = [n for n, s in report["targets"].items() if s["failed"]]
    if report.get("interrupted"):
        return 130
    return 1 if failed and len(failed) == len(report["targets"]) else 0
