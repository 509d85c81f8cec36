"""Preparing a container's OCI bundle at start: the rootfs mounted from its snapshot, the files
Docker bind-mounts into ``/etc`` (hostname, hosts, resolv.conf), volumes and binds, and
``config.json``.
Blocking (mounts, file writes): called in a thread.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from minicloud.engine.containers.model import Container, ContainerFiles
from minicloud.engine.containers.spec import (
    BundleSpec,
    Limits,
    ProcessSpec,
    apply_security,
    build,
    merge_env,
    resolve_user,
)
from minicloud.engine.errors import InvalidArgument
from minicloud.engine.snapshots.mounts import Mount, mount, unmount
from minicloud.engine.volumes.mounts import MountSpec, oci_mount, ordered, populate


def command(config: dict[str, Any]) -> list[str]:
    entrypoint = config.get("Entrypoint") or []
    cmd = config.get("Cmd") or []
    if isinstance(entrypoint, str):
        entrypoint = ["/bin/sh", "-c", entrypoint]
    if isinstance(cmd, str):
        cmd = shlex.split(cmd)
    args = [*entrypoint, *cmd]
    if not args:
        raise InvalidArgument("no command specified")
    return args


@dataclass(frozen=True, slots=True)
class NetworkPlan:
    """How a starting container is networked: ``none`` (a new namespace with loopback only),
    ``host``, or ``join`` (the namespace at ``netns``: its own on a bridge network, or another
    container's, whose /etc files it then shares through ``etc_from``)."""

    mode: str = "none"
    netns: str = ""
    hosts: tuple[tuple[str, str], ...] = ()  # (address, name) lines of /etc/hosts
    nameserver: str = ""
    etc_from: Path | None = None
    hostname: str = ""  # another container's, when sharing its namespace


@dataclass(frozen=True, slots=True)
class VolumePlan:
    """The container's mounts, with where each volume's data lives on the host."""

    specs: tuple[MountSpec, ...] = ()
    volume_data: tuple[tuple[str, Path], ...] = ()  # (volume name, its _data directory)


def limits(host_config: dict[str, Any]) -> Limits:
    return Limits(memory=int(host_config.get("Memory") or 0),
                  memory_swap=int(host_config.get("MemorySwap") or 0),
                  nano_cpus=int(host_config.get("NanoCpus") or 0),
                  cpu_shares=int(host_config.get("CpuShares") or 0),
                  pids=max(0, int(host_config.get("PidsLimit") or 0)))


def write_etc_files(files: ContainerFiles, hostname: str, plan: NetworkPlan) -> dict[str, Path]:
    (files.dir / "hostname").write_text(hostname + "\n")
    if plan.etc_from is not None:
        return {"/etc/hostname": files.dir / "hostname", "/etc/hosts": plan.etc_from / "hosts",
                "/etc/resolv.conf": plan.etc_from / "resolv.conf"}
    if plan.mode == "host":
        shutil.copyfile("/etc/hosts", files.dir / "hosts")
    else:
        own = "".join(f"{address}\t{name}\n" for address, name in plan.hosts) or f"127.0.0.1\t{hostname}\n"
        (files.dir / "hosts").write_text(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" + own)
    if plan.nameserver:  # the engine's name server of the network; nothing beyond it
        (files.dir / "resolv.conf").write_text(f"nameserver {plan.nameserver}\noptions ndots:0\n")
    else:
        try:
            shutil.copyfile("/etc/resolv.conf", files.dir / "resolv.conf")
        except OSError:
            (files.dir / "resolv.conf").write_text("")
    for name in ("hostname", "hosts", "resolv.conf"):  # readable by the container's users (apt's _apt), as Docker's
        os.chmod(files.dir / name, 0o644)
    return {"/etc/hostname": files.dir / "hostname", "/etc/hosts": files.dir / "hosts",
            "/etc/resolv.conf": files.dir / "resolv.conf"}


def mount_rootfs(files: ContainerFiles, mounts: list[Mount]) -> None:
    files.rootfs.mkdir(exist_ok=True)
    unmount(files.rootfs)
    for m in mounts:
        mount(m, files.rootfs)


def hostname_of(container: Container) -> str:
    return str(container.config.get("Hostname") or container.id[:12])


def volume_mounts(plan: VolumePlan, rootfs: Path) -> list[dict[str, Any]]:
    """OCI mounts of the container's volumes, binds and tmpfs; an empty volume first gets the
    image's files at its path (unless ``nocopy``)."""
    data = dict(plan.volume_data)
    result = []
    for spec in ordered(list(plan.specs)):
        source = ""
        if spec.type == "volume":
            source_path = data[spec.source]
            if not spec.nocopy:
                populate(source_path, rootfs, spec.destination)
            source = str(source_path)
        elif spec.type == "bind":
            if not os.path.exists(spec.source):
                if not spec.create_source:
                    raise InvalidArgument(f'invalid mount config for type "bind": bind source path does not '
                                          f"exist: {spec.source}")
                os.makedirs(spec.source, exist_ok=True)
            source = spec.source
        result.append(oci_mount(spec, source))
    return result


def prepare(container: Container, files: ContainerFiles, mounts: list[Mount], *,
            swap_accounting: bool, console_size: tuple[int, int] | None = None,
            network: NetworkPlan | None = None, volumes: VolumePlan | None = None,
            finish: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Mount the rootfs and write ``config.json`` (``finish`` sees the spec last: the runtime's
    annotations); returns the spec (the rootfs stays mounted)."""
    config, host = container.config, container.host_config
    plan = network or NetworkPlan()
    mount_rootfs(files, mounts)
    try:
        hostname = plan.hostname or hostname_of(container)
        extra = {"HOSTNAME": hostname}
        if config.get("Tty"):
            extra["TERM"] = "xterm"
        user = resolve_user(config.get("User") or "", files.rootfs)
        process = ProcessSpec(
            args=command(config), env=merge_env([], config.get("Env") or [], extra),
            cwd=config.get("WorkingDir") or "/", user=user, tty=bool(config.get("Tty")),
            console_size=console_size)
        spec = BundleSpec(
            container_id=container.id, rootfs=files.rootfs, process=process, hostname=hostname,
            network=plan.mode, netns_path=plan.netns, etc_files=write_etc_files(files, hostname, plan),
            extra_mounts=volume_mounts(volumes or VolumePlan(), files.rootfs),
            limits=limits(host), readonly_rootfs=bool(host.get("ReadonlyRootfs")),
            swap_accounting=swap_accounting)
        doc = build(spec)
        _apply_capabilities(doc, host)
        apply_security(doc, host)  # seccomp and no-new-privileges follow the final capability set
        _ensure_workdir(files.rootfs, process.cwd, user.uid, user.gid)
        if finish is not None:
            finish(doc)
        tmp = files.dir / "config.json.tmp"
        tmp.write_text(json.dumps(doc))
        os.replace(tmp, files.dir / "config.json")
        return doc
    except BaseException:
        unmount(files.rootfs)
        raise


def _apply_capabilities(doc: dict[str, Any], host: dict[str, Any]) -> None:
    caps: list[str] = doc["process"]["capabilities"]["bounding"]
    adds = [_cap(c) for c in host.get("CapAdd") or []]
    drops = [_cap(c) for c in host.get("CapDrop") or []]
    if "CAP_ALL" in drops:
        caps = []
    caps = [c for c in caps if c not in drops]
    if "CAP_ALL" in adds:
        raise InvalidArgument("--cap-add ALL is not available yet (it needs --privileged's device rules)")
    caps += [c for c in adds if c not in caps]
    for kind in ("bounding", "effective", "permitted"):
        doc["process"]["capabilities"][kind] = list(caps)


def _cap(name: str) -> str:
    name = name.upper()
    return name if name.startswith("CAP_") else f"CAP_{name}"


def _ensure_workdir(rootfs: Path, cwd: str, uid: int, gid: int) -> None:
    """Docker creates a missing working directory (owned by the container's user). A symlink on
    the way is left to runc, which resolves it inside the container: never followed here."""
    current = rootfs
    for part in Path(cwd).parts[1:]:
        current = current / part
        if current.is_symlink():
            return
        if not current.exists():
            current.mkdir()
            os.chown(current, uid, gid)
        elif not current.is_dir():
            return
