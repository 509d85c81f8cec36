"""One invocation as the execution layer sees it, and what it produced."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from dataclasses import dataclass, field


@dataclass(slots=True)
class Outcome:
    """What an invocation returned: the payload and, for a failure, ``Unhandled``."""

    payload: bytes
    function_error: str | None = None  # "Unhandled" when the function (or its runtime) failed
    log_tail: str = ""  # the invocation's log lines (START..REPORT)
    executed_version: str = "$LATEST"


@dataclass(slots=True)
class Invocation:
    payload: bytes
    function_arn: str  # the ARN it was invoked by (qualified when a qualifier was given)
    timeout: float  # seconds
    client_context: str | None = None  # base64 JSON, passed through
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    trace_id: str = ""
    deadline_ms: int = 0
    started: float = 0.0  # monotonic, when handed to the runtime
    done: asyncio.Future[tuple[bytes, str | None]] | None = None  # (payload, error type or None)

    def begin(self) -> None:
        self.started = time.monotonic()
        self.deadline_ms = int(time.time() * 1000 + self.timeout * 1000)
        if not self.trace_id:
            random = os.urandom(20).hex()
            self.trace_id = f"Root=1-{int(time.time()):08x}-{random[:24]};Parent={random[24:]};Sampled=0;Lineage=1:0:0"
        self.done = asyncio.get_running_loop().create_future()

    def finish(self, payload: bytes, error_type: str | None) -> bool:
        if self.done is None or self.done.done():
            return False
        self.done.set_result((payload, error_type))
        return True


def error_payload(request_id: str, error_type: str, detail: str) -> bytes:
    """The error document Lambda itself reports (timeouts, crashes), as the runtime API would."""
    return json.dumps({"errorType": error_type,
                       "errorMessage": f"RequestId: {request_id} Error: {detail}"}).encode()
