"""What an instance container gets from the host: the boot script (its PID 1) and the seed it
reads at every boot, like cloud-init's NoCloud seed.

    <instance_dir>/seed/          bind-mounted read-only at /run/minicloud/seed
        instance-id               i-0123456789abcdef0
        hostname                  ip-10-0-1-5.ec2.internal
        public-keys               OpenSSH public keys for the default user, one per line
        user-data                 the user data as given (gzip unpacked), mode 0600; absent when none
        meta-data                 the same in NoCloud's format (instance-id, local-hostname)
    minicloud/services/ec2/guest/files/   bind-mounted read-only at /run/minicloud/guest
        boot.sh                   PID 1 (see its header for the signals and exit codes)
        shutdown.sh               what poweroff, halt, reboot and shutdown run inside the instance
"""

from __future__ import annotations

import gzip
import io
import os
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from minicloud.engine.workloads import Bind

GUEST_FILES = Path(__file__).parent / "files"
GUEST_MOUNT = "/run/minicloud/guest"
SEED_MOUNT = "/run/minicloud/seed"
BOOT_SCRIPT = f"{GUEST_MOUNT}/boot.sh"
# How PID 1 ends (the container's exit code), as reboot(2) reports it for a PID namespace's init:
STOPPED_EXIT_CODE = 0  # SIGTERM: the engine (API) stopped it
REBOOT_EXIT_CODE = 129  # `reboot` inside: start it again
POWEROFF_EXIT_CODE = 130  # `poweroff`/`halt`/`shutdown -h` inside: instance-initiated shutdown
MAX_UNPACKED_USER_DATA = 1 << 20


@dataclass(frozen=True)
class Seed:
    """What the boot script reads at every boot."""

    instance_id: str
    hostname: str
    user_data: bytes | None  # run once, at the first boot, if it starts with "#!"
    public_keys: tuple[str, ...]  # OpenSSH public keys for user admin (~admin/.ssh/authorized_keys)


def boot_command() -> list[str]:
    """PID 1 of an instance container (the image's own entrypoint and command are replaced)."""
    return ["/bin/sh", BOOT_SCRIPT]


def seed_dir(instance_dir: Path) -> Path:
    return instance_dir / "seed"


def guest_binds(instance_dir: Path) -> tuple[Bind, ...]:
    """The read-only bind mounts an instance container needs (write_seed first)."""
    return (Bind(str(GUEST_FILES), GUEST_MOUNT, True), Bind(str(seed_dir(instance_dir)), SEED_MOUNT, True))


def unpacked_user_data(data: bytes) -> bytes:
    """User data as the boot script should see it: gzip-compressed data unpacked (as cloud-init
    does), at most 1 MiB of it; anything else as given."""
    if not data.startswith(b"\x1f\x8b"):
        return data
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as unpacking:
            unpacked = unpacking.read(MAX_UNPACKED_USER_DATA + 1)
    except (OSError, EOFError, zlib.error):
        return data
    return data if len(unpacked) > MAX_UNPACKED_USER_DATA else unpacked


def write_seed(instance_dir: Path, seed: Seed) -> None:
    """Write (or replace) the instance's seed directory; every file is replaced atomically."""
    _check(seed)
    directory = seed_dir(instance_dir)
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o755)
    files = {
        "instance-id": f"{seed.instance_id}\n".encode(),
        "hostname": f"{seed.hostname}\n".encode(),
        "public-keys": "".join(f"{key.strip()}\n" for key in seed.public_keys if key.strip()).encode(),
        "meta-data": f"instance-id: {seed.instance_id}\nlocal-hostname: {seed.hostname}\n".encode(),
    }
    if seed.user_data:
        files["user-data"] = unpacked_user_data(seed.user_data)
    for name, content in files.items():
        _replace(directory / name, content, 0o600 if name == "user-data" else 0o644)
    if not seed.user_data:
        (directory / "user-data").unlink(missing_ok=True)


def _check(seed: Seed) -> None:
    for label, value in (("instance id", seed.instance_id), ("hostname", seed.hostname)):
        if not value or any(c in value for c in "\n\r/\0 "):
            raise ValueError(f"invalid {label} for a seed: {value!r}")
    for key in seed.public_keys:
        if "\n" in key.strip() or "\r" in key:
            raise ValueError("a public key must be one line")


def _replace(path: Path, content: bytes, mode: int) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(content)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

