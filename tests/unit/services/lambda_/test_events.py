"""Whether a function's resource policy lets S3 deliver a bucket's events to it."""

from __future__ import annotations

from typing import Any

from minicloud.services.lambda_.events import s3_may_invoke
from minicloud.services.lambda_.permissions import statement_for

ARN = "arn:aws:lambda:us-east-1:111122223333:function:f"


def policy(**params: Any) -> dict[str, Any]:
    base = {"StatementId": "s", "Action": "lambda:InvokeFunction", "Principal": "s3.amazonaws.com"}
    return {"Statement": [statement_for({**base, **params}, ARN)]}


def test_s3_allowed_with_matching_conditions() -> None:
    assert s3_may_invoke(policy(SourceArn="arn:aws:s3:::photos", SourceAccount="111122223333"), "photos",
                         "111122223333", None, ARN)
    assert s3_may_invoke(policy(SourceArn="arn:aws:s3:::pho*"), "photos", "111122223333", None, ARN)


def test_s3_refused_otherwise() -> None:
    assert not s3_may_invoke(None, "photos", "111122223333", None, ARN)
    assert not s3_may_invoke(policy(SourceArn="arn:aws:s3:::other"), "photos", "111122223333", None, ARN)
    assert not s3_may_invoke(policy(SourceAccount="999999999999"), "photos", "111122223333", None, ARN)
    assert not s3_may_invoke(policy(Principal="sns.amazonaws.com"), "photos", "111122223333", None, ARN)
    assert not s3_may_invoke(policy(Action="lambda:GetFunction"), "photos", "111122223333", None, ARN)


def test_statements_as_lambda_writes_them() -> None:
    statement = statement_for({"StatementId": "x", "Action": "lambda:InvokeFunction", "Principal": "123456789012",
                               "SourceArn": "arn:aws:s3:::b"}, ARN)
    assert statement["Principal"] == {"AWS": "arn:aws:iam::123456789012:root"}
    assert statement["Condition"] == {"ArnLike": {"AWS:SourceArn": "arn:aws:s3:::b"}}
    assert statement["Resource"] == ARN and statement["Effect"] == "Allow"
