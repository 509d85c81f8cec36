"""IAM enforcement end to end: an IAM user's own keys, signed by boto3 and the AWS CLI, against a
real ``minicloud up``. Every change takes effect on the next request (no restart)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.server import REPO, Keys, MinicloudServer


def doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(action: str | list[str], resource: str = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def error_of(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, int, str]:
    response: Any = excinfo.value.response
    return (
        response["Error"]["Code"],
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Message"],
    )


@dataclass
class User:
    name: str
    arn: str
    keys: Keys
    client: Any  # boto3 IAM client signed with the user's own key


@pytest.fixture
def admin(server: MinicloudServer) -> Any:
    return server.client("iam")


@pytest.fixture
def user(server: MinicloudServer, admin: Any) -> Iterator[User]:
    """A fresh IAM user with one access key and no policy at all."""
    name = f"enforced-{uuid.uuid4().hex[:8]}"
    arn = admin.create_user(UserName=name)["User"]["Arn"]
    key = admin.create_access_key(UserName=name)["AccessKey"]
    keys = Keys(key["AccessKeyId"], key["SecretAccessKey"])
    yield User(name, arn, keys, server.client("iam", keys=keys))
    _delete_user(admin, name)


def _delete_user(admin: Any, name: str) -> None:
    try:
        for key in admin.list_access_keys(UserName=name)["AccessKeyMetadata"]:
            admin.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
        for policy_name in admin.list_user_policies(UserName=name)["PolicyNames"]:
            admin.delete_user_policy(UserName=name, PolicyName=policy_name)
        for attached in admin.list_attached_user_policies(UserName=name)["AttachedPolicies"]:
            admin.detach_user_policy(UserName=name, PolicyArn=attached["PolicyArn"])
        for group in admin.list_groups_for_user(UserName=name)["Groups"]:
            admin.remove_user_from_group(GroupName=group["GroupName"], UserName=name)
        admin.delete_user(UserName=name)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "NoSuchEntity":
            raise


def test_a_user_without_policies_is_denied_until_a_policy_allows(
    server: MinicloudServer, admin: Any, user: User
) -> None:
    with pytest.raises(ClientError) as denied:
        user.client.list_users()
    assert error_of(denied) == (
        "AccessDenied",
        403,
        f"User: {user.arn} is not authorized to perform: iam:ListUsers on resource: "
        f"arn:aws:iam::{server.account_id}:user/ because no identity-based policy allows the "
        "iam:ListUsers action",
    )
    cli = server.aws("iam", "list-users", keys=user.keys, check=False)
    assert cli.returncode != 0 and "AccessDenied" in cli.stderr and user.arn in cli.stderr
    admin.put_user_policy(UserName=user.name, PolicyName="list", PolicyDocument=doc(allow("iam:ListUsers")))
    assert user.name in [u["UserName"] for u in user.client.list_users()["Users"]]  # no restart, no wait
    assert user.name in server.aws("iam", "list-users", keys=user.keys).stdout
    admin.delete_user_policy(UserName=user.name, PolicyName="list")
    with pytest.raises(ClientError):
        user.client.list_users()


def test_an_explicit_deny_beats_an_allow(admin: Any, user: User) -> None:
    admin.attach_user_policy(UserName=user.name, PolicyArn="arn:aws:iam::aws:policy/IAMReadOnlyAccess")
    user.client.list_roles()
    admin.put_user_policy(
        UserName=user.name,
        PolicyName="no-roles",
        PolicyDocument=doc({"Effect": "Deny", "Action": "iam:ListRoles", "Resource": "*"}),
    )
    with pytest.raises(ClientError) as denied:
        user.client.list_roles()
    code, status, message = error_of(denied)
    assert (code, status) == ("AccessDenied", 403)
    assert message.endswith("with an explicit deny in an identity-based policy")
    user.client.list_users()  # the rest of IAMReadOnlyAccess still applies


def test_group_policies_apply(admin: Any, user: User) -> None:
    group = f"readers-{uuid.uuid4().hex[:8]}"
    admin.create_group(GroupName=group)
    admin.put_group_policy(
        GroupName=group, PolicyName="summary", PolicyDocument=doc(allow("iam:GetAccountSummary"))
    )
    with pytest.raises(ClientError):
        user.client.get_account_summary()
    admin.add_user_to_group(GroupName=group, UserName=user.name)
    assert user.client.get_account_summary()["SummaryMap"]["UsersQuota"] == 5000
    admin.remove_user_from_group(GroupName=group, UserName=user.name)
    with pytest.raises(ClientError):
        user.client.get_account_summary()
    admin.delete_group_policy(GroupName=group, PolicyName="summary")
    admin.delete_group(GroupName=group)


def test_conditions_on_source_ip_and_username(admin: Any, user: User) -> None:
    admin.put_user_policy(
        UserName=user.name,
        PolicyName="cond",
        PolicyDocument=doc(
            allow("iam:ListGroups", Condition={"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}),
            allow("iam:ListRoles", Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}),
            allow(["iam:GetUser", "iam:*AccessKey*"], "arn:aws:iam::*:user/${aws:username}"),
        ),
    )
    user.client.list_groups()  # the test talks to 127.0.0.1
    with pytest.raises(ClientError):
        user.client.list_roles()

    def forged_source(request: Any, **_: Any) -> None:  # a client cannot choose its source address
        request.headers["X-Forwarded-For"] = "10.1.2.3"
        request.headers["Forwarded"] = "for=10.1.2.3"

    user.client.meta.events.register_first("before-sign.iam.ListRoles", forged_source)
    with pytest.raises(ClientError):
        user.client.list_roles()
    user.client.meta.events.unregister("before-sign.iam.ListRoles", forged_source)
    assert user.client.get_user()["User"]["Arn"] == user.arn  # GetUser without a name: the caller
    keys = user.client.list_access_keys()["AccessKeyMetadata"]  # the caller's own keys
    assert [k["AccessKeyId"] for k in keys] == [user.keys.access_key_id]
    with pytest.raises(ClientError) as other:
        user.client.get_user(UserName="someone-else")
    assert error_of(other)[:2] == ("AccessDenied", 403)


def test_deactivated_and_deleted_keys_are_refused(server: MinicloudServer, admin: Any, user: User) -> None:
    admin.put_user_policy(UserName=user.name, PolicyName="self", PolicyDocument=doc(allow("iam:GetUser")))
    user.client.get_user()
    admin.update_access_key(UserName=user.name, AccessKeyId=user.keys.access_key_id, Status="Inactive")
    with pytest.raises(ClientError) as inactive:
        user.client.get_user()
    assert error_of(inactive) == (
        "InvalidClientTokenId",
        403,
        "The security token included in the request is invalid.",
    )
    cli = server.aws("iam", "get-user", keys=user.keys, check=False)
    assert "InvalidClientTokenId" in cli.stderr
    admin.update_access_key(UserName=user.name, AccessKeyId=user.keys.access_key_id, Status="Active")
    user.client.get_user()
    admin.delete_access_key(UserName=user.name, AccessKeyId=user.keys.access_key_id)
    with pytest.raises(ClientError) as deleted:
        user.client.get_user()
    assert error_of(deleted)[:2] == ("InvalidClientTokenId", 403)


def test_keys_of_a_deleted_user_vanish(server: MinicloudServer, admin: Any) -> None:
    name = f"gone-{uuid.uuid4().hex[:8]}"
    admin.create_user(UserName=name)
    admin.attach_user_policy(UserName=name, PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    key = admin.create_access_key(UserName=name)["AccessKey"]
    client = server.client("iam", keys=Keys(key["AccessKeyId"], key["SecretAccessKey"]))
    client.get_user()
    _delete_user(admin, name)
    with pytest.raises(ClientError) as refused:
        client.get_user()
    assert error_of(refused)[:2] == ("InvalidClientTokenId", 403)


def test_access_key_last_used(server: MinicloudServer, admin: Any, user: User) -> None:
    admin.put_user_policy(UserName=user.name, PolicyName="self", PolicyDocument=doc(allow("iam:GetUser")))
    before = admin.get_access_key_last_used(AccessKeyId=user.keys.access_key_id)
    assert before["UserName"] == user.name
    assert before["AccessKeyLastUsed"]["ServiceName"] == "N/A"
    user.client.get_user()
    after = admin.get_access_key_last_used(AccessKeyId=user.keys.access_key_id)["AccessKeyLastUsed"]
    assert after["ServiceName"] == "iam" and after["Region"] == "us-east-1" and "LastUsedDate" in after


def test_change_password_needs_permission_and_the_old_password(admin: Any, user: User) -> None:
    admin.create_login_profile(UserName=user.name, Password="First-Passw0rd", PasswordResetRequired=True)
    with pytest.raises(ClientError) as denied:
        user.client.change_password(OldPassword="First-Passw0rd", NewPassword="Second-Passw0rd")
    assert error_of(denied)[:2] == ("AccessDenied", 403)
    admin.attach_user_policy(UserName=user.name, PolicyArn="arn:aws:iam::aws:policy/IAMFullAccess")
    with pytest.raises(ClientError):
        user.client.change_password(OldPassword="wrong", NewPassword="Second-Passw0rd")
    user.client.change_password(OldPassword="First-Passw0rd", NewPassword="Second-Passw0rd")
    assert admin.get_login_profile(UserName=user.name)["LoginProfile"]["PasswordResetRequired"] is False
    admin.delete_login_profile(UserName=user.name)


def test_a_permissions_boundary_caps_an_administrator(admin: Any, user: User) -> None:
    admin.attach_user_policy(UserName=user.name, PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    user.client.get_account_summary()
    admin.put_user_permissions_boundary(
        UserName=user.name, PermissionsBoundary="arn:aws:iam::aws:policy/PowerUserAccess"
    )
    with pytest.raises(ClientError) as capped:
        user.client.get_account_summary()  # PowerUserAccess excludes iam:*
    assert "because no permissions boundary allows the iam:GetAccountSummary action" in error_of(capped)[2]
    user.client.list_roles()  # PowerUserAccess does allow iam:ListRoles
    admin.delete_user_permissions_boundary(UserName=user.name)
    user.client.get_account_summary()


def _create_account(server: MinicloudServer, name: str) -> Keys:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "minicloud.cli",
            "accounts",
            "create",
            name,
            "--data-dir",
            str(server.data_dir),
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
        timeout=60,
    ).stdout
    found = dict(re.findall(r"^(access key|secret key):\s+(\S+)$", out, re.MULTILINE))
    return Keys(found["access key"], found["secret key"])


def test_another_account_cannot_see_or_touch_this_accounts_users(
    server: MinicloudServer, admin: Any, user: User
) -> None:
    other_keys = _create_account(server, f"tenant-{uuid.uuid4().hex[:6]}")
    other = server.client("iam", keys=other_keys)
    deadline = time.monotonic() + 30
    while True:  # the other process's new key is visible once its transaction is committed
        try:
            listed = other.list_users()["Users"]
            break
        except ClientError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    assert user.name not in [u["UserName"] for u in listed]
    with pytest.raises(ClientError) as get:
        other.get_user(UserName=user.name)
    assert error_of(get)[:2] == ("NoSuchEntity", 404)
    with pytest.raises(ClientError) as delete:
        other.delete_user(UserName=user.name)
    assert error_of(delete)[:2] == ("NoSuchEntity", 404)
    with pytest.raises(ClientError):
        other.attach_user_policy(UserName=user.name, PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    with pytest.raises(ClientError) as key:
        other.create_access_key(UserName=user.name)
    assert error_of(key)[:2] == ("NoSuchEntity", 404)
    # a user of the same name in the other account is a different user
    other_user = other.create_user(UserName=user.name)["User"]
    assert other_user["Arn"] != user.arn and admin.get_user(UserName=user.name)["User"]["Arn"] == user.arn
    other.delete_user(UserName=user.name)
    assert admin.get_user(UserName=user.name)["User"]["Arn"] == user.arn
