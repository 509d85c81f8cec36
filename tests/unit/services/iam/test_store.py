"""minicloud.iam.store: principal lookups, the policies in force, credentials, console passwords."""

from __future__ import annotations

import asyncio
import json

from minicloud.iam import store
from minicloud.iam.identity import PrincipalKind
from tests.unit.services.iam.conftest import TRUST_EC2, Iam, allow, doc


def test_split_arn() -> None:
    assert store.split_arn("arn:aws:iam::123456789012:role/a/b/app", "role") == (
        "123456789012",
        "/a/b/",
        "app",
    )
    assert store.split_arn("arn:aws:iam::123456789012:role/app", "role") == ("123456789012", "/", "app")
    assert store.split_arn("arn:aws:iam::123456789012:user/app", "role") is None
    assert store.split_arn("arn:aws:s3:::bucket/role/x", "role") is None


def test_user_keys_resolve_to_the_user_and_vanish_with_it(iam: Iam) -> None:
    iam.call("CreateUser", UserName="bob", Tags=[{"Key": "team", "Value": "blue"}])
    key = iam.call("CreateAccessKey", UserName="bob")["AccessKey"]
    credential = iam.runtime.db.read_sync(lambda c: store.resolve_user_key(c, key["AccessKeyId"]))
    assert credential is not None and credential.active
    principal = credential.principal
    assert principal.kind is PrincipalKind.USER and principal.name == "bob"
    assert principal.arn == f"arn:aws:iam::{iam.account_id}:user/bob" and principal.user_id.startswith("AIDA")
    assert principal.tags == (("team", "blue"),)
    # the root key is not an IAM user's
    root_key = iam.runtime.root_keys.access_key_id
    assert iam.runtime.db.read_sync(lambda c: store.resolve_user_key(c, root_key)) is None

    resolve = iam.runtime.credentials.resolve
    assert asyncio.run(resolve(key["AccessKeyId"])) is not None  # now cached
    iam.call("UpdateAccessKey", UserName="bob", AccessKeyId=key["AccessKeyId"], Status="Inactive")
    inactive = asyncio.run(resolve(key["AccessKeyId"]))
    assert inactive is not None and not inactive.active  # the write cleared the cache
    iam.call("DeleteAccessKey", UserName="bob", AccessKeyId=key["AccessKeyId"])
    assert asyncio.run(resolve(key["AccessKeyId"])) is None


def test_policies_of_a_user_include_its_groups_and_managed_policies(iam: Iam) -> None:
    iam.call("CreateUser", UserName="u")
    iam.call("CreateGroup", GroupName="g")
    iam.call("AddUserToGroup", GroupName="g", UserName="u")
    arn = iam.call("CreatePolicy", PolicyName="m", PolicyDocument=doc(allow("ec2:v1")))["Policy"]["Arn"]
    iam.call("CreatePolicyVersion", PolicyArn=arn, PolicyDocument=doc(allow("ec2:v2")), SetAsDefault=True)
    iam.call("PutUserPolicy", UserName="u", PolicyName="inline", PolicyDocument=doc(allow("s3:inline")))
    iam.call("PutGroupPolicy", GroupName="g", PolicyName="ginline", PolicyDocument=doc(allow("s3:group")))
    iam.call("AttachGroupPolicy", GroupName="g", PolicyArn=arn)
    iam.call("AttachUserPolicy", UserName="u", PolicyArn="arn:aws:iam::aws:policy/IAMReadOnlyAccess")
    iam.call("PutUserPermissionsBoundary", UserName="u", PermissionsBoundary=arn)
    user = iam.user("u")
    sources = iam.runtime.db.read_sync(lambda c: store.user_policies(c, user.user_id))
    assert sources is not None
    actions = [json.loads(d)["Statement"][0]["Action"] for d in sources.identity]
    assert sorted(map(str, actions)) == sorted(
        map(
            str,
            [
                "s3:inline",
                "s3:group",
                "ec2:v2",
                [
                    "iam:GenerateCredentialReport",
                    "iam:GenerateServiceLastAccessedDetails",
                    "iam:Get*",
                    "iam:List*",
                    "iam:SimulateCustomPolicy",
                    "iam:SimulatePrincipalPolicy",
                ],
            ],
        )
    )
    assert sources.boundary is not None and "ec2:v2" in sources.boundary
    assert iam.runtime.db.read_sync(lambda c: store.user_policies(c, "AIDANOSUCHUSER000000")) is None


def test_policies_of_a_role_and_lookup_by_arn(iam: Iam) -> None:
    role = iam.call("CreateRole", RoleName="app", Path="/svc/", AssumeRolePolicyDocument=TRUST_EC2)["Role"]
    iam.call("PutRolePolicy", RoleName="app", PolicyName="p", PolicyDocument=doc(allow("s3:*")))
    iam.call("AttachRolePolicy", RoleName="app", PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    found = iam.runtime.db.read_sync(lambda c: store.get_role_by_arn(c, role["Arn"]))
    assert found is not None and found.role_id == role["RoleId"] and found.assume_role_policy == TRUST_EC2
    wrong_path = role["Arn"].replace("/svc/", "/")
    assert iam.runtime.db.read_sync(lambda c: store.get_role_by_arn(c, wrong_path)) is None
    sources = iam.runtime.db.read_sync(lambda c: store.role_policies(c, role["RoleId"]))
    assert sources is not None and len(sources.identity) == 2 and sources.boundary is None


def test_password_hashes() -> None:
    hashed = store.hash_password("s3cret-Password")
    assert hashed.startswith("scrypt$16384$8$1$") and "s3cret" not in hashed
    assert store.check_password(hashed, "s3cret-Password")
    assert not store.check_password(hashed, "s3cret-password")
    assert not store.check_password("garbage", "x")
    assert store.hash_password("same") != store.hash_password("same")  # salted


def test_verify_console_password(iam: Iam) -> None:
    iam.call("CreateUser", UserName="alice")
    iam.call("CreateLoginProfile", UserName="alice", Password="Wonder-Land1", PasswordResetRequired=True)
    iam.call("CreateAccountAlias", AccountAlias="acme")
    db = iam.runtime.db
    login = asyncio.run(store.verify_console_password(db, iam.account_id, "alice", "Wonder-Land1"))
    assert login is not None and login.principal.name == "alice" and login.password_reset_required
    assert asyncio.run(store.verify_console_password(db, "acme", "ALICE", "Wonder-Land1")) is not None
    assert asyncio.run(store.verify_console_password(db, "acme", "alice", "wrong")) is None
    assert asyncio.run(store.verify_console_password(db, "acme", "nobody", "Wonder-Land1")) is None
    assert asyncio.run(store.verify_console_password(db, "other-alias", "alice", "Wonder-Land1")) is None
    assert "PasswordLastUsed" in iam.call("GetUser", UserName="alice")["User"]
