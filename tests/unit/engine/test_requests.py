from __future__ import annotations

import signal
from typing import Any

import pytest

from minicloud.engine.containers.requests import merge_config, parse_signal, validate_host_config
from minicloud.engine.errors import InvalidArgument

IMAGE = {"Cmd": ["sh"], "Entrypoint": None, "Env": ["PATH=/bin", "A=1"], "WorkingDir": "/app",
         "User": "app", "Labels": {"from": "image", "x": "1"}, "StopSignal": "SIGQUIT"}


def test_image_defaults_fill_in() -> None:
    config = merge_config({"Image": "busybox"}, IMAGE)
    assert config["Cmd"] == ["sh"] and config["WorkingDir"] == "/app" and config["User"] == "app"
    assert config["Env"] == ["PATH=/bin", "A=1"] and config["StopSignal"] == "SIGQUIT"


def test_request_wins() -> None:
    config = merge_config({"Cmd": ["echo", "hi"], "Env": ["A=2", "B=3"], "Labels": {"x": "2"},
                           "WorkingDir": "/w", "User": "root"}, IMAGE)
    assert config["Cmd"] == ["echo", "hi"]
    assert config["Env"] == ["PATH=/bin", "A=2", "B=3"]
    assert config["Labels"] == {"from": "image", "x": "2"}
    assert (config["WorkingDir"], config["User"]) == ("/w", "root")


def test_entrypoint_drops_the_image_cmd() -> None:
    config = merge_config({"Entrypoint": ["/bin/echo"]}, {**IMAGE, "Entrypoint": ["/init"]})
    assert config["Entrypoint"] == ["/bin/echo"] and config["Cmd"] is None
    reset = merge_config({"Entrypoint": [""]}, {**IMAGE, "Entrypoint": ["/init"]})
    assert reset["Entrypoint"] == [] and reset["Cmd"] == ["sh"]


def test_unsupported_options_are_refused_by_name() -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"Links": ["a:b"]}, "links"), ({"VolumesFrom": ["c"]}, "volumes-from"),
        ({"SecurityOpt": ["bogus=1"]}, "security-opt"),
        ({"NetworkMode": "container:x", "PortBindings": {"80/tcp": [{}]}}, "port publishing")]
    for host, what in cases:
        with pytest.raises(InvalidArgument, match=what):
            validate_host_config(host)
    validate_host_config({"NetworkMode": "host", "Memory": 1 << 20})
    validate_host_config({"NetworkMode": "mynet", "Binds": ["/a:/b"], "PortBindings": {"80/tcp": [{}]}})


def test_signals() -> None:
    assert parse_signal("TERM") == signal.SIGTERM
    assert parse_signal("SIGKILL") == signal.SIGKILL
    assert parse_signal("15") == 15
    with pytest.raises(InvalidArgument):
        parse_signal("SIGNOPE")
