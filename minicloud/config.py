"""One typed configuration object, parsed once.

Sources, later ones winning: built-in defaults, an optional TOML file (``--config`` or
``MINICLOUD_CONFIG``), ``MINICLOUD_*`` environment variables, then command-line flags.
Nothing reads the environment at import time: ``load_config`` is called by the CLI (and tests).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class RegionConfig:
    name: str
    zones: tuple[str, ...]


def _default_regions() -> tuple[RegionConfig, ...]:
    return (RegionConfig("us-east-1", ("us-east-1a", "us-east-1b", "us-east-1c")),)


@dataclass(frozen=True, slots=True)
class Config:
    host: str = "127.0.0.1"
    port: int = 4566
    data_dir: Path = Path("data")
    metadata_url: str | None = None  # None: SQLite in the data dir
    regions: tuple[RegionConfig, ...] = field(default_factory=_default_regions)
    root_access_key_id: str | None = None
    root_secret_access_key: str | None = None
    log_level: str = "info"
    access_log: bool = False
    max_body_bytes: int = 64 * 1024 * 1024  # non-streaming API bodies
    max_header_bytes: int = 64 * 1024
    controllers: bool = True
    engine: bool = True  # the container engine and its Docker API on <data-dir>/docker.sock
    engine_mirror: str = ""  # registry for docker.io images; "" = minicloud's own registry
    engine_runtime: str = ""  # the engine's OCI runtime: "runc", "crun", "" = crun when it can run, else runc
    # Processes forked to serve signed S3 reads besides the API server (server.workers): None (the
    # default) one when the machine has a second core; -1 one per core beyond the first (at most 7);
    # 0 none. One worker costs ~60-75 MiB of RSS and takes 4 KiB GETs ~1.5x on two cores.
    s3_workers: int | None = None
    # How often each S3 process writes the server access log records it buffered (for buckets with
    # PutBucketLogging on) as log objects into their target buckets, in seconds.
    s3_access_log_seconds: float = 60.0
    # How long a lifecycle "day" lasts, in seconds (S3 counts lifecycle rules' and restored copies'
    # days in it): 86400, with S3's rounding to midnight UTC; shorter (e.g. 1) only to watch rules
    # act in tests, without rounding.
    lifecycle_day_seconds: float = 86_400.0
    # How long an S3 RestoreObject of a GLACIER or DEEP_ARCHIVE object takes before its copy is
    # readable (every retrieval tier alike; S3 takes minutes to hours).
    s3_restore_seconds: float = 5.0
    # How many rows an S3 Inventory report's data file holds at most (a larger report is several files).
    s3_inventory_rows_per_file: int = 1_000_000

    @property
    def default_region(self) -> str:
        return self.regions[0].name

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "metadata.sqlite3"

    @property
    def database_url(self) -> str:
        return self.metadata_url or f"sqlite:///{self.sqlite_path}"

    def region(self, name: str) -> RegionConfig | None:
        for region in self.regions:
            if region.name == name:
                return region
        return None


class ConfigError(ValueError):
    pass


_ENV_PREFIX = "MINICLOUD_"
_SCALARS: dict[str, type] = {
    "host": str, "port": int, "data_dir": Path, "metadata_url": str,
    "root_access_key_id": str, "root_secret_access_key": str, "log_level": str,
    "access_log": bool, "max_body_bytes": int, "max_header_bytes": int, "controllers": bool,
    "engine": bool, "engine_mirror": str, "engine_runtime": str, "s3_workers": int,
    "s3_access_log_seconds": float, "lifecycle_day_seconds": float, "s3_restore_seconds": float,
    "s3_inventory_rows_per_file": int,
}
_CHOICES: dict[str, tuple[str, ...]] = {"engine_runtime": ("", "runc", "crun")}
_POSITIVE = frozenset({"lifecycle_day_seconds", "s3_inventory_rows_per_file"})
_NOT_NEGATIVE = frozenset({"s3_restore_seconds"})


def _coerce(name: str, value: Any) -> Any:
    kind = _SCALARS[name]
    if kind is bool and isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    try:
        coerced = kind(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid value for {name}: {value!r}") from exc
    choices = _CHOICES.get(name)
    if choices is not None and coerced not in choices:
        raise ConfigError(f"invalid value for {name}: {value!r} (one of {', '.join(map(repr, choices))})")
    if name in _POSITIVE and not coerced > 0:
        raise ConfigError(f"invalid value for {name}: {value!r} (must be above 0)")
    if name in _NOT_NEGATIVE and not coerced >= 0:
        raise ConfigError(f"invalid value for {name}: {value!r} (must not be negative)")
    return coerced


def _parse_regions(raw: Any) -> tuple[RegionConfig, ...]:
    """``regions = {"us-east-1" = ["us-east-1a", ...], ...}`` or the env form
    ``us-east-1=us-east-1a,us-east-1b;eu-west-1=eu-west-1a``."""
    if isinstance(raw, str):
        pairs: dict[str, list[str]] = {}
        for part in filter(None, (p.strip() for p in raw.split(";"))):
            name, _, zones = part.partition("=")
            pairs[name.strip()] = [z.strip() for z in zones.split(",") if z.strip()]
        raw = pairs
    if not isinstance(raw, Mapping) or not raw:
        raise ConfigError("regions must map region names to lists of availability zones")
    regions = []
    for name, zones in raw.items():
        if not isinstance(zones, list) or not zones or not all(isinstance(z, str) for z in zones):
            raise ConfigError(f"region {name} needs a non-empty list of zone names")
        regions.append(RegionConfig(str(name), tuple(zones)))
    return tuple(regions)


def _apply(config: Config, values: Mapping[str, Any]) -> Config:
    changes: dict[str, Any] = {}
    for key, value in values.items():
        if value is None:
            continue
        if key == "regions":
            changes["regions"] = _parse_regions(value)
        elif key in _SCALARS:
            changes[key] = _coerce(key, value)
        else:
            raise ConfigError(f"unknown configuration key: {key}")
    return replace(config, **changes)


def load_config(
    *, overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None,
    config_file: Path | None = None,
) -> Config:
    env = os.environ if environ is None else environ
    config = Config()
    path = config_file or (Path(env["MINICLOUD_CONFIG"]) if env.get("MINICLOUD_CONFIG") else None)
    if path is not None:
        try:
            config = _apply(config, tomllib.loads(path.read_text()))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read configuration file {path}: {exc}") from exc
    from_env = {
        key[len(_ENV_PREFIX):].lower(): value
        for key, value in env.items()
        if key.startswith(_ENV_PREFIX) and key != "MINICLOUD_CONFIG"
    }
    from_env = {k: v for k, v in from_env.items() if k in _SCALARS or k == "regions"}
    config = _apply(config, from_env)
    if overrides:
        config = _apply(config, overrides)
    return replace(config, data_dir=config.data_dir.expanduser().resolve())
