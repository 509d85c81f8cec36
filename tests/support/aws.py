"""What the AWS error of a failed boto3 call says: its code and its HTTP status."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError


def code(err: pytest.ExceptionInfo[ClientError]) -> str:
    return str(err.value.response["Error"]["Code"])


def status(err: pytest.ExceptionInfo[ClientError]) -> int:
    return int(err.value.response["ResponseMetadata"]["HTTPStatusCode"])
