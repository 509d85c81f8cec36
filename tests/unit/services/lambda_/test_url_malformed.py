"""Function URLs given what they cannot take as is (regression tests of the security review, each
once a 500): a text body that is not UTF-8, and function results that are no HTTP response."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from minicloud.services.lambda_.urls import MalformedResult, map_result, url_event


def test_a_text_body_that_is_not_utf8_goes_base64() -> None:
    scope = {"method": "POST", "query_string": b"", "headers": [(b"content-type", b"text/plain")],
             "client": ("127.0.0.1", 1), "http_version": "1.1"}
    event = url_event(scope, "abc", "/", b"\xff\xfe")
    assert event["isBase64Encoded"] is True and base64.b64decode(event["body"]) == b"\xff\xfe"
    event = url_event(scope, "abc", "/", "h\u00e9".encode())
    assert event["isBase64Encoded"] is False and event["body"] == "h\u00e9"


@pytest.mark.parametrize("result", [
    {"statusCode": "abc", "body": "x"},
    {"statusCode": None},
    {"statusCode": 1000},
    {"statusCode": 42},
    {"statusCode": True},
    {"statusCode": [200]},
    {"statusCode": 200, "headers": ["x"]},
    {"statusCode": 200, "headers": "x: y"},
    {"statusCode": 200, "headers": {"x-a": "1\r\nset-cookie: injected=1"}},
    {"statusCode": 200, "headers": {"bad name": "1"}},
    {"statusCode": 200, "headers": {"x-a": "\u20ac"}},
    {"statusCode": 200, "cookies": "a=1"},
    {"statusCode": 200, "isBase64Encoded": True, "body": "not base64!"},
])
def test_results_that_are_no_http_response(result: dict[str, Any]) -> None:
    with pytest.raises(MalformedResult):
        map_result(json.dumps(result).encode())


def test_the_function_does_not_frame_the_response() -> None:
    status, headers, body = map_result(json.dumps({"statusCode": "201", "body": "abc", "headers": {
        "Content-Length": "1", "Transfer-Encoding": "chunked", "X-Kept": "yes"}}).encode())
    assert status == 201 and body == b"abc"
    assert headers == [("x-kept", "yes"), ("content-type", "application/json")]
