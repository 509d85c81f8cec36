"""Invoke (RequestResponse, Event, DryRun), the asynchronous queue, and concurrency settings."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from minicloud.aws.context import RequestContext
from minicloud.services.lambda_ import model
from minicloud.services.lambda_.base import LambdaBase
from minicloud.services.lambda_.errors import (
    InvalidParameterValueException,
    InvalidRequestContentException,
    RequestEntityTooLargeException,
    ResourceConflictException,
    ResourceNotReadyException,
    TooManyRequestsException,
)
from minicloud.services.lambda_.execution.invocation import Invocation, Outcome
from minicloud.services.lambda_.execution.pool import Throttled
from minicloud.services.lambda_.model import FunctionRow, VersionRow
from minicloud.services.lambda_.tables import lambda_event_queue, lambda_functions

log = logging.getLogger("minicloud.lambda")
SYNC_LIMIT = 6 * 1024 * 1024
ASYNC_LIMIT = 256 * 1024


class InvokeMixin(LambdaBase):
    async def invoke(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        function, version = await self.resolve(ctx, params, "lambda:InvokeFunction")
        kind = params.get("InvocationType") or "RequestResponse"
        if kind not in ("RequestResponse", "Event", "DryRun"):
            raise InvalidParameterValueException(f"Unsupported InvocationType: {kind}")
        payload = await read_payload(params.get("Payload"), SYNC_LIMIT if kind != "Event" else ASYNC_LIMIT)
        if payload:
            try:
                json.loads(payload)
            except ValueError:
                raise InvalidRequestContentException("Could not parse request body into json: Could not parse "
                                                     "payload into json: Unexpected character", Type="User") from None
        self._check_ready(version)
        if kind == "DryRun":
            return {"StatusCode": 204}
        qualifier = model.parse_function_name(params["FunctionName"], params.get("Qualifier")).qualifier
        if kind == "Event":
            await self.enqueue(function, qualifier or "", payload)
            return {"StatusCode": 202}
        version = await self.routed(function, qualifier, version)
        outcome = await self.run(function, version, qualifier, payload or b"{}", params.get("LogType") == "Tail",
                                 params.get("ClientContext"))
        result: dict[str, Any] = {"StatusCode": 200, "Payload": outcome.payload,
                                  "ExecutedVersion": outcome.executed_version}
        if outcome.function_error:
            result["FunctionError"] = outcome.function_error
        if params.get("LogType") == "Tail":
            result["LogResult"] = outcome.log_tail
        return result

    async def routed(self, function: FunctionRow, qualifier: str | None, version: VersionRow) -> VersionRow:
        """An alias with a routing configuration sends each invocation to its additional version with
        that version's weight, as Lambda does; the alias's own version otherwise."""
        if not qualifier or qualifier == model.LATEST or qualifier.isdigit():
            return version
        alias = await self.db.read(lambda conn: model.get_alias(conn, function.id, qualifier))
        if alias is None or not alias.routing:
            return version
        draw = random.random()
        target = None
        for other, weight in alias.routing.items():
            if draw < float(weight):
                target = other
                break
            draw -= float(weight)
        if target is None:
            return version
        chosen = await self.db.read(lambda conn: model.get_version(conn, function.id, str(target)))
        return chosen or version

    @staticmethod
    def _check_ready(version: VersionRow) -> None:
        state = version.config.get("State")
        if state == "Pending":
            raise ResourceConflictException(
                "The operation cannot be performed at this time. The function is currently in the following state: "
                "Pending", Type="User")
        if state == "Failed":
            raise ResourceNotReadyException(
                f"The function could not be made ready: {version.config.get('StateReason')}")

    async def run(self, function: FunctionRow, version: VersionRow, qualifier: str | None, payload: bytes,
                  tail: bool = False, client_context: str | None = None, request_id: str | None = None) -> Outcome:
        if self.execution is None:
            raise ResourceNotReadyException("Functions cannot run: minicloud's container engine is not running.")
        key = (function.arn, version.version, version.config.get("RevisionId"), function.reserved_concurrency)
        spec = self._specs.get(key)
        if spec is None:
            spec = await asyncio.to_thread(self.environment_spec, function, version)
            if len(self._specs) > 4096:
                self._specs.clear()
            self._specs[key] = spec
        invoked = model.function_arn(function.region, function.account_id, function.name, qualifier)
        invocation = Invocation(payload, invoked, float(spec.timeout), client_context)
        if request_id:  # an asynchronous invocation keeps its request id across retries, as on AWS
            invocation.request_id = request_id
        try:
            return await self.execution.invoke(spec, invocation, tail)
        except Throttled as exc:
            raise TooManyRequestsException("Rate Exceeded.", Type="User", Reason=exc.reason) from None

    # -- asynchronous invocations -----------------------------------------------------------------
    async def enqueue(self, function: FunctionRow, qualifier: str, payload: bytes) -> str:
        request_id = str(uuid.uuid4())
        now = datetime.now(UTC)
        await self.db.write(lambda conn: conn.execute(lambda_event_queue.insert().values(
            account_id=function.account_id, region=function.region, function_name=function.name,
            qualifier=qualifier, request_id=request_id, payload=payload or b"{}", attempts=0, not_before=now,
            created_at=now)))
        self.wake_queue()
        return request_id

    def wake_queue(self) -> None:
        raise NotImplementedError  # provider.py

    async def invoke_async(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        function, version = await self.resolve(ctx, params, "lambda:InvokeFunction")
        payload = await read_payload(params.get("InvokeArgs"), ASYNC_LIMIT)
        self._check_ready(version)
        await self.enqueue(function, "", payload)
        return {"Status": 202}

    # -- concurrency ------------------------------------------------------------------------------
    async def put_function_concurrency(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        function, _version = await self.resolve(ctx, params, "lambda:PutFunctionConcurrency", latest_only=True)
        reserved = int(params["ReservedConcurrentExecutions"])
        limit = self.settings.account_concurrency
        if reserved < 0 or reserved > limit:
            raise InvalidParameterValueException(
                "Specified ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution "
                "below its minimum value of [0].")
        await self.db.write(lambda conn: conn.execute(lambda_functions.update().where(
            lambda_functions.c.id == function.id).values(reserved_concurrency=reserved)))
        return {"ReservedConcurrentExecutions": reserved}

    async def get_function_concurrency(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        function, _version = await self.resolve(ctx, params, "lambda:GetFunctionConcurrency", latest_only=True)
        if function.reserved_concurrency is None:
            return {}
        return {"ReservedConcurrentExecutions": function.reserved_concurrency}

    async def delete_function_concurrency(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        function, _version = await self.resolve(ctx, params, "lambda:DeleteFunctionConcurrency", latest_only=True)
        await self.db.write(lambda conn: conn.execute(lambda_functions.update().where(
            lambda_functions.c.id == function.id).values(reserved_concurrency=None)))
        return {}

    async def get_account_settings(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        await ctx.authorize("lambda:GetAccountSettings", "*")
        c = lambda_functions.c
        row = await self.db.read(lambda conn: conn.execute(sa.select(
            sa.func.count(), sa.func.coalesce(sa.func.sum(c.reserved_concurrency), 0)).where(
            c.account_id == ctx.account_id, c.region == ctx.region)).one())
        limit = self.settings.account_concurrency
        return {
            "AccountLimit": {"TotalCodeSize": 80530636800, "CodeSizeUnzipped": 262144000,
                             "CodeSizeZipped": 52428800, "ConcurrentExecutions": limit,
                             "UnreservedConcurrentExecutions": max(0, limit - int(row[1]))},
            "AccountUsage": {"TotalCodeSize": 0, "FunctionCount": int(row[0])},
        }


async def read_payload(source: Any, limit: int) -> bytes:
    """The request's payload (bytes, text or a streamed body), refused beyond ``limit`` bytes."""
    def too_large() -> RequestEntityTooLargeException:
        return RequestEntityTooLargeException(
            f"Request must be smaller than {limit} bytes for the InvokeFunction operation", Type="User")

    if source is None:
        return b""
    if isinstance(source, (bytes, bytearray)):
        data = bytes(source)
    elif isinstance(source, str):
        data = source.encode()
    else:
        if source.length is not None and source.length > limit:
            raise too_large()
        chunks: list[bytes] = []
        size = 0
        async for chunk in source:
            size += len(chunk)
            if size > limit:
                raise too_large()
            chunks.append(chunk)
        data = b"".join(chunks)
    if len(data) > limit:
        raise too_large()
    return data


class QueueController:
    """Runs queued asynchronous invocations; a failure is retried twice, after ``retry_delays``
    (AWS: about one minute, then two); a throttled one waits and is tried again without counting."""

    name = "lambda-async"

    def __init__(self, provider: Any) -> None:
        self.provider = provider
        self.interval = provider.settings.queue_interval
        self._running: set[int] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def reconcile(self) -> None:
        now = datetime.now(UTC)
        q = lambda_event_queue.c
        rows = await self.provider.db.read(lambda conn: conn.execute(
            sa.select(lambda_event_queue).where(q.not_before <= now).order_by(q.id).limit(64)).all())
        for row in rows:
            if row.id in self._running:
                continue
            self._running.add(row.id)
            task = asyncio.get_running_loop().create_task(self._deliver(row))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _deliver(self, row: Any) -> None:
        try:
            await self._attempt(row)
        except Exception:
            log.exception("asynchronous invocation %s failed to run", row.request_id)
        finally:
            self._running.discard(row.id)

    async def _attempt(self, row: Any) -> None:
        provider = self.provider
        q = lambda_event_queue.c

        def lookup(conn: sa.Connection) -> tuple[FunctionRow | None, VersionRow | None]:
            function = model.get_function(conn, row.account_id, row.region, row.function_name)
            if function is None:
                return None, None
            return function, provider.version_for(conn, function, row.qualifier or None)

        function, version = await provider.db.read(lookup)
        if function is None or version is None:
            await provider.db.write(lambda conn: conn.execute(lambda_event_queue.delete().where(q.id == row.id)))
            return
        if version.config.get("State") == "Pending":
            return  # tried again on a later pass
        version = await provider.routed(function, row.qualifier or None, version)
        try:
            outcome = await provider.run(function, version, row.qualifier or None, row.payload,
                                         request_id=row.request_id)
            failed = outcome.function_error is not None
        except TooManyRequestsException:
            await provider.db.write(lambda conn: conn.execute(lambda_event_queue.update().where(q.id == row.id).values(
                not_before=datetime.now(UTC) + timedelta(seconds=1))))
            return
        delays = provider.settings.retry_delays
        if failed and row.attempts < len(delays):
            delay = delays[row.attempts]
            await provider.db.write(lambda conn: conn.execute(lambda_event_queue.update().where(q.id == row.id).values(
                attempts=row.attempts + 1, not_before=datetime.now(UTC) + timedelta(seconds=delay))))
            return
        await provider.db.write(lambda conn: conn.execute(lambda_event_queue.delete().where(q.id == row.id)))
