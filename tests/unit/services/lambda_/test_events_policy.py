"""S3 -> Lambda delivery decided by IAM's policy evaluator (regression tests of the security review:
the hand-written check read every condition operator as equality and ignored Deny statements)."""

from __future__ import annotations

from typing import Any

from minicloud.services.lambda_.events import s3_may_invoke

ARN = "arn:aws:lambda:us-east-1:111122223333:function:f"
ACCOUNT = "111122223333"


def _allow(resource: str = ARN, **condition: Any) -> dict[str, Any]:
    statement: dict[str, Any] = {"Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"},
                                 "Action": "lambda:InvokeFunction", "Resource": resource}
    if condition:
        statement["Condition"] = condition
    return statement


def _policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def test_an_explicit_deny_wins() -> None:
    deny = {**_allow(), "Effect": "Deny", "Condition": {"ArnLike": {"aws:SourceArn": "arn:aws:s3:::secret-*"}}}
    assert s3_may_invoke(_policy(_allow(), deny), "photos", ACCOUNT, None, ARN)
    assert not s3_may_invoke(_policy(_allow(), deny), "secret-photos", ACCOUNT, None, ARN)


def test_condition_operators_mean_what_they_say() -> None:
    not_equals = _allow(StringNotEquals={"aws:SourceAccount": ACCOUNT})
    assert not s3_may_invoke(_policy(not_equals), "photos", ACCOUNT, None, ARN)
    assert s3_may_invoke(_policy(not_equals), "photos", "999988887777", None, ARN)
    not_like = _allow(ArnNotLike={"aws:SourceArn": "arn:aws:s3:::pho*"})
    assert not s3_may_invoke(_policy(not_like), "photos", ACCOUNT, None, ARN)
    unknown_key = _allow(StringEquals={"aws:SourceVpc": "vpc-1"})
    assert not s3_may_invoke(_policy(unknown_key), "photos", ACCOUNT, None, ARN)


def test_qualified_resources() -> None:
    prod_only = _allow(resource=f"{ARN}:prod")
    assert s3_may_invoke(_policy(prod_only), "photos", ACCOUNT, "prod", ARN)
    assert not s3_may_invoke(_policy(prod_only), "photos", ACCOUNT, "dev", ARN)
    assert not s3_may_invoke(_policy(prod_only), "photos", ACCOUNT, None, ARN)
    assert s3_may_invoke(_policy(_allow()), "photos", ACCOUNT, "dev", ARN)  # the function's own covers its aliases
    other_function = _allow(resource="arn:aws:lambda:us-east-1:111122223333:function:g")
    assert not s3_may_invoke(_policy(other_function), "photos", ACCOUNT, None, ARN)
