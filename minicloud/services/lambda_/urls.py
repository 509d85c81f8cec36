"""Function URLs: configuration (Create/Get/Update/Delete/ListFunctionUrlConfigs) and the endpoint.

A URL is ``http://<minicloud host>/_minicloud/lambda/url/<url-id>/<path>`` (minicloud serves every
surface on one port; AWS's ``<url-id>.lambda-url.<region>.on.aws`` host names would need DNS). A
request becomes a payload format 2.0 event; the function's result is mapped back as Lambda does
(``statusCode``/``headers``/``body``/``isBase64Encoded``/``cookies``, or any other JSON value as a
200 application/json body). AuthType NONE needs the function's policy to allow
``lambda:InvokeFunctionUrl`` to everyone; AWS_IAM needs a SigV4 signature (service ``lambda``) by a
principal allowed ``lambda:InvokeFunctionUrl`` (``url_auth.py``).
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import sqlalchemy as sa

from minicloud.aws.context import RequestContext
from minicloud.server.asgi import Receive, Scope, Send, read_body, send_response
from minicloud.services.lambda_ import model, url_auth
from minicloud.services.lambda_.base import LambdaBase
from minicloud.services.lambda_.errors import (
    InvalidParameterValueException,
    ResourceConflictException,
    ResourceNotFoundException,
    TooManyRequestsException,
)
from minicloud.services.lambda_.tables import lambda_urls

URL_PREFIX = "/_minicloud/lambda/url/"


class UrlsMixin(LambdaBase):
    def _url_doc(self, ctx: RequestContext, function: model.FunctionRow, row: Any) -> dict[str, Any]:
        host = ctx.request.headers.get("host") or f"127.0.0.1:{self.runtime.config.port}"
        doc: dict[str, Any] = {
            "FunctionUrl": f"http://{host}{URL_PREFIX}{row.url_id}/",
            "FunctionArn": model.function_arn(function.region, function.account_id, function.name,
                                              row.qualifier or None),
            "AuthType": row.auth_type, "InvokeMode": row.invoke_mode,
            "CreationTime": _iso(row.created_at), "LastModifiedTime": _iso(row.modified_at),
        }
        if row.cors:
            doc["Cors"] = json.loads(row.cors)
        return doc

    async def _url_row(self, function_id: str, qualifier: str) -> Any:
        c = lambda_urls.c
        return await self.db.read(lambda conn: conn.execute(sa.select(lambda_urls).where(
            c.function_id == function_id, c.qualifier == qualifier)).first())

    async def create_function_url_config(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        function, _version = await self.resolve(ctx, params, "lambda:CreateFunctionUrlConfig")
        qualifier = params.get("Qualifier") or ""
        if qualifier.isdigit() or qualifier == model.LATEST:
            raise InvalidParameterValueException("Function URLs can only be created for the unqualified function or "
                                                 "an alias.")
        _check_auth_type(params["AuthType"])
        now = datetime.now(UTC)
        url_id = secrets.token_hex(16)

        def insert(conn: sa.Connection) -> bool:
            c = lambda_urls.c
            if conn.execute(sa.select(c.url_id).where(c.function_id == function.id, c.qualifier == qualifier)).first():
                return False
            conn.execute(lambda_urls.insert().values(
                url_id=url_id, function_id=function.id, qualifier=qualifier, auth_type=params["AuthType"],
                cors=json.dumps(params["Cors"]) if params.get("Cors") else None,
                invoke_mode=params.get("InvokeMode") or "BUFFERED", created_at=now, modified_at=now))
            return True

        if not await self.db.write(insert):
            raise ResourceConflictException(f"Failed to create function url config for [functionArn = {function.arn}]. "
                                            "Error message:  FunctionUrlConfig exists for this Lambda function",
                                            Type="User")
        row = await self._url_row(function.id, qualifier)
        doc = self._url_doc(ctx, function, row)
        doc.pop("LastModifiedTime", None)
        return doc

    async def _existing_url(self, ctx: RequestContext, params: dict[str, Any], action: str) -> tuple[Any, Any]:
        function, _version = await self.resolve(ctx, params, action)
        row = await self._url_row(function.id, params.get("Qualifier") or "")
        if row is None:
            raise ResourceNotFoundException("The resource you requested does not exist.", Type="User")
        return function, row

    async def get_function_url_config(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        function, row = await self._existing_url(ctx, params, "lambda:GetFunctionUrlConfig")
        return self._url_doc(ctx, function, row)

    async def update_function_url_config(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        function, row = await self._existing_url(ctx, params, "lambda:UpdateFunctionUrlConfig")
        values: dict[str, Any] = {"modified_at": datetime.now(UTC)}
        if params.get("AuthType"):
            _check_auth_type(params["AuthType"])
            values["auth_type"] = params["AuthType"]
        if "Cors" in params:
            values["cors"] = json.dumps(params["Cors"]) if params["Cors"] else None
        if params.get("InvokeMode"):
            values["invoke_mode"] = params["InvokeMode"]
        await self.db.write(lambda conn: conn.execute(lambda_urls.update().where(
            lambda_urls.c.url_id == row.url_id).values(**values)))
        return self._url_doc(ctx, function, await self._url_row(function.id, row.qualifier))

    async def delete_function_url_config(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        _function, row = await self._existing_url(ctx, params, "lambda:DeleteFunctionUrlConfig")
        await self.db.write(lambda conn: conn.execute(lambda_urls.delete().where(lambda_urls.c.url_id == row.url_id)))
        return {}

    async def list_function_url_configs(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        function, _version = await self.resolve(ctx, params, "lambda:ListFunctionUrlConfigs")
        rows = await self.db.read(lambda conn: conn.execute(sa.select(lambda_urls).where(
            lambda_urls.c.function_id == function.id)).all())
        return {"FunctionUrlConfigs": [self._url_doc(ctx, function, row) for row in rows]}

    # -- the endpoint -------------------------------------------------------------------------------
    async def serve_url(self, scope: Scope, receive: Receive, send: Send) -> None:
        rest = scope["path"][len(URL_PREFIX):]
        url_id, _, tail = rest.partition("/")
        row = await self.db.read(lambda conn: conn.execute(sa.select(lambda_urls).where(
            lambda_urls.c.url_id == url_id)).first())
        if row is None:
            await _reply(send, 404, {"Message": "Not Found"})
            return
        function = await self.db.read(lambda conn: model.get_function_by_id(conn, row.function_id))
        version = await self.db.read(lambda conn: self.version_for(conn, function, row.qualifier or None)) \
            if function else None
        if function is None or version is None:
            await _reply(send, 404, {"Message": "Not Found"})
            return
        body = await read_body(receive, 6 * 1024 * 1024)
        arn = model.function_arn(function.region, function.account_id, function.name, row.qualifier or None)
        if row.auth_type == "NONE":
            status, message = await url_auth.authorize_public(self.runtime, scope, arn, function.account_id,
                                                              self.policy_document(function))
        else:
            status, message = await url_auth.authorize(self.runtime, scope, body, arn, function.account_id,
                                                       self.policy_document(function))
        if status:
            await _reply(send, status, {"Message": message})
            return
        event = url_event(scope, url_id, "/" + tail, body)
        try:
            version = await self.routed(function, row.qualifier or None, version)
            outcome = await self.run(function, version, row.qualifier or None, json.dumps(event).encode())
        except TooManyRequestsException:
            await _reply(send, 429, {"Message": "Rate Exceeded."})
            return
        if outcome.function_error:
            await _reply(send, 502, {"Message": "Internal Server Error"})
            return
        try:
            status, headers, content = map_result(outcome.payload)
        except MalformedResult:
            await _reply(send, 502, {"Message": "Internal Server Error"})
            return
        await send_response(send, status, headers, content)

    async def run(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError  # invoke.py

    async def routed(self, function: Any, qualifier: str | None, version: Any) -> Any:
        raise NotImplementedError  # invoke.py


def _check_auth_type(auth_type: str) -> None:
    if auth_type not in ("NONE", "AWS_IAM"):
        raise InvalidParameterValueException(f"1 validation error detected: Value '{auth_type}' at 'authType' failed "
                                             "to satisfy constraint: Member must satisfy enum value set: "
                                             "[NONE, AWS_IAM]")


def url_event(scope: Scope, url_id: str, path: str, body: bytes) -> dict[str, Any]:
    """The payload format 2.0 event of one HTTP request."""
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for raw_name, raw_value in scope["headers"]:
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        if name == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
            continue
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    query = scope.get("query_string", b"").decode("latin-1")
    params: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        params[key] = f"{params[key]},{value}" if key in params else value
    now = time.time()
    text_types = ("text/", "application/json", "application/xml", "application/x-www-form-urlencoded")
    is_text = not body or headers.get("content-type", "").startswith(text_types)
    client = scope.get("client") or ("127.0.0.1", 0)
    event: dict[str, Any] = {
        "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": query, "headers": headers,
        "requestContext": {
            "accountId": "anonymous", "apiId": url_id, "domainName": headers.get("host", ""),
            "domainPrefix": url_id,
            "http": {"method": scope["method"], "path": path, "protocol": f"HTTP/{scope.get('http_version', '1.1')}",
                     "sourceIp": client[0], "userAgent": headers.get("user-agent", "")},
            "requestId": str(uuid.uuid4()), "routeKey": "$default", "stage": "$default",
            "time": datetime.fromtimestamp(now, UTC).strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": not is_text,
    }
    if cookies:
        event["cookies"] = cookies
    if params:
        event["queryStringParameters"] = params
    if body:
        text = _utf8(body) if is_text else None
        event["body"] = text if text is not None else base64.b64encode(body).decode()
        event["isBase64Encoded"] = text is None  # a text type whose bytes are not UTF-8 goes as binary
    return event


def _utf8(body: bytes) -> str | None:
    try:
        return body.decode()
    except UnicodeDecodeError:
        return None


class MalformedResult(ValueError):
    """A function's ``statusCode`` result that is no HTTP response (Lambda answers 502)."""


# The server frames the response itself: a function's own framing headers are not passed on.
FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding", "connection"})
HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9a-z-]+$")


def map_result(payload: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
    """A function's result as the URL's HTTP response; ``MalformedResult`` when a ``statusCode``
    result is not one (a non-numeric status, headers that are not an object of names to values...)."""
    try:
        result = json.loads(payload or b"null")
    except ValueError:
        return 200, [("content-type", "application/json")], payload
    if isinstance(result, dict) and "statusCode" in result:
        try:
            return _response(result)
        except (ValueError, TypeError, AttributeError) as exc:
            raise MalformedResult(f"the function's result is not an HTTP response: {exc}") from None
    return 200, [("content-type", "application/json")], json.dumps(result).encode()


def _response(result: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
    status = result["statusCode"]
    if isinstance(status, bool) or not isinstance(status, int | str) or not 100 <= int(status) <= 599:
        raise ValueError(f"statusCode {status!r}")
    headers = [(str(k).lower(), str(v)) for k, v in (result.get("headers") or {}).items()]
    cookies = result.get("cookies") or []
    if not isinstance(cookies, list):
        raise ValueError("cookies must be a list")
    headers += [("set-cookie", str(c)) for c in cookies]
    for name, value in headers:
        value.encode("latin-1")  # UnicodeEncodeError is a ValueError
        if not HEADER_NAME.match(name) or any(c in value for c in "\r\n\0"):
            raise ValueError(f"header {name!r}")
    headers = [(k, v) for k, v in headers if k not in FRAMING_HEADERS]
    body = result.get("body") or ""
    content = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode()
    if not any(k == "content-type" for k, _ in headers):
        headers.append(("content-type", "application/json"))
    return int(status), headers, content


async def _reply(send: Send, status: int, doc: dict[str, Any]) -> None:
    await send_response(send, status, [("content-type", "application/json")], json.dumps(doc).encode())


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
