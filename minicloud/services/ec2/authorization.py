"""RunInstances' authorization as EC2 does it: the action is authorized on every resource a launch
uses or creates, each with its own ARN and condition keys (Service Authorization Reference, "Actions
defined by Amazon EC2", RunInstances): the instance, the image (``arn:aws:ec2:REGION::image/ami-*``,
no account), the subnet, each security group, the key pair when one is named, and the network
interface and (root) volume it creates; tags given at launch are also authorized as ``ec2:CreateTags``
with ``ec2:CreateAction`` = ``RunInstances``.

The subnet and groups are the ones the launch really uses (the default subnet and the VPC's default
group when the request names none), resolved by ``resolve_placement`` before anything is written."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from minicloud.aws.context import RequestContext
from minicloud.services.ec2 import store
from minicloud.services.ec2.base import request_tag_keys, resource_tag_keys
from minicloud.services.ec2.errors import InvalidKeyPairNotFound
from minicloud.services.ec2.images import MINICLOUD_ALIAS
from minicloud.services.ec2.launch import LaunchRequest, profile_not_found, resolve_groups, resolve_subnet
from minicloud.services.ec2.profiles import ProfileRef, resolve_profile
from minicloud.services.ec2.store import Resource

Keys = dict[str, str | list[str]]
ACTION = "RunInstances"
# TagSpecifications' resource types a launch creates (and so may tag).
CREATED_TYPES = ("instance", "volume", "network-interface")


@dataclass(frozen=True)
class Placement:
    """What a launch uses, as resolved before it is authorized."""

    subnet: Resource
    groups: list[Resource]
    key_pair: Resource | None
    profile: ProfileRef | None


@dataclass(frozen=True)
class Check:
    action: str
    arn: str
    context: Keys


def resolve_placement(conn: sa.Connection, req: LaunchRequest) -> Placement:
    """The subnet, security groups and key pair the launch will use (a read; EC2's not-found errors)."""
    subnet = resolve_subnet(conn, req)
    groups = resolve_groups(conn, req, subnet.vpc_id or "")
    key_pair = None
    if req.key_name:
        keys = store.select(conn, req.account_id, req.region, "key-pair", name=req.key_name)
        if not keys:
            raise InvalidKeyPairNotFound(f"The key pair '{req.key_name}' does not exist")
        key_pair = keys[0]
    profile = None
    if req.profile_name or req.profile_arn:
        profile = resolve_profile(conn, req.account_id, req.profile_name, req.profile_arn)
        if profile is None:
            raise profile_not_found(req)
    return Placement(subnet, groups, key_pair, profile)


def launch_checks(req: LaunchRequest, placement: Placement,
                  tags_by_type: dict[str, list[dict[str, str]]]) -> list[Check]:
    """Every (action, ARN, condition keys) RunInstances is authorized on, in EC2's order of resources."""
    region, account = req.region, req.account_id
    subnet = placement.subnet
    zone = str(subnet.doc["AvailabilityZone"])
    vpc_arn = f"arn:aws:ec2:{region}:{account}:vpc/{subnet.vpc_id}"
    subnet_arn = f"arn:aws:ec2:{region}:{account}:subnet/{subnet.id}"
    common: Keys = {"ec2:Region": region, "ec2:IsLaunchTemplateResource": "false"}

    def created(kind: str, extra: Keys) -> Keys:
        return {**common, **extra, **request_tag_keys(tags_by_type.get(kind, []))}

    instance: Keys = {
        "ec2:InstanceType": req.instance_type, "ec2:AvailabilityZone": zone, "ec2:RootDeviceType": "ebs",
        "ec2:Tenancy": "default", "ec2:EbsOptimized": "false", "ec2:InstanceMarketType": "on-demand",
        "ec2:MetadataHttpTokens": req.http_tokens, "ec2:MetadataHttpEndpoint": req.http_endpoint,
        "ec2:MetadataHttpPutResponseHopLimit": "1"}
    if placement.profile is not None:
        instance["ec2:InstanceProfile"] = placement.profile.arn
    image = req.image
    owner = "amazon" if image.doc.get("ImageOwnerAlias") == MINICLOUD_ALIAS else str(image.doc["OwnerId"])
    image_keys: Keys = {**common, "ec2:ImageID": image.id, "ec2:ImageType": str(image.doc.get("ImageType", "machine")),
                        "ec2:Owner": owner, "ec2:Public": "true" if image.doc.get("Public") else "false",
                        "ec2:RootDeviceType": str(image.doc.get("RootDeviceType", "ebs")), **resource_tag_keys(image)}
    interface: Keys = {"ec2:AvailabilityZone": zone, "ec2:Subnet": subnet_arn, "ec2:Vpc": vpc_arn}
    if req.associate_public_ip is not None:
        interface["ec2:AssociatePublicIpAddress"] = "true" if req.associate_public_ip else "false"
    checks = [
        Check(ACTION, f"arn:aws:ec2:{region}:{account}:instance/*", created("instance", instance)),
        Check(ACTION, f"arn:aws:ec2:{region}::image/{image.id}", image_keys),
        Check(ACTION, subnet_arn, {**common, "ec2:AvailabilityZone": zone, "ec2:SubnetID": subnet.id,
                                   "ec2:Vpc": vpc_arn, **resource_tag_keys(subnet)}),
    ]
    for group in placement.groups:
        checks.append(Check(ACTION, f"arn:aws:ec2:{region}:{account}:security-group/{group.id}",
                            {**common, "ec2:SecurityGroupID": group.id, "ec2:Vpc": vpc_arn,
                             **resource_tag_keys(group)}))
    checks.append(Check(ACTION, f"arn:aws:ec2:{region}:{account}:network-interface/*",
                        created("network-interface", interface)))
    checks.append(Check(ACTION, f"arn:aws:ec2:{region}:{account}:volume/*",
                        created("volume", {"ec2:AvailabilityZone": zone, "ec2:Encrypted": "false"})))
    key_pair = placement.key_pair
    if key_pair is not None:
        checks.append(Check(ACTION, f"arn:aws:ec2:{region}:{account}:key-pair/{key_pair.doc['KeyName']}",
                            {**common, "ec2:KeyPairName": str(key_pair.doc["KeyName"]),
                             "ec2:KeyPairType": str(key_pair.doc.get("KeyType") or "rsa"),
                             **resource_tag_keys(key_pair)}))
    for kind in CREATED_TYPES:
        tags = tags_by_type.get(kind)
        if tags:
            checks.append(Check("CreateTags", f"arn:aws:ec2:{region}:{account}:{kind}/*",
                                {**common, "ec2:CreateAction": ACTION, **request_tag_keys(tags)}))
    return checks


async def authorize_launch(ctx: RequestContext, checks: list[Check]) -> None:
    """Raise UnauthorizedOperation at the first resource the caller may not use."""
    for check in checks:
        await ctx.authorize(f"ec2:{check.action}", check.arn, context=check.context)
