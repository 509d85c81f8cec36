"""Lambda's security boundaries with boto3 against a real minicloud (regression tests of the
security review): who may hand a role to a function (iam:PassRole), and who may run a container
image of another account's repository."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration import test_lambda as shared
from tests.integration.test_ec2_images import push_busybox
from tests.integration.test_ec2_security import other_account
from tests.integration.test_lambda import TRUST, Lambda, zipped
from tests.support.server import Keys

pytestmark = shared.pytestmark
lambda_server = shared.lambda_server
lam = shared.lam

CODE = "def handler(event, context):\n    return 'ok'\n"
LAMBDA_ONLY = ["lambda:CreateFunction", "lambda:GetFunction", "lambda:UpdateFunctionConfiguration",
               "lambda:DeleteFunction"]


def _user(lam: Lambda, name: str, statements: list[dict[str, Any]]) -> Keys:
    iam = lam.server.client("iam")
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": statements}))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return Keys(key["AccessKeyId"], key["SecretAccessKey"])


def _admin_role(lam: Lambda, name: str) -> str:
    iam = lam.server.client("iam")
    arn: str = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
    iam.attach_role_policy(RoleName=name, PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    return arn


def _set_policy(lam: Lambda, user: str, statements: list[dict[str, Any]]) -> None:
    lam.server.client("iam").put_user_policy(UserName=user, PolicyName="p", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": statements}))


def test_create_function_needs_pass_role_for_lambda(lam: Lambda) -> None:
    """A user allowed only Lambda's actions cannot give a function an administrator role (and so
    create IAM users through it): CreateFunction asks for iam:PassRole with iam:PassedToService."""
    suffix = uuid.uuid4().hex[:8]
    role = _admin_role(lam, f"admin-{suffix}")
    user = f"dev-{suffix}"
    lambda_only = {"Effect": "Allow", "Action": LAMBDA_ONLY, "Resource": "*"}
    client = lam.server.client("lambda", keys=_user(lam, user, [lambda_only]))
    name = f"esc-{suffix}"
    create = {"FunctionName": name, "Runtime": "python3.11", "Role": role, "Handler": "app.handler",
              "Code": {"ZipFile": zipped({"app.py": CODE})}}

    with pytest.raises(ClientError) as denied:
        client.create_function(**create)
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert "iam:PassRole" in denied.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as missing:
        lam.client.get_function(FunctionName=name)
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"

    # PassRole granted only for EC2 does not let the role go to Lambda.
    def pass_role_to(service: str) -> dict[str, Any]:
        return {"Effect": "Allow", "Action": "iam:PassRole", "Resource": role,
                "Condition": {"StringEquals": {"iam:PassedToService": service}}}

    _set_policy(lam, user, [lambda_only, pass_role_to("ec2.amazonaws.com")])
    with pytest.raises(ClientError) as wrong_service:
        client.create_function(**create)
    assert wrong_service.value.response["Error"]["Code"] == "AccessDeniedException"

    _set_policy(lam, user, [lambda_only, pass_role_to("lambda.amazonaws.com")])
    assert client.create_function(**create)["Role"] == role
    try:
        # Switching the function to a role the user may not pass is refused the same way.
        other = _admin_role(lam, f"other-{suffix}")
        client.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 300})
        with pytest.raises(ClientError) as update_denied:
            client.update_function_configuration(FunctionName=name, Role=other)
        assert update_denied.value.response["Error"]["Code"] == "AccessDeniedException"
        assert lam.client.get_function(FunctionName=name)["Configuration"]["Role"] == role
    finally:
        lam.client.delete_function(FunctionName=name)


def test_another_accounts_private_image_needs_its_repository_policy(lam: Lambda, tmp_path: Path) -> None:
    """Lambda pulls a function's image with minicloud's own credentials: another account's
    administrator gets a function of a private image only while the repository's policy lets that
    account pull it (CreateFunction and UpdateFunctionCode ask, as ECR would decide a pull)."""
    server = lam.server
    suffix = uuid.uuid4().hex[:8]
    repository = f"team-a/private-{suffix}"
    push_busybox(server, tmp_path, repository, "latest")
    uri = f"{server.account_id}.dkr.ecr.us-east-1.amazonaws.com/{repository}:latest"
    other_id, other = other_account(server)
    role = server.client("iam", keys=other).create_role(
        RoleName=f"fn-{suffix}", AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
    client = server.client("lambda", keys=other, read_timeout=120)
    name = f"steal-{suffix}"
    create = {"FunctionName": name, "PackageType": "Image", "Role": role, "Code": {"ImageUri": uri},
              "ImageConfig": {"EntryPoint": ["/bin/sh", "-c", "echo ran; exit 3"]}}

    with pytest.raises(ClientError) as denied:
        client.create_function(**create)
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "ecr:" in denied.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as missing:
        client.get_function(FunctionName=name)
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"

    ecr = server.client("ecr")
    ecr.set_repository_policy(repositoryName=repository, policyText=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Sid": "pull", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{other_id}:root"},
            "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]}]}))
    assert client.create_function(**create)["PackageType"] == "Image"
    try:
        client.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 300})
        ecr.delete_repository_policy(repositoryName=repository)
        with pytest.raises(ClientError) as update_denied:
            client.update_function_code(FunctionName=name, ImageUri=uri)
        assert update_denied.value.response["Error"]["Code"] == "AccessDeniedException"
    finally:
        client.delete_function(FunctionName=name)


def _get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_public_url_needs_the_function_policy_to_allow_everyone(lam: Lambda) -> None:
    """An AuthType NONE URL answers 403 {"Message":"Forbidden"} until the function's policy allows
    lambda:InvokeFunctionUrl to "*" with lambda:FunctionUrlAuthType NONE, as on AWS."""
    name = lam.create(CODE)
    url = lam.client.create_function_url_config(FunctionName=name, AuthType="NONE")["FunctionUrl"]
    forbidden = (403, {"Message": "Forbidden"})
    assert _get(url) == forbidden
    lam.client.add_permission(FunctionName=name, StatementId="iam-only", Action="lambda:InvokeFunctionUrl",
                              Principal="*", FunctionUrlAuthType="AWS_IAM")
    assert _get(url) == forbidden  # the condition does not match an unsigned NONE request
    lam.client.add_permission(FunctionName=name, StatementId="account", Action="lambda:InvokeFunctionUrl",
                              Principal=lam.server.account_id, FunctionUrlAuthType="NONE")
    assert _get(url) == forbidden  # the account is not everyone
    lam.client.add_permission(FunctionName=name, StatementId="public", Action="lambda:InvokeFunctionUrl",
                              Principal="*", FunctionUrlAuthType="NONE")
    assert _get(url) == (200, "ok")
    lam.client.remove_permission(FunctionName=name, StatementId="public")
    assert _get(url) == forbidden
    lam.client.delete_function(FunctionName=name)


BAD_RESULTS = """
import base64
def handler(event, context):
    path = event["rawPath"]
    if path == "/status":
        return {"statusCode": "abc", "body": "x"}
    if path == "/headers":
        return {"statusCode": 200, "headers": ["x"], "body": "x"}
    if path == "/split":
        return {"statusCode": 200, "headers": {"x-a": "1\\r\\nset-cookie: injected=1"}, "body": "x"}
    body = event.get("body") or ""
    raw = base64.b64decode(body) if event["isBase64Encoded"] else body.encode()
    return {"statusCode": 200, "body": raw.hex()}
"""


def test_public_url_bad_input_and_bad_results(lam: Lambda) -> None:
    """A text body that is not UTF-8 reaches the function base64-encoded; a result that is no HTTP
    response (non-numeric statusCode, headers not an object, a header value with CR LF) is a 502
    {"Message":"Internal Server Error"}, as Lambda answers. Each used to be a 500."""
    name = lam.create(BAD_RESULTS)
    url = lam.client.create_function_url_config(FunctionName=name, AuthType="NONE")["FunctionUrl"]
    lam.client.add_permission(FunctionName=name, StatementId="public", Action="lambda:InvokeFunctionUrl",
                              Principal="*", FunctionUrlAuthType="NONE")
    request = urllib.request.Request(url + "echo", data=b"\xff\xfe", method="POST",
                                     headers={"content-type": "text/plain"})
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.status == 200 and response.read() == b"fffe"
    for path in ("status", "headers", "split"):
        assert _get(url + path) == (502, {"Message": "Internal Server Error"}), path
    lam.client.delete_function(FunctionName=name)


def test_a_response_over_the_runtime_apis_limit_is_reported_as_too_large(lam: Lambda) -> None:
    """A result far over 6 MB (past the Runtime API's read limit) is Function.ResponseSizeTooLarge, and
    the environment keeps serving: the runtime used to lose its connection and crash (Runtime.ExitError)."""
    name = lam.create("import os\ndef handler(e, c):\n    return 'x' * e['n'] if e['n'] else os.getpid()\n",
                      Timeout=30)
    _, pid = lam.invoke(name, {"n": 0})
    for size in (6 * 1024 * 1024 + 100, 8 * 1024 * 1024):
        response, error = lam.invoke(name, {"n": size})
        assert response["FunctionError"] == "Unhandled", error
        assert error["errorType"] == "Function.ResponseSizeTooLarge" and "6291456 bytes" in error["errorMessage"]
    response, again = lam.invoke(name, {"n": 0})
    assert "FunctionError" not in response and again == pid  # the same runtime process
    lam.client.delete_function(FunctionName=name)


def test_functions_run_as_an_unprivileged_user(lam: Lambda) -> None:
    """As on AWS (sbx_user1051, uid 993): not root in the container; /tmp is writable, the code is not."""
    name = lam.create("""
import os
def handler(event, context):
    with open("/tmp/scratch", "w") as f:
        f.write("ok")
    return {"uid": os.getuid(), "gid": os.getgid(), "euid": os.geteuid(),
            "task_writable": os.access("/var/task", os.W_OK), "etc_writable": os.access("/etc", os.W_OK)}
""")
    _, result = lam.invoke(name, {})
    assert result == {"uid": 993, "gid": 990, "euid": 993, "task_writable": False, "etc_writable": False}
    lam.client.delete_function(FunctionName=name)
