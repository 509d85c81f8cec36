"""The resources and condition keys RunInstances is authorized on (minicloud.services.ec2.authorization)."""

from __future__ import annotations

from typing import Any

from minicloud.services.ec2.authorization import Placement, launch_checks
from minicloud.services.ec2.images import MINICLOUD_ALIAS, MINICLOUD_OWNER_ID
from minicloud.services.ec2.launch import parse_request
from minicloud.services.ec2.store import Resource

ACCOUNT, REGION = "123456789012", "us-east-1"


def _image(public: bool) -> Resource:
    owner = MINICLOUD_OWNER_ID if public else ACCOUNT
    doc: dict[str, Any] = {"ImageId": "ami-0123456789abcdef0", "OwnerId": owner, "Public": public,
           "ImageType": "machine", "RootDeviceType": "ebs", "Tags": [{"Key": "stage", "Value": "prod"}]}
    if public:
        doc["ImageOwnerAlias"] = MINICLOUD_ALIAS
    return Resource("ami-0123456789abcdef0", owner, REGION, "image", doc)


def _placement(key: bool) -> Placement:
    subnet = Resource("subnet-1", ACCOUNT, REGION, "subnet", {"AvailabilityZone": "us-east-1b", "Tags": []},
                      vpc_id="vpc-1")
    groups = [Resource(g, ACCOUNT, REGION, "security-group", {"Tags": []}, vpc_id="vpc-1") for g in ("sg-1", "sg-2")]
    key_pair = Resource("key-1", ACCOUNT, REGION, "key-pair", {"KeyName": "me", "KeyType": "ed25519", "Tags": []})
    return Placement(subnet, groups, key_pair if key else None, None)


def test_every_resource_with_its_arn_and_keys() -> None:
    params = {"MinCount": 1, "MaxCount": 1, "InstanceType": "t3.large", "KeyName": "me"}
    tags = {"instance": [{"Key": "team", "Value": "blue"}], "volume": [], "network-interface": []}
    req = parse_request(params, ACCOUNT, REGION, _image(public=True), tags["instance"])
    checks = launch_checks(req, _placement(key=True), tags)
    arns = [(c.action, c.arn) for c in checks]
    prefix = f"arn:aws:ec2:{REGION}:{ACCOUNT}"
    assert arns == [
        ("RunInstances", f"{prefix}:instance/*"),
        ("RunInstances", f"arn:aws:ec2:{REGION}::image/ami-0123456789abcdef0"),
        ("RunInstances", f"{prefix}:subnet/subnet-1"), ("RunInstances", f"{prefix}:security-group/sg-1"),
        ("RunInstances", f"{prefix}:security-group/sg-2"), ("RunInstances", f"{prefix}:network-interface/*"),
        ("RunInstances", f"{prefix}:volume/*"), ("RunInstances", f"{prefix}:key-pair/me"),
        ("CreateTags", f"{prefix}:instance/*")]
    instance, image, subnet, group = (checks[i].context for i in range(4))
    assert instance["ec2:InstanceType"] == "t3.large" and instance["ec2:AvailabilityZone"] == "us-east-1b"
    assert instance["aws:RequestTag/team"] == "blue" and instance["aws:TagKeys"] == ["team"]
    assert image["ec2:Owner"] == "amazon" and image["ec2:Public"] == "true" and image["ec2:ImageType"] == "machine"
    assert image["aws:ResourceTag/stage"] == "prod" and "aws:RequestTag/team" not in image
    assert subnet["ec2:Vpc"] == f"{prefix}:vpc/vpc-1" and group["ec2:SecurityGroupID"] == "sg-1"
    assert checks[5].context["ec2:Subnet"] == f"{prefix}:subnet/subnet-1"
    assert checks[7].context["ec2:KeyPairType"] == "ed25519"
    assert checks[8].context["ec2:CreateAction"] == "RunInstances"


def test_no_key_pair_no_tags_private_image() -> None:
    req = parse_request({"MinCount": 1, "MaxCount": 2}, ACCOUNT, REGION, _image(public=False), [])
    checks = launch_checks(req, _placement(key=False), {})
    assert not any(":key-pair/" in c.arn or c.action == "CreateTags" for c in checks)
    assert checks[0].context["ec2:InstanceType"] == "t3.micro"  # the default type
    assert checks[1].context["ec2:Owner"] == ACCOUNT and checks[1].context["ec2:Public"] == "false"
