"""Organizations: accounts created from the management account, isolated from each other."""

from __future__ import annotations

import json
import uuid

import pytest
from botocore.exceptions import ClientError

from tests.support.server import Keys, MinicloudServer


def test_create_describe_and_list_accounts(server: MinicloudServer) -> None:
    org = server.client("organizations")
    email = f"team-{uuid.uuid4().hex[:8]}@example.com"
    status = org.create_account(Email=email, AccountName="Team A")["CreateAccountStatus"]
    assert status["State"] == "SUCCEEDED" and status["Id"].startswith("car-")
    account_id = status["AccountId"]
    again = org.describe_create_account_status(CreateAccountRequestId=status["Id"])["CreateAccountStatus"]
    assert again["AccountId"] == account_id
    account = org.describe_account(AccountId=account_id)["Account"]
    assert (account["Email"], account["Name"], account["Status"]) == (email, "Team A", "ACTIVE")
    listed = [a["Id"] for page in org.get_paginator("list_accounts").paginate(PaginationConfig={"PageSize": 1})
              for a in page["Accounts"]]
    assert server.account_id in listed and account_id in listed
    organization = org.describe_organization()["Organization"]
    assert organization["MasterAccountId"] == server.account_id


def test_duplicate_email_fails_like_aws(server: MinicloudServer) -> None:
    org = server.client("organizations")
    email = f"dup-{uuid.uuid4().hex[:8]}@example.com"
    org.create_account(Email=email, AccountName="first")
    status = org.create_account(Email=email, AccountName="second")["CreateAccountStatus"]
    assert status["State"] == "FAILED" and status["FailureReason"] == "EMAIL_ALREADY_EXISTS"


def test_unknown_account(server: MinicloudServer) -> None:
    with pytest.raises(ClientError) as err:
        server.client("organizations").describe_account(AccountId="999999999999")
    assert err.value.response["Error"]["Code"] == "AccountNotFoundException"


def test_management_account_gets_in_through_the_access_role_only(server: MinicloudServer) -> None:
    org = server.client("organizations")
    account_id = org.create_account(Email=f"m-{uuid.uuid4().hex[:8]}@example.com",
                                    AccountName="member")["CreateAccountStatus"]["AccountId"]
    iam = server.client("iam")
    name = f"admin-{uuid.uuid4().hex[:6]}"
    iam.create_user(UserName=name)
    iam.attach_user_policy(UserName=name, PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    key = iam.create_access_key(UserName=name)["AccessKey"]
    admin = Keys(key["AccessKeyId"], key["SecretAccessKey"])
    creds = server.client("sts", keys=admin).assume_role(
        RoleArn=f"arn:aws:iam::{account_id}:role/OrganizationAccountAccessRole",
        RoleSessionName="ops")["Credentials"]
    member = Keys(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    assert server.client("sts", keys=member).get_caller_identity()["Account"] == account_id
    member_iam = server.client("iam", keys=member)
    member_iam.create_user(UserName="inside-member")
    # the member account sees only its own users; the management account does not see them
    assert [u["UserName"] for u in member_iam.list_users()["Users"]] == ["inside-member"]
    assert "inside-member" not in [u["UserName"] for u in iam.list_users(MaxItems=1000)["Users"]]


def test_member_account_cannot_manage_the_organization(server: MinicloudServer) -> None:
    # a member account's user can't create accounts even with AdministratorAccess
    org = server.client("organizations")
    account_id = org.create_account(Email=f"x-{uuid.uuid4().hex[:8]}@example.com",
                                    AccountName="x")["CreateAccountStatus"]["AccountId"]
    iam = server.client("iam")
    name = f"hop-{uuid.uuid4().hex[:6]}"
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="all", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    creds = server.client("sts", keys=Keys(key["AccessKeyId"], key["SecretAccessKey"])).assume_role(
        RoleArn=f"arn:aws:iam::{account_id}:role/OrganizationAccountAccessRole", RoleSessionName="ss")["Credentials"]
    member = Keys(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    with pytest.raises(ClientError) as err:
        server.client("organizations", keys=member).create_account(Email="y@example.com", AccountName="y")
    assert err.value.response["Error"]["Code"] == "AccessDeniedException"
