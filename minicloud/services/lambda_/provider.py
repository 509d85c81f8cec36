"""AWS Lambda: functions executed for real in the engine's containers through the Lambda Runtime API.

    functions.py    create/get/list/update/delete, Pending -> Active
    versions.py     versions and aliases
    layers.py       layers, their versions and policies, the layers of functions (layer_model.py)
    invoke.py       Invoke (sync, Event, DryRun), the asynchronous queue, concurrency
    permissions.py  resource policy and tags
    urls.py         function URLs (configuration and the HTTP endpoint)
    events.py       S3 event notifications drained from ``s3_event_outbox``
    execution/      environments, the Runtime API, the warm pool
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import time
from typing import Any
from urllib.parse import parse_qs

from minicloud.runtime import Runtime
from minicloud.server.asgi import Receive, Scope, Send, send_response
from minicloud.services.lambda_ import model
from minicloud.services.lambda_.code import CodeStore
from minicloud.services.lambda_.events import S3EventController
from minicloud.services.lambda_.execution.pool import ExecutionService, ExecutionSettings
from minicloud.services.lambda_.execution.slots import SlotPool
from minicloud.services.lambda_.functions import FunctionsMixin
from minicloud.services.lambda_.invoke import InvokeMixin, QueueController
from minicloud.services.lambda_.layer_model import get_version_by_id
from minicloud.services.lambda_.layers import LAYER_URL_PREFIX, LayersMixin
from minicloud.services.lambda_.permissions import PermissionsMixin
from minicloud.services.lambda_.urls import UrlsMixin
from minicloud.services.lambda_.versions import VersionsMixin
from minicloud.services.logs.store import LogWriter

log = logging.getLogger("minicloud.lambda")


class LambdaProvider(FunctionsMixin, VersionsMixin, LayersMixin, InvokeMixin, PermissionsMixin, UrlsMixin):
    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime)
        self.logs = LogWriter(runtime.db)
        self.queue = QueueController(self)
        runtime.controllers.append(self.queue)
        runtime.controllers.append(S3EventController(self))
        self._starting = asyncio.Lock()

    async def start(self) -> None:
        await self.resume_pending()
        task = asyncio.get_running_loop().create_task(self._prepare_when_engine_runs())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _prepare_when_engine_runs(self) -> None:
        """Once ``minicloud up`` has started the engine (after the providers): remove what a previous
        run left behind and get spare network namespaces ready for the first cold starts."""
        for _ in range(600):
            if self.runtime.engine is not None:
                try:
                    await self.ensure_execution()
                except Exception:
                    log.exception("preparing Lambda's execution service failed")
                return
            await asyncio.sleep(0.1)

    async def ensure_execution(self) -> ExecutionService | None:
        """The execution service, started on first use (the engine starts after the providers)."""
        if self.execution is not None or self.runtime.engine is None:
            return self.execution
        async with self._starting:  # concurrent first invocations start one service
            if self.execution is not None:
                return self.execution
            settings = ExecutionSettings(idle_timeout=self.settings.idle_timeout,
                                         freeze_delay=self.settings.freeze_delay,
                                         account_concurrency=self.settings.account_concurrency)
            execution = ExecutionService(self.runtime.engine.workloads,
                                         SlotPool(self.root / "netns", self.runtime.config.port),
                                         settings, self.runtime.config.port, self.role_credentials, self.logs.put)
            try:
                await execution.start()
            except BaseException:  # failed, or cancelled by a stop: what it prepared is removed
                with contextlib.suppress(Exception):
                    await asyncio.shield(execution.close())
                raise
            self.execution = execution
        return self.execution

    async def run(self, *args: Any, **kwargs: Any) -> Any:
        await self.ensure_execution()
        return await super().run(*args, **kwargs)

    def wake_queue(self) -> None:
        pass  # the controller polls every ``queue_interval`` seconds

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)  # a start-up still preparing ends first
        if self.execution is not None:
            try:
                await self.execution.close()
            except Exception:
                log.exception("stopping Lambda's execution environments failed")
        await self.logs.close()

    def health(self) -> str:
        return "running" if self.runtime.engine is not None else "degraded: no container engine"

    # -- minicloud's own pages: code download, function URLs --------------------------------------
    async def asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        if path.startswith("/_minicloud/lambda/code/"):
            await self._download(scope, send)
            return
        if path.startswith(LAYER_URL_PREFIX):
            await self._download_layer(scope, send)
            return
        if path.startswith("/_minicloud/lambda/url/"):
            await self.serve_url(scope, receive, send)
            return
        await send_response(send, 404, [("content-type", "application/json")], b'{"message":"Not Found"}')

    async def _download(self, scope: Scope, send: Send) -> None:
        if not await self._signed(scope, send):
            return
        parts = scope["path"].split("/")
        function_id, digest = parts[-2], parts[-1]
        function = await self.db.read(lambda conn: model.get_function_by_id(conn, function_id))
        await self._send_zip(send, self.code, digest if function is not None else None)

    async def _download_layer(self, scope: Scope, send: Send) -> None:
        """A layer version's zip (GetLayerVersion's Content.Location), while the version exists."""
        if not await self._signed(scope, send):
            return
        parts = scope["path"].split("/")
        layer_id, version, digest = parts[-3], parts[-2], parts[-1]
        row = await self.db.read(lambda conn: get_version_by_id(conn, layer_id, int(version))) \
            if version.isdigit() else None
        await self._send_zip(send, self.layer_code, digest if row is not None and row.code_sha256 == digest else None)

    async def _signed(self, scope: Scope, send: Send) -> bool:
        path: str = scope["path"]
        query = parse_qs(scope.get("query_string", b"").decode())
        expires = int((query.get("Expires") or ["0"])[0] or 0)
        signature = (query.get("Signature") or [""])[0]
        if expires < time.time() or not hmac.compare_digest(signature, self.sign(path, expires)):
            await send_response(send, 403, [("content-type", "application/xml")],
                                b"<Error><Code>AccessDenied</Code><Message>Request has expired or its signature "
                                b"does not match</Message></Error>")
            return False
        return True

    @staticmethod
    async def _send_zip(send: Send, store: CodeStore, digest: str | None) -> None:
        if digest is None or not store.zip_path(digest).exists():
            await send_response(send, 404, [("content-type", "application/xml")],
                                b"<Error><Code>NoSuchKey</Code><Message>The specified key does not exist."
                                b"</Message></Error>")
            return
        data = await asyncio.to_thread(store.read, digest)
        await send_response(send, 200, [("content-type", "application/zip")], data)
