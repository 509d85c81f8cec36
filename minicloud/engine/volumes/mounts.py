"""A container's mounts from what Docker's create asks for: ``Binds`` (``-v``), ``Mounts``
(``--mount``), ``Tmpfs`` (``--tmpfs``) and the image's ``VOLUME`` paths (anonymous volumes).
Parsing is pure; ``populate`` copies an image's files into an empty volume, as Docker does.
"""

from __future__ import annotations

import os
import posixpath
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from minicloud.engine.errors import InvalidArgument, NotImplementedYet

_BIND_MODES = {"ro", "rw", "z", "Z", "nocopy", "private", "rprivate", "shared", "rshared", "slave", "rslave",
               "consistent", "cached", "delegated"}


@dataclass(slots=True)
class MountSpec:
    type: str  # volume, bind, tmpfs
    source: str  # the volume's name, the host path, or "" for tmpfs and a volume still to be named
    destination: str
    readonly: bool = False
    nocopy: bool = False
    anonymous: bool = False
    create_source: bool = False  # -v creates a missing host directory; --mount refuses it
    options: list[str] = field(default_factory=list)  # tmpfs options
    mode: str = ""  # as given after the second colon of -v

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> MountSpec:
        return cls(**{k: v for k, v in raw.items() if k in cls.__dataclass_fields__})


def _destination(path: str) -> str:
    if not path.startswith("/"):
        raise InvalidArgument(f"invalid mount config: mount path must be absolute: {path}")
    clean = posixpath.normpath(path)
    if clean == "/":
        raise InvalidArgument("invalid specification: destination can't be '/'")
    return clean


def parse_bind(spec: str) -> MountSpec:
    """``-v src:dst[:opts]`` (src a volume name or an absolute host path), or ``-v dst[:opts]``."""
    parts = spec.split(":")
    if len(parts) == 1 or (len(parts) == 2 and not parts[1].startswith("/")):
        source, destination, mode = "", parts[0], parts[1] if len(parts) == 2 else ""
    elif len(parts) in (2, 3):
        source, destination, mode = parts[0], parts[1], parts[2] if len(parts) == 3 else ""
    else:
        raise InvalidArgument(f"invalid volume specification: '{spec}'")
    if not source and len(parts) == 2 and parts[1] and parts[1] not in _BIND_MODES:
        raise InvalidArgument(f"invalid volume specification: '{spec}'")
    options = [o for o in mode.split(",") if o]
    if unknown := [o for o in options if o not in _BIND_MODES]:
        raise InvalidArgument(f"invalid mode: {','.join(unknown)}")
    readonly = "ro" in options
    if not source:
        return MountSpec("volume", "", _destination(destination), readonly, anonymous=True, mode=mode)
    if source.startswith("/"):
        return MountSpec("bind", posixpath.normpath(source), _destination(destination), readonly,
                         create_source=True, mode=mode)
    if source.startswith("."):
        raise InvalidArgument(f"invalid volume specification: '{spec}': a host path must be absolute")
    return MountSpec("volume", source, _destination(destination), readonly, nocopy="nocopy" in options, mode=mode)


def parse_mount(raw: dict[str, Any]) -> MountSpec:
    """One of ``HostConfig.Mounts`` (``--mount type=...,source=...,target=...,readonly``)."""
    kind = str(raw.get("Type") or "volume")
    target = raw.get("Target") or ""
    if not target:
        raise InvalidArgument("invalid mount config: Target must not be empty")
    readonly = bool(raw.get("ReadOnly"))
    source = str(raw.get("Source") or "")
    if kind == "bind":
        if not source:
            raise InvalidArgument('invalid mount config for type "bind": field Source must not be empty')
        if not source.startswith("/"):
            raise InvalidArgument(f'invalid mount config for type "bind": invalid mount path: \'{source}\' '
                                  "mount path must be absolute")
        return MountSpec("bind", posixpath.normpath(source), _destination(target), readonly)
    if kind == "volume":
        options = raw.get("VolumeOptions") or {}
        if (options.get("DriverConfig") or {}).get("Name") not in (None, "", "local") or \
                (options.get("DriverConfig") or {}).get("Options"):
            raise NotImplementedYet("volume drivers and driver options are not available yet in minicloud's engine")
        return MountSpec("volume", source, _destination(target), readonly, nocopy=bool(options.get("NoCopy")),
                         anonymous=not source)
    if kind == "tmpfs":
        if source:
            raise InvalidArgument('invalid mount config for type "tmpfs": field Source must be empty')
        tmpfs = raw.get("TmpfsOptions") or {}
        options = []
        if tmpfs.get("SizeBytes"):
            options.append(f"size={int(tmpfs['SizeBytes'])}")
        if tmpfs.get("Mode"):
            options.append(f"mode={int(tmpfs['Mode']):o}")
        return MountSpec("tmpfs", "", _destination(target), readonly, options=options)
    raise NotImplementedYet(f"mounts of type {kind} are not available yet in minicloud's engine")


def parse_tmpfs(destination: str, options: str) -> MountSpec:
    opts = [o for o in (options or "").split(",") if o]
    readonly = "ro" in opts
    return MountSpec("tmpfs", "", _destination(destination), readonly,
                     options=[o for o in opts if o not in ("ro", "rw")])


def requested(host_config: dict[str, Any], image_volumes: dict[str, Any] | None) -> list[MountSpec]:
    """Every mount of a create request, the image's VOLUMEs not otherwise covered as anonymous ones."""
    specs = [parse_bind(b) for b in host_config.get("Binds") or []]
    specs += [parse_mount(m) for m in host_config.get("Mounts") or []]
    specs += [parse_tmpfs(d, o) for d, o in (host_config.get("Tmpfs") or {}).items()]
    seen: set[str] = set()
    for spec in specs:
        if spec.destination in seen:
            raise InvalidArgument(f"Duplicate mount point: {spec.destination}")
        seen.add(spec.destination)
    for path in sorted(image_volumes or {}):
        destination = _destination(path)
        if destination not in seen:
            specs.append(MountSpec("volume", "", destination, anonymous=True))
            seen.add(destination)
    return specs


def ordered(specs: list[MountSpec]) -> list[MountSpec]:
    """Parents before children, so that a mount inside another is not hidden by it."""
    return sorted(specs, key=lambda s: (s.destination.count("/"), s.destination))


def oci_mount(spec: MountSpec, source: str) -> dict[str, Any]:
    if spec.type == "tmpfs":
        options = ["nosuid", "nodev", "noexec", *spec.options, *(["ro"] if spec.readonly else [])]
        return {"destination": spec.destination, "type": "tmpfs", "source": "tmpfs", "options": options}
    options = ["rbind", "rprivate", *(["ro"] if spec.readonly else [])]
    return {"destination": spec.destination, "type": "bind", "source": source, "options": options}


def populate(volume_data: Path, rootfs: Path, destination: str) -> None:
    """Blocking. Copy what the image has at ``destination`` into an empty volume (files, modes,
    owners), the directory's own owner and mode included. Never follows a link out of the rootfs."""
    if any(volume_data.iterdir()):
        return
    source = rootfs / destination.lstrip("/")
    real_root = os.path.realpath(rootfs)
    real = os.path.realpath(source)
    if not (real == real_root or real.startswith(real_root + os.sep)) or not os.path.isdir(real):
        return
    shutil.copytree(real, volume_data, symlinks=True, dirs_exist_ok=True)
    for directory, dirs, files in os.walk(real):
        for name in [*dirs, *files]:
            origin = os.path.join(directory, name)
            copy = os.path.join(volume_data, os.path.relpath(origin, real))
            st = os.lstat(origin)
            os.lchown(copy, st.st_uid, st.st_gid)
    st = os.stat(real)
    os.chown(volume_data, st.st_uid, st.st_gid)
    os.chmod(volume_data, st.st_mode & 0o7777)
