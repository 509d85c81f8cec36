"""The Runtime API as an environment answers it, driven without a container: next/response/error,
unknown request ids, init errors, oversized responses and timeouts."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from minicloud.services.lambda_.execution.environment import Environment
from minicloud.services.lambda_.execution.http import Request
from minicloud.services.lambda_.execution.invocation import Invocation
from minicloud.services.lambda_.execution.slots import Slot
from minicloud.services.lambda_.execution.spec import EnvironmentSpec

API = "/2018-06-01/runtime/"


class NoWorkloads:
    """Nothing is ever started: the tests play the runtime themselves."""

    async def kill(self, *_args: Any) -> None:
        return None


def spec() -> EnvironmentSpec:
    return EnvironmentSpec(pool_key="k", account_id="111122223333", region="us-east-1", function_name="f",
                           function_arn="arn:aws:lambda:us-east-1:111122223333:function:f", version="$LATEST",
                           runtime="python3.11", handler="app.handler", image="img", code_dir=None, memory_mb=128,
                           timeout=3, role_arn="", log_group="/aws/lambda/f")


def environment() -> Environment:
    return Environment(spec(), Slot(0, Path("/nonexistent")), NoWorkloads(), {}, 4566)


def get(path: str) -> Request:
    return Request("GET", API + path, {}, b"")


def post(path: str, body: bytes, headers: dict[str, str] | None = None) -> Request:
    return Request("POST", API + path, headers or {}, body)


def test_an_invocation_goes_out_with_its_headers_and_its_response_comes_back() -> None:
    async def scenario() -> None:
        env = environment()
        runtime_next = asyncio.ensure_future(env.handle(get("invocation/next")))
        assert await env.wait_ready(1) is None and env.init_duration_ms is not None
        invocation = Invocation(b'{"a": 1}', "arn:aws:lambda:us-east-1:111122223333:function:f:live", 3.0, "e30=")
        run = asyncio.ensure_future(env.run(invocation))
        response = await runtime_next
        assert response.status == 200 and response.body == b'{"a": 1}'
        headers = response.headers
        assert headers["Lambda-Runtime-Aws-Request-Id"] == invocation.request_id
        assert headers["Lambda-Runtime-Invoked-Function-Arn"].endswith(":f:live")
        assert int(headers["Lambda-Runtime-Deadline-Ms"]) > 0
        assert headers["Lambda-Runtime-Trace-Id"].startswith("Root=1-")
        assert headers["Lambda-Runtime-Client-Context"] == "e30="
        wrong = await env.handle(post("invocation/not-it/response", b"1"))
        assert wrong.status == 400 and json.loads(wrong.body)["errorType"] == "InvalidRequestID"
        accepted = await env.handle(post(f"invocation/{invocation.request_id}/response", b'"done"'))
        assert accepted.status == 202
        assert await run == (b'"done"', None, "ok")

    asyncio.run(scenario())


def test_a_function_error_is_passed_on() -> None:
    async def scenario() -> None:
        env = environment()
        runtime_next = asyncio.ensure_future(env.handle(get("invocation/next")))
        await env.wait_ready(1)
        invocation = Invocation(b"{}", "arn", 3.0)
        run = asyncio.ensure_future(env.run(invocation))
        await runtime_next
        body = json.dumps({"errorMessage": "boom", "errorType": "ValueError", "stackTrace": []}).encode()
        await env.handle(post(f"invocation/{invocation.request_id}/error", body,
                              {"lambda-runtime-function-error-type": "ValueError"}))
        payload, error_type, ended = await run
        assert error_type == "ValueError" and ended == "error" and json.loads(payload)["errorMessage"] == "boom"

    asyncio.run(scenario())


def test_a_response_over_6_mb_fails_the_invocation() -> None:
    async def scenario() -> None:
        env = environment()
        runtime_next = asyncio.ensure_future(env.handle(get("invocation/next")))
        await env.wait_ready(1)
        invocation = Invocation(b"{}", "arn", 3.0)
        run = asyncio.ensure_future(env.run(invocation))
        await runtime_next
        refused = await env.handle(post(f"invocation/{invocation.request_id}/response", b"x" * (6 * 1024 * 1024 + 1)))
        assert refused.status == 413
        _payload, error_type, _ended = await run
        assert error_type == "Function.ResponseSizeTooLarge"

    asyncio.run(scenario())


def test_a_timeout_is_reported_as_lambda_does() -> None:
    async def scenario() -> None:
        env = environment()
        runtime_next = asyncio.ensure_future(env.handle(get("invocation/next")))
        await env.wait_ready(1)
        invocation = Invocation(b"{}", "arn", 0.05)
        payload, error_type, ended = await env.run(invocation)
        await runtime_next
        assert ended == "timeout" and error_type == "Sandbox.Timedout"
        assert json.loads(payload)["errorMessage"] == \
            f"RequestId: {invocation.request_id} Error: Task timed out after 0.05 seconds"

    asyncio.run(scenario())


def test_an_init_error_before_the_first_next_fails_the_start() -> None:
    async def scenario() -> None:
        env = environment()
        body = json.dumps({"errorMessage": "bad config", "errorType": "Runtime.InitError"}).encode()
        accepted = await env.handle(post("init/error", body))
        assert accepted.status == 202
        failure = await env.wait_ready(0.2)
        assert failure is not None and json.loads(failure)["errorMessage"] == "bad config"

    asyncio.run(scenario())


def test_unknown_paths() -> None:
    async def scenario() -> None:
        env = environment()
        assert (await env.handle(Request("GET", "/other", {}, b""))).status == 404
        assert (await env.handle(get("invocation/x/other"))).status == 404

    asyncio.run(scenario())
