"""RunInstances' validation and the instance documents it writes, in one transaction: a launch
that fails leaves nothing behind."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from minicloud.services.ec2 import store
from minicloud.services.ec2.catalog import FALLBACK_INSTANCE_TYPE, INSTANCE_TYPES
from minicloud.services.ec2.errors import (
    InstanceLimitExceeded,
    InsufficientInstanceCapacity,
    InvalidGroupNotFound,
    InvalidIPAddressInUse,
    InvalidKeyPairNotFound,
    InvalidParameter,
    InvalidParameterCombination,
    InvalidParameterValue,
    InvalidSubnetIDNotFound,
    MissingParameter,
)
from minicloud.services.ec2.ids import new_id
from minicloud.services.ec2.profiles import resolve_profile
from minicloud.services.ec2.store import Resource

STATE_CODES = {"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48, "stopping": 64, "stopped": 80}
LIVE = ("pending", "running", "stopping", "stopped", "shutting-down")
MAX_USER_DATA = 16 * 1024


@dataclass
class LaunchRequest:
    """What RunInstances asked for, once parsed (before anything is looked up)."""

    account_id: str
    region: str
    image: Resource
    min_count: int
    max_count: int
    instance_type: str
    subnet_id: str | None
    zone: str | None
    group_ids: list[str]
    group_names: list[str]
    private_ip: str | None
    user_data: str | None
    key_name: str | None
    profile_name: str | None
    profile_arn: str | None
    client_token: str | None
    tags: list[dict[str, str]]
    shutdown_behavior: str
    disable_api_termination: bool
    associate_public_ip: bool | None
    http_tokens: str = "optional"
    http_endpoint: str = "enabled"
    public_key: str | None = field(default=None)


def parse_request(params: dict[str, Any], account_id: str, region: str, image: Resource,
                  tags: list[dict[str, str]]) -> LaunchRequest:
    min_count, max_count = int(params.get("MinCount") or 0), int(params.get("MaxCount") or 0)
    if min_count < 1 or max_count < min_count:
        raise InvalidParameterValue(f"Invalid value '{min_count}' for minCount: it must be at least 1 and at most "
                                    "maxCount")
    instance_type = params.get("InstanceType") or FALLBACK_INSTANCE_TYPE
    if instance_type not in INSTANCE_TYPES:
        raise InvalidParameterValue(f"Invalid value '{instance_type}' for InstanceType.")
    interfaces = params.get("NetworkInterfaces") or []
    first = interfaces[0] if interfaces else {}
    if len(interfaces) > 1:
        raise InvalidParameterValue("minicloud instances have one network interface")
    private_ip = params.get("PrivateIpAddress") or first.get("PrivateIpAddress")
    if private_ip and max_count > 1:
        raise InvalidParameterCombination("A private IP address can only be given when launching one instance")
    user_data = params.get("UserData")
    if user_data:
        try:
            raw = base64.b64decode(user_data, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidParameterValue("Invalid BASE64 encoding of user data.") from None
        if len(raw) > MAX_USER_DATA:
            raise InvalidParameterValue(f"User data is limited to {MAX_USER_DATA} bytes.")
    behavior = params.get("InstanceInitiatedShutdownBehavior") or "stop"
    if behavior not in ("stop", "terminate"):
        raise InvalidParameterValue(f"Invalid value '{behavior}' for instanceInitiatedShutdownBehavior.")
    profile = params.get("IamInstanceProfile") or {}
    options = params.get("MetadataOptions") or {}
    return LaunchRequest(
        account_id=account_id, region=region, image=image, min_count=min_count, max_count=max_count,
        instance_type=instance_type, subnet_id=params.get("SubnetId") or first.get("SubnetId"),
        zone=(params.get("Placement") or {}).get("AvailabilityZone"),
        group_ids=list(params.get("SecurityGroupIds") or first.get("Groups") or []),
        group_names=list(params.get("SecurityGroups") or []), private_ip=private_ip, user_data=user_data or None,
        key_name=params.get("KeyName"), profile_name=profile.get("Name"), profile_arn=profile.get("Arn"),
        client_token=params.get("ClientToken"), tags=tags, shutdown_behavior=behavior,
        disable_api_termination=bool(params.get("DisableApiTermination")),
        associate_public_ip=first.get("AssociatePublicIpAddress"),
        http_tokens=options.get("HttpTokens") or "optional", http_endpoint=options.get("HttpEndpoint") or "enabled")


def profile_not_found(req: LaunchRequest) -> InvalidParameterValue:
    return InvalidParameterValue(f"Value ({req.profile_name or req.profile_arn}) for parameter "
                                 "iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name")


def resolve_subnet(conn: sa.Connection, req: LaunchRequest) -> Resource:
    """The subnet the launch uses: the one named, else the default subnet (of the zone asked for)."""
    if req.subnet_id:
        subnet = store.get(conn, req.subnet_id, kind="subnet", account_id=req.account_id, region=req.region)
        if subnet is None:
            raise InvalidSubnetIDNotFound(f"The subnet ID '{req.subnet_id}' does not exist")
        return subnet
    defaults = [s for s in store.select(conn, req.account_id, req.region, "subnet") if s.doc.get("DefaultForAz")]
    if not defaults:
        raise MissingParameter("No default VPC for this user. GroupName is only supported for EC2-Classic and "
                               "default VPC. (VPCIdNotSpecified): give a SubnetId")
    if req.zone:
        defaults = [s for s in defaults if s.doc["AvailabilityZone"] == req.zone]
        if not defaults:
            raise InvalidParameterValue(f"Invalid availability zone: [{req.zone}]")
    return defaults[0]


def resolve_groups(conn: sa.Connection, req: LaunchRequest, vpc_id: str) -> list[Resource]:
    """The security groups the launch uses: those named (by id or name), else the VPC's default group."""
    groups = []
    for group_id in req.group_ids:
        group = store.get(conn, group_id, kind="security-group", account_id=req.account_id, region=req.region)
        if group is None:
            raise InvalidGroupNotFound(f"The security group '{group_id}' does not exist")
        if group.vpc_id != vpc_id:
            raise InvalidParameter(f"Security group {group_id} and subnet belong to different networks.")
        groups.append(group)
    for name in req.group_names:
        found = store.select(conn, req.account_id, req.region, "security-group", vpc_id=vpc_id, name=name)
        if not found:
            raise InvalidGroupNotFound(f"The security group '{name}' does not exist in VPC '{vpc_id}'")
        groups.append(found[0])
    if not groups:
        groups = store.select(conn, req.account_id, req.region, "security-group", vpc_id=vpc_id, name="default")
    return list({g.id: g for g in groups}.values())


def _addresses(conn: sa.Connection, req: LaunchRequest, subnet: Resource, count: int) -> list[str]:
    network = ipaddress.IPv4Network(subnet.doc["CidrBlock"])
    used = {r.doc.get("PrivateIpAddress") for r in store.in_vpc(conn, subnet.vpc_id or "")
            if r.kind == "instance" and r.state in LIVE}
    first, last = network.network_address + 4, network.broadcast_address - 1
    if req.private_ip:
        try:
            wanted = ipaddress.IPv4Address(req.private_ip)
        except ValueError:
            raise InvalidParameterValue(f"Invalid value '{req.private_ip}' for privateIpAddress") from None
        if wanted not in network:
            raise InvalidParameterValue(f"Address {wanted} does not fall within the subnet's address range")
        if not first <= wanted <= last:
            raise InvalidParameterValue(f"Address {wanted} is reserved by AWS (the first four and the last address "
                                        "of a subnet)")
        if str(wanted) in used:
            raise InvalidIPAddressInUse(f"Address {wanted} is in use.")
        return [str(wanted)]
    free: list[str] = []
    address = first
    while address <= last and len(free) < count:
        if str(address) not in used:
            free.append(str(address))
        address += 1
    return free


def hostname(private_ip: str, region: str) -> str:
    suffix = "ec2.internal" if region == "us-east-1" else f"{region}.compute.internal"
    return f"ip-{private_ip.replace('.', '-')}.{suffix}"


def public_dns(public_ip: str | None, region: str) -> str:
    if not public_ip:
        return ""
    suffix = "compute-1.amazonaws.com" if region == "us-east-1" else f"{region}.compute.amazonaws.com"
    return f"ec2-{public_ip.replace('.', '-')}.{suffix}"


def launch(conn: sa.Connection, req: LaunchRequest, max_instances: int) -> list[Resource]:
    """Write the reservation's instances (state pending), or raise and write nothing."""
    if req.client_token:
        earlier = [r for r in store.select(conn, req.account_id, req.region, "instance")
                   if r.doc.get("ClientToken") == req.client_token]
        if earlier:
            return earlier
    if req.key_name:
        keys = store.select(conn, req.account_id, req.region, "key-pair", name=req.key_name)
        if not keys:
            raise InvalidKeyPairNotFound(f"The key pair '{req.key_name}' does not exist")
        req.public_key = keys[0].doc["_public_key"]
    profile = None
    if req.profile_name or req.profile_arn:
        profile = resolve_profile(conn, req.account_id, req.profile_name, req.profile_arn)
        if profile is None:
            raise profile_not_found(req)
    subnet = resolve_subnet(conn, req)
    vpc_id = subnet.vpc_id or ""
    groups = resolve_groups(conn, req, vpc_id)
    live = store.count(conn, req.account_id, req.region, "instance", LIVE)
    room = max_instances - live
    if room < req.min_count:
        raise InstanceLimitExceeded(
            f"You have requested more instances ({req.min_count}) than your current instance limit of "
            f"{max_instances} allows for the specified instance type. Please visit "
            "http://aws.amazon.com/contact-us/ec2-request to request an adjustment to this limit.")
    count = min(req.max_count, room)
    addresses = _addresses(conn, req, subnet, count)
    if len(addresses) < req.min_count:
        raise InsufficientInstanceCapacity(f"There are not enough free addresses in subnet '{subnet.id}' to satisfy "
                                           "the requested number of instances.")
    reservation = new_id("reservation")
    now = datetime.now(UTC)
    instances = []
    for index, private_ip in enumerate(addresses[:count]):
        instance = _instance(req, subnet, groups, profile, reservation, index, private_ip, now)
        store.insert(conn, instance)
        instances.append(instance)
    return instances


def _instance(req: LaunchRequest, subnet: Resource, groups: list[Resource], profile: Any, reservation: str,
              index: int, private_ip: str, now: datetime) -> Resource:
    instance_id = new_id("instance")
    itype = INSTANCE_TYPES[req.instance_type]
    mac = "02:" + ":".join(f"{b:02x}" for b in secrets.token_bytes(5))
    private_dns = hostname(private_ip, req.region)
    sg = [{"GroupName": g.name, "GroupId": g.id} for g in groups]
    doc: dict[str, Any] = {
        "InstanceId": instance_id, "ImageId": req.image.id, "State": {"Code": 0, "Name": "pending"},
        "PrivateDnsName": private_dns, "PublicDnsName": "", "StateTransitionReason": "",
        "AmiLaunchIndex": index, "ProductCodes": [], "InstanceType": req.instance_type, "LaunchTime": now.isoformat(),
        "Placement": {"AvailabilityZone": subnet.doc["AvailabilityZone"], "GroupName": "", "Tenancy": "default"},
        "Monitoring": {"State": "disabled"}, "SubnetId": subnet.id, "VpcId": subnet.vpc_id,
        "PrivateIpAddress": private_ip, "Architecture": "x86_64", "RootDeviceType": "ebs",
        "RootDeviceName": "/dev/xvda", "BlockDeviceMappings": [], "EbsOptimized": False, "EnaSupport": True,
        "Hypervisor": "xen", "SecurityGroups": sg, "SourceDestCheck": True, "Tags": list(req.tags),
        "VirtualizationType": "hvm", "PlatformDetails": "Linux/UNIX", "UsageOperation": "RunInstances",
        "CpuOptions": {"CoreCount": max(1, itype.vcpus // 2), "ThreadsPerCore": 1 if itype.vcpus == 1 else 2},
        "MetadataOptions": {"State": "applied", "HttpTokens": req.http_tokens, "HttpPutResponseHopLimit": 1,
                            "HttpEndpoint": req.http_endpoint, "InstanceMetadataTags": "disabled"},
        "NetworkInterfaces": [{
            "NetworkInterfaceId": new_id("network-interface"), "SubnetId": subnet.id, "VpcId": subnet.vpc_id,
            "Description": "", "OwnerId": req.account_id, "Status": "in-use", "MacAddress": mac,
            "PrivateIpAddress": private_ip, "PrivateDnsName": private_dns, "SourceDestCheck": True,
            "Groups": sg, "InterfaceType": "interface",
            "Attachment": {"AttachmentId": f"eni-attach-{secrets.token_hex(9)[:17]}", "DeviceIndex": 0,
                           "Status": "attached", "AttachTime": now.isoformat(), "DeleteOnTermination": True,
                           "NetworkCardIndex": 0},
            "PrivateIpAddresses": [{"Primary": True, "PrivateIpAddress": private_ip, "PrivateDnsName": private_dns}],
        }],
        "_reservation": reservation, "_desired": "running", "_mac": mac, "_image": req.image.doc["_image"],
        "_user_data": req.user_data, "_public_keys": [[req.key_name, req.public_key]] if req.public_key else [],
        "_shutdown_behavior": req.shutdown_behavior, "_disable_api_termination": req.disable_api_termination,
        "_associate_public_ip": req.associate_public_ip, "_reboots": 0,
    }
    if req.key_name:
        doc["KeyName"] = req.key_name
    if req.client_token:
        doc["ClientToken"] = req.client_token
    if profile is not None:
        doc["IamInstanceProfile"] = {"Arn": profile.arn, "Id": profile.profile_id}
        doc["_role_arn"], doc["_role_name"] = profile.role_arn, profile.role_name
    return Resource(instance_id, req.account_id, req.region, "instance", doc, vpc_id=subnet.vpc_id,
                    state="pending", created_at=now)
