"""What an execution environment is made from: one function version's configuration, frozen."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

RUNTIME_CLIENTS = Path(__file__).resolve().parent.parent / "runtimes"  # bind-mounted at /var/runtime
RUNTIME_API_PORT = 9001  # AWS_LAMBDA_RUNTIME_API=127.0.0.1:9001, as on AWS


@dataclass(frozen=True, slots=True)
class EnvironmentSpec:
    pool_key: str  # environments are shared only between invocations of the same key
    account_id: str
    region: str
    function_name: str
    function_arn: str  # unqualified
    version: str  # "$LATEST" or "1", "2", ...
    runtime: str  # python3.11, nodejs18.x, provided.al2023, or "" for a container image
    handler: str
    image: str  # the engine's image reference
    code_dir: str | None  # host directory holding the unzipped code (None for an image)
    memory_mb: int
    timeout: int  # seconds
    role_arn: str
    variables: dict[str, str] = field(default_factory=dict)
    entrypoint: tuple[str, ...] | None = None  # ImageConfig overrides for image functions
    command: tuple[str, ...] | None = None
    working_dir: str | None = None
    reserved_concurrency: int | None = None
    log_group: str = ""
    opt_dir: str | None = None  # host directory holding the function's layers, merged (mounted at /opt)
    bootstrap: str = "/var/task/bootstrap"  # a provided runtime's first process (or /opt/bootstrap)

    def process(self) -> tuple[list[str] | None, list[str] | None]:
        """(entrypoint, command) of the environment's first process: the runtime client."""
        if self.runtime.startswith("python"):
            return ["/usr/bin/python3", "-X", "frozen_modules=on", "/var/runtime/bootstrap.py"], []
        if self.runtime.startswith("nodejs"):
            return ["/usr/bin/node", "/var/runtime/bootstrap.js"], []
        if self.runtime.startswith("provided"):
            return [self.bootstrap], []
        entrypoint = list(self.entrypoint) if self.entrypoint is not None else None
        command = list(self.command) if self.command is not None else None
        return entrypoint, command
