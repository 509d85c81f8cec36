"""EC2's security boundaries with boto3 against a real ``minicloud up`` (regression tests of the
security review): who may hand an instance profile's role to an instance (iam:PassRole)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.test_ec2_images import push_busybox
from tests.support.aws import code
from tests.support.server import Keys, MinicloudServer

EC2_TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
MISSING_SUBNET = "subnet-0123456789abcdef0"


def _user(server: MinicloudServer, name: str, statements: list[dict[str, Any]]) -> Keys:
    iam = server.client("iam")
    iam.create_user(UserName=name)
    _set_policy(server, name, statements)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return Keys(key["AccessKeyId"], key["SecretAccessKey"])


def _set_policy(server: MinicloudServer, user: str, statements: list[dict[str, Any]]) -> None:
    server.client("iam").put_user_policy(UserName=user, PolicyName="p", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": statements}))


def test_run_instances_needs_pass_role_for_the_profile_role(server: MinicloudServer, tmp_path: Path) -> None:
    """An EC2-only user cannot launch with an administrator's instance profile (its role's
    credentials would be theirs from the metadata service): RunInstances asks for iam:PassRole on
    the profile's role with iam:PassedToService = ec2.amazonaws.com. The launches are DryRuns: one that
    passes every permission check answers DryRunOperation and launches nothing."""
    suffix = uuid.uuid4().hex[:8]
    ec2, iam = server.client("ec2"), server.client("iam")
    location = push_busybox(server, tmp_path, f"passrole-{suffix}", "latest")
    image_id = ec2.register_image(Name=f"passrole-{suffix}", ImageLocation=location)["ImageId"]
    role = iam.create_role(RoleName=f"admin-{suffix}", AssumeRolePolicyDocument=json.dumps(EC2_TRUST))["Role"]["Arn"]
    iam.attach_role_policy(RoleName=f"admin-{suffix}", PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    profile = f"admin-{suffix}"
    iam.create_instance_profile(InstanceProfileName=profile)
    iam.add_role_to_instance_profile(InstanceProfileName=profile, RoleName=f"admin-{suffix}")
    user = f"ec2-only-{suffix}"
    ec2_only = {"Effect": "Allow", "Action": ["ec2:RunInstances", "ec2:Describe*"], "Resource": "*"}
    client = server.client("ec2", keys=_user(server, user, [ec2_only]))

    def launch() -> str:
        with pytest.raises(ClientError) as err:
            client.run_instances(ImageId=image_id, MinCount=1, MaxCount=1, DryRun=True,
                                 IamInstanceProfile={"Name": profile})
        return code(err)

    def pass_role_to(service: str) -> dict[str, Any]:
        return {"Effect": "Allow", "Action": "iam:PassRole", "Resource": role,
                "Condition": {"StringEquals": {"iam:PassedToService": service}}}

    assert launch() == "UnauthorizedOperation"
    _set_policy(server, user, [ec2_only, pass_role_to("lambda.amazonaws.com")])
    assert launch() == "UnauthorizedOperation"
    _set_policy(server, user, [ec2_only, pass_role_to("ec2.amazonaws.com")])
    assert launch() == "DryRunOperation"  # every permission check passed
    # Without a profile nothing is passed, and nothing is asked.
    _set_policy(server, user, [ec2_only])
    with pytest.raises(ClientError) as plain:
        client.run_instances(ImageId=image_id, MinCount=1, MaxCount=1, DryRun=True)
    assert code(plain) == "DryRunOperation"
    # A subnet that does not exist is an error of its own (EC2 resolves what a launch uses first).
    with pytest.raises(ClientError) as missing:
        client.run_instances(ImageId=image_id, MinCount=1, MaxCount=1, SubnetId=MISSING_SUBNET)
    assert code(missing) == "InvalidSubnetID.NotFound"
    ec2.deregister_image(ImageId=image_id)  # other modules list the account's own AMIs


def other_account(server: MinicloudServer) -> tuple[str, Keys]:
    """A new member account of the organization and an administrator session in it."""
    suffix = uuid.uuid4().hex[:8]
    status = server.client("organizations").create_account(Email=f"{suffix}@example.com", AccountName=suffix)
    account_id = str(status["CreateAccountStatus"]["AccountId"])
    iam = server.client("iam")
    iam.create_user(UserName=f"org-admin-{suffix}")
    iam.attach_user_policy(UserName=f"org-admin-{suffix}", PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    key = iam.create_access_key(UserName=f"org-admin-{suffix}")["AccessKey"]
    creds = server.client("sts", keys=Keys(key["AccessKeyId"], key["SecretAccessKey"])).assume_role(
        RoleArn=f"arn:aws:iam::{account_id}:role/OrganizationAccountAccessRole", RoleSessionName="other")["Credentials"]
    return account_id, Keys(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])


def test_another_accounts_private_image_needs_its_repository_policy(server: MinicloudServer, tmp_path: Path) -> None:
    """Repository names are global in the registry, but reading one is the owner's to grant: another
    account's administrator can register (and launch) an AMI of it only while its repository policy
    lets them pull, as ECR would decide a pull."""
    suffix = uuid.uuid4().hex[:8]
    repository = f"team-a/private-{suffix}"
    location = push_busybox(server, tmp_path, repository, "latest")
    other_id, other = other_account(server)
    ec2_b = server.client("ec2", keys=other)
    with pytest.raises(ClientError) as denied:
        ec2_b.register_image(Name=f"stolen-{suffix}", ImageLocation=location)
    assert code(denied) == "UnauthorizedOperation"
    assert not ec2_b.describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": [f"stolen-{suffix}"]}])[
        "Images"]

    ecr_a = server.client("ecr")
    grant = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Sid": "pull", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{other_id}:root"},
        "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]}]})
    ecr_a.set_repository_policy(repositoryName=repository, policyText=grant)
    image_id = ec2_b.register_image(Name=f"shared-{suffix}", ImageLocation=location)["ImageId"]

    def launch() -> str:
        with pytest.raises(ClientError) as err:
            ec2_b.run_instances(ImageId=image_id, MinCount=1, MaxCount=1, DryRun=True)
        return code(err)

    assert launch() == "DryRunOperation"  # allowed
    ecr_a.delete_repository_policy(repositoryName=repository)
    assert launch() == "UnauthorizedOperation"  # the grant is gone: the image can no longer be launched
