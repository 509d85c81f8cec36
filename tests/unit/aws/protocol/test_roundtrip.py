"""Property tests: every operation of the core services, both directions, against botocore.

Requests: parameters generated from the input shape are serialized by botocore's own client
serializer (as an SDK sends them) and must parse back, with our parser, to the same operation
and the same parameters. Responses: results generated from the output shape are serialized by
us and must parse back, with botocore's own response parser, to the same values.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minicloud.aws.protocol.models import load_service_model
from minicloud.aws.protocol.parsers import create_parser
from tests.unit.aws.protocol.roundtrip import (
    SERVICES,
    event_stream_free,
    input_roundtrip,
    output_roundtrip,
    protocols_of,
)
from tests.unit.aws.protocol.shapegen import operation_ctx, operation_strategy, sample

# Examples per operation, per protocol and direction: the query services the heaviest. The
# operations are tested in chunks, each its own hypothesis run, so that every operation gets its
# share (hypothesis favours the first elements of what it samples from).
PER_OPERATION = {"iam": 8, "sts": 30, "organizations": 8, "s3": 5, "ec2": 1.5, "lambda": 4,
                 "ecr": 4, "logs": 3, "elbv2": 5, "autoscaling": 4, "cloudwatch": 2, "rds": 2.5}
CHUNK = 10

CASES = [(service, protocol) for service in SERVICES for protocol in protocols_of(service)]
_SETTINGS = dict(deadline=None, database=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                        HealthCheck.filter_too_much])


def _operations(service: str, direction: str) -> list[Any]:
    model = load_service_model(service)
    shadowed = set(create_parser(model, "rest-xml").router.shadowed()) if model.protocol in (
        "rest-xml", "rest-json") and direction == "in" else set()
    ops = [model.operation_model(name) for name in sorted(model.operation_names)
           if name not in shadowed]  # wire-identical to another operation: see test_routing
    return [op for op in ops if event_stream_free(op, direction)]


def _check_input(service: str, protocol: str, operation: Any, params: dict[str, Any]) -> None:
    name, parsed = input_roundtrip(load_service_model(service), operation, params, protocol)
    assert name == operation.name
    assert parsed == params


def _check_output(service: str, protocol: str, operation: Any, result: dict[str, Any]) -> None:
    status, parsed, metadata = output_roundtrip(load_service_model(service), operation, result, protocol)
    assert status < 300
    if operation.output_shape is not None or protocol != "smithy-rpc-v2-cbor":
        assert metadata.get("RequestId") == "req-42"  # botocore's CBOR parser skips it without a shape
    assert parsed == result


@pytest.mark.parametrize(("service", "protocol"), CASES)
def test_every_operation_input_with_every_member(service: str, protocol: str) -> None:
    for operation in _operations(service, "in"):
        ctx = operation_ctx(operation, protocol, "in")
        params = sample(operation.input_shape, ctx) if operation.input_shape is not None else {}
        _check_input(service, protocol, operation, params)


@pytest.mark.parametrize(("service", "protocol"), CASES)
def test_every_operation_output_with_every_member(service: str, protocol: str) -> None:
    for operation in _operations(service, "out"):
        ctx = operation_ctx(operation, protocol, "out")
        result = sample(operation.output_shape, ctx) if operation.output_shape is not None else {}
        _check_output(service, protocol, operation, result)


def _chunks(direction: str) -> list[tuple[str, str, int]]:
    return [(service, protocol, start) for service, protocol in CASES
            for start in range(0, len(_operations(service, direction)), CHUNK)]


def _property(direction: str, service: str, protocol: str, start: int) -> None:
    operations = _operations(service, direction)[start:start + CHUNK]
    examples = max(10, math.ceil(PER_OPERATION[service] * len(operations)))

    @settings(max_examples=examples, **_SETTINGS)  # type: ignore[arg-type]
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        operation = data.draw(st.sampled_from(operations), label="operation")
        ctx = operation_ctx(operation, protocol, direction)
        value = data.draw(operation_strategy(operation, ctx), label="value")
        if direction == "in":
            _check_input(service, protocol, operation, value)
        else:
            _check_output(service, protocol, operation, value)

    run()


@pytest.mark.parametrize(("service", "protocol", "start"), _chunks("in"))
def test_requests_parse_back_to_what_the_sdk_sent(service: str, protocol: str, start: int) -> None:
    _property("in", service, protocol, start)


@pytest.mark.parametrize(("service", "protocol", "start"), _chunks("out"))
def test_responses_parse_in_botocore_to_what_we_sent(service: str, protocol: str, start: int) -> None:
    _property("out", service, protocol, start)
