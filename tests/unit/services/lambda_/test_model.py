"""FunctionName forms (name, ARN, partial ARN, with qualifiers) and the settings' environment overrides."""

from __future__ import annotations

import pytest

from minicloud.services.lambda_.errors import InvalidParameterValueException
from minicloud.services.lambda_.model import FunctionRef, function_arn, parse_function_name
from minicloud.services.lambda_.settings import LambdaSettings


@pytest.mark.parametrize(("raw", "qualifier", "expected"), [
    ("my-fn", None, FunctionRef("my-fn", None, None, None)),
    ("my-fn:live", None, FunctionRef("my-fn", "live", None, None)),
    ("my-fn", "3", FunctionRef("my-fn", "3", None, None)),
    ("arn:aws:lambda:eu-west-1:123456789012:function:my-fn", None,
     FunctionRef("my-fn", None, "123456789012", "eu-west-1")),
    ("arn:aws:lambda:us-east-1:123456789012:function:my-fn:$LATEST", None,
     FunctionRef("my-fn", "$LATEST", "123456789012", "us-east-1")),
    ("123456789012:function:my-fn:7", None, FunctionRef("my-fn", "7", "123456789012", None)),
])
def test_function_names(raw: str, qualifier: str | None, expected: FunctionRef) -> None:
    assert parse_function_name(raw, qualifier) == expected


@pytest.mark.parametrize("raw", ["", "bad name", "x" * 65, "fn:bad qualifier"])
def test_bad_function_names(raw: str) -> None:
    with pytest.raises(InvalidParameterValueException):
        parse_function_name(raw)


def test_a_qualifier_must_agree_with_the_name() -> None:
    with pytest.raises(InvalidParameterValueException, match="does not match"):
        parse_function_name("fn:1", "2")


def test_arns() -> None:
    assert function_arn("us-east-1", "123456789012", "f") == "arn:aws:lambda:us-east-1:123456789012:function:f"
    assert function_arn("us-east-1", "123456789012", "f", "live").endswith(":function:f:live")


def test_settings_from_the_environment() -> None:
    assert LambdaSettings.from_environ({}) == LambdaSettings()
    settings = LambdaSettings.from_environ({"MINICLOUD_LAMBDA_IDLE_TIMEOUT": "30",
                                            "MINICLOUD_LAMBDA_RETRY_DELAYS": "1,2",
                                            "MINICLOUD_LAMBDA_ACCOUNT_CONCURRENCY": "8"})
    assert settings.idle_timeout == 30 and settings.retry_delays == (1.0, 2.0) and settings.account_concurrency == 8
