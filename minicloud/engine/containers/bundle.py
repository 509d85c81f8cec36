"""Preparing a container's OCI bundle at start: the rootfs mounted from its snapshot, the files
Docker bind-mounts into ``/etc`` (hostname, hosts, resolv.conf) and ``config.json``.
Blocking (mounts, file writes): called in a thread.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
from pathlib import Path
from typing import Any

from minicloud.engine.containers.model import Container, ContainerFiles
from minicloud.engine.containers.spec import BundleSpec, Limits, ProcessSpec, build, merge_env, resolve_user
from minicloud.engine.errors import InvalidArgument
from minicloud.engine.snapshots.mounts import Mount, mount, unmount


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


def network_mode(host_config: dict[str, Any]) -> str:
    mode = host_config.get("NetworkMode") or "default"
    if mode in ("default", "bridge", "none"):
        return "none"  # its own namespace with loopback only, until bridges exist
    if mode == "host":
        return "host"
    raise InvalidArgument(f"network {mode} is not available yet: minicloud's engine supports "
                          "--network none (the default: loopback only) and --network host so far")


def limits(host_config: dict[str, Any]) -> Limits:
    return Limits(memory=int(host_config.get("Memory") or 0),
                  memory_swap=int(host_config.get("MemorySwap") or 0),
                  nano_cpus=int(host_config.get("NanoCpus") or 0),
                  cpu_shares=int(host_config.get("CpuShares") or 0),
                  pids=max(0, int(host_config.get("PidsLimit") or 0)))


def write_etc_files(files: ContainerFiles, hostname: str, network: str) -> dict[str, Path]:
    (files.dir / "hostname").write_text(hostname + "\n")
    if network == "host":
        shutil.copyfile("/etc/hosts", files.dir / "hosts")
    else:
        (files.dir / "hosts").write_text(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
            f"127.0.0.1\t{hostname}\n")
    try:
        shutil.copyfile("/etc/resolv.conf", files.dir / "resolv.conf")
    except OSError:
        (files.dir / "resolv.conf").write_text("")
    return {"/etc/hostname": files.dir / "hostname", "/etc/hosts": files.dir / "hosts",
            "/etc/resolv.conf": files.dir / "resolv.conf"}


def mount_rootfs(files: ContainerFiles, mounts: list[Mount]) -> None:
    files.rootfs.mkdir(exist_ok=True)
    unmount(files.rootfs)
    for m in mounts:
        mount(m, files.rootfs)


def prepare(container: Container, files: ContainerFiles, mounts: list[Mount], *,
            swap_accounting: bool, console_size: tuple[int, int] | None = None) -> dict[str, Any]:
    """Mount the rootfs and write ``config.json``; returns the spec (the rootfs stays mounted)."""
    config, host = container.config, container.host_config
    network = network_mode(host)
    mount_rootfs(files, mounts)
    try:
        hostname = config.get("Hostname") or container.id[:12]
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
            network=network, etc_files=write_etc_files(files, hostname, network),
            limits=limits(host), readonly_rootfs=bool(host.get("ReadonlyRootfs")),
            swap_accounting=swap_accounting)
        doc = build(spec)
        _apply_capabilities(doc, host)
        _ensure_workdir(files.rootfs, process.cwd, user.uid, user.gid)
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
