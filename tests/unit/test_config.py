from __future__ import annotations

from pathlib import Path

import pytest

from minicloud.config import ConfigError, load_config
from minicloud.topology import Topology


def test_defaults() -> None:
    config = load_config(environ={})
    assert (config.host, config.port) == ("127.0.0.1", 4566)
    assert config.default_region == "us-east-1"
    assert config.regions[0].zones == ("us-east-1a", "us-east-1b", "us-east-1c")
    assert config.database_url.startswith("sqlite:///") and config.data_dir.is_absolute()


def test_sources_in_order_file_env_flags(tmp_path: Path) -> None:
    toml = tmp_path / "minicloud.toml"
    toml.write_text('port = 5000\nhost = "127.0.0.2"\n[regions]\n"eu-west-1" = ["eu-west-1a", "eu-west-1b"]\n')
    config = load_config(environ={"MINICLOUD_CONFIG": str(toml), "MINICLOUD_PORT": "6000"},
                         overrides={"host": "127.0.0.3"})
    assert config.port == 6000 and config.host == "127.0.0.3"
    assert config.default_region == "eu-west-1"
    assert Topology(config).zones("eu-west-1")[1].zone_id == "euw1-az2"


def test_regions_from_environment() -> None:
    config = load_config(environ={"MINICLOUD_REGIONS": "us-east-1=us-east-1a;ap-south-1=ap-south-1a,ap-south-1b"})
    topology = Topology(config)
    assert topology.regions == ("us-east-1", "ap-south-1")
    assert not topology.has_region("xx-nowhere-1")


def test_s3_archive_settings() -> None:
    config = load_config(environ={})
    assert (config.lifecycle_day_seconds, config.s3_restore_seconds) == (86_400.0, 5.0)
    config = load_config(environ={"MINICLOUD_LIFECYCLE_DAY_SECONDS": "0.5", "MINICLOUD_S3_RESTORE_SECONDS": "0"})
    assert (config.lifecycle_day_seconds, config.s3_restore_seconds) == (0.5, 0.0)


@pytest.mark.parametrize("environ", [{"MINICLOUD_PORT": "http"}, {"MINICLOUD_REGIONS": "us-east-1="},
                                     {"MINICLOUD_ENGINE_RUNTIME": "docker"}, {"MINICLOUD_LIFECYCLE_DAY_SECONDS": "0"},
                                     {"MINICLOUD_S3_RESTORE_SECONDS": "-1"}, {"MINICLOUD_S3_RESTORE_SECONDS": "soon"}])
def test_bad_values_are_refused(environ: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        load_config(environ=environ)


def test_engine_runtime_choice() -> None:
    assert load_config(environ={}).engine_runtime == ""  # crun when it can run, else runc
    assert load_config(environ={"MINICLOUD_ENGINE_RUNTIME": "runc"}).engine_runtime == "runc"
    assert load_config(environ={}, overrides={"engine_runtime": "crun"}).engine_runtime == "crun"


def test_unknown_key_in_file(tmp_path: Path) -> None:
    toml = tmp_path / "bad.toml"
    toml.write_text("colour = 'blue'\n")
    with pytest.raises(ConfigError, match="unknown configuration key"):
        load_config(environ={}, config_file=toml)


def test_s3_access_log_interval() -> None:
    assert load_config(environ={}).s3_access_log_seconds == 60.0
    assert load_config(environ={"MINICLOUD_S3_ACCESS_LOG_SECONDS": "0.5"}).s3_access_log_seconds == 0.5
    with pytest.raises(ConfigError):
        load_config(environ={"MINICLOUD_S3_ACCESS_LOG_SECONDS": "soon"})
