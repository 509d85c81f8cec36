"""EC2's encoded authorization failure messages and sts:DecodeAuthorizationMessage, with boto3 and
the AWS CLI against a real ``minicloud up``: a refused EC2 call says why in a sealed token, which
only a principal of the same account holding sts:DecodeAuthorizationMessage can read."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.test_s3 import other_account_keys
from tests.support.aws import code
from tests.support.server import Keys, MinicloudServer

TOKEN = re.compile(r"Encoded authorization failure message: ([A-Za-z0-9_-]+)$")


def _user(server: MinicloudServer, statements: list[dict[str, Any]]) -> tuple[str, Keys]:
    iam = server.client("iam")
    name = f"decode-{uuid.uuid4().hex[:8]}"
    arn = iam.create_user(UserName=name)["User"]["Arn"]
    if statements:
        iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": statements}))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return arn, Keys(key["AccessKeyId"], key["SecretAccessKey"])


def _refusal(server: MinicloudServer, keys: Keys) -> str:
    """The token of an EC2 refusal (CreateVpc without permission)."""
    with pytest.raises(ClientError) as refused:
        server.client("ec2", keys=keys).create_vpc(CidrBlock="10.42.0.0/16")
    assert code(refused) == "UnauthorizedOperation"
    message = str(refused.value.response["Error"]["Message"])
    assert message.startswith("You are not authorized to perform this operation.")
    found = TOKEN.search(message)
    assert found is not None, message
    return found.group(1)


def test_a_refusal_decodes_to_its_principal_action_resource_and_conditions(server: MinicloudServer) -> None:
    arn, keys = _user(server, [{"Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*"}])
    token = _refusal(server, keys)
    decoded = json.loads(server.client("sts").decode_authorization_message(EncodedMessage=token)["DecodedMessage"])
    assert decoded["allowed"] is False and decoded["explicitDeny"] is False
    context = decoded["context"]
    assert context["principal"]["arn"] == arn and context["principal"]["id"].startswith("AIDA")
    assert context["action"] == "ec2:CreateVpc"
    assert re.fullmatch(r"arn:aws:ec2:us-east-1:\d{12}:vpc/\*", context["resource"]), context["resource"]
    conditions = {item["key"]: [v["value"] for v in item["values"]["items"]] for item in context["conditions"]["items"]}
    assert conditions["aws:username"] == [arn.rsplit("/", 1)[1]]
    assert conditions["aws:SecureTransport"] == ["false"]


def test_an_explicit_deny_says_so(server: MinicloudServer) -> None:
    _, keys = _user(server, [{"Effect": "Allow", "Action": "ec2:*", "Resource": "*"},
                             {"Effect": "Deny", "Action": "ec2:CreateVpc", "Resource": "*"}])
    token = _refusal(server, keys)
    decoded = json.loads(server.client("sts").decode_authorization_message(EncodedMessage=token)["DecodedMessage"])
    assert decoded["explicitDeny"] is True


def test_decoding_needs_the_permission_and_the_same_account(server: MinicloudServer) -> None:
    _, keys = _user(server, [])
    token = _refusal(server, keys)
    with pytest.raises(ClientError) as denied:  # the refused user itself may not read it
        server.client("sts", keys=keys).decode_authorization_message(EncodedMessage=token)
    assert code(denied) == "AccessDenied"
    _, reader = _user(server, [{"Effect": "Allow", "Action": "sts:DecodeAuthorizationMessage", "Resource": "*"}])
    assert "ec2:CreateVpc" in server.client("sts", keys=reader).decode_authorization_message(
        EncodedMessage=token)["DecodedMessage"]
    other = server.client("sts", keys=other_account_keys(server))
    for wrong in (token, token[:-4] + "AAAA", "not-a-message"):
        with pytest.raises(ClientError) as invalid:
            other.decode_authorization_message(EncodedMessage=wrong)
        assert (code(invalid), invalid.value.response["ResponseMetadata"]["HTTPStatusCode"]) == (
            "InvalidAuthorizationMessageException", 400)


def test_the_aws_cli_decodes_it(server: MinicloudServer) -> None:
    _, keys = _user(server, [])
    token = _refusal(server, keys)
    done = server.aws("sts", "decode-authorization-message", "--encoded-message", token)
    assert json.loads(json.loads(done.stdout)["DecodedMessage"])["context"]["action"] == "ec2:CreateVpc"
