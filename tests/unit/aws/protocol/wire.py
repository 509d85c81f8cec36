"""Glue between botocore's client side and our server side, for the protocol tests.

``client_request`` serializes parameters exactly as an SDK would send them (botocore's own
serializer and request preparation) and returns the ``AwsRequest`` our server would build;
``client_parse`` reads our ``AwsResponse`` with botocore's own response parser.
"""

from __future__ import annotations

import io
import types
from typing import Any
from urllib.parse import urlsplit

import botocore.handlers
import botocore.parsers
import botocore.serialize
from botocore.awsrequest import HeadersDict, create_request_object, prepare_request_dict
from botocore.model import OperationModel
from botocore.response import StreamingBody

from minicloud.aws.request import AwsRequest, AwsResponse, Headers

ENDPOINT = "http://127.0.0.1:4566"


def client_request(operation: OperationModel, params: dict[str, Any], protocol: str) -> AwsRequest:
    serializer = botocore.serialize.create_serializer(protocol, include_validation=False)
    request_dict = serializer.serialize_to_request(params, operation)
    prepare_request_dict(request_dict, ENDPOINT)
    prepared = create_request_object(request_dict).prepare()
    url = urlsplit(prepared.url)
    body = prepared.body
    if body is None:
        body = b""
    elif isinstance(body, str):
        body = body.encode("utf-8")
    elif not isinstance(body, bytes):
        body = body.read()
    headers = Headers((k, v.decode("latin-1") if isinstance(v, bytes) else str(v))
                      for k, v in prepared.headers.items())
    return AwsRequest(method=prepared.method, path=url.path or "/", query=url.query,
                      headers=headers, body=body)


def client_parse(response: AwsResponse, operation: OperationModel | None, protocol: str,
                 shape: Any = None) -> dict[str, Any]:
    parser = botocore.parsers.create_parser(protocol)
    headers: dict[str, str] = {}
    for key, value in response.headers:
        headers[key] = value
    body: Any = response.body
    if operation is not None and operation.has_streaming_output and response.status < 300:
        body = StreamingBody(io.BytesIO(body), len(body))  # as botocore's endpoint hands it over
    wire = {"status_code": response.status, "headers": HeadersDict(headers), "body": body,
            "context": {"operation_name": operation.name if operation else None}}
    if shape is None and operation is not None:
        shape = operation.output_shape
    parsed: dict[str, Any] = parser.parse(wire, shape)
    if operation is not None and operation.name == "GetBucketLocation" and response.status < 300:
        # the S3 client's own handler for this one document the model cannot describe
        http = types.SimpleNamespace(raw=True, content=response.body)
        botocore.handlers.parse_get_bucket_location(parsed, http)
        if parsed["LocationConstraint"] is None:
            del parsed["LocationConstraint"]
    return parsed
