"""OCI runtime spec (``config.json``) generation with Docker's secure defaults.

Docker's default capability set, its default seccomp profile (``seccomp.py``), its masked and
read-only paths, no-new-privileges when asked for (``--security-opt no-new-privileges``), private
pid/ipc/uts/mount namespaces (a network namespace: new with only loopback, joined, or the host's),
cgroup limits for ``--memory``, ``--cpus``, ``--pids-limit``, and an RLIMIT_NOFILE never above
the host's limit (20000 on this machine). ``--privileged`` lifts the confinement as Docker does:
every capability, no seccomp, no masked or read-only paths, writable /sys, every host device.
"""

from __future__ import annotations

import json
import os
import resource
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from minicloud.engine.containers.seccomp import default_profile, to_oci
from minicloud.engine.errors import InvalidArgument

DEFAULT_CAPABILITIES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
)
MASKED_PATHS = (
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
    "/sys/devices/virtual/powercap",
)
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
NOFILE_CEILING = 20000
CPU_PERIOD = 100_000


@dataclass(frozen=True, slots=True)
class User:
    uid: int
    gid: int
    additional_gids: tuple[int, ...] = ()
    home: str = "/"


@dataclass(slots=True)
class ProcessSpec:
    args: list[str]
    env: list[str]
    cwd: str = "/"
    user: User = field(default_factory=lambda: User(0, 0))
    tty: bool = False
    console_size: tuple[int, int] | None = None  # (height, width)


@dataclass(slots=True)
class Limits:
    memory: int = 0  # bytes; 0 = unlimited
    memory_swap: int = 0  # bytes of memory+swap; 0 = twice memory (Docker's default); -1 = unlimited
    nano_cpus: int = 0
    cpu_shares: int = 0
    pids: int = 0


@dataclass(slots=True)
class BundleSpec:
    container_id: str
    rootfs: Path
    process: ProcessSpec
    hostname: str
    network: str = "none"  # "none" (a new namespace, loopback only), "host", or "join" (netns_path)
    netns_path: str = ""  # the namespace to join: the engine's for the container, or another container's
    etc_files: dict[str, Path] = field(default_factory=dict)  # /etc/hosts, /etc/hostname, /etc/resolv.conf
    extra_mounts: list[dict[str, Any]] = field(default_factory=list)  # volumes, binds, tmpfs (OCI mounts)
    limits: Limits = field(default_factory=Limits)
    cgroup_parent: str = "/minicloud"
    readonly_rootfs: bool = False
    swap_accounting: bool = False


def nofile_limit() -> int:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        return NOFILE_CEILING
    return min(hard, NOFILE_CEILING)


def merge_env(image_env: list[str], user_env: list[str], extra: dict[str, str]) -> list[str]:
    """Image env, then extra (HOSTNAME, TERM), then the user's, later ones winning by name."""
    merged: dict[str, str] = {}
    for item in [*image_env, *(f"{k}={v}" for k, v in extra.items()), *user_env]:
        key, sep, value = item.partition("=")
        if not sep:
            continue  # "-e NAME" without a value and not set in the client's environment
        merged[key] = value
    merged.setdefault("PATH", DEFAULT_PATH)
    return [f"{k}={v}" for k, v in merged.items()]


def resolve_user(spec: str, rootfs: Path) -> User:
    """``""``, ``uid``, ``name``, ``uid:gid``, ``name:group``, resolved with the image's own files."""
    if not spec:
        spec = "0"
    name, _, group = spec.partition(":")
    passwd = _read_db(rootfs / "etc" / "passwd")
    groups = _read_db(rootfs / "etc" / "group")
    entry = next((p for p in passwd if p[0] == name or (name.isdigit() and p[2:3] == [name])), None)
    if name.isdigit():
        uid = int(name)
    elif entry is not None:
        uid = int(entry[2])
    else:
        raise InvalidArgument(f"unable to find user {name}: no matching entries in passwd file")
    gid = int(entry[3]) if entry is not None and len(entry) > 3 and entry[3].isdigit() else 0
    home = entry[5] if entry is not None and len(entry) > 5 else "/"
    if group:
        if group.isdigit():
            gid = int(group)
        else:
            match = next((g for g in groups if g[0] == group), None)
            if match is None:
                raise InvalidArgument(f"unable to find group {group}: no matching entries in group file")
            gid = int(match[2])
    user_name = entry[0] if entry is not None else None
    additional = tuple(sorted({int(g[2]) for g in groups if len(g) > 3 and user_name
                               and user_name in g[3].split(",") and g[2].isdigit() and int(g[2]) != gid}))
    return User(uid, gid, additional, home)


def _read_db(path: Path) -> list[list[str]]:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return []
    return [line.split(":") for line in text.splitlines() if line and not line.startswith("#")]


def _mounts(spec: BundleSpec) -> list[dict[str, Any]]:
    mounts: list[dict[str, Any]] = [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["ro", "nosuid", "noexec", "nodev"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
    ]
    for destination, source in sorted(spec.etc_files.items()):
        mounts.append({"destination": destination, "type": "bind", "source": str(source),
                       "options": ["rbind", "rprivate"]})
    mounts.extend(spec.extra_mounts)
    return mounts


def _resources(spec: BundleSpec) -> dict[str, Any]:
    limits = spec.limits
    resources: dict[str, Any] = {"devices": [{"allow": False, "access": "rwm"}]}
    if limits.memory:
        memory: dict[str, Any] = {"limit": limits.memory}
        if spec.swap_accounting:
            swap = limits.memory_swap or 2 * limits.memory
            memory["swap"] = swap
        resources["memory"] = memory
    cpu: dict[str, Any] = {}
    if limits.nano_cpus:
        cpu["period"] = CPU_PERIOD
        cpu["quota"] = limits.nano_cpus * CPU_PERIOD // 1_000_000_000
    if limits.cpu_shares:
        cpu["shares"] = limits.cpu_shares
    if cpu:
        resources["cpu"] = cpu
    if limits.pids:
        resources["pids"] = {"limit": limits.pids}
    return resources


def build(spec: BundleSpec) -> dict[str, Any]:
    """The ``config.json`` document for ``spec``."""
    if spec.network not in ("none", "host", "join") or (spec.network == "join") != bool(spec.netns_path):
        raise InvalidArgument(f"network {spec.network!r} is not a network mode of the runtime spec")
    proc = spec.process
    caps = list(DEFAULT_CAPABILITIES)
    nofile = nofile_limit()
    process: dict[str, Any] = {
        "terminal": proc.tty,
        "user": {"uid": proc.user.uid, "gid": proc.user.gid},
        "args": proc.args,
        "env": proc.env,
        "cwd": proc.cwd,
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": nofile, "soft": nofile}],
        "noNewPrivileges": False,
    }
    if proc.user.additional_gids:
        process["user"]["additionalGids"] = list(proc.user.additional_gids)
    if proc.tty and proc.console_size:
        process["consoleSize"] = {"height": proc.console_size[0], "width": proc.console_size[1]}
    namespaces = [{"type": t} for t in ("pid", "ipc", "uts", "mount")]
    if spec.network == "none":
        namespaces.append({"type": "network"})
    elif spec.network == "join":
        namespaces.append({"type": "network", "path": spec.netns_path})
    return {
        "ociVersion": "1.0.2",
        "process": process,
        "root": {"path": str(spec.rootfs), "readonly": spec.readonly_rootfs},
        "hostname": spec.hostname,
        "mounts": _mounts(spec),
        "linux": {
            "cgroupsPath": f"{spec.cgroup_parent}/{spec.container_id}",
            "resources": _resources(spec),
            "namespaces": namespaces,
            "maskedPaths": list(MASKED_PATHS),
            "readonlyPaths": list(READONLY_PATHS),
        },
    }


# Every capability, in the kernel's numbering (--privileged grants those the engine itself holds).
ALL_CAPABILITIES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID",
    "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)
_RUNTIME_DEVICES = frozenset({"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty",
                              "/dev/console", "/dev/ptmx"})
_SKIPPED_DEV_DIRS = frozenset({"/dev/pts", "/dev/shm", "/dev/mqueue"})


@dataclass(frozen=True, slots=True)
class SecurityOptions:
    no_new_privileges: bool = False
    seccomp: dict[str, Any] | None = None  # a Docker-format profile; None: unconfined
    system_paths_unconfined: bool = False


def security_options(host_config: dict[str, Any]) -> SecurityOptions:
    """``HostConfig.SecurityOpt`` as Docker reads it (``key=value`` or the older ``key:value``)."""
    nnp, profile, unconfined_paths = False, default_profile(), False
    seccomp: dict[str, Any] | None = profile
    for option in host_config.get("SecurityOpt") or []:
        text = str(option)
        key, sep, value = text.partition("=")
        if not sep:
            key, sep, value = text.partition(":")
        if key == "no-new-privileges":
            if value not in ("", "true", "false"):
                raise InvalidArgument(f"invalid --security-opt 2: {text!r}")
            nnp = value != "false"
        elif key == "seccomp":
            seccomp = None if value == "unconfined" else _custom_profile(value)
        elif key == "systempaths" and value == "unconfined":
            unconfined_paths = True
        elif (key, value) in (("apparmor", "unconfined"), ("label", "disable")):
            continue  # neither AppArmor nor SELinux confines containers on this host
        else:
            raise InvalidArgument(f"invalid --security-opt: {text!r} (minicloud's engine takes no-new-privileges, "
                                  "seccomp=unconfined|<profile>, systempaths=unconfined, apparmor=unconfined, "
                                  "label=disable)")
    return SecurityOptions(nnp, seccomp, unconfined_paths)


def _custom_profile(value: str) -> dict[str, Any]:
    try:
        profile = json.loads(value)
    except ValueError:
        raise InvalidArgument("Decoding seccomp profile failed: the profile must be JSON (the docker CLI sends "
                              "the file's content)") from None
    if not isinstance(profile, dict):
        raise InvalidArgument("Decoding seccomp profile failed: not a JSON object")
    return profile


def bounding_capabilities() -> list[str]:
    """The capabilities the engine's own process may pass on (runc cannot grant others)."""
    try:
        with open("/proc/self/status") as f:
            mask = next(int(line.split()[1], 16) for line in f if line.startswith("CapBnd:"))
    except (OSError, StopIteration, ValueError):
        return list(ALL_CAPABILITIES)
    return [name for bit, name in enumerate(ALL_CAPABILITIES) if mask >> bit & 1]


def host_devices(root: str = "/dev") -> list[dict[str, Any]]:
    """The host's device nodes as OCI devices (``--privileged``), runc's own defaults excepted."""
    devices: list[dict[str, Any]] = []
    for base, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if os.path.join(base, d) not in _SKIPPED_DEV_DIRS]
        for name in sorted(files):
            path = os.path.join(base, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if path in _RUNTIME_DEVICES or not (stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)):
                continue
            devices.append({"path": path, "type": "c" if stat.S_ISCHR(st.st_mode) else "b",
                            "major": os.major(st.st_rdev), "minor": os.minor(st.st_rdev),
                            "fileMode": stat.S_IMODE(st.st_mode), "uid": st.st_uid, "gid": st.st_gid})
    return devices


def apply_security(doc: dict[str, Any], host_config: dict[str, Any]) -> None:
    """no-new-privileges, seccomp and ``--privileged`` on a spec whose capabilities are final."""
    options = security_options(host_config)
    process, linux = doc["process"], doc["linux"]
    process["noNewPrivileges"] = options.no_new_privileges
    if host_config.get("Privileged"):
        caps = bounding_capabilities()
        process["capabilities"] = {k: list(caps) for k in ("bounding", "effective", "permitted")}
        linux["maskedPaths"], linux["readonlyPaths"] = [], []
        linux["resources"]["devices"] = [{"allow": True, "access": "rwm"}]
        linux["devices"] = host_devices()
        for m in doc["mounts"]:
            if m["destination"] in ("/sys", "/sys/fs/cgroup"):
                m["options"] = [o for o in m["options"] if o != "ro"]
        return
    if options.system_paths_unconfined:
        linux["maskedPaths"], linux["readonlyPaths"] = [], []
    if options.seccomp is not None:
        linux["seccomp"] = to_oci(options.seccomp, process["capabilities"]["bounding"])
