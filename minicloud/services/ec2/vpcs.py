"""VPCs, subnets and network ACLs."""

from __future__ import annotations

import ipaddress
import random
from typing import Any

import sqlalchemy as sa

from minicloud.aws.context import RequestContext
from minicloud.services.ec2 import builders, store
from minicloud.services.ec2.base import Ec2Base, request_tag_keys
from minicloud.services.ec2.errors import (
    DependencyViolation,
    InvalidNetworkAclIDNotFound,
    InvalidParameterCombination,
    InvalidParameterValue,
    InvalidSubnetConflict,
    InvalidSubnetIDNotFound,
    InvalidSubnetRange,
    InvalidVpcIDNotFound,
    InvalidVpcRange,
    MissingParameter,
)
from minicloud.services.ec2.filters import member
from minicloud.services.ec2.store import Resource, public

LIVE_INSTANCE_STATES = ("pending", "running", "stopping", "stopped", "shutting-down")


def vpc_not_found(vpc_id: str) -> InvalidVpcIDNotFound:
    return InvalidVpcIDNotFound(f"The vpc ID '{vpc_id}' does not exist")


def subnet_not_found(subnet_id: str) -> InvalidSubnetIDNotFound:
    return InvalidSubnetIDNotFound(f"The subnet ID '{subnet_id}' does not exist")


def parse_cidr(cidr: str, parameter: str) -> ipaddress.IPv4Network:
    try:
        network = ipaddress.IPv4Network(cidr, strict=False)
    except ValueError:
        raise InvalidParameterValue(f"Value ({cidr}) for parameter {parameter} is invalid. "
                                    "This is not a valid CIDR block.") from None
    if "/" not in cidr:
        raise InvalidParameterValue(f"Value ({cidr}) for parameter {parameter} is invalid. "
                                    "This is not a valid CIDR block.")
    return network


VPC_FILTERS = {
    "vpc-id": member("VpcId"), "cidr": member("CidrBlock"), "cidr-block": member("CidrBlock"),
    "cidr-block-association.cidr-block": member("CidrBlockAssociationSet", "CidrBlock"),
    "cidr-block-association.association-id": member("CidrBlockAssociationSet", "AssociationId"),
    "dhcp-options-id": member("DhcpOptionsId"), "is-default": member("IsDefault"), "owner-id": member("OwnerId"),
    "state": member("State"),
}

SUBNET_FILTERS = {
    "subnet-id": member("SubnetId"), "vpc-id": member("VpcId"), "cidr": member("CidrBlock"),
    "cidr-block": member("CidrBlock"), "cidrBlock": member("CidrBlock"),
    "availability-zone": member("AvailabilityZone"), "availabilityZone": member("AvailabilityZone"),
    "availability-zone-id": member("AvailabilityZoneId"), "default-for-az": member("DefaultForAz"),
    "defaultForAz": member("DefaultForAz"), "map-public-ip-on-launch": member("MapPublicIpOnLaunch"),
    "owner-id": member("OwnerId"), "state": member("State"), "subnet-arn": member("SubnetArn"),
}

ACL_FILTERS = {"network-acl-id": member("NetworkAclId"), "vpc-id": member("VpcId"),
               "default": member("IsDefault"), "owner-id": member("OwnerId")}


class VpcsMixin(Ec2Base):
    # -- VPCs ------------------------------------------------------------------------------------------
    async def create_vpc(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        await self.begin(ctx, params, "CreateVpc", "vpc/*", context=request_tag_keys(self.tags_for(params, "vpc")))
        cidr = params.get("CidrBlock")
        if not cidr:
            raise MissingParameter("The request must contain the parameter cidrBlock")
        network = parse_cidr(cidr, "cidrBlock")
        if not 16 <= network.prefixlen <= 28:
            raise InvalidVpcRange(f"The CIDR '{cidr}' is invalid.")
        tenancy = params.get("InstanceTenancy") or "default"
        if tenancy != "default":
            raise InvalidParameterValue(f"minicloud runs only default tenancy, not '{tenancy}'")
        resources = builders.vpc(ctx.account_id, ctx.region, str(network), tags=self.tags_for(params, "vpc"))

        def create(conn: sa.Connection) -> None:
            for resource in resources:
                store.insert(conn, resource)
        await self.runtime.db.write(create)
        return {"Vpc": public(resources[0].doc)}

    async def describe_vpcs(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        await self.begin(ctx, params, "DescribeVpcs")
        vpcs = await self.select(ctx, "vpc", params.get("VpcIds"), params.get("Filters"), VPC_FILTERS,
                                 vpc_not_found)
        items, token = self.page(vpcs, params)
        out: dict[str, Any] = {"Vpcs": [public(v.doc) for v in items]}
        if token:
            out["NextToken"] = token
        return out

    async def delete_vpc(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        vpc_id = params["VpcId"]
        await self.begin_each(ctx, params, "DeleteVpc", [await self.find(ctx, "vpc", vpc_id, vpc_not_found)])

        def delete(conn: sa.Connection) -> None:
            members = store.in_vpc(conn, vpc_id)
            for resource in members:
                if resource.kind == "vpc":
                    continue
                if self._blocks_vpc_deletion(resource):
                    raise DependencyViolation(f"The vpc '{vpc_id}' has dependencies and cannot be deleted.")
            for resource in members:
                if resource.kind == "instance":
                    continue  # terminated ones age out by themselves
                store.delete(conn, resource.id)
        await self.runtime.db.write(delete)
        self.wake_controller()
        return {}

    @staticmethod
    def _blocks_vpc_deletion(resource: Resource) -> bool:
        if resource.kind in ("subnet", "internet-gateway"):
            return True
        if resource.kind == "instance":
            return resource.state in LIVE_INSTANCE_STATES
        if resource.kind == "route-table":
            return not any(a.get("Main") for a in resource.doc["Associations"])
        if resource.kind == "security-group":
            return resource.name != "default"
        if resource.kind == "address":
            return False
        return resource.kind != "network-acl"

    async def modify_vpc_attribute(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        vpc_id = params["VpcId"]
        vpc = await self.find(ctx, "vpc", vpc_id, vpc_not_found)
        await self.begin_each(ctx, params, "ModifyVpcAttribute", [vpc])
        changes = {"_dns_support": params.get("EnableDnsSupport"), "_dns_hostnames": params.get("EnableDnsHostnames")}
        changes = {k: v["Value"] for k, v in changes.items() if v is not None}
        if len(changes) != 1:
            raise InvalidParameterCombination("Exactly one attribute may be modified at a time")
        vpc.doc.update(changes)
        await self.runtime.db.write(lambda conn: store.save(conn, vpc))
        return {}

    async def describe_vpc_attribute(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        vpc_id = params["VpcId"]
        vpc = await self.find(ctx, "vpc", vpc_id, vpc_not_found)
        await self.begin_each(ctx, params, "DescribeVpcAttribute", [vpc])
        attribute = params["Attribute"]
        key = {"enableDnsSupport": ("_dns_support", "EnableDnsSupport"),
               "enableDnsHostnames": ("_dns_hostnames", "EnableDnsHostnames")}.get(attribute)
        if key is None:
            raise InvalidParameterValue(f"Value ({attribute}) for parameter attribute is invalid.")
        return {"VpcId": vpc_id, key[1]: {"Value": bool(vpc.doc.get(key[0]))}}

    # -- subnets ---------------------------------------------------------------------------------------
    async def create_subnet(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        vpc_id = params["VpcId"]
        cidr = params.get("CidrBlock")
        if not cidr:
            raise MissingParameter("The request must contain the parameter cidrBlock")
        network = parse_cidr(cidr, "cidrBlock")
        zone = self._zone(ctx, params.get("AvailabilityZone"), params.get("AvailabilityZoneId"))
        tags = self.tags_for(params, "subnet")
        # Authorized on the VPC (its tags) and on the subnet it creates (zone, VPC, request tags), as EC2 does.
        await self.begin_each(ctx, params, "CreateSubnet", [await self.find(ctx, "vpc", vpc_id, vpc_not_found)],
                              created=[("subnet/*", {"ec2:AvailabilityZone": zone.name, "ec2:Region": ctx.region,
                                                     "ec2:Vpc": self.arn(ctx, f"vpc/{vpc_id}"),
                                                     **request_tag_keys(tags)})])

        def create(conn: sa.Connection) -> Resource:
            vpc = store.get(conn, vpc_id, kind="vpc", account_id=ctx.account_id, region=ctx.region)
            if vpc is None:
                raise vpc_not_found(vpc_id)
            block = ipaddress.IPv4Network(vpc.doc["CidrBlock"])
            if not 16 <= network.prefixlen <= 28 or not network.subnet_of(block):
                raise InvalidSubnetRange(f"The CIDR '{cidr}' is invalid.")
            for other in store.select(conn, ctx.account_id, ctx.region, "subnet", vpc_id=vpc_id):
                if network.overlaps(ipaddress.IPv4Network(other.doc["CidrBlock"])):
                    raise InvalidSubnetConflict(f"The CIDR '{cidr}' conflicts with another subnet")
            subnet = builders.subnet(ctx.account_id, ctx.region, vpc_id, str(network), zone, tags=tags)
            store.insert(conn, subnet)
            return subnet
        subnet = await self.runtime.db.write(create)
        return {"Subnet": self.subnet_view(subnet, 0)}

    def _zone(self, ctx: RequestContext, name: str | None, zone_id: str | None) -> Any:
        zones = self.runtime.topology.zones(ctx.region)
        if name is None and zone_id is None:
            return random.choice(zones)
        for zone in zones:
            if zone.name == name or zone.zone_id == zone_id:
                return zone
        listed = ", ".join(z.name for z in zones)
        raise InvalidParameterValue(f"Value ({name or zone_id}) for parameter availabilityZone is invalid. "
                                    f"Subnets can currently only be created in the following availability "
                                    f"zones: {listed}.")

    @staticmethod
    def subnet_view(subnet: Resource, used: int) -> dict[str, Any]:
        network = ipaddress.IPv4Network(subnet.doc["CidrBlock"])
        return {**public(subnet.doc), "AvailableIpAddressCount": network.num_addresses - 5 - used}

    async def describe_subnets(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        await self.begin(ctx, params, "DescribeSubnets")
        subnets = await self.select(ctx, "subnet", params.get("SubnetIds"), params.get("Filters"), SUBNET_FILTERS,
                                    subnet_not_found)
        items, token = self.page(subnets, params)
        instances = await self.runtime.db.read(lambda conn: store.select(
            conn, ctx.account_id, ctx.region, "instance", states=LIVE_INSTANCE_STATES))
        used: dict[str, int] = {}
        for instance in instances:
            used[instance.doc.get("SubnetId", "")] = used.get(instance.doc.get("SubnetId", ""), 0) + 1
        out: dict[str, Any] = {"Subnets": [self.subnet_view(s, used.get(s.id, 0)) for s in items]}
        if token:
            out["NextToken"] = token
        return out

    async def delete_subnet(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        subnet_id = params["SubnetId"]
        subnet = await self.find(ctx, "subnet", subnet_id, subnet_not_found)
        await self.begin_each(ctx, params, "DeleteSubnet", [subnet])

        def delete(conn: sa.Connection) -> None:
            for resource in store.in_vpc(conn, subnet.vpc_id or ""):
                if resource.kind == "instance" and resource.doc.get("SubnetId") == subnet_id and \
                        resource.state in LIVE_INSTANCE_STATES:
                    raise DependencyViolation(f"The subnet '{subnet_id}' has dependencies and cannot be deleted.")
                if resource.kind == "route-table":
                    kept = [a for a in resource.doc["Associations"] if a.get("SubnetId") != subnet_id]
                    if len(kept) != len(resource.doc["Associations"]):
                        resource.doc["Associations"] = kept
                        store.save(conn, resource)
            store.delete(conn, subnet_id)
        await self.runtime.db.write(delete)
        self.wake_controller()
        return {}

    async def modify_subnet_attribute(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        subnet_id = params["SubnetId"]
        subnet = await self.find(ctx, "subnet", subnet_id, subnet_not_found)
        await self.begin_each(ctx, params, "ModifySubnetAttribute", [subnet])
        attributes = {"MapPublicIpOnLaunch": params.get("MapPublicIpOnLaunch"),
                      "AssignIpv6AddressOnCreation": params.get("AssignIpv6AddressOnCreation")}
        given = {k: v["Value"] for k, v in attributes.items() if v is not None}
        if len(given) != 1:
            raise InvalidParameterCombination("Specify exactly one attribute: minicloud supports "
                                              "MapPublicIpOnLaunch")
        if given.get("AssignIpv6AddressOnCreation"):
            raise InvalidParameterValue("minicloud's subnets are IPv4 only")
        subnet.doc.update(given)
        await self.runtime.db.write(lambda conn: store.save(conn, subnet))
        return {}

    # -- network ACLs (the default one of each VPC: allow all) -------------------------------------------
    async def describe_network_acls(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        await self.begin(ctx, params, "DescribeNetworkAcls")
        acls = await self.select(ctx, "network-acl", params.get("NetworkAclIds"), params.get("Filters"),
                                 ACL_FILTERS, lambda i: InvalidNetworkAclIDNotFound(
                                     f"The network ACL '{i}' does not exist"))
        items, token = self.page(acls, params)
        out: dict[str, Any] = {"NetworkAcls": [public(a.doc) for a in items]}
        if token:
            out["NextToken"] = token
        return out

