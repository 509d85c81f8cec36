"""Network interfaces (each instance's primary one, made with it) and the DHCP options every VPC
uses (AmazonProvidedDNS, as a new account's default set)."""

from __future__ import annotations

from typing import Any

from minicloud.aws.context import RequestContext
from minicloud.services.ec2 import store
from minicloud.services.ec2.base import Ec2Base
from minicloud.services.ec2.builders import DHCP_OPTIONS_ID
from minicloud.services.ec2.errors import InvalidDhcpOptionIDNotFound, InvalidNetworkInterfaceIDNotFound
from minicloud.services.ec2.filters import check, matches, member
from minicloud.services.ec2.instances import instance_view
from minicloud.services.ec2.store import Resource

INTERFACE_FILTERS = {
    "network-interface-id": member("NetworkInterfaceId"), "subnet-id": member("SubnetId"),
    "vpc-id": member("VpcId"), "attachment.instance-id": member("Attachment", "InstanceId"),
    "attachment.status": member("Attachment", "Status"), "private-ip-address": member("PrivateIpAddress"),
    "addresses.private-ip-address": member("PrivateIpAddresses", "PrivateIpAddress"),
    "group-id": member("Groups", "GroupId"), "group-name": member("Groups", "GroupName"),
    "status": member("Status"), "mac-address": member("MacAddress"), "availability-zone": member("AvailabilityZone"),
    "owner-id": member("OwnerId"), "association.public-ip": member("Association", "PublicIp"),
    "interface-type": member("InterfaceType"), "description": member("Description"),
}
DHCP_FILTERS = {"dhcp-options-id": member("DhcpOptionsId"), "owner-id": member("OwnerId"),
                "key": member("DhcpConfigurations", "Key")}


def interface_of(instance: Resource) -> Resource:
    """The instance's primary network interface as DescribeNetworkInterfaces shows it."""
    view = instance_view(instance)
    eni = dict(view["NetworkInterfaces"][0])
    eni["Attachment"] = {**eni["Attachment"], "InstanceId": instance.id, "InstanceOwnerId": instance.account_id}
    eni.update({"AvailabilityZone": view["Placement"]["AvailabilityZone"], "RequesterManaged": False,
                "TagSet": [], "Ipv6Addresses": []})
    return Resource(eni["NetworkInterfaceId"], instance.account_id, instance.region, "network-interface", eni,
                    vpc_id=instance.vpc_id)


def dhcp_options(account_id: str, region: str) -> dict[str, Any]:
    domain = "ec2.internal" if region == "us-east-1" else f"{region}.compute.internal"
    return {"DhcpOptionsId": DHCP_OPTIONS_ID, "OwnerId": account_id, "Tags": [], "DhcpConfigurations": [
        {"Key": "domain-name", "Values": [{"Value": domain}]},
        {"Key": "domain-name-servers", "Values": [{"Value": "AmazonProvidedDNS"}]}]}


class InterfacesMixin(Ec2Base):
    async def describe_network_interfaces(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        await self.begin(ctx, params, "DescribeNetworkInterfaces")
        check(params.get("Filters"), INTERFACE_FILTERS)
        instances = await self.runtime.db.read(lambda conn: store.select(conn, ctx.account_id, ctx.region,
                                                                         "instance"))
        interfaces = [interface_of(i) for i in instances if i.state != "terminated"]
        wanted = params.get("NetworkInterfaceIds")
        if wanted:
            have = {i.id for i in interfaces}
            for interface_id in wanted:
                if interface_id not in have:
                    raise InvalidNetworkInterfaceIDNotFound(
                        f"The networkInterface ID '{interface_id}' does not exist")
            interfaces = [i for i in interfaces if i.id in wanted]
        interfaces = [i for i in interfaces if matches(i, params.get("Filters"), INTERFACE_FILTERS)]
        items, token = self.page(interfaces, params)
        out: dict[str, Any] = {"NetworkInterfaces": [i.doc for i in items]}
        if token:
            out["NextToken"] = token
        return out

    async def describe_dhcp_options(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        await self.begin(ctx, params, "DescribeDhcpOptions")
        check(params.get("Filters"), DHCP_FILTERS)
        options = dhcp_options(ctx.account_id, ctx.region)
        for options_id in params.get("DhcpOptionsIds") or []:
            if options_id != DHCP_OPTIONS_ID:
                raise InvalidDhcpOptionIDNotFound(f"The dhcpOption ID '{options_id}' does not exist")
        found = Resource(DHCP_OPTIONS_ID, ctx.account_id, ctx.region, "dhcp-options", options)
        return {"DhcpOptions": [options] if matches(found, params.get("Filters"), DHCP_FILTERS) else []}
