"""Root filesystems from Debian's packages, made by mmdebstrap (run as root, in a chroot).

- a Debian recipe without a base: ``--variant=minbase`` with merged /usr set up the way debootstrap
  does it (no usrmerge and perl in the image), ``slim`` adding dpkg path excludes;
- a recipe with a base: ``--variant=custom`` over the base's layers (extracted in a setup hook),
  its packages installed by apt in the chroot, so the base's files stay byte-identical and only
  the difference becomes the new layer;
- busybox: ``--variant=extract`` of ``busybox-static``, from which only the binary is taken.

``SOURCE_DATE_EPOCH`` is fixed, so mmdebstrap removes what makes a chroot unreproducible and
clamps modification times.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from minicloud.images.recipes import Recipe

SOURCE_DATE_EPOCH = 1700000000  # 2023-11-14: every layer's files are at most this old
MERGED_USR_HOOKS = "/usr/share/mmdebstrap/hooks/merged-usr"
SLIM_DPKG_OPTIONS = (
    "path-exclude=/usr/share/doc/*", "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/man/*", "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/locale/*", "path-include=/usr/share/locale/locale.alias",
    "path-exclude=/usr/share/lintian/*", "path-exclude=/usr/share/linda/*",
)


DPKG_CONF = "/etc/dpkg/dpkg.cfg.d"
UNSAFE_IO = f"{DPKG_CONF}/zz-minicloud-build-unsafe-io"


class RootfsError(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class DebianSource:
    """Where packages come from."""

    suite: str = "bookworm"
    mirror: str = "http://deb.debian.org/debian"
    security_mirror: str = "http://deb.debian.org/debian-security"

    def sources(self) -> list[str]:
        return [f"deb {self.mirror} {self.suite} main", f"deb {self.mirror} {self.suite}-updates main",
                f"deb {self.security_mirror} {self.suite}-security main"]

    def identity(self) -> dict[str, str]:
        return {"suite": self.suite, "mirror": self.mirror, "security_mirror": self.security_mirror}


def _chroot(command: str) -> str:
    return f'chroot "$1" /usr/bin/env DEBIAN_FRONTEND=noninteractive /bin/sh -ec {shlex.quote(command)}'


def _file_hooks(recipe: Recipe, staging: Path) -> list[str]:
    hooks = []
    for index, item in enumerate(recipe.files):
        local = staging / f"file{index}"
        local.write_bytes(item.content)
        target = shlex.quote(item.path)
        hooks.append(f'install -D -m {item.mode:o} -o 0 -g 0 {shlex.quote(str(local))} "$1"{target}')
    return hooks


def mmdebstrap_command(recipe: Recipe, source: DebianSource, out: Path, staging: Path,
                       base_layers: Sequence[Path] = (), slim: bool = False) -> list[str]:
    """The mmdebstrap invocation building ``recipe``'s root filesystem into the tar ``out``."""
    command = ["mmdebstrap", "--mode=root", "--format=tar", "--quiet"]
    if recipe.kind == "busybox":
        command += ["--variant=extract", "--include=busybox-static"]
    elif not base_layers:
        command += ["--variant=minbase", f"--hook-dir={MERGED_USR_HOOKS}"]
        if recipe.packages:
            command.append("--include=" + ",".join(recipe.packages))
    else:
        command.append("--variant=custom")
        command += [f"--setup-hook=tar -C \"$1\" -xzf {shlex.quote(str(layer))}" for layer in base_layers]
        if recipe.packages:
            install = "apt-get install --yes --no-install-recommends " + " ".join(map(shlex.quote, recipe.packages))
            command.append("--customize-hook=" + _chroot(install))
    if slim:
        command += [f"--dpkgopt={option}" for option in SLIM_DPKG_OPTIONS]
    command += [f"--customize-hook={hook}" for hook in _file_hooks(recipe, staging)]
    command += ["--customize-hook=" + _chroot(c) for c in recipe.commands]
    # dpkg without an fsync per file while building (the layer is fsynced once when written);
    # the setting leaves with the build, it is not part of the image
    command.insert(command.index("--mode=root") + 1, f"--setup-hook=mkdir -p \"$1{DPKG_CONF}\" && "
                   f"echo force-unsafe-io > \"$1{UNSAFE_IO}\"")
    command.append(f"--customize-hook=rm -f \"$1{UNSAFE_IO}\"")
    return [*command, source.suite, str(out), *source.sources()]


async def build_rootfs(recipe: Recipe, source: DebianSource, out: Path, base_layers: Sequence[Path] = (),
                       slim: bool = False) -> None:
    """Run mmdebstrap; its output (the last lines) is in the error when it fails."""
    if os.geteuid() != 0:
        raise RootfsError(f"building {recipe.name} needs root (mmdebstrap --mode=root chroots and mounts)")
    with tempfile.TemporaryDirectory(prefix="minicloud-recipe-") as staging:
        command = mmdebstrap_command(recipe, source, out, Path(staging), base_layers, slim)
        env = {**os.environ, "SOURCE_DATE_EPOCH": str(SOURCE_DATE_EPOCH), "DEBIAN_FRONTEND": "noninteractive",
               "LC_ALL": "C.UTF-8"}
        try:
            if shutil.which("mmdebstrap") is None:
                raise FileNotFoundError("mmdebstrap")
            # files that hooks and maintainer scripts create get Debian's usual modes, whatever the
            # caller's umask (minicloud up runs with 077)
            process = await asyncio.create_subprocess_exec(
                "/bin/sh", "-c", 'umask 022 && exec "$@"', "sh", *command, stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env)
        except FileNotFoundError:
            raise RootfsError("mmdebstrap is not installed (apt-get install mmdebstrap)") from None
        try:
            output, _ = await process.communicate()
        except asyncio.CancelledError:
            if process.returncode is None:  # mmdebstrap unmounts and removes its chroot on SIGTERM
                process.terminate()
                await process.wait()
            out.unlink(missing_ok=True)
            raise
        if process.returncode != 0:
            tail = "\n".join(output.decode(errors="replace").splitlines()[-25:])
            out.unlink(missing_ok=True)
            raise RootfsError(f"mmdebstrap failed for {recipe.name} (exit {process.returncode}):\n{tail}")
