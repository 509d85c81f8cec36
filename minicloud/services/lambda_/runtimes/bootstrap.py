"""minicloud's Lambda runtime client for Python: the standard library only.

Runs as the environment's first process: imports the handler named by ``_HANDLER`` ("module.function",
the module path relative to /var/task), then loops on the Runtime API at ``AWS_LAMBDA_RUNTIME_API``:
``GET /invocation/next``, call the handler, ``POST .../response`` or ``.../error``.

Errors are reported as AWS's Python runtime reports them: a handler that cannot be loaded answers
every invocation with ``Runtime.ImportModuleError``, ``Runtime.UserCodeSyntaxError``,
``Runtime.HandlerNotFound`` or ``Runtime.MalformedHandlerName``; an exception raised by the handler
with its type, message and stack trace.
"""

from __future__ import annotations

import http.client
import importlib
import json
import os
import signal
import site
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

API = "/2018-06-01/runtime"


class Fault(Exception):
    def __init__(self, error_type: str, message: str, trace: list[str] | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.trace = trace or []


class LambdaContext:
    def __init__(self, request_id: str, deadline_ms: int, invoked_arn: str, client_context: Any,
                 identity: Any) -> None:
        self.aws_request_id = request_id
        self.invoked_function_arn = invoked_arn
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.client_context = client_context
        self.identity = identity
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int(self._deadline_ms - time.time() * 1000))


class RuntimeApi:
    def __init__(self, address: str) -> None:
        host, _, port = address.partition(":")
        self.connection = http.client.HTTPConnection(host, int(port or 80))

    def call(self, method: str, path: str, body: bytes | None = None,
             headers: dict[str, str] | None = None) -> tuple[http.client.HTTPResponse, bytes]:
        for attempt in (0, 1):
            try:
                self.connection.request(method, API + path, body=body, headers=headers or {})
                response = self.connection.getresponse()
                return response, response.read()
            except (http.client.HTTPException, OSError):
                self.connection.close()
                if attempt:
                    raise
        raise RuntimeError("unreachable")

    def next(self) -> tuple[http.client.HTTPResponse, bytes]:
        return self.call("GET", "/invocation/next")

    def respond(self, request_id: str, body: bytes) -> None:
        self.call("POST", f"/invocation/{request_id}/response", body, {"Content-Type": "application/json"})

    def fail(self, path: str, error: dict[str, Any]) -> None:
        body = json.dumps(error).encode()
        self.call("POST", path, body, {"Content-Type": "application/json",
                                       "Lambda-Runtime-Function-Error-Type": error["errorType"]})


def load_handler(spec: str) -> Callable[[Any, LambdaContext], Any]:
    try:
        module_path, name = spec.rsplit(".", 1)
    except ValueError as exc:
        raise Fault("Runtime.MalformedHandlerName", f"Bad handler '{spec}': {exc}") from None
    module_name = module_path.replace("/", ".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise Fault("Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}") from None
    except SyntaxError as exc:
        message = f"Syntax error in module '{module_name}': {exc}"
        trace = [f'  File "{exc.filename}" Line {exc.lineno}\n', f"    {(exc.text or '').strip()}\n"]
        raise Fault("Runtime.UserCodeSyntaxError", message, trace) from None
    except Exception as exc:  # an error raised while the module initialises
        trace = traceback.format_list(traceback.extract_tb(exc.__traceback__))
        raise Fault(type(exc).__name__, str(exc), trace) from None
    handler = getattr(module, name, None)
    if handler is None:
        raise Fault("Runtime.HandlerNotFound", f"Handler '{name}' missing on module '{module_name}'")
    if not callable(handler):
        raise Fault("Runtime.HandlerNotFound", f"Handler '{name}' missing on module '{module_name}'")
    return handler  # type: ignore[no-any-return]


def error_document(exc: BaseException, request_id: str | None = None) -> dict[str, Any]:
    if isinstance(exc, Fault):
        doc: dict[str, Any] = {"errorMessage": exc.message, "errorType": exc.error_type, "stackTrace": exc.trace}
    else:
        frames = traceback.extract_tb(exc.__traceback__)[1:]  # without this file's frame
        doc = {"errorMessage": str(exc), "errorType": type(exc).__name__,
               "stackTrace": traceback.format_list(frames)}
    if request_id:
        doc["requestId"] = request_id
    return doc


def log_error(doc: dict[str, Any]) -> None:
    lines = [f"[ERROR] {doc['errorType']}: {doc['errorMessage']}"]
    if doc.get("stackTrace"):
        lines.append("Traceback (most recent call last):")
        lines.extend(line.rstrip("\n") for line in doc["stackTrace"])
    sys.stdout.write("\n".join(lines) + "\n")


def set_sys_path(task_root: str) -> None:
    """As AWS's Python runtimes: the function's code first, then its layers' site directory
    (/opt/python/lib/python3.x/site-packages, whose .pth files count) and /opt/python."""
    layers = [f"/opt/python/lib/python{sys.version_info.major}.{sys.version_info.minor}/site-packages",
              "/opt/python"]
    sys.path[:0] = [task_root, *layers]
    for directory in layers:
        if os.path.isdir(directory):
            site.addsitedir(directory)  # already on the path: only its .pth files are read


def main() -> None:
    # The first process of its container: without a handler it would ignore SIGTERM (PID 1).
    signal.signal(signal.SIGTERM, lambda _signum, _frame: os._exit(0))
    api = RuntimeApi(os.environ["AWS_LAMBDA_RUNTIME_API"])
    task_root = os.environ.get("LAMBDA_TASK_ROOT", "/var/task")
    set_sys_path(task_root)
    os.chdir(task_root)
    handler: Callable[[Any, LambdaContext], Any] | None = None
    fault: Fault | None = None
    try:
        handler = load_handler(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("_HANDLER", ""))
    except Fault as exc:
        fault = exc
        log_error(error_document(exc))
    while True:
        response, payload = api.next()
        headers = response.headers
        request_id = headers.get("Lambda-Runtime-Aws-Request-Id", "")
        os.environ["_X_AMZN_TRACE_ID"] = headers.get("Lambda-Runtime-Trace-Id", "")
        client_context = headers.get("Lambda-Runtime-Client-Context")
        identity = headers.get("Lambda-Runtime-Cognito-Identity")
        context = LambdaContext(request_id, int(headers.get("Lambda-Runtime-Deadline-Ms") or 0),
                                headers.get("Lambda-Runtime-Invoked-Function-Arn", ""),
                                json.loads(client_context) if client_context else None,
                                json.loads(identity) if identity else None)
        try:
            if fault is not None or handler is None:
                raise fault or Fault("Runtime.HandlerNotFound", "no handler")
            event = json.loads(payload) if payload else {}
            result = handler(event, context)
            try:
                body = json.dumps(result).encode()
            except (TypeError, ValueError) as exc:
                raise Fault("Runtime.MarshalError", f"Unable to marshal response: {exc}") from None
        except Exception as exc:  # the handler's error, reported as the function's
            doc = error_document(exc, request_id)
            if fault is None:
                log_error(doc)
            sys.stdout.flush()
            sys.stderr.flush()
            api.fail(f"/invocation/{request_id}/error", doc)
            continue
        sys.stdout.flush()
        sys.stderr.flush()
        api.respond(request_id, body)


if __name__ == "__main__":
    main()
