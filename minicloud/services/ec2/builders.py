"""New VPC resources as EC2 describes them (documents for ``store``): a VPC comes with its main
route table, default security group and default network ACL, as on AWS."""

from __future__ import annotations

from typing import Any

from minicloud.services.ec2 import sgrules
from minicloud.services.ec2.ids import new_id
from minicloud.services.ec2.store import Resource
from minicloud.topology import Zone

DHCP_OPTIONS_ID = "dopt-00000000000000001"


def vpc(account_id: str, region: str, cidr: str, *, default: bool = False,
        tags: list[dict[str, str]] | None = None) -> list[Resource]:
    """The VPC with its main route table, default security group and default network ACL."""
    vpc_id = new_id("vpc")
    doc: dict[str, Any] = {
        "VpcId": vpc_id, "CidrBlock": cidr, "DhcpOptionsId": DHCP_OPTIONS_ID, "State": "available",
        "OwnerId": account_id, "InstanceTenancy": "default", "IsDefault": default, "Tags": tags or [],
        "CidrBlockAssociationSet": [{"AssociationId": new_id("cidr-association"), "CidrBlock": cidr,
                                     "CidrBlockState": {"State": "associated"}}],
        "Ipv6CidrBlockAssociationSet": [],
        "_dns_support": True, "_dns_hostnames": default,
    }
    return [Resource(vpc_id, account_id, region, "vpc", doc, vpc_id=vpc_id),
            route_table(account_id, region, vpc_id, cidr, main=True),
            security_group(account_id, region, vpc_id, "default", "default VPC security group", default=True),
            network_acl(account_id, region, vpc_id)]


def route_table(account_id: str, region: str, vpc_id: str, cidr: str, *, main: bool = False,
                tags: list[dict[str, str]] | None = None) -> Resource:
    table_id = new_id("route-table")
    associations = []
    if main:
        associations.append({"Main": True, "RouteTableAssociationId": new_id("rtb-association"),
                             "RouteTableId": table_id, "AssociationState": {"State": "associated"}})
    doc = {"RouteTableId": table_id, "VpcId": vpc_id, "OwnerId": account_id, "PropagatingVgws": [],
           "Routes": [{"DestinationCidrBlock": cidr, "GatewayId": "local", "Origin": "CreateRouteTable",
                       "State": "active"}],
           "Associations": associations, "Tags": tags or []}
    return Resource(table_id, account_id, region, "route-table", doc, vpc_id=vpc_id)


def security_group(account_id: str, region: str, vpc_id: str, name: str, description: str, *,
                   default: bool = False, tags: list[dict[str, str]] | None = None) -> Resource:
    group_id = new_id("security-group")
    rules = [{"egress": True, "proto": "-1", "from": -1, "to": -1, "cidr": "0.0.0.0/0", "group": None,
              "owner": account_id, "desc": ""}]
    if default:
        rules.append({"egress": False, "proto": "-1", "from": -1, "to": -1, "cidr": None, "group": group_id,
                      "owner": account_id, "desc": ""})
    doc = {"GroupId": group_id, "GroupName": name, "Description": description, "VpcId": vpc_id,
           "OwnerId": account_id, "Tags": tags or [], "_rules": sgrules.with_ids(rules),
           "SecurityGroupArn": f"arn:aws:ec2:{region}:{account_id}:security-group/{group_id}"}
    return Resource(group_id, account_id, region, "security-group", doc, vpc_id=vpc_id, name=name)


def network_acl(account_id: str, region: str, vpc_id: str) -> Resource:
    acl_id = new_id("network-acl")
    entries = [{"CidrBlock": "0.0.0.0/0", "Egress": egress, "Protocol": "-1", "RuleAction": action,
                "RuleNumber": number} for egress in (True, False)
               for number, action in ((100, "allow"), (32767, "deny"))]
    doc = {"NetworkAclId": acl_id, "VpcId": vpc_id, "IsDefault": True, "OwnerId": account_id,
           "Entries": entries, "Associations": [], "Tags": []}
    return Resource(acl_id, account_id, region, "network-acl", doc, vpc_id=vpc_id)


def subnet(account_id: str, region: str, vpc_id: str, cidr: str, zone: Zone, *, default: bool = False,
           tags: list[dict[str, str]] | None = None) -> Resource:
    subnet_id = new_id("subnet")
    doc = {"SubnetId": subnet_id, "VpcId": vpc_id, "CidrBlock": cidr, "AvailabilityZone": zone.name,
           "AvailabilityZoneId": zone.zone_id, "State": "available", "DefaultForAz": default,
           "MapPublicIpOnLaunch": default, "MapCustomerOwnedIpOnLaunch": False, "OwnerId": account_id,
           "AssignIpv6AddressOnCreation": False, "Ipv6CidrBlockAssociationSet": [], "Tags": tags or [],
           "SubnetArn": f"arn:aws:ec2:{region}:{account_id}:subnet/{subnet_id}", "EnableDns64": False,
           "Ipv6Native": False}
    return Resource(subnet_id, account_id, region, "subnet", doc, vpc_id=vpc_id)


def internet_gateway(account_id: str, region: str, tags: list[dict[str, str]] | None = None) -> Resource:
    gateway_id = new_id("internet-gateway")
    doc = {"InternetGatewayId": gateway_id, "OwnerId": account_id, "Attachments": [], "Tags": tags or []}
    return Resource(gateway_id, account_id, region, "internet-gateway", doc)
