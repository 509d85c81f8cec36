"""The IAM provider's operations and AWS's errors, on SQLite and PostgreSQL, without HTTP."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote

import pytest

from minicloud.aws.errors import AccessDenied, ServiceError, ValidationError
from minicloud.services.iam import errors
from tests.unit.services.iam.conftest import TRUST_EC2, Iam, allow, doc


def fails(iam: Iam, error: type[ServiceError], op: str, **params: object) -> str:
    with pytest.raises(error) as caught:
        iam.call(op, **params)  # type: ignore[arg-type]
    return caught.value.message


def test_user_life_cycle(iam: Iam) -> None:
    created = iam.call("CreateUser", UserName="bob", Path="/eng/", Tags=[{"Key": "team", "Value": "db"}])["User"]
    assert created["Arn"] == f"arn:aws:iam::{iam.account_id}:user/eng/bob"
    assert created["UserId"].startswith("AIDA") and created["Tags"] == [{"Key": "team", "Value": "db"}]
    got = iam.call("GetUser", UserName="BOB")["User"]  # names are case-insensitive
    assert got["UserName"] == "bob" and got["Path"] == "/eng/"
    assert fails(iam, errors.EntityAlreadyExists, "CreateUser", UserName="Bob") == "User with name Bob already exists."
    iam.call("UpdateUser", UserName="bob", NewUserName="robert", NewPath="/ops/")
    assert iam.call("GetUser", UserName="robert")["User"]["Arn"].endswith(":user/ops/robert")
    assert fails(iam, errors.NoSuchEntity, "GetUser", UserName="bob") == "The user with name bob cannot be found."
    iam.call("DeleteUser", UserName="robert")
    assert iam.call("ListUsers")["Users"] == []


def test_list_users_pagination_and_path_prefix(iam: Iam) -> None:
    for i in range(7):
        iam.call("CreateUser", UserName=f"user{i}", Path="/a/" if i % 2 else "/b/")
    first = iam.call("ListUsers", MaxItems=3)
    assert first["IsTruncated"] is True and len(first["Users"]) == 3
    rest = iam.call("ListUsers", MaxItems=10, Marker=first["Marker"])
    assert rest["IsTruncated"] is False and "Marker" not in rest
    names = [u["UserName"] for u in first["Users"] + rest["Users"]]
    assert names == [f"user{i}" for i in range(7)]
    assert [u["UserName"] for u in iam.call("ListUsers", PathPrefix="/a/")["Users"]] == [
        "user1",
        "user3",
        "user5",
    ]
    with pytest.raises(ValidationError):
        iam.call("ListUsers", Marker="not-a-marker")


def test_delete_user_conflicts_in_aws_order(iam: Iam) -> None:
    iam.call("CreateUser", UserName="bob")
    iam.call("CreateGroup", GroupName="devs")
    iam.call("AddUserToGroup", GroupName="devs", UserName="bob")
    iam.call("AttachUserPolicy", UserName="bob", PolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess")
    iam.call("PutUserPolicy", UserName="bob", PolicyName="p", PolicyDocument=doc(allow("s3:*")))
    iam.call("CreateAccessKey", UserName="bob")
    iam.call("CreateLoginProfile", UserName="bob", Password="Str0ng-Passw0rd")
    steps: list[tuple[str, str | None, dict[str, Any]]] = [
        ("login profile", "DeleteLoginProfile", {}),
        ("access keys", None, {}),
        ("policies", "DeleteUserPolicy", {"PolicyName": "p"}),
        ("all policies", "DetachUserPolicy", {"PolicyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}),
        ("users from group", None, {}),
    ]
    for what, undo, extra in steps:
        message = fails(iam, errors.DeleteConflict, "DeleteUser", UserName="bob")
        assert what in message, message
        if undo:
            iam.call(undo, UserName="bob", **extra)
        elif what == "access keys":
            for key in iam.call("ListAccessKeys", UserName="bob")["AccessKeyMetadata"]:
                iam.call("DeleteAccessKey", UserName="bob", AccessKeyId=key["AccessKeyId"])
        else:
            iam.call("RemoveUserFromGroup", GroupName="devs", UserName="bob")
    iam.call("DeleteUser", UserName="bob")


def test_groups_membership(iam: Iam) -> None:
    iam.call("CreateUser", UserName="ann")
    iam.call("CreateGroup", GroupName="admins", Path="/x/")
    iam.call("AddUserToGroup", GroupName="admins", UserName="ann")
    iam.call("AddUserToGroup", GroupName="admins", UserName="ann")  # idempotent
    got = iam.call("GetGroup", GroupName="admins")
    assert [u["UserName"] for u in got["Users"]] == ["ann"] and got["Group"]["Path"] == "/x/"
    assert [g["GroupName"] for g in iam.call("ListGroupsForUser", UserName="ann")["Groups"]] == ["admins"]
    message = fails(iam, errors.DeleteConflict, "DeleteGroup", GroupName="admins")
    assert message == "Cannot delete entity, must remove users from group first."
    iam.call("RemoveUserFromGroup", GroupName="admins", UserName="ann")
    fails(iam, errors.NoSuchEntity, "RemoveUserFromGroup", GroupName="admins", UserName="ann")
    iam.call("UpdateGroup", GroupName="admins", NewGroupName="root-admins")
    iam.call("DeleteGroup", GroupName="root-admins")


def test_roles_and_trust_policy(iam: Iam) -> None:
    role = iam.call(
        "CreateRole",
        RoleName="app",
        AssumeRolePolicyDocument=TRUST_EC2,
        Description="d",
        MaxSessionDuration=7200,
    )["Role"]
    assert role["RoleId"].startswith("AROA") and json.loads(unquote(role["AssumeRolePolicyDocument"]))
    got = iam.call("GetRole", RoleName="app")["Role"]
    assert got["MaxSessionDuration"] == 7200 and got["Description"] == "d" and got["RoleLastUsed"] == {}
    iam.call("UpdateRole", RoleName="app", Description="new", MaxSessionDuration=3600)
    assert iam.call("GetRole", RoleName="app")["Role"]["Description"] == "new"
    assert iam.call("UpdateRoleDescription", RoleName="app", Description="x")["Role"]["Description"] == "x"
    # a trust policy must name a principal; an identity policy must not
    fails(
        iam,
        errors.MalformedPolicyDocument,
        "UpdateAssumeRolePolicy",
        RoleName="app",
        PolicyDocument=doc(allow("sts:AssumeRole")),
    )
    fails(iam, errors.MalformedPolicyDocument, "CreateRole", RoleName="r2", AssumeRolePolicyDocument="{")
    big = doc(
        {
            "Effect": "Allow",
            "Principal": {"AWS": [f"arn:aws:iam::{i:012d}:root" for i in range(100)]},
            "Action": "sts:AssumeRole",
        }
    )
    message = fails(iam, errors.LimitExceeded, "CreateRole", RoleName="r3", AssumeRolePolicyDocument=big)
    assert message == "Cannot exceed quota for ACLSizePerRole: 2048"
    iam.call("DeleteRole", RoleName="app")


def test_managed_policy_versions(iam: Iam) -> None:
    policy = iam.call("CreatePolicy", PolicyName="p", PolicyDocument=doc(allow("s3:GetObject")))["Policy"]
    arn = policy["Arn"]
    assert arn == f"arn:aws:iam::{iam.account_id}:policy/p" and policy["DefaultVersionId"] == "v1"
    message = fails(iam, errors.EntityAlreadyExists, "CreatePolicy", PolicyName="P", PolicyDocument=doc(allow("s3:*")))
    assert message == "A policy called P already exists. Duplicate names are not allowed."
    for i in range(2, 6):
        version = iam.call(
            "CreatePolicyVersion", PolicyArn=arn, PolicyDocument=doc(allow(f"s3:Get{i}")), SetAsDefault=i == 3
        )["PolicyVersion"]
        assert version["VersionId"] == f"v{i}"
    message = fails(iam, errors.LimitExceeded, "CreatePolicyVersion", PolicyArn=arn, PolicyDocument=doc(allow("s3:*")))
    assert "up to 5 versions" in message
    assert iam.call("GetPolicy", PolicyArn=arn)["Policy"]["DefaultVersionId"] == "v3"
    versions = iam.call("ListPolicyVersions", PolicyArn=arn)["Versions"]
    assert [v["VersionId"] for v in versions] == ["v5", "v4", "v3", "v2", "v1"]
    assert [v["IsDefaultVersion"] for v in versions] == [False, False, True, False, False]
    got = iam.call("GetPolicyVersion", PolicyArn=arn, VersionId="v3")["PolicyVersion"]
    assert json.loads(unquote(got["Document"]))["Statement"][0]["Action"] == "s3:Get3"
    fails(iam, errors.DeleteConflict, "DeletePolicyVersion", PolicyArn=arn, VersionId="v3")
    fails(iam, errors.NoSuchEntity, "GetPolicyVersion", PolicyArn=arn, VersionId="v9")
    iam.call("SetDefaultPolicyVersion", PolicyArn=arn, VersionId="v1")
    message = fails(iam, errors.DeleteConflict, "DeletePolicy", PolicyArn=arn)
    assert message.startswith("This policy has more than one version.")
    for v in ("v2", "v3", "v4", "v5"):
        iam.call("DeletePolicyVersion", PolicyArn=arn, VersionId=v)
    assert (
        iam.call("CreatePolicyVersion", PolicyArn=arn, PolicyDocument=doc(allow("s3:*")))["PolicyVersion"]["VersionId"]
        == "v6"
    )  # numbers are never reused
    iam.call("DeletePolicyVersion", PolicyArn=arn, VersionId="v6")
    iam.call("DeletePolicy", PolicyArn=arn)
    assert fails(iam, errors.NoSuchEntity, "GetPolicy", PolicyArn=arn) == f"Policy {arn} was not found."


def test_managed_policy_size_and_syntax(iam: Iam) -> None:
    actions = [f"s3:Action{i:05d}" for i in range(400)]
    message = fails(iam, errors.LimitExceeded, "CreatePolicy", PolicyName="big", PolicyDocument=doc(allow(actions)))
    assert message == "Cannot exceed quota for PolicySize: 6144"
    message = fails(
        iam,
        errors.MalformedPolicyDocument,
        "CreatePolicy",
        PolicyName="bad",
        PolicyDocument=doc({"Effect": "Allow", "Action": "s3:*"}),
    )
    assert message == "Policy statement must contain resources."


def test_aws_managed_policies_are_listed_attachable_and_read_only(iam: Iam) -> None:
    admin = "arn:aws:iam::aws:policy/AdministratorAccess"
    listed = iam.call("ListPolicies", Scope="AWS", MaxItems=1000)["Policies"]
    assert admin in [p["Arn"] for p in listed]
    iam.call("CreateUser", UserName="u")
    iam.call("AttachUserPolicy", UserName="u", PolicyArn=admin)
    iam.call("AttachUserPolicy", UserName="u", PolicyArn=admin)  # attaching twice is one attachment
    got = iam.call("GetPolicy", PolicyArn=admin)["Policy"]
    assert got["AttachmentCount"] == 1 and got["PolicyId"] == "ANPAIWMBCKSKIEE64ZLYK"
    version = iam.call("GetPolicyVersion", PolicyArn=admin, VersionId="v1")["PolicyVersion"]
    assert json.loads(unquote(version["Document"]))["Statement"][0]["Action"] == "*"
    attached = iam.call("ListPolicies", OnlyAttached=True)["Policies"]
    assert [p["Arn"] for p in attached] == [admin]
    with pytest.raises(AccessDenied):
        iam.call("DeletePolicy", PolicyArn=admin)
    with pytest.raises(AccessDenied):
        iam.call("CreatePolicyVersion", PolicyArn=admin, PolicyDocument=doc(allow("*")))


def test_attach_detach_and_entities_for_policy(iam: Iam) -> None:
    arn = iam.call("CreatePolicy", PolicyName="p", PolicyDocument=doc(allow("s3:*")))["Policy"]["Arn"]
    iam.call("CreateUser", UserName="u")
    iam.call("CreateGroup", GroupName="g")
    iam.call("CreateRole", RoleName="r", AssumeRolePolicyDocument=TRUST_EC2)
    iam.call("AttachUserPolicy", UserName="u", PolicyArn=arn)
    iam.call("AttachGroupPolicy", GroupName="g", PolicyArn=arn)
    iam.call("AttachRolePolicy", RoleName="r", PolicyArn=arn)
    entities = iam.call("ListEntitiesForPolicy", PolicyArn=arn)
    assert [x["UserName"] for x in entities["PolicyUsers"]] == ["u"]
    assert [x["GroupName"] for x in entities["PolicyGroups"]] == ["g"]
    assert [x["RoleName"] for x in entities["PolicyRoles"]] == ["r"]
    only_roles = iam.call("ListEntitiesForPolicy", PolicyArn=arn, EntityFilter="Role")
    assert only_roles["PolicyUsers"] == [] and len(only_roles["PolicyRoles"]) == 1
    assert iam.call("GetPolicy", PolicyArn=arn)["Policy"]["AttachmentCount"] == 3
    assert iam.call("ListAttachedRolePolicies", RoleName="r")["AttachedPolicies"] == [
        {"PolicyName": "p", "PolicyArn": arn}
    ]
    assert (
        fails(iam, errors.DeleteConflict, "DeletePolicy", PolicyArn=arn)
        == "Cannot delete a policy attached to entities."
    )
    iam.call("DetachUserPolicy", UserName="u", PolicyArn=arn)
    message = fails(iam, errors.NoSuchEntity, "DetachUserPolicy", UserName="u", PolicyArn=arn)
    assert message == f"Policy {arn} was not found."
    missing = f"arn:aws:iam::{iam.account_id}:policy/nope"
    message = fails(iam, errors.NoSuchEntity, "AttachUserPolicy", UserName="u", PolicyArn=missing)
    assert message == f"Policy {missing} does not exist or is not attachable."
    for i in range(10):
        iam.call("CreatePolicy", PolicyName=f"q{i}", PolicyDocument=doc(allow("s3:*")))
        iam.call("AttachUserPolicy", UserName="u", PolicyArn=f"arn:aws:iam::{iam.account_id}:policy/q{i}")
    message = fails(iam, errors.LimitExceeded, "AttachUserPolicy", UserName="u", PolicyArn=arn)
    assert message == "Cannot exceed quota for PoliciesPerUser: 10"


def test_inline_policies_and_aggregate_size(iam: Iam) -> None:
    iam.call("CreateUser", UserName="u")
    iam.call("PutUserPolicy", UserName="u", PolicyName="one", PolicyDocument=doc(allow("s3:GetObject")))
    iam.call("PutUserPolicy", UserName="u", PolicyName="one", PolicyDocument=doc(allow("s3:PutObject")))
    got = iam.call("GetUserPolicy", UserName="u", PolicyName="one")
    assert got["UserName"] == "u" and "s3:PutObject" in unquote(got["PolicyDocument"])
    assert iam.call("ListUserPolicies", UserName="u")["PolicyNames"] == ["one"]
    half = doc(allow([f"s3:Get{i:04d}" for i in range(90)]))  # ~1,200 characters
    iam.call("PutUserPolicy", UserName="u", PolicyName="two", PolicyDocument=half)
    message = fails(iam, errors.LimitExceeded, "PutUserPolicy", UserName="u", PolicyName="three", PolicyDocument=half)
    assert message == "Maximum policy size of 2048 bytes exceeded for user u"
    iam.call("CreateGroup", GroupName="g")
    iam.call("PutGroupPolicy", GroupName="g", PolicyName="two", PolicyDocument=half)  # groups have 5,120
    message = fails(iam, errors.NoSuchEntity, "GetUserPolicy", UserName="u", PolicyName="nope")
    assert message == "The user policy with name nope cannot be found."
    iam.call("DeleteUserPolicy", UserName="u", PolicyName="one")
    assert iam.call("ListUserPolicies", UserName="u")["PolicyNames"] == ["two"]


def test_access_keys_limit_and_status(iam: Iam) -> None:
    iam.call("CreateUser", UserName="u")
    first = iam.call("CreateAccessKey", UserName="u")["AccessKey"]
    assert first["AccessKeyId"].startswith("AKIA") and len(first["SecretAccessKey"]) == 40
    iam.call("CreateAccessKey", UserName="u")
    message = fails(iam, errors.LimitExceeded, "CreateAccessKey", UserName="u")
    assert message == "Cannot exceed quota for AccessKeysPerUser: 2"
    iam.call("UpdateAccessKey", UserName="u", AccessKeyId=first["AccessKeyId"], Status="Inactive")
    statuses = {k["AccessKeyId"]: k["Status"] for k in iam.call("ListAccessKeys", UserName="u")["AccessKeyMetadata"]}
    assert statuses[first["AccessKeyId"]] == "Inactive"
    last = iam.call("GetAccessKeyLastUsed", AccessKeyId=first["AccessKeyId"])
    assert last == {"UserName": "u", "AccessKeyLastUsed": {"ServiceName": "N/A", "Region": "N/A"}}
    # the caller's own keys when UserName is omitted; a user needs permission even for its own keys
    user = iam.user("u")
    with pytest.raises(AccessDenied) as denied:
        iam.call("ListAccessKeys", user)
    assert denied.value.message == (
        f"User: {user.arn} is not authorized to perform: iam:ListAccessKeys on resource: {user.arn} "
        "because no identity-based policy allows the iam:ListAccessKeys action"
    )
    iam.call(
        "PutUserPolicy",
        UserName="u",
        PolicyName="own-keys",
        PolicyDocument=doc(allow("iam:*AccessKey*", "arn:aws:iam::*:user/${aws:username}")),
    )
    assert len(iam.call("ListAccessKeys", user)["AccessKeyMetadata"]) == 2
    fails(iam, errors.NoSuchEntity, "DeleteAccessKey", UserName="u", AccessKeyId="AKIAXXXXXXXXXXXXXXXX")


def test_login_profiles(iam: Iam) -> None:
    iam.call("CreateUser", UserName="u")
    fails(iam, errors.PasswordPolicyViolation, "CreateLoginProfile", UserName="u", Password="short")
    profile = iam.call("CreateLoginProfile", UserName="u", Password="Corr3ct-Horse", PasswordResetRequired=True)
    assert profile["LoginProfile"]["PasswordResetRequired"] is True
    message = fails(iam, errors.EntityAlreadyExists, "CreateLoginProfile", UserName="u", Password="Corr3ct-Horse")
    assert message == "Login Profile for user u already exists."
    iam.call("UpdateLoginProfile", UserName="u", PasswordResetRequired=False)
    assert iam.call("GetLoginProfile", UserName="u")["LoginProfile"]["PasswordResetRequired"] is False
    iam.call("DeleteLoginProfile", UserName="u")
    message = fails(iam, errors.NoSuchEntity, "GetLoginProfile", UserName="u")
    assert message == "Login Profile for User u cannot be found."


def test_instance_profiles(iam: Iam) -> None:
    iam.call("CreateRole", RoleName="r", AssumeRolePolicyDocument=TRUST_EC2)
    iam.call("CreateRole", RoleName="r2", AssumeRolePolicyDocument=TRUST_EC2)
    profile = iam.call("CreateInstanceProfile", InstanceProfileName="web")["InstanceProfile"]
    assert profile["InstanceProfileId"].startswith("AIPA") and profile["Roles"] == []
    iam.call("AddRoleToInstanceProfile", InstanceProfileName="web", RoleName="r")
    message = fails(iam, errors.LimitExceeded, "AddRoleToInstanceProfile", InstanceProfileName="web", RoleName="r2")
    assert message == "Cannot exceed quota for InstanceSessionsPerInstanceProfile: 1"
    got = iam.call("GetInstanceProfile", InstanceProfileName="web")["InstanceProfile"]
    assert [r["RoleName"] for r in got["Roles"]] == ["r"]
    assert [
        p["InstanceProfileName"] for p in iam.call("ListInstanceProfilesForRole", RoleName="r")["InstanceProfiles"]
    ] == ["web"]
    assert "instance profile" in fails(iam, errors.DeleteConflict, "DeleteRole", RoleName="r")
    fails(iam, errors.DeleteConflict, "DeleteInstanceProfile", InstanceProfileName="web")
    iam.call("RemoveRoleFromInstanceProfile", InstanceProfileName="web", RoleName="r")
    iam.call("DeleteInstanceProfile", InstanceProfileName="web")
    iam.call("DeleteRole", RoleName="r")


def test_tags_are_case_insensitive_and_limited(iam: Iam) -> None:
    iam.call("CreateUser", UserName="u", Tags=[{"Key": "CostCenter", "Value": "1"}])
    iam.call("TagUser", UserName="u", Tags=[{"Key": "costcenter", "Value": "2"}, {"Key": "b", "Value": ""}])
    assert iam.call("ListUserTags", UserName="u")["Tags"] == [
        {"Key": "costcenter", "Value": "2"},
        {"Key": "b", "Value": ""},
    ]
    fails(
        iam,
        errors.InvalidInput,
        "TagUser",
        UserName="u",
        Tags=[{"Key": "x", "Value": "1"}, {"Key": "X", "Value": "2"}],
    )
    message = fails(
        iam,
        errors.LimitExceeded,
        "TagUser",
        UserName="u",
        Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(49)],
    )
    assert message == "The number of tags has reached the maximum limit."
    iam.call("UntagUser", UserName="u", TagKeys=["COSTCENTER"])
    assert iam.call("ListUserTags", UserName="u")["Tags"] == [{"Key": "b", "Value": ""}]
    paged = iam.call("ListUserTags", UserName="u", MaxItems=1)
    assert paged["IsTruncated"] is False


def test_account_summary_and_aliases(iam: Iam) -> None:
    iam.call("CreateUser", UserName="u")
    iam.call("CreatePolicy", PolicyName="p", PolicyDocument=doc(allow("s3:*")))
    summary = iam.call("GetAccountSummary")["SummaryMap"]
    assert summary["Users"] == 1 and summary["Policies"] == 1 and summary["UsersQuota"] == 5000
    assert summary["AccessKeysPerUserQuota"] == 2 and summary["AccountAccessKeysPresent"] == 1
    iam.call("CreateAccountAlias", AccountAlias="my-company")
    assert iam.call("ListAccountAliases")["AccountAliases"] == ["my-company"]
    other = iam.new_account("other")
    with pytest.raises(errors.EntityAlreadyExists):
        iam.call("CreateAccountAlias", other, AccountAlias="my-company")
    iam.call("CreateAccountAlias", AccountAlias="renamed")  # one alias per account: replaced
    assert iam.call("ListAccountAliases")["AccountAliases"] == ["renamed"]
    fails(iam, errors.NoSuchEntity, "DeleteAccountAlias", AccountAlias="my-company")
    iam.call("DeleteAccountAlias", AccountAlias="renamed")


def test_accounts_are_isolated(iam: Iam) -> None:
    iam.call("CreateUser", UserName="bob")
    other = iam.new_account("other")
    assert iam.call("ListUsers", other)["Users"] == []
    with pytest.raises(errors.NoSuchEntity):
        iam.call("GetUser", other, UserName="bob")
    iam.call("CreateUser", other, UserName="bob")  # the same name in another account is another user
    with pytest.raises(AccessDenied):
        iam.call(
            "GetPolicy",
            other,
            PolicyArn=iam.call("CreatePolicy", PolicyName="p", PolicyDocument=doc(allow("s3:*")))["Policy"]["Arn"],
        )


def test_get_user_without_name(iam: Iam) -> None:
    root = iam.call("GetUser")["User"]
    assert root["Arn"] == f"arn:aws:iam::{iam.account_id}:root" and root["UserId"] == iam.account_id
    iam.call("CreateUser", UserName="me")
    iam.call(
        "PutUserPolicy",
        UserName="me",
        PolicyName="self",
        PolicyDocument=doc(allow("iam:GetUser", "arn:aws:iam::*:user/${aws:username}")),
    )
    assert iam.call("GetUser", iam.user("me"))["User"]["UserName"] == "me"


def test_policy_simulator(iam: Iam) -> None:
    iam.call("CreateUser", UserName="sim")
    iam.call("PutUserPolicy", UserName="sim", PolicyName="p", PolicyDocument=doc(allow("s3:Get*")))
    iam.call(
        "PutUserPolicy",
        UserName="sim",
        PolicyName="d",
        PolicyDocument=doc({"Effect": "Deny", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::secret/*"}),
    )
    arn = f"arn:aws:iam::{iam.account_id}:user/sim"
    results = iam.call(
        "SimulatePrincipalPolicy",
        PolicySourceArn=arn,
        ActionNames=["s3:GetObject", "s3:PutObject"],
        ResourceArns=["arn:aws:s3:::public/k", "arn:aws:s3:::secret/k"],
    )["EvaluationResults"]
    decisions = [(r["EvalActionName"], r["EvalResourceName"].split(":::")[1], r["EvalDecision"]) for r in results]
    assert decisions == [
        ("s3:GetObject", "public/k", "allowed"),
        ("s3:GetObject", "secret/k", "explicitDeny"),
        ("s3:PutObject", "public/k", "implicitDeny"),
        ("s3:PutObject", "secret/k", "implicitDeny"),
    ]
    custom = iam.call(
        "SimulateCustomPolicy",
        PolicyInputList=[doc(allow("ec2:*"))],
        ActionNames=["ec2:RunInstances", "s3:ListBucket"],
    )["EvaluationResults"]
    assert [r["EvalDecision"] for r in custom] == ["allowed", "implicitDeny"]
    with pytest.raises(errors.NoSuchEntity):
        iam.call(
            "SimulatePrincipalPolicy",
            PolicySourceArn=f"arn:aws:iam::{iam.account_id}:user/nobody",
            ActionNames=["s3:GetObject"],
        )


def test_account_authorization_details(iam: Iam) -> None:
    iam.call("CreateUser", UserName="u", Tags=[{"Key": "k", "Value": "v"}])
    iam.call("CreateGroup", GroupName="g")
    iam.call("AddUserToGroup", GroupName="g", UserName="u")
    iam.call("PutUserPolicy", UserName="u", PolicyName="inline", PolicyDocument=doc(allow("s3:*")))
    iam.call("CreateRole", RoleName="r", AssumeRolePolicyDocument=TRUST_EC2)
    iam.call("CreateInstanceProfile", InstanceProfileName="ip")
    iam.call("AddRoleToInstanceProfile", InstanceProfileName="ip", RoleName="r")
    iam.call("AttachRolePolicy", RoleName="r", PolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess")
    arn = iam.call("CreatePolicy", PolicyName="m", PolicyDocument=doc(allow("ec2:*")))["Policy"]["Arn"]
    iam.call("AttachGroupPolicy", GroupName="g", PolicyArn=arn)
    details = iam.call("GetAccountAuthorizationDetails")
    (user,) = details["UserDetailList"]
    assert user["GroupList"] == ["g"] and user["Tags"] == [{"Key": "k", "Value": "v"}]
    assert [p["PolicyName"] for p in user["UserPolicyList"]] == ["inline"]
    (group,) = details["GroupDetailList"]
    assert group["AttachedManagedPolicies"] == [{"PolicyName": "m", "PolicyArn": arn}]
    (role,) = details["RoleDetailList"]
    assert [p["InstanceProfileName"] for p in role["InstanceProfileList"]] == ["ip"]
    assert {p["Arn"] for p in details["Policies"]} == {arn, "arn:aws:iam::aws:policy/ReadOnlyAccess"}
    only_local = iam.call("GetAccountAuthorizationDetails", Filter=["LocalManagedPolicy"])
    assert [p["Arn"] for p in only_local["Policies"]] == [arn] and only_local["UserDetailList"] == []
    first = iam.call("GetAccountAuthorizationDetails", MaxItems=2)
    rest = iam.call("GetAccountAuthorizationDetails", Marker=first["Marker"])
    assert len(first["UserDetailList"] + first["GroupDetailList"]) == 2 and len(rest["Policies"]) == 2
