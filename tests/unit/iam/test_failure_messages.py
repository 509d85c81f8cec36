"""Encoded authorization failure messages: sealed to one account, readable back, for a week."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from minicloud.iam.failure_messages import VALID_SECONDS, FailureMessages, InvalidMessage, failure_document
from minicloud.iam.identity import Principal, PrincipalKind

USER = Principal(PrincipalKind.USER, "111122223333", "arn:aws:iam::111122223333:user/bob", "AIDAEXAMPLE", "bob")


def test_a_token_reads_back_as_aws_document(tmp_path: Path) -> None:
    messages = FailureMessages.load(tmp_path / "k")
    document = failure_document(USER, "ec2:CreateVpc", "arn:aws:ec2:us-east-1:111122223333:vpc/*",
                                {"aws:username": "bob", "aws:TagKeys": ["a", "b"]}, explicit_deny=True)
    token = messages.encode("111122223333", document, now=1000.0)
    decoded = json.loads(messages.decode("111122223333", token, now=1000.0 + VALID_SECONDS))
    assert decoded == document
    assert decoded["context"]["conditions"]["items"] == [
        {"key": "aws:TagKeys", "values": {"items": [{"value": "a"}, {"value": "b"}]}},
        {"key": "aws:username", "values": {"items": [{"value": "bob"}]}}]
    assert FailureMessages.load(tmp_path / "k").decode("111122223333", token, now=1000.0)  # (the same key file)


@pytest.mark.parametrize("case", ["other account", "expired", "tampered", "garbage", "other key"])
def test_what_is_not_readable(tmp_path: Path, case: str) -> None:
    messages = FailureMessages.load(tmp_path / "k")
    token = messages.encode("111122223333", {"allowed": False}, now=1000.0)
    account, now = "111122223333", 1000.0
    if case == "other account":
        account = "444455556666"
    elif case == "expired":
        now += VALID_SECONDS + 1
    elif case == "tampered":
        token = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    elif case == "garbage":
        token = "not a token!"
    else:
        messages = FailureMessages.load(tmp_path / "other")
    with pytest.raises(InvalidMessage):
        messages.decode(account, token, now=now)
