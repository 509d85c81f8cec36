"""What the AWS error of a failed boto3 call says (its code and its HTTP status), and a new bucket."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError


def code(err: pytest.ExceptionInfo[ClientError]) -> str:
    return str(err.value.response["Error"]["Code"])


def status(err: pytest.ExceptionInfo[ClientError]) -> int:
    return int(err.value.response["ResponseMetadata"]["HTTPStatusCode"])


def new_bucket(s3: Any, stem: str) -> str:
    """A new bucket named ``<stem>-<random>``, created with the client ``s3``."""
    name = f"{stem}-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name)
    return name
