"""Parse + validate + serialize stay in the tens of microseconds for ordinary requests.

The bounds are ~10x what a quiet machine measures (see the report in the commit log), so that
a loaded CI machine does not fail them but an accidental O(model) step per request does."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from minicloud.aws.protocol.models import load_service_model
from minicloud.aws.protocol.parsers import create_parser
from minicloud.aws.protocol.serializers import create_serializer
from minicloud.aws.protocol.validate import validate
from tests.unit.aws.protocol.wire import client_request

WHEN = datetime(2026, 11, 29, 5, 33, 50, tzinfo=UTC)
USER = {"UserName": "bob", "Path": "/", "UserId": "AIDA1", "Arn": "arn:aws:iam::1:user/bob", "CreateDate": WHEN}

CASES: list[tuple[str, str, dict[str, Any], dict[str, Any], float]] = [
    ("iam", "ListUsers", {"MaxItems": 100}, {"Users": [USER], "IsTruncated": False}, 150.0),
    ("sts", "GetCallerIdentity", {}, {"UserId": "AIDA1", "Account": "1", "Arn": "arn:x"}, 100.0),
    ("logs", "PutLogEvents", {"logGroupName": "g", "logStreamName": "s",
                              "logEvents": [{"timestamp": 1, "message": "m"}]}, {}, 150.0),
    ("ec2", "DescribeInstances", {"InstanceIds": ["i-1"]}, {"Reservations": []}, 150.0),
    ("lambda", "GetFunction", {"FunctionName": "f"}, {"Configuration": {"FunctionName": "f"}}, 150.0),
]


def _per_call(fn: Callable[[], Any], rounds: int = 2000) -> float:
    fn()
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(rounds):
            fn()
        best = min(best, (time.perf_counter() - start) / rounds * 1e6)
    return best


@pytest.mark.parametrize(("service", "operation_name", "params", "result", "bound"), CASES)
def test_a_request_costs_tens_of_microseconds(service: str, operation_name: str, params: dict[str, Any],
                                              result: dict[str, Any], bound: float) -> None:
    model = load_service_model(service)
    operation = model.operation_model(operation_name)
    request = client_request(operation, params, model.protocol)
    parser = create_parser(model)
    serializer = create_serializer(model)

    def one() -> None:
        op, parsed = parser.parse(request)
        validate(op, parsed, model.protocol)
        serializer.serialize_result(op, result, "req")

    assert _per_call(one) < bound
