"""What Docker's create asks for, checked and merged with the image's configuration: the
create-time merge, the refusals of what the engine cannot do yet, and signal names."""

from __future__ import annotations

import signal
from typing import Any

from minicloud.engine.containers.spec import security_options
from minicloud.engine.errors import InvalidArgument
from minicloud.engine.network.model import network_mode


def parse_signal(value: str | int) -> int:
    if isinstance(value, int) or str(value).isdigit():
        return int(value)
    name = str(value).upper()
    if not name.startswith("SIG"):
        name = f"SIG{name}"
    try:
        return int(signal.Signals[name])
    except KeyError:
        raise InvalidArgument(f"Invalid signal: {value}") from None


def merge_config(body: dict[str, Any], image: dict[str, Any]) -> dict[str, Any]:
    """Docker's create-time merge of the request's Config with the image's."""
    keys = ("Hostname", "Domainname", "User", "AttachStdin", "AttachStdout", "AttachStderr",
            "ExposedPorts", "Tty", "OpenStdin", "StdinOnce", "Env", "Cmd", "Healthcheck", "ArgsEscaped",
            "Image", "Volumes", "WorkingDir", "Entrypoint", "NetworkDisabled", "MacAddress", "OnBuild",
            "Labels", "StopSignal", "StopTimeout", "Shell")
    config = {k: body.get(k) for k in keys}
    entrypoint = config.get("Entrypoint")
    if entrypoint == [""]:
        config["Entrypoint"] = entrypoint = []
    if not entrypoint:
        if not config.get("Cmd"):
            config["Cmd"] = image.get("Cmd")
        if entrypoint is None:
            config["Entrypoint"] = image.get("Entrypoint")
    env: dict[str, str] = {}
    for item in [*(image.get("Env") or []), *(config.get("Env") or [])]:
        key, _, value = item.partition("=")
        env[key] = value if "=" in item else env.get(key, "")
    config["Env"] = [f"{k}={v}" for k, v in env.items()]
    config["Labels"] = {**(image.get("Labels") or {}), **(config.get("Labels") or {})}
    config["ExposedPorts"] = {**(image.get("ExposedPorts") or {}), **(config.get("ExposedPorts") or {})} or None
    config["Volumes"] = {**(image.get("Volumes") or {}), **(config.get("Volumes") or {})} or None
    for key in ("User", "WorkingDir", "StopSignal", "Healthcheck", "OnBuild", "Shell"):
        if not config.get(key) and image.get(key):
            config[key] = image[key]
    return config


def validate_host_config(host: dict[str, Any]) -> None:
    """Refuse, by name, what the engine cannot do yet (never pretend)."""
    unsupported = {"VolumesFrom": "--volumes-from", "Links": "links (--link)", "Devices": "devices (--device)"}
    for key, what in unsupported.items():
        if host.get(key):
            raise InvalidArgument(f"{what} are not available yet in minicloud's engine")
    security_options(host)  # an unknown --security-opt is refused at create, as Docker does
    kind, _target = network_mode(host)
    if kind == "container" and (host.get("PortBindings") or host.get("PublishAllPorts")):
        raise InvalidArgument("conflicting options: port publishing and the container type network mode")
