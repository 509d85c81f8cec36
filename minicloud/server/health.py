"""``GET /_minicloud/health``: every service's state, as JSON."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from minicloud.aws.dispatch import AwsDispatcher
from minicloud.controllers.runner import ControllerRunner


def health_document(dispatcher: AwsDispatcher, runner: ControllerRunner | None,
                    started_at: datetime, regions: tuple[str, ...]) -> bytes:
    services: dict[str, Any] = {}
    for endpoint in dispatcher.endpoints:
        try:
            state = endpoint.provider.health()
        except Exception as exc:  # a broken service must not break the health page
            state = f"error: {exc}"
        services[endpoint.name] = state
    document = {
        "status": "running" if all(s == "running" for s in services.values()) else "degraded",
        "services": services,
        "regions": list(regions),
        "controllers": runner.health() if runner else {},
        "uptime_seconds": round((datetime.now(UTC) - started_at).total_seconds(), 3),
    }
    return orjson.dumps(document)
