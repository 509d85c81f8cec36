"""Round trips through botocore's client side and our server side, for the protocol tests."""

from __future__ import annotations

import io
from typing import Any

from botocore.model import OperationModel, ServiceModel

from minicloud.aws.protocol.models import load_service_model, service_protocols
from minicloud.aws.protocol.parsers import create_parser
from minicloud.aws.protocol.serializers import create_serializer
from tests.unit.aws.protocol.wire import client_parse, client_request

SERVICES = ["iam", "sts", "organizations", "s3", "ec2", "lambda", "ecr", "logs", "elbv2",
            "autoscaling", "cloudwatch", "rds"]

# Headers the HTTP layer adds on its own: a member bound to one of them may appear in the parse
# although the caller did not set it.
_TRANSPORT_HEADERS = {"content-length", "content-type"}


def protocols_of(service: str) -> tuple[str, ...]:
    return service_protocols(load_service_model(service))


def event_stream_free(operation: OperationModel, direction: str) -> bool:
    if direction == "in":
        return not operation.has_event_stream_input
    return not operation.has_event_stream_output


def _drop_transport_members(shape: Any, parsed: dict[str, Any], expected: dict[str, Any]) -> None:
    if shape is None:
        return
    for name, member in shape.members.items():
        ser = member.serialization
        if (ser.get("location") == "header" and str(ser.get("name", "")).lower() in _TRANSPORT_HEADERS
                and name not in expected):
            parsed.pop(name, None)


def input_roundtrip(model: ServiceModel, operation: OperationModel, params: dict[str, Any],
                    protocol: str) -> tuple[str, dict[str, Any]]:
    request = client_request(operation, params, protocol)
    parsed_op, parsed = create_parser(model, protocol).parse(request)
    shape = operation.input_shape
    _drop_transport_members(shape, parsed, params)
    payload = shape.serialization.get("payload") if shape is not None else None
    if payload and payload not in params and parsed.get(payload) == {}:
        del parsed[payload]  # botocore sends "{}" for an absent rest-json payload structure
    return parsed_op.name, parsed


def output_roundtrip(model: ServiceModel, operation: OperationModel, result: dict[str, Any],
                     protocol: str) -> tuple[int, dict[str, Any], dict[str, Any]]:
    response = create_serializer(model, protocol).serialize_result(operation, result, "req-42")
    parsed = client_parse(response, operation, protocol)
    metadata = parsed.pop("ResponseMetadata", {})
    shape = operation.output_shape
    if shape is not None:
        payload = shape.serialization.get("payload")
        if payload and shape.members[payload].type_name in ("blob", "string") and payload in parsed:
            value = parsed[payload]
            if isinstance(value, io.IOBase) or hasattr(value, "read"):
                value = value.read()
            original = result.get(payload)
            if isinstance(original, bytes) and isinstance(value, str):
                value = value.encode("utf-8")
            elif isinstance(original, str) and isinstance(value, bytes):
                value = value.decode("utf-8")
            parsed[payload] = value
            if not value and payload not in result:
                del parsed[payload]  # botocore always hands over the (empty) stream
        if payload and payload not in result and parsed.get(payload) == {}:
            del parsed[payload]  # and parses an empty body into an empty payload structure
        for name, member in shape.members.items():
            location = member.serialization.get("location")
            if name not in result and ((location == "headers" and parsed.get(name) == {})
                                       or location == "statusCode"):
                parsed.pop(name, None)  # and always a header map and the status code
        _drop_transport_members(shape, parsed, result)
    return response.status, parsed, metadata
