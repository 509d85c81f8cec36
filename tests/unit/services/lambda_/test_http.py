"""The Runtime API's small HTTP/1.1 server: requests (Content-Length, chunked), keep-alive, responses."""

from __future__ import annotations

import asyncio

import pytest

from minicloud.services.lambda_.execution.http import (
    BadRequest,
    Request,
    Response,
    encode_response,
    read_request,
    serve_connection,
)


def reader_of(data: bytes) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    return reader


def parse(data: bytes, limit: int = 100) -> Request | None:
    async def go() -> Request | None:
        return await read_request(reader_of(data), limit)
    return asyncio.run(go())


def test_a_request_with_a_body() -> None:
    asyncio.run(_a_request_with_a_body())


async def _a_request_with_a_body() -> None:
    reader = reader_of(b"POST /2018-06-01/runtime/invocation/abc/response HTTP/1.1\r\nHost: x\r\n"
                       b"Content-Length: 5\r\nLambda-Runtime-Function-Error-Type: Oops\r\n\r\nhello")
    request = await read_request(reader, 100)
    assert request is not None
    assert (request.method, request.path, request.body) == ("POST", "/2018-06-01/runtime/invocation/abc/response",
                                                            b"hello")
    assert request.headers["lambda-runtime-function-error-type"] == "Oops"
    assert await read_request(reader, 100) is None


def test_a_chunked_body() -> None:
    data = b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    request = parse(data)
    assert request is not None and request.body == b"hello world"


@pytest.mark.parametrize("data", [b"POST /x HTTP/1.1\r\nContent-Length: 67108865\r\n\r\n",
                                  b"NONSENSE\r\n\r\n", b"GET / HTTP/1.1\r\nno colon here\r\n\r\n"])
def test_limits_and_malformed_requests(data: bytes) -> None:
    with pytest.raises(BadRequest):
        parse(data)


@pytest.mark.parametrize("data", [b"POST /x HTTP/1.1\r\nContent-Length: 101\r\n\r\n" + b"x" * 101,
                                  b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                                  b"32\r\n" + b"x" * 50 + b"\r\n33\r\n" + b"y" * 51 + b"\r\n0\r\n\r\n"])
def test_a_body_over_the_limit_is_read_through_and_dropped(data: bytes) -> None:
    """(So the handler answers 413 and the runtime client keeps its connection: a response over the
    limit used to close it with a 400, and the runtime crashed instead of reporting the size.)"""
    async def go() -> tuple[Request | None, Request | None]:
        reader = reader_of(data + b"GET /next HTTP/1.1\r\n\r\n")
        return await read_request(reader, 100), await read_request(reader, 100)
    request, following = asyncio.run(go())
    assert request is not None and request.oversized and request.body == b""
    assert following is not None and following.path == "/next" and not following.oversized


def test_responses_carry_their_length() -> None:
    data = encode_response(Response(202, b'{"status":"OK"}', {"Content-Type": "application/json"}))
    assert data.startswith(b"HTTP/1.1 202 Accepted\r\n")
    assert b"Content-Length: 15\r\n\r\n{\"status\":\"OK\"}" in data


def test_keep_alive_serves_several_requests_on_one_connection() -> None:
    asyncio.run(_keep_alive())


async def _keep_alive() -> None:
    seen: list[str] = []

    async def handler(request: Request) -> Response:
        seen.append(request.path)
        return Response(200, request.path.encode())

    async def client(port: int) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\nConnection: close\r\n\r\n")
        data = await reader.read()
        writer.close()
        return data

    server = await asyncio.start_server(lambda r, w: serve_connection(r, w, handler, 100), "127.0.0.1", 0)
    async with server:
        data = await client(server.sockets[0].getsockname()[1])
    assert seen == ["/a", "/b"]
    assert data.count(b"HTTP/1.1 200 OK") == 2 and data.endswith(b"/b")
