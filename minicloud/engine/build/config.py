"""What the instructions that only change an image's configuration do to it (ENV, LABEL, WORKDIR,
USER, EXPOSE, VOLUME, CMD, ENTRYPOINT, SHELL, HEALTHCHECK, STOPSIGNAL, ONBUILD, MAINTAINER), with
the text Docker records for each in the image history (``/bin/sh -c #(nop) ...``).
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from minicloud.engine.build.dockerfile import (
    DockerfileError,
    Instruction,
    expand,
    expand_words,
    name_values,
)

DEFAULT_SHELL = ["/bin/sh", "-c"]
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000,
          "h": 3_600_000_000_000}
METADATA = frozenset({"ENV", "LABEL", "WORKDIR", "USER", "EXPOSE", "VOLUME", "CMD", "ENTRYPOINT", "SHELL",
                      "HEALTHCHECK", "STOPSIGNAL", "ONBUILD", "MAINTAINER"})


@dataclass(slots=True)
class StageConfig:
    """The image configuration a stage is building, plus what only the build needs."""

    config: dict[str, Any]
    escape: str = "\\"
    cmd_set: bool = False  # CMD given in this stage (ENTRYPOINT resets an inherited one)
    author: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def shell(self) -> list[str]:
        return list(self.config.get("Shell") or DEFAULT_SHELL)

    def env(self) -> dict[str, str]:
        result: dict[str, str] = {}
        for item in self.config.get("Env") or []:
            key, _, value = str(item).partition("=")
            result[key] = value
        return result

    def set_env(self, key: str, value: str) -> None:
        items = [i for i in (self.config.get("Env") or []) if str(i).partition("=")[0] != key]
        self.config["Env"] = [*items, f"{key}={value}"]


def duration_ns(text: str, line: int) -> int:
    total, position = 0, 0
    for match in _DURATION.finditer(text):
        if match.start() != position:
            break
        total += int(float(match.group(1)) * _UNITS[match.group(2)])
        position = match.end()
    if position != len(text) or not text:
        raise DockerfileError(f"time: invalid duration \"{text}\"", line)
    return total


def command_args(ins: Instruction, stage: StageConfig) -> list[str]:
    """CMD, ENTRYPOINT and RUN: the exec form as given, the shell form through the stage's shell."""
    if ins.json_args is not None:
        return list(ins.json_args)
    return [*stage.shell, ins.rest] if ins.rest else []


def _ports(ins: Instruction, words: list[str]) -> list[str]:
    ports = []
    for word in words:
        number, _, proto = word.partition("/")
        proto = (proto or "tcp").lower()
        low, _, high = number.partition("-")
        if not low.isdigit() or (high and not high.isdigit()) or proto not in ("tcp", "udp", "sctp"):
            raise DockerfileError(f"Invalid containerPort: {word}", ins.line)
        for port in range(int(low), int(high or low) + 1):
            ports.append(f"{port}/{proto}")
    return ports


def _healthcheck(ins: Instruction, env: Mapping[str, str]) -> dict[str, Any]:
    words = ins.rest.split(None, 1)
    kind = words[0].upper() if words else ""
    if kind == "NONE":
        if len(words) > 1:
            raise DockerfileError("HEALTHCHECK NONE takes no arguments", ins.line)
        return {"Test": ["NONE"]}
    if kind != "CMD" or len(words) < 2:
        raise DockerfileError("Unknown type \"" + kind + "\" in HEALTHCHECK (try CMD)", ins.line)
    rest = words[1].strip()
    test: list[str]
    try:
        parsed = json.loads(rest) if rest.startswith("[") else None
    except ValueError:
        parsed = None
    if isinstance(parsed, list) and all(isinstance(p, str) for p in parsed):
        test = ["CMD", *parsed]
    else:
        test = ["CMD-SHELL", rest]
    check: dict[str, Any] = {"Test": test}
    names = {"interval": "Interval", "timeout": "Timeout", "start-period": "StartPeriod",
             "start-interval": "StartInterval"}
    for flag, key in names.items():
        if flag in ins.flags:
            check[key] = duration_ns(ins.flags[flag], ins.line)
    if "retries" in ins.flags:
        if not ins.flags["retries"].isdigit():
            raise DockerfileError(f"invalid retries value: {ins.flags['retries']}", ins.line)
        check["Retries"] = int(ins.flags["retries"])
    return check


def apply(ins: Instruction, stage: StageConfig, env: Mapping[str, str]) -> str:
    """Apply a metadata instruction to ``stage``; returns the history text (``#(nop) ...``)."""
    config, escape = stage.config, stage.escape
    kind = ins.keyword
    if kind == "ENV":
        pairs = name_values(ins, env, escape)
        for key, value in pairs:
            stage.set_env(key, value)
        return "ENV " + " ".join(f"{k}={v}" for k, v in pairs)
    if kind == "LABEL":
        pairs = name_values(ins, env, escape)
        config["Labels"] = {**(config.get("Labels") or {}), **dict(pairs)}
        return "LABEL " + " ".join(f"{k}={v}" for k, v in pairs)
    if kind == "WORKDIR":
        path = expand(ins.rest, env, escape)
        config["WorkingDir"] = posixpath.normpath(posixpath.join(config.get("WorkingDir") or "/", path))
        return f"WORKDIR {config['WorkingDir']}"
    if kind == "USER":
        config["User"] = expand(ins.rest, env, escape)
        return f"USER {config['User']}"
    if kind == "EXPOSE":
        ports = _ports(ins, expand_words(ins.rest, env, escape))
        config["ExposedPorts"] = {**(config.get("ExposedPorts") or {}), **{p: {} for p in ports}}
        return "EXPOSE " + " ".join(sorted(config["ExposedPorts"]))
    if kind == "VOLUME":
        paths = ins.json_args if ins.json_args is not None else expand_words(ins.rest, env, escape)
        if not paths or any(not p.strip() for p in paths):
            raise DockerfileError("VOLUME specified can not be an empty string", ins.line)
        config["Volumes"] = {**(config.get("Volumes") or {}), **{p: {} for p in paths}}
        return "VOLUME " + json.dumps(paths)
    if kind in ("CMD", "ENTRYPOINT"):
        args = command_args(ins, stage)
        if kind == "CMD":
            config["Cmd"] = args
            stage.cmd_set = True
        else:
            config["Entrypoint"] = args
            if not stage.cmd_set:
                config["Cmd"] = None
        return f"{kind} " + json.dumps(args)
    if kind == "SHELL":
        if not ins.json_args:
            raise DockerfileError("SHELL requires the arguments to be in JSON form", ins.line)
        config["Shell"] = list(ins.json_args)
        return "SHELL " + json.dumps(ins.json_args)
    if kind == "HEALTHCHECK":
        config["Healthcheck"] = _healthcheck(ins, env)
        return "HEALTHCHECK &" + json.dumps(config["Healthcheck"])
    if kind == "STOPSIGNAL":
        config["StopSignal"] = expand(ins.rest, env, escape)
        return f"STOPSIGNAL {config['StopSignal']}"
    if kind == "MAINTAINER":
        stage.author = ins.rest
        return f"MAINTAINER {ins.rest}"
    if kind == "ONBUILD":
        trigger = ins.rest.split(None, 1)
        keyword = trigger[0].upper() if trigger else ""
        if keyword in ("ONBUILD", "FROM", "MAINTAINER"):
            raise DockerfileError(f"{keyword} isn't allowed as an ONBUILD trigger", ins.line)
        text = keyword + (" " + trigger[1] if len(trigger) > 1 else "")
        config["OnBuild"] = [*(config.get("OnBuild") or []), text]
        return f"ONBUILD {text}"
    raise DockerfileError(f"{kind} is not a configuration instruction", ins.line)
