"""Function URLs: the payload format 2.0 event of a request, and a result mapped to a response."""

from __future__ import annotations

import base64
import json
from typing import Any

from minicloud.services.lambda_.urls import map_result, url_event


def scope(method: str = "GET", query: bytes = b"", headers: list[tuple[bytes, bytes]] | None = None) -> dict[str, Any]:
    return {"method": method, "query_string": query, "headers": headers or [], "client": ("127.0.0.5", 1234),
            "http_version": "1.1"}


def test_the_event_of_a_request() -> None:
    event = url_event(scope("POST", b"a=1&a=2&b=", [(b"Host", b"h:1"), (b"Cookie", b"x=1; y=2"),
                                                      (b"X-Multi", b"1"), (b"X-Multi", b"2"),
                                                      (b"Content-Type", b"application/json")]),
                      "abc", "/p/q", b'{"k": 1}')
    assert event["version"] == "2.0" and event["routeKey"] == "$default" and event["rawPath"] == "/p/q"
    assert event["rawQueryString"] == "a=1&a=2&b=" and event["queryStringParameters"] == {"a": "1,2", "b": ""}
    assert event["cookies"] == ["x=1", "y=2"] and "cookie" not in event["headers"]
    assert event["headers"]["x-multi"] == "1,2"
    assert event["body"] == '{"k": 1}' and event["isBase64Encoded"] is False
    http = event["requestContext"]["http"]
    assert http == {"method": "POST", "path": "/p/q", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.5",
                    "userAgent": ""}
    assert event["requestContext"]["domainName"] == "h:1" and event["requestContext"]["apiId"] == "abc"


def test_binary_bodies_are_base64() -> None:
    event = url_event(scope("PUT", headers=[(b"content-type", b"application/octet-stream")]), "abc", "/", b"\x00\xff")
    assert event["isBase64Encoded"] is True and base64.b64decode(event["body"]) == b"\x00\xff"


def test_results_mapped_to_responses() -> None:
    status, headers, body = map_result(json.dumps({"statusCode": 404, "headers": {"X-A": "b"}, "body": "nope",
                                                   "cookies": ["c=1"]}).encode())
    assert status == 404 and body == b"nope"
    assert ("x-a", "b") in headers and ("set-cookie", "c=1") in headers
    status, headers, body = map_result(json.dumps({"statusCode": 200, "isBase64Encoded": True,
                                                   "body": base64.b64encode(b"\x01").decode()}).encode())
    assert body == b"\x01"
    assert map_result(b'{"plain": 1}') == (200, [("content-type", "application/json")], b'{"plain": 1}')
    assert map_result(b'"text"')[2] == b'"text"'
