"""Lambda's own settings, read once when the provider is built (never at import):
``MINICLOUD_LAMBDA_IDLE_TIMEOUT`` (seconds an idle environment is kept, default 300),
``MINICLOUD_LAMBDA_FREEZE_DELAY`` (seconds before an idle environment is frozen, default 0.5),
``MINICLOUD_LAMBDA_ACCOUNT_CONCURRENCY`` (concurrent executions per account, default 1000),
``MINICLOUD_LAMBDA_RETRY_DELAYS`` (seconds before the two retries of a failed asynchronous
invocation, default "60,120" as AWS), ``MINICLOUD_LAMBDA_QUEUE_INTERVAL`` (seconds between queue
polls, default 0.5), ``MINICLOUD_LAMBDA_LAYER_DISCARD_DELAY`` (seconds between a layer zip's last
reference going and its removal, default 60)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LambdaSettings:
    idle_timeout: float = 300.0
    freeze_delay: float = 0.5
    account_concurrency: int = 1000
    retry_delays: tuple[float, ...] = (60.0, 120.0)
    queue_interval: float = 0.5
    layer_discard_delay: float = 60.0

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> LambdaSettings:
        env = os.environ if environ is None else environ
        defaults = cls()

        def number(name: str, default: float) -> float:
            raw = env.get(f"MINICLOUD_LAMBDA_{name}")
            return float(raw) if raw else default

        delays = env.get("MINICLOUD_LAMBDA_RETRY_DELAYS")
        return cls(
            idle_timeout=number("IDLE_TIMEOUT", defaults.idle_timeout),
            freeze_delay=number("FREEZE_DELAY", defaults.freeze_delay),
            account_concurrency=int(number("ACCOUNT_CONCURRENCY", defaults.account_concurrency)),
            retry_delays=tuple(float(d) for d in delays.split(",")) if delays else defaults.retry_delays,
            queue_interval=number("QUEUE_INTERVAL", defaults.queue_interval),
            layer_discard_delay=number("LAYER_DISCARD_DELAY", defaults.layer_discard_delay),
        )
