"""IAM through the unmodified AWS CLI and boto3 against a real ``minicloud up``: every resource's
life cycle, pagination, and AWS's error codes and HTTP statuses."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.server import MinicloudServer

TRUST_EC2 = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}


def policy(*actions: str, effect: str = "Allow", resource: str = "*") -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": effect, "Action": list(actions), "Resource": resource}],
        }
    )


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def error_of(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, int, str]:
    response: Any = excinfo.value.response
    return (
        response["Error"]["Code"],
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Message"],
    )


@pytest.fixture
def iam(server: MinicloudServer) -> Any:
    return server.client("iam")


@pytest.fixture
def tmp_json(tmp_path: Path) -> Iterator[Any]:
    def write(document: Any) -> str:
        path = tmp_path / f"{uuid.uuid4().hex}.json"
        path.write_text(document if isinstance(document, str) else json.dumps(document))
        return f"file://{path}"

    yield write


def test_user_life_cycle_with_the_cli(server: MinicloudServer) -> None:
    name, path = unique("cli-user"), f"/{unique('p')}/"
    created = server.aws_json(
        "iam", "create-user", "--user-name", name, "--path", path, "--tags", "Key=team,Value=storage"
    )["User"]
    assert created["Arn"] == f"arn:aws:iam::{server.account_id}:user{path}{name}"
    assert created["UserId"].startswith("AIDA") and created["Tags"] == [{"Key": "team", "Value": "storage"}]
    got = server.aws_json("iam", "get-user", "--user-name", name.upper())["User"]  # names ignore case
    assert got["UserName"] == name and got["Tags"] == [{"Key": "team", "Value": "storage"}]
    listed = server.aws_json("iam", "list-users", "--path-prefix", path)["Users"]
    assert [u["UserName"] for u in listed] == [name]
    server.aws("iam", "tag-user", "--user-name", name, "--tags", "Key=env,Value=dev")
    tags = server.aws_json("iam", "list-user-tags", "--user-name", name)["Tags"]
    assert {t["Key"]: t["Value"] for t in tags} == {"team": "storage", "env": "dev"}
    server.aws("iam", "untag-user", "--user-name", name, "--tag-keys", "team")
    new_name = unique("renamed")
    server.aws("iam", "update-user", "--user-name", name, "--new-user-name", new_name)
    assert server.aws_json("iam", "get-user", "--user-name", new_name)["User"]["UserId"] == created["UserId"]
    server.aws("iam", "delete-user", "--user-name", new_name)
    result = server.aws("iam", "get-user", "--user-name", new_name, check=False)
    assert result.returncode != 0 and "NoSuchEntity" in result.stderr
    assert f"The user with name {new_name} cannot be found." in result.stderr


def test_list_users_paginates(server: MinicloudServer, iam: Any) -> None:
    path = f"/{unique('page')}/"
    names = sorted(unique(f"u{i}") for i in range(7))
    for name in names:
        iam.create_user(UserName=name, Path=path)
    # the CLI's automatic pagination, two users per request
    listed = server.aws_json("iam", "list-users", "--path-prefix", path, "--page-size", "2")["Users"]
    assert [u["UserName"] for u in listed] == names
    # by hand: MaxItems / Marker / IsTruncated
    seen, marker = [], None
    while True:
        page = iam.list_users(PathPrefix=path, MaxItems=3, **({"Marker": marker} if marker else {}))
        seen += [u["UserName"] for u in page["Users"]]
        if not page["IsTruncated"]:
            assert "Marker" not in page
            break
        marker = page["Marker"]
    assert seen == names
    # boto3's paginator and the CLI's --max-items / --starting-token
    pages = iam.get_paginator("list_users").paginate(PathPrefix=path, PaginationConfig={"PageSize": 4})
    assert [u["UserName"] for p in pages for u in p["Users"]] == names
    first = server.aws_json("iam", "list-users", "--path-prefix", path, "--max-items", "5")
    rest = server.aws_json("iam", "list-users", "--path-prefix", path, "--starting-token", first["NextToken"])
    assert [u["UserName"] for u in first["Users"] + rest["Users"]] == names
    for name in names:
        iam.delete_user(UserName=name)


def test_errors_have_aws_codes_and_statuses(iam: Any) -> None:
    name = unique("err")
    with pytest.raises(ClientError) as missing:
        iam.get_user(UserName=name)
    assert error_of(missing) == ("NoSuchEntity", 404, f"The user with name {name} cannot be found.")
    iam.create_user(UserName=name)
    with pytest.raises(ClientError) as exists:
        iam.create_user(UserName=name.upper())
    assert error_of(exists) == ("EntityAlreadyExists", 409, f"User with name {name.upper()} already exists.")
    iam.create_login_profile(UserName=name, Password="Secure-Passw0rd")
    with pytest.raises(ClientError) as conflict:
        iam.delete_user(UserName=name)
    assert error_of(conflict) == (
        "DeleteConflict",
        409,
        "Cannot delete entity, must delete login profile first.",
    )
    iam.delete_login_profile(UserName=name)
    iam.create_access_key(UserName=name)
    iam.create_access_key(UserName=name)
    with pytest.raises(ClientError) as limit:
        iam.create_access_key(UserName=name)
    assert error_of(limit) == ("LimitExceeded", 409, "Cannot exceed quota for AccessKeysPerUser: 2")
    with pytest.raises(ClientError) as malformed:
        iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument='{"Statement": []')
    assert error_of(malformed)[:2] == ("MalformedPolicyDocument", 400)
    with pytest.raises(ClientError) as bad_name:
        iam.create_user(UserName="not valid!")
    assert error_of(bad_name)[:2] == ("ValidationError", 400)
    with pytest.raises(ClientError) as bad_arn:
        iam.attach_user_policy(UserName=name, PolicyArn="this-is-not-an-arn-at-all")
    assert error_of(bad_arn) == ("InvalidInput", 400, "ARN this-is-not-an-arn-at-all is not valid.")
    for key in iam.list_access_keys(UserName=name)["AccessKeyMetadata"]:
        iam.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
    iam.delete_user(UserName=name)


def test_managed_policy_versions_with_the_cli(server: MinicloudServer, tmp_json: Any) -> None:
    name = unique("pol")
    created = server.aws_json(
        "iam",
        "create-policy",
        "--policy-name",
        name,
        "--path",
        "/team/",
        "--description",
        "demo",
        "--policy-document",
        tmp_json(policy("s3:GetObject")),
    )
    arn = created["Policy"]["Arn"]
    assert arn == f"arn:aws:iam::{server.account_id}:policy/team/{name}"
    assert created["Policy"]["DefaultVersionId"] == "v1" and created["Policy"]["AttachmentCount"] == 0
    v2 = server.aws_json(
        "iam",
        "create-policy-version",
        "--policy-arn",
        arn,
        "--set-as-default",
        "--policy-document",
        tmp_json(policy("s3:GetObject", "s3:PutObject")),
    )
    assert v2["PolicyVersion"] == {**v2["PolicyVersion"], "VersionId": "v2", "IsDefaultVersion": True}
    got = server.aws_json("iam", "get-policy-version", "--policy-arn", arn, "--version-id", "v2")
    assert got["PolicyVersion"]["Document"]["Statement"][0]["Action"] == ["s3:GetObject", "s3:PutObject"]
    versions = server.aws_json("iam", "list-policy-versions", "--policy-arn", arn)["Versions"]
    assert [(v["VersionId"], v["IsDefaultVersion"]) for v in versions] == [("v2", True), ("v1", False)]
    server.aws("iam", "set-default-policy-version", "--policy-arn", arn, "--version-id", "v1")
    server.aws("iam", "delete-policy-version", "--policy-arn", arn, "--version-id", "v2")
    local = server.aws_json("iam", "list-policies", "--scope", "Local", "--path-prefix", "/team/")["Policies"]
    assert arn in [p["Arn"] for p in local]
    aws = server.aws_json("iam", "list-policies", "--scope", "AWS")["Policies"]
    assert "arn:aws:iam::aws:policy/AdministratorAccess" in [p["Arn"] for p in aws]
    assert server.aws_json("iam", "get-policy", "--policy-arn", arn)["Policy"]["Description"] == "demo"
    server.aws("iam", "delete-policy", "--policy-arn", arn)


def test_attach_detach_and_entities_for_policy(iam: Any) -> None:
    user, group, role = unique("au"), unique("ag"), unique("ar")
    iam.create_user(UserName=user)
    iam.create_group(GroupName=group)
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(TRUST_EC2))
    arn = iam.create_policy(PolicyName=unique("ap"), PolicyDocument=policy("ec2:Describe*"))["Policy"]["Arn"]
    iam.attach_user_policy(UserName=user, PolicyArn=arn)
    iam.attach_group_policy(GroupName=group, PolicyArn=arn)
    iam.attach_role_policy(RoleName=role, PolicyArn=arn)
    iam.attach_role_policy(RoleName=role, PolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess")
    entities = iam.list_entities_for_policy(PolicyArn=arn)
    assert [e["UserName"] for e in entities["PolicyUsers"]] == [user]
    assert [e["GroupName"] for e in entities["PolicyGroups"]] == [group]
    assert [e["RoleName"] for e in entities["PolicyRoles"]] == [role]
    assert iam.get_policy(PolicyArn=arn)["Policy"]["AttachmentCount"] == 3
    attached = iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]
    assert {a["PolicyArn"] for a in attached} == {arn, "arn:aws:iam::aws:policy/ReadOnlyAccess"}
    with pytest.raises(ClientError) as conflict:
        iam.delete_policy(PolicyArn=arn)
    assert error_of(conflict) == ("DeleteConflict", 409, "Cannot delete a policy attached to entities.")
    iam.detach_user_policy(UserName=user, PolicyArn=arn)
    iam.detach_group_policy(GroupName=group, PolicyArn=arn)
    iam.detach_role_policy(RoleName=role, PolicyArn=arn)
    iam.detach_role_policy(RoleName=role, PolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess")
    with pytest.raises(ClientError) as detached:
        iam.detach_role_policy(RoleName=role, PolicyArn=arn)
    assert error_of(detached) == ("NoSuchEntity", 404, f"Policy {arn} was not found.")
    iam.delete_policy(PolicyArn=arn)
    iam.delete_user(UserName=user)
    iam.delete_group(GroupName=group)
    iam.delete_role(RoleName=role)


def test_inline_policies_of_users_groups_and_roles(iam: Any) -> None:
    user, group, role = unique("iu"), unique("ig"), unique("ir")
    iam.create_user(UserName=user)
    iam.create_group(GroupName=group)
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(TRUST_EC2))
    for kind, name in (("user", user), ("group", group), ("role", role)):
        key = {"user": "UserName", "group": "GroupName", "role": "RoleName"}[kind]
        getattr(iam, f"put_{kind}_policy")(
            **{key: name}, PolicyName="inline", PolicyDocument=policy("s3:List*")
        )
        got = getattr(iam, f"get_{kind}_policy")(**{key: name}, PolicyName="inline")
        assert got["PolicyDocument"]["Statement"][0]["Action"] == ["s3:List*"]  # boto3 decodes it
        assert getattr(iam, f"list_{kind}_policies")(**{key: name})["PolicyNames"] == ["inline"]
        with pytest.raises(ClientError) as conflict:
            getattr(iam, f"delete_{kind}")(**{key: name})
        assert error_of(conflict)[:2] == ("DeleteConflict", 409)
        getattr(iam, f"delete_{kind}_policy")(**{key: name}, PolicyName="inline")
        with pytest.raises(ClientError) as gone:
            getattr(iam, f"get_{kind}_policy")(**{key: name}, PolicyName="inline")
        assert error_of(gone) == ("NoSuchEntity", 404, f"The {kind} policy with name inline cannot be found.")
        getattr(iam, f"delete_{kind}")(**{key: name})
    too_big = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": [f"s3:Action{i:04d}" for i in range(200)], "Resource": "*"}
            ],
        }
    )
    iam.create_user(UserName=user)
    with pytest.raises(ClientError) as size:
        iam.put_user_policy(UserName=user, PolicyName="big", PolicyDocument=too_big)
    assert error_of(size) == (
        "LimitExceeded",
        409,
        f"Maximum policy size of 2048 bytes exceeded for user {user}",
    )
    iam.delete_user(UserName=user)


def test_groups(server: MinicloudServer) -> None:
    group, user = unique("grp"), unique("member")
    assert server.aws_json("iam", "create-group", "--group-name", group)["Group"]["GroupId"].startswith(
        "AGPA"
    )
    server.aws("iam", "create-user", "--user-name", user)
    server.aws("iam", "add-user-to-group", "--group-name", group, "--user-name", user)
    got = server.aws_json("iam", "get-group", "--group-name", group)
    assert [u["UserName"] for u in got["Users"]] == [user]
    groups = server.aws_json("iam", "list-groups-for-user", "--user-name", user)["Groups"]
    assert [g["GroupName"] for g in groups] == [group]
    assert group in [g["GroupName"] for g in server.aws_json("iam", "list-groups")["Groups"]]
    failed = server.aws("iam", "delete-group", "--group-name", group, check=False)
    assert "DeleteConflict" in failed.stderr
    server.aws("iam", "remove-user-from-group", "--group-name", group, "--user-name", user)
    server.aws("iam", "delete-group", "--group-name", group)
    server.aws("iam", "delete-user", "--user-name", user)


def test_roles(iam: Any) -> None:
    name = unique("role")
    boundary = "arn:aws:iam::aws:policy/PowerUserAccess"
    created = iam.create_role(
        RoleName=name,
        Path="/svc/",
        AssumeRolePolicyDocument=json.dumps(TRUST_EC2),
        Description="web servers",
        MaxSessionDuration=7200,
        PermissionsBoundary=boundary,
        Tags=[{"Key": "app", "Value": "web"}],
    )["Role"]
    assert created["RoleId"].startswith("AROA") and created["AssumeRolePolicyDocument"] == TRUST_EC2
    role = iam.get_role(RoleName=name)["Role"]
    assert role["MaxSessionDuration"] == 7200 and role["Description"] == "web servers"
    assert role["PermissionsBoundary"]["PermissionsBoundaryArn"] == boundary
    assert role["Tags"] == [{"Key": "app", "Value": "web"}]
    iam.update_role(RoleName=name, Description="api servers", MaxSessionDuration=3600)
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{created['Arn'].split(':')[4]}:root"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(trust))
    role = iam.get_role(RoleName=name)["Role"]
    assert role["AssumeRolePolicyDocument"] == trust and role["Description"] == "api servers"
    iam.delete_role_permissions_boundary(RoleName=name)
    assert "PermissionsBoundary" not in iam.get_role(RoleName=name)["Role"]
    assert name in [r["RoleName"] for r in iam.list_roles(PathPrefix="/svc/")["Roles"]]
    with pytest.raises(ClientError) as malformed:
        iam.update_assume_role_policy(RoleName=name, PolicyDocument=policy("sts:AssumeRole"))
    assert error_of(malformed)[:2] == ("MalformedPolicyDocument", 400)
    iam.delete_role(RoleName=name)
    with pytest.raises(ClientError) as gone:
        iam.get_role(RoleName=name)
    assert error_of(gone) == ("NoSuchEntity", 404, f"The role with name {name} cannot be found.")


def test_login_profiles(iam: Any) -> None:
    name = unique("console")
    iam.create_user(UserName=name)
    profile = iam.create_login_profile(UserName=name, Password="Tr0ub4dor&3", PasswordResetRequired=True)
    assert profile["LoginProfile"]["UserName"] == name and profile["LoginProfile"]["PasswordResetRequired"]
    with pytest.raises(ClientError) as weak:
        iam.update_login_profile(UserName=name, Password="weak")
    assert error_of(weak)[:2] == ("PasswordPolicyViolation", 400)
    iam.update_login_profile(UserName=name, Password="Correct-Horse-9", PasswordResetRequired=False)
    assert iam.get_login_profile(UserName=name)["LoginProfile"]["PasswordResetRequired"] is False
    iam.delete_login_profile(UserName=name)
    with pytest.raises(ClientError) as gone:
        iam.get_login_profile(UserName=name)
    assert error_of(gone) == ("NoSuchEntity", 404, f"Login Profile for User {name} cannot be found.")
    iam.delete_user(UserName=name)


def test_instance_profiles(server: MinicloudServer, tmp_json: Any) -> None:
    profile, role = unique("ip"), unique("ip-role")
    server.aws(
        "iam", "create-role", "--role-name", role, "--assume-role-policy-document", tmp_json(TRUST_EC2)
    )
    created = server.aws_json("iam", "create-instance-profile", "--instance-profile-name", profile)
    assert created["InstanceProfile"]["InstanceProfileId"].startswith("AIPA")
    server.aws("iam", "add-role-to-instance-profile", "--instance-profile-name", profile, "--role-name", role)
    got = server.aws_json("iam", "get-instance-profile", "--instance-profile-name", profile)[
        "InstanceProfile"
    ]
    assert [r["RoleName"] for r in got["Roles"]] == [role]
    assert got["Roles"][0]["AssumeRolePolicyDocument"] == TRUST_EC2
    for_role = server.aws_json("iam", "list-instance-profiles-for-role", "--role-name", role)[
        "InstanceProfiles"
    ]
    assert [p["InstanceProfileName"] for p in for_role] == [profile]
    listed = server.aws_json("iam", "list-instance-profiles")["InstanceProfiles"]
    assert profile in [p["InstanceProfileName"] for p in listed]
    failed = server.aws("iam", "delete-role", "--role-name", role, check=False)
    assert "Cannot delete entity, must remove roles from instance profile first." in failed.stderr
    server.aws(
        "iam", "remove-role-from-instance-profile", "--instance-profile-name", profile, "--role-name", role
    )
    server.aws("iam", "delete-instance-profile", "--instance-profile-name", profile)
    server.aws("iam", "delete-role", "--role-name", role)


def test_account_summary_and_aliases(server: MinicloudServer, iam: Any) -> None:
    before = server.aws_json("iam", "get-account-summary")["SummaryMap"]
    name = unique("counted")
    iam.create_user(UserName=name)
    after = server.aws_json("iam", "get-account-summary")["SummaryMap"]
    assert after["Users"] == before["Users"] + 1
    assert (
        after["UsersQuota"] == 5000
        and after["PolicySizeQuota"] == 6144
        and after["VersionsPerPolicyQuota"] == 5
    )
    iam.delete_user(UserName=name)
    alias = unique("acme")
    server.aws("iam", "create-account-alias", "--account-alias", alias)
    assert server.aws_json("iam", "list-account-aliases")["AccountAliases"] == [alias]
    server.aws("iam", "delete-account-alias", "--account-alias", alias)
    assert server.aws_json("iam", "list-account-aliases")["AccountAliases"] == []


def test_policy_and_role_tags(iam: Any) -> None:
    arn = iam.create_policy(
        PolicyName=unique("tp"), PolicyDocument=policy("s3:*"), Tags=[{"Key": "a", "Value": "1"}]
    )["Policy"]["Arn"]
    iam.tag_policy(PolicyArn=arn, Tags=[{"Key": "b", "Value": "2"}])
    assert iam.list_policy_tags(PolicyArn=arn)["Tags"] == [
        {"Key": "a", "Value": "1"},
        {"Key": "b", "Value": "2"},
    ]
    iam.untag_policy(PolicyArn=arn, TagKeys=["a"])
    assert iam.get_policy(PolicyArn=arn)["Policy"]["Tags"] == [{"Key": "b", "Value": "2"}]
    iam.delete_policy(PolicyArn=arn)
    role = unique("tr")
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(TRUST_EC2))
    iam.tag_role(RoleName=role, Tags=[{"Key": "x", "Value": "y"}])
    assert iam.list_role_tags(RoleName=role)["Tags"] == [{"Key": "x", "Value": "y"}]
    iam.untag_role(RoleName=role, TagKeys=["X"])  # tag keys ignore case
    assert iam.list_role_tags(RoleName=role)["Tags"] == []
    iam.delete_role(RoleName=role)


def test_path_prefixes_match_literally(server: MinicloudServer) -> None:
    iam = server.client("iam")
    tag = uuid.uuid4().hex[:8]
    literal, lookalike, other = f"/a_b%{tag}/", f"/axbz{tag}/", f"/q{tag}/"
    for path, name in ((literal, "lit"), (lookalike, "look"), (other, "other")):
        iam.create_user(UserName=f"{name}-{tag}", Path=path)
        iam.create_role(RoleName=f"{name}-{tag}", Path=path, AssumeRolePolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": server.account_id},
                                                    "Action": "sts:AssumeRole"}]}))
        iam.create_group(GroupName=f"{name}-{tag}", Path=path)
    assert [u["UserName"] for u in iam.list_users(PathPrefix=literal)["Users"]] == [f"lit-{tag}"]
    assert [r["RoleName"] for r in iam.list_roles(PathPrefix=literal)["Roles"]] == [f"lit-{tag}"]
    assert [g["GroupName"] for g in iam.list_groups(PathPrefix=literal)["Groups"]] == [f"lit-{tag}"]
    paged = iam.list_users(PathPrefix=f"/q{tag}", MaxItems=1)
    assert [u["UserName"] for u in paged["Users"]] == [f"other-{tag}"] and not paged["IsTruncated"]
