"""RunInstances' IAM authorization with boto3 against a real ``minicloud up``: as on AWS, the action is
authorized on every resource the launch uses or creates (instance, image, subnet, each security group,
network interface, volume, key pair), each with its own ARN and condition keys, and DryRun answers
DryRunOperation only once every check passed."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.test_ec2_images import push_busybox
from tests.integration.test_ec2_instances import wait_state
from tests.support.aws import code
from tests.support.server import Keys, MinicloudServer

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("runc"), reason="instances need root and runc")
REGION = "us-east-1"


@pytest.fixture(scope="module")
def setup(server: MinicloudServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Two registered AMIs (of one busybox image), a key pair, the account id and the default group
    (the AMIs and the key pair are removed afterwards: other modules list the account's own)."""
    suffix = uuid.uuid4().hex[:8]
    ec2 = server.client("ec2")
    location = push_busybox(server, tmp_path_factory.mktemp("authz"), f"authz-{suffix}", "latest")
    first = ec2.register_image(Name=f"authz-a-{suffix}", ImageLocation=location)["ImageId"]
    second = ec2.register_image(Name=f"authz-b-{suffix}", ImageLocation=location)["ImageId"]
    ec2.create_key_pair(KeyName=f"authz-{suffix}", KeyType="ed25519")
    account = server.client("sts").get_caller_identity()["Account"]
    group = ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"][0]["GroupId"]
    yield {"suffix": suffix, "image": first, "other_image": second, "key": f"authz-{suffix}", "account": account,
           "group": group}
    for image_id in (first, second):
        ec2.deregister_image(ImageId=image_id)
    ec2.delete_key_pair(KeyName=f"authz-{suffix}")


def _client(server: MinicloudServer, statements: list[dict[str, Any]]) -> Any:
    """An EC2 client of a new IAM user whose only policy is ``statements``."""
    iam = server.client("iam")
    name = f"authz-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": statements}))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return server.client("ec2", keys=Keys(key["AccessKeyId"], key["SecretAccessKey"]))


def _least_privilege(account: str, image: str = "ami-*") -> dict[str, Any]:
    """The EC2 user guide's example "Launch instances (RunInstances)": the resources a launch needs."""
    return {"Effect": "Allow", "Action": "ec2:RunInstances", "Resource": [
        f"arn:aws:ec2:{REGION}::image/{image}",
        f"arn:aws:ec2:{REGION}:{account}:instance/*",
        f"arn:aws:ec2:{REGION}:{account}:subnet/*",
        f"arn:aws:ec2:{REGION}:{account}:network-interface/*",
        f"arn:aws:ec2:{REGION}:{account}:volume/*",
        f"arn:aws:ec2:{REGION}:{account}:key-pair/*",
        f"arn:aws:ec2:{REGION}:{account}:security-group/*"]}


def _outcome(client: Any, image: str, **kw: Any) -> tuple[str, str]:
    """(error code, message) of a DryRun launch."""
    with pytest.raises(ClientError) as err:
        client.run_instances(ImageId=image, MinCount=1, MaxCount=1, DryRun=True, **kw)
    return code(err), str(err.value.response["Error"]["Message"])


def test_instance_only_policy_is_refused_and_the_documented_one_launches(server: MinicloudServer,
                                                                         setup: dict[str, str]) -> None:
    account, image = setup["account"], setup["image"]
    instance_only = _client(server, [{"Effect": "Allow", "Action": "ec2:RunInstances",
                                      "Resource": f"arn:aws:ec2:{REGION}:{account}:instance/*"}])
    error, message = _outcome(instance_only, image)
    assert error == "UnauthorizedOperation" and message.startswith("You are not authorized to perform this operation.")
    assert f"ec2:RunInstances on resource: arn:aws:ec2:{REGION}::image/{image}" in message  # the image's ARN
    with pytest.raises(ClientError) as real:
        instance_only.run_instances(ImageId=image, MinCount=1, MaxCount=1)
    assert code(real) == "UnauthorizedOperation"

    allowed = _client(server, [_least_privilege(account)])
    assert _outcome(allowed, image, KeyName=setup["key"])[0] == "DryRunOperation"
    launched = allowed.run_instances(ImageId=image, MinCount=1, MaxCount=1, KeyName=setup["key"],
                                     InstanceType="t3.nano")["Instances"][0]
    assert launched["KeyName"] == setup["key"] and launched["SecurityGroups"][0]["GroupId"] == setup["group"]
    root = server.client("ec2")
    root.terminate_instances(InstanceIds=[launched["InstanceId"]])
    wait_state(root, launched["InstanceId"], "terminated")

    # Each resource type of the documented policy is needed: without one, the launch is refused on it.
    for missing in ("subnet", "network-interface", "volume", "security-group", "key-pair"):
        statement = _least_privilege(account)
        statement["Resource"] = [r for r in statement["Resource"] if f":{missing}/" not in r]
        error, message = _outcome(_client(server, [statement]), image, KeyName=setup["key"])
        assert error == "UnauthorizedOperation", missing
        assert f":{missing}/" in message, message
    # No key pair named: the key-pair ARN is not asked for.
    without_keys = _least_privilege(account)
    without_keys["Resource"] = [r for r in without_keys["Resource"] if ":key-pair/" not in r]
    assert _outcome(_client(server, [without_keys]), image)[0] == "DryRunOperation"


def test_instance_type_condition(server: MinicloudServer, setup: dict[str, str]) -> None:
    account = setup["account"]
    statement = _least_privilege(account)
    statement["Resource"].remove(f"arn:aws:ec2:{REGION}:{account}:instance/*")
    client = _client(server, [statement, {
        "Effect": "Allow", "Action": "ec2:RunInstances", "Resource": f"arn:aws:ec2:{REGION}:{account}:instance/*",
        "Condition": {"StringEquals": {"ec2:InstanceType": "t3.micro"}}}])
    assert _outcome(client, setup["image"], InstanceType="t3.micro")[0] == "DryRunOperation"
    assert _outcome(client, setup["image"])[0] == "DryRunOperation"  # no InstanceType: t3.micro
    error, message = _outcome(client, setup["image"], InstanceType="t3.large")
    assert error == "UnauthorizedOperation" and f":{account}:instance/*" in message


def test_image_restriction(server: MinicloudServer, setup: dict[str, str]) -> None:
    client = _client(server, [_least_privilege(setup["account"], image=setup["image"])])
    assert _outcome(client, setup["image"])[0] == "DryRunOperation"
    error, message = _outcome(client, setup["other_image"])
    assert error == "UnauthorizedOperation" and f"::image/{setup['other_image']}" in message
    # Image condition keys (on the image's statement: the other resources have none of them).
    others = _least_privilege(setup["account"])
    others["Resource"] = [r for r in others["Resource"] if "::image/" not in r]
    image_rule = {"Effect": "Allow", "Action": "ec2:RunInstances", "Resource": f"arn:aws:ec2:{REGION}::image/*",
                  "Condition": {"StringEquals": {"ec2:Owner": setup["account"], "ec2:Public": "false",
                                                 "ec2:ImageType": "machine"}}}
    assert _outcome(_client(server, [others, image_rule]), setup["other_image"])[0] == "DryRunOperation"
    image_rule["Condition"] = {"StringEquals": {"ec2:Owner": "amazon"}}  # Amazon's (minicloud's public) AMIs only
    assert _outcome(_client(server, [others, image_rule]), setup["other_image"])[0] == "UnauthorizedOperation"
    # AWS's knowledge-center example: launch only AMIs tagged Environment=Prod (the image's own tags).
    server.client("ec2").create_tags(Resources=[setup["image"]], Tags=[{"Key": "Environment", "Value": "Prod"}])
    image_rule["Condition"] = {"StringEquals": {"ec2:ResourceTag/Environment": "Prod"}}
    tagged = _client(server, [others, image_rule])
    assert _outcome(tagged, setup["image"])[0] == "DryRunOperation"
    assert _outcome(tagged, setup["other_image"])[0] == "UnauthorizedOperation"


def test_the_groups_and_subnet_actually_used_are_authorized(server: MinicloudServer, setup: dict[str, str]) -> None:
    """No group named: the VPC's default group is used, so it is the one authorized; a condition on
    the VPC (ec2:Vpc is the VPC's ARN) applies to the default subnet chosen."""
    account, root = setup["account"], server.client("ec2")
    vpc = root.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    other = root.create_security_group(GroupName=f"authz-{setup['suffix']}", Description="authz",
                                       VpcId=vpc)["GroupId"]
    statement = _least_privilege(account)
    statement["Resource"] = [r for r in statement["Resource"] if ":security-group/" not in r]
    statement["Resource"].append(f"arn:aws:ec2:{REGION}:{account}:security-group/{other}")
    client = _client(server, [statement])
    error, message = _outcome(client, setup["image"])
    assert error == "UnauthorizedOperation" and f"security-group/{setup['group']}" in message
    assert _outcome(client, setup["image"], SecurityGroupIds=[other])[0] == "DryRunOperation"
    error, _ = _outcome(client, setup["image"], SecurityGroupIds=[other, setup["group"]])
    assert error == "UnauthorizedOperation"  # every group is authorized
    root.delete_security_group(GroupId=other)

    vpc_arn = f"arn:aws:ec2:{REGION}:{account}:vpc/{vpc}"
    in_vpc = _least_privilege(account)
    in_vpc["Resource"].remove(f"arn:aws:ec2:{REGION}:{account}:subnet/*")
    subnet_rule = {"Effect": "Allow", "Action": "ec2:RunInstances",
                   "Resource": f"arn:aws:ec2:{REGION}:{account}:subnet/*",
                   "Condition": {"ArnEquals": {"ec2:Vpc": vpc_arn}}}
    assert _outcome(_client(server, [in_vpc, subnet_rule]), setup["image"])[0] == "DryRunOperation"
    subnet_rule["Condition"] = {"ArnEquals": {"ec2:Vpc": f"arn:aws:ec2:{REGION}:{account}:vpc/vpc-0000000000000000f"}}
    assert _outcome(_client(server, [in_vpc, subnet_rule]), setup["image"])[0] == "UnauthorizedOperation"


def test_tags_at_launch_need_create_tags(server: MinicloudServer, setup: dict[str, str]) -> None:
    """Tags given at launch are authorized as ec2:CreateTags with ec2:CreateAction = RunInstances, and
    aws:RequestTag/* conditions apply to the instance."""
    account = setup["account"]
    tagged = [{"ResourceType": "instance", "Tags": [{"Key": "team", "Value": "blue"}]}]
    base = _least_privilege(account)
    assert _outcome(_client(server, [base]), setup["image"], TagSpecifications=tagged)[0] == "UnauthorizedOperation"
    create_tags = {"Effect": "Allow", "Action": "ec2:CreateTags", "Resource": f"arn:aws:ec2:{REGION}:{account}:*/*",
                   "Condition": {"StringEquals": {"ec2:CreateAction": "RunInstances"}}}
    deny_red = {"Effect": "Deny", "Action": "ec2:RunInstances",
                "Resource": f"arn:aws:ec2:{REGION}:{account}:instance/*",
                "Condition": {"StringEquals": {"aws:RequestTag/team": "red"}}}
    client = _client(server, [base, create_tags, deny_red])
    assert _outcome(client, setup["image"], TagSpecifications=tagged)[0] == "DryRunOperation"
    red = [{"ResourceType": "instance", "Tags": [{"Key": "team", "Value": "red"}]}]
    assert _outcome(client, setup["image"], TagSpecifications=red)[0] == "UnauthorizedOperation"



def _dry(call: Any, **kw: Any) -> str:
    with pytest.raises(ClientError) as err:
        call(DryRun=True, **kw)
    return code(err)


def test_other_actions_are_authorized_on_every_resource_they_use(server: MinicloudServer,
                                                                 setup: dict[str, str]) -> None:
    """AssociateAddress (Elastic IP and instance), CreateImage (instance and the new image, whose ARN
    has no account), CreateSubnet (VPC and the new subnet), AttachInternetGateway (gateway and VPC)."""
    account, root = setup["account"], server.client("ec2")
    arn = f"arn:aws:ec2:{REGION}:{account}"
    vpc = root.create_vpc(CidrBlock="10.77.0.0/16")["Vpc"]["VpcId"]
    gateway = root.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    allocation = root.allocate_address(Domain="vpc")["AllocationId"]
    instance_id = root.run_instances(ImageId=setup["image"], MinCount=1, MaxCount=1,
                                     InstanceType="t3.nano")["Instances"][0]["InstanceId"]
    try:
        def allowed(action: str, *resources: str) -> Any:
            return _client(server, [{"Effect": "Allow", "Action": f"ec2:{action}", "Resource": list(resources)}])

        partial = allowed("AssociateAddress", f"{arn}:elastic-ip/*")
        assert _dry(partial.associate_address, AllocationId=allocation, InstanceId=instance_id) == \
            "UnauthorizedOperation"
        full = allowed("AssociateAddress", f"{arn}:elastic-ip/{allocation}", f"{arn}:instance/{instance_id}")
        assert _dry(full.associate_address, AllocationId=allocation, InstanceId=instance_id) == "DryRunOperation"

        partial = allowed("CreateImage", f"{arn}:instance/*")
        assert _dry(partial.create_image, InstanceId=instance_id, Name="authz-image") == "UnauthorizedOperation"
        full = allowed("CreateImage", f"{arn}:instance/*", f"arn:aws:ec2:{REGION}::image/*")
        assert _dry(full.create_image, InstanceId=instance_id, Name="authz-image") == "DryRunOperation"

        partial = allowed("CreateSubnet", f"{arn}:vpc/{vpc}")
        assert _dry(partial.create_subnet, VpcId=vpc, CidrBlock="10.77.1.0/24") == "UnauthorizedOperation"
        zoned = _client(server, [
            {"Effect": "Allow", "Action": "ec2:CreateSubnet", "Resource": f"{arn}:vpc/{vpc}"},
            {"Effect": "Allow", "Action": "ec2:CreateSubnet", "Resource": f"{arn}:subnet/*",
             "Condition": {"StringEquals": {"ec2:AvailabilityZone": "us-east-1a"}}}])
        assert _dry(zoned.create_subnet, VpcId=vpc, CidrBlock="10.77.1.0/24", AvailabilityZone="us-east-1a") == \
            "DryRunOperation"
        zones = [z["ZoneName"] for z in root.describe_availability_zones()["AvailabilityZones"]]
        if len(zones) > 1:
            other_zone = next(z for z in zones if z != "us-east-1a")
            assert _dry(zoned.create_subnet, VpcId=vpc, CidrBlock="10.77.1.0/24", AvailabilityZone=other_zone) == \
                "UnauthorizedOperation"

        partial = allowed("AttachInternetGateway", f"{arn}:internet-gateway/{gateway}")
        assert _dry(partial.attach_internet_gateway, InternetGatewayId=gateway, VpcId=vpc) == "UnauthorizedOperation"
        full = allowed("AttachInternetGateway", f"{arn}:internet-gateway/{gateway}", f"{arn}:vpc/{vpc}")
        assert _dry(full.attach_internet_gateway, InternetGatewayId=gateway, VpcId=vpc) == "DryRunOperation"

        partial = allowed("CreateSecurityGroup", f"{arn}:security-group/*")
        assert _dry(partial.create_security_group, GroupName="authz", Description="d", VpcId=vpc) == \
            "UnauthorizedOperation"
        full = allowed("CreateSecurityGroup", f"{arn}:security-group/*", f"{arn}:vpc/{vpc}")
        assert _dry(full.create_security_group, GroupName="authz", Description="d", VpcId=vpc) == "DryRunOperation"

        partial = allowed("ModifyInstanceAttribute", f"{arn}:instance/{instance_id}")
        assert _dry(partial.modify_instance_attribute, InstanceId=instance_id, Groups=[setup["group"]]) == \
            "UnauthorizedOperation"
        full = allowed("ModifyInstanceAttribute", f"{arn}:instance/{instance_id}", f"{arn}:security-group/*")
        assert _dry(full.modify_instance_attribute, InstanceId=instance_id, Groups=[setup["group"]]) == \
            "DryRunOperation"
        assert _dry(partial.modify_instance_attribute, InstanceId=instance_id,
                    DisableApiTermination={"Value": False}) == "DryRunOperation"  # no group named: none asked

        # A key pair's ARN names it by its name.
        by_id = allowed("DeleteKeyPair", f"{arn}:key-pair/key-*")
        assert _dry(by_id.delete_key_pair, KeyName=setup["key"]) == "UnauthorizedOperation"
        by_name = allowed("DeleteKeyPair", f"{arn}:key-pair/{setup['key']}")
        assert _dry(by_name.delete_key_pair, KeyName=setup["key"]) == "DryRunOperation"

        # An image's ARN has no account, whoever acts on it.
        with_account = allowed("DeregisterImage", f"{arn}:image/{setup['other_image']}")
        assert _dry(with_account.deregister_image, ImageId=setup["other_image"]) == "UnauthorizedOperation"
        without = allowed("DeregisterImage", f"arn:aws:ec2:{REGION}::image/{setup['other_image']}")
        assert _dry(without.deregister_image, ImageId=setup["other_image"]) == "DryRunOperation"
    finally:
        root.terminate_instances(InstanceIds=[instance_id])
        wait_state(root, instance_id, "terminated")
        root.release_address(AllocationId=allocation)
        root.delete_internet_gateway(InternetGatewayId=gateway)
        root.delete_vpc(VpcId=vpc)
