"""Lambda: functions (create, delete), an inline code editor for zip functions, a test-invoke panel
with the result and the log tail, and the function's recent log events (invocations and errors)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import json
import urllib.request
import zipfile
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from minicloud.console.http import Response, url
from minicloud.console.page import Page, Route, route
from minicloud.console.views.common import field_error, status_of

FUNCTION = r"(?P<function>[A-Za-z0-9_-]{1,64})"
EDITABLE_BYTES = 256 * 1024
MAX_ZIP_BYTES = 50 * 1024 * 1024
RUNTIMES = {
    "python3.11": ("lambda_function.py", "lambda_function.lambda_handler",
                   'def lambda_handler(event, context):\n    print("event:", event)\n'
                   '    return {"hello": event.get("name", "world")}\n'),
    "nodejs18.x": ("index.js", "index.handler",
                   'exports.handler = async (event) => {\n  console.log("event:", JSON.stringify(event));\n'
                   '  return { hello: event.name || "world" };\n};\n'),
}


def zip_one(name: str, text: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0)), text)
    return buffer.getvalue()


def editable_files(data: bytes) -> dict[str, str]:
    """The text files of a zip small enough to edit in the browser."""
    files: dict[str, str] = {}
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for info in archive.infolist():
                if info.is_dir() or info.file_size > EDITABLE_BYTES:
                    continue
                try:
                    files[info.filename] = archive.read(info).decode("utf-8")
                except UnicodeDecodeError:
                    continue
    except zipfile.BadZipFile:
        return {}
    return files


def replace_file(data: bytes, name: str, text: str) -> bytes:
    """The zip with ``name`` replaced by ``text`` (or added), every other member kept as it was."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            if info.filename != name:
                target.writestr(info, source.read(info))
        target.writestr(zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0)), text)
    return out.getvalue()


def _download(location: str) -> bytes:
    with urllib.request.urlopen(location, timeout=30) as response:  # the function's own presigned code URL
        data: bytes = response.read(MAX_ZIP_BYTES + 1)
    return data


def own_address(location: str, host: str, port: int) -> str:
    """``location`` (built from the request's Host header) pointed at this server itself, so that
    the console never fetches from a host a client named."""
    parts = urlsplit(location)
    host = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
    netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return urlunsplit(("http", netloc, parts.path, parts.query, ""))


async def _code(page: Page, function: dict[str, Any]) -> bytes | None:
    location = (function.get("Code") or {}).get("Location")
    if not location or (function.get("Configuration") or {}).get("PackageType") == "Image":
        return None
    config = page.console.runtime.config
    data = await asyncio.to_thread(_download, own_address(str(location), config.host, config.port))
    return data if len(data) <= MAX_ZIP_BYTES else None


def decode_log(text: str | None) -> str:
    if not text:
        return ""
    try:
        return base64.b64decode(text, validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return text


async def functions(page: Page, status: int = 200, **extra: Any) -> Response:
    result, failure = await page.attempt("lambda", "ListFunctions", {})
    roles, _ = await page.attempt("iam", "ListRoles", {})
    values: dict[str, Any] = {"functions": (result or {}).get("Functions") or [], "failure": failure,
                              "roles": (roles or {}).get("Roles") or [], "runtimes": list(RUNTIMES), "errors": {},
                              "values": {}}
    values.update(extra)
    return page.render("lambda_functions.html", status, **values)


async def create_function(page: Page) -> Response:
    name, runtime = page.form("function_name").strip(), page.form("runtime")
    filename, handler, template = RUNTIMES.get(runtime, RUNTIMES["python3.11"])
    params = {"FunctionName": name, "Runtime": runtime, "Role": page.form("role"), "Handler": handler,
              "Code": {"ZipFile": zip_one(filename, template)}, "Timeout": 10}
    _, failure = await page.attempt("lambda", "CreateFunction", params)
    if failure is not None:
        field = "role" if "role" in failure.message.lower() else "function_name"
        return await functions(page, status_of(failure), errors=field_error(failure, field), values=page.request.form)
    return await page.done(url(f"/lambda/functions/{name}"), f"Function {name} created.")


async def function(page: Page, status: int = 200, **extra: Any) -> Response:
    name = page.request.params["function"]
    found, failure = await page.attempt("lambda", "GetFunction", {"FunctionName": name})
    if failure is not None:
        return page.render("error.html", status_of(failure), code=failure.code, message=failure.message)
    found = found or {}
    data = None if page.request.wants_fragment else await _code(page, found)
    files = editable_files(data) if data else {}
    events, events_failure = await _recent_events(page, name)
    values: dict[str, Any] = {
        "config": found.get("Configuration") or {}, "files": files, "has_code": data is not None,
        "file": page.request.value("file") or next(iter(files), ""), "events": events,
        "events_failure": events_failure, "errors": {}, "result": None, "payload": '{"name": "console"}',
        "action_failure": None,
    }
    values.update(extra)
    return page.render("lambda_function.html", status, **values)


async def _recent_events(page: Page, name: str) -> tuple[list[dict[str, Any]], Any]:
    if not page.calls.has("logs"):
        return [], None
    result, failure = await page.attempt("logs", "FilterLogEvents", {"logGroupName": f"/aws/lambda/{name}",
                                                                     "limit": 50})
    if failure is not None and failure.code == "ResourceNotFoundException":
        return [], None  # not invoked yet
    events = (result or {}).get("events") or []  # in the order they were written
    return events[-50:], failure


async def save_code(page: Page) -> Response:
    name, file_name = page.request.params["function"], page.form("file")
    found = await page.call("lambda", "GetFunction", {"FunctionName": name})
    data = await _code(page, found)
    if data is None:
        return await function(page, 400, errors={"code": "This function's code cannot be edited inline."})
    new_zip = replace_file(data, file_name, page.form("code"))
    _, failure = await page.attempt("lambda", "UpdateFunctionCode", {"FunctionName": name, "ZipFile": new_zip})
    if failure is not None:
        return await function(page, status_of(failure), errors=field_error(failure, "code"))
    return await page.done(url(f"/lambda/functions/{name}", file=file_name), f"{file_name} saved and deployed.")


async def invoke(page: Page) -> Response:
    name, payload = page.request.params["function"], page.form("payload")
    try:
        json.loads(payload or "{}")
    except ValueError as error:
        return await function(page, 400, payload=payload, errors={"payload": f"This is not valid JSON: {error}"})
    result, failure = await page.attempt("lambda", "Invoke", {"FunctionName": name, "LogType": "Tail",
                                                              "Payload": (payload or "{}").encode()})
    if failure is not None:
        return await function(page, status_of(failure), payload=payload, errors=field_error(failure, "payload"))
    result = result or {}
    body = result.get("Payload") or b""
    shown = {"status": result.get("StatusCode"), "error": result.get("FunctionError"),
             "payload": body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body),
             "log": decode_log(result.get("LogResult")), "version": result.get("ExecutedVersion")}
    return await function(page, payload=payload, result=shown)


async def delete_function(page: Page) -> Response:
    name = page.request.params["function"]
    _, failure = await page.attempt("lambda", "DeleteFunction", {"FunctionName": name})
    if failure is not None:
        return await function(page, status_of(failure), action_failure=failure)
    return await page.done(url("/lambda/functions"), f"Function {name} deleted.")


ROUTES: list[Route] = [
    route("GET", "/lambda/functions", functions),
    route("POST", "/lambda/functions", create_function),
    route("GET", f"/lambda/functions/{FUNCTION}", function),
    route("POST", f"/lambda/functions/{FUNCTION}/code", save_code),
    route("POST", f"/lambda/functions/{FUNCTION}/invoke", invoke),
    route("POST", f"/lambda/functions/{FUNCTION}/delete", delete_function),
]
