"""Elastic IPs: 127.x addresses from minicloud's public pool, allocated to an account and mapped to
an instance's private address while associated (the controller tells the data plane)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from minicloud.aws.context import RequestContext
from minicloud.services.ec2 import store
from minicloud.services.ec2.base import Ec2Base
from minicloud.services.ec2.errors import (
    AddressLimitExceeded,
    GatewayNotAttached,
    IncorrectInstanceState,
    InsufficientAddressCapacity,
    InvalidAddressNotFound,
    InvalidAllocationIDNotFound,
    InvalidAssociationIDNotFound,
    InvalidInstanceIDNotFound,
    InvalidIPAddressInUse,
    MissingParameter,
    ResourceAlreadyAssociated,
)
from minicloud.services.ec2.filters import check, matches, member
from minicloud.services.ec2.ids import new_id
from minicloud.services.ec2.launch import public_dns
from minicloud.services.ec2.store import Resource, public

ADDRESS_FILTERS = {
    "allocation-id": member("AllocationId"), "association-id": member("AssociationId"),
    "instance-id": member("InstanceId"), "public-ip": member("PublicIp"), "domain": member("Domain"),
    "private-ip-address": member("PrivateIpAddress"), "network-interface-id": member("NetworkInterfaceId"),
    "network-border-group": member("NetworkBorderGroup"),
}
ASSOCIATION_KEYS = ("InstanceId", "AssociationId", "NetworkInterfaceId", "PrivateIpAddress", "NetworkInterfaceOwnerId")


def allocation_not_found(allocation_id: str) -> InvalidAllocationIDNotFound:
    return InvalidAllocationIDNotFound(f"The allocation ID '{allocation_id}' does not exist")


class AddressesMixin(Ec2Base):
    async def allocate_address(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        await self.begin(ctx, params, "AllocateAddress", "elastic-ip/*")
        if params.get("Address") or params.get("CustomerOwnedIpv4Pool"):
            raise MissingParameter("minicloud allocates from its own pool: Address and BYOIP pools are not supported")
        allocation_id = new_id("address")
        tags = self.tags_for(params, "elastic-ip")
        pool, limit = self.settings.public_ip_pool, self.settings.max_elastic_ips

        def allocate(conn: sa.Connection) -> Resource:
            if len(store.select(conn, ctx.account_id, ctx.region, "address")) >= limit:
                raise AddressLimitExceeded("The maximum number of addresses has been reached.")
            address = store.take_public_ip(conn, pool, ctx.account_id, ctx.region, allocation_id)
            if address is None:
                raise InsufficientAddressCapacity(f"minicloud's public address pool {pool} is exhausted")
            doc = {"AllocationId": allocation_id, "PublicIp": address, "Domain": "vpc", "PublicIpv4Pool": "amazon",
                   "NetworkBorderGroup": ctx.region, "Tags": tags}
            resource = Resource(allocation_id, ctx.account_id, ctx.region, "address", doc, name=address)
            store.insert(conn, resource)
            return resource
        resource = await self.runtime.db.write(allocate)
        doc = public(resource.doc)
        doc.pop("Tags")
        return doc

    async def associate_address(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        instance_id = params.get("InstanceId")
        if not instance_id:
            raise MissingParameter("minicloud associates Elastic IPs with instances: InstanceId is required")

        def lookup(conn: sa.Connection) -> list[Resource]:
            eip = self._address_sync(conn, ctx, params)
            instance = store.get(conn, instance_id, kind="instance", account_id=ctx.account_id, region=ctx.region)
            if instance is None:
                raise InvalidInstanceIDNotFound(f"The instance ID '{instance_id}' does not exist")
            return [eip, instance]
        # Authorized on the Elastic IP's ARN and the instance's, each with its tags, as EC2 does.
        await self.begin_each(ctx, params, "AssociateAddress", await self.runtime.db.read(lookup))
        association_id = new_id("association")

        def associate(conn: sa.Connection) -> str:
            eip = self._address_sync(conn, ctx, params)
            instance = store.get(conn, instance_id, kind="instance", account_id=ctx.account_id,
                                 region=ctx.region)
            if instance is None:
                raise InvalidInstanceIDNotFound(f"The instance ID '{instance_id}' does not exist")
            if instance.state not in ("pending", "running", "stopping", "stopped"):
                raise IncorrectInstanceState(f"The instance '{instance_id}' is not in a valid state for this "
                                             "operation.")
            if not any(r.kind == "internet-gateway" for r in store.in_vpc(conn, instance.vpc_id or "")):
                raise GatewayNotAttached(f"Network {instance.vpc_id} is not attached to any internet gateway")
            if eip.doc.get("InstanceId") and eip.doc["InstanceId"] != instance_id:
                if not params.get("AllowReassociation"):
                    raise ResourceAlreadyAssociated(f"resource {eip.id} is already associated with associate-id "
                                                    f"{eip.doc['AssociationId']}")
                self._detach(conn, eip)
            self._clear_public(conn, instance)
            eip.doc.update({"InstanceId": instance_id, "AssociationId": association_id,
                            "NetworkInterfaceId": instance.doc["NetworkInterfaces"][0]["NetworkInterfaceId"],
                            "PrivateIpAddress": instance.doc["PrivateIpAddress"],
                            "NetworkInterfaceOwnerId": ctx.account_id})
            store.save(conn, eip)
            instance.doc.update({"PublicIpAddress": eip.doc["PublicIp"], "_eip": eip.id,
                                 "PublicDnsName": public_dns(eip.doc["PublicIp"], ctx.region)})
            store.save(conn, instance)
            return association_id
        result = await self.runtime.db.write(associate)
        self.wake_controller()
        return {"AssociationId": result}

    def _address_sync(self, conn: sa.Connection, ctx: RequestContext, params: dict[str, Any]) -> Resource:
        allocation_id, public_ip = params.get("AllocationId"), params.get("PublicIp")
        found = None
        if allocation_id:
            found = store.get(conn, allocation_id, kind="address", account_id=ctx.account_id, region=ctx.region)
            if found is None:
                raise allocation_not_found(allocation_id)
        elif public_ip:
            matching = store.select(conn, ctx.account_id, ctx.region, "address", name=public_ip)
            if not matching:
                raise InvalidAddressNotFound(f"Address '{public_ip}' not found.")
            found = matching[0]
        if found is None:
            raise MissingParameter("The request must contain the parameter AllocationId")
        return found

    @staticmethod
    def _clear_public(conn: sa.Connection, instance: Resource) -> None:
        """Free the instance's current public address: an automatic one is released, an Elastic IP
        disassociated."""
        address = instance.doc.get("PublicIpAddress")
        allocation = instance.doc.pop("_eip", None)
        if allocation:
            other = store.get(conn, allocation)
            if other is not None:
                for key in ASSOCIATION_KEYS:
                    other.doc.pop(key, None)
                store.save(conn, other)
        elif address:
            store.release_public_ip(conn, address)
        instance.doc.pop("PublicIpAddress", None)
        instance.doc["PublicDnsName"] = ""

    @staticmethod
    def _detach(conn: sa.Connection, eip: Resource) -> None:
        instance = store.get(conn, eip.doc.get("InstanceId") or "")
        if instance is not None and instance.doc.get("_eip") == eip.id:
            instance.doc.pop("_eip", None)
            instance.doc.pop("PublicIpAddress", None)
            instance.doc["PublicDnsName"] = ""
            store.save(conn, instance)
        for key in ASSOCIATION_KEYS:
            eip.doc.pop(key, None)
        store.save(conn, eip)

    async def disassociate_address(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        association_id, public_ip = params.get("AssociationId"), params.get("PublicIp")

        def associated(conn: sa.Connection) -> Resource:
            for eip in store.select(conn, ctx.account_id, ctx.region, "address"):
                if (association_id and eip.doc.get("AssociationId") == association_id) or \
                        (public_ip and eip.doc["PublicIp"] == public_ip and eip.doc.get("AssociationId")):
                    return eip
            raise InvalidAssociationIDNotFound(f"The association ID '{association_id or public_ip}' does not exist")
        await self.begin_each(ctx, params, "DisassociateAddress", [await self.runtime.db.read(associated)])

        def disassociate(conn: sa.Connection) -> None:
            self._detach(conn, associated(conn))
        await self.runtime.db.write(disassociate)
        self.wake_controller()
        return {}

    async def release_address(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        await self.begin_each(ctx, params, "ReleaseAddress",
                              [await self.runtime.db.read(lambda conn: self._address_sync(conn, ctx, params))])

        def release(conn: sa.Connection) -> None:
            eip = self._address_sync(conn, ctx, params)
            if eip.doc.get("AssociationId"):
                raise InvalidIPAddressInUse(f"Address {eip.doc['PublicIp']} is in use.")
            store.release_public_ip(conn, eip.doc["PublicIp"])
            store.delete(conn, eip.id)
        await self.runtime.db.write(release)
        return {}

    async def describe_addresses(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        await self.begin(ctx, params, "DescribeAddresses")
        check(params.get("Filters"), ADDRESS_FILTERS)
        addresses = await self.select(ctx, "address", params.get("AllocationIds"), None, ADDRESS_FILTERS,
                                      allocation_not_found)
        ips = params.get("PublicIps")
        if ips:
            have = {a.doc["PublicIp"] for a in addresses}
            for ip in ips:
                if ip not in have:
                    raise InvalidAddressNotFound(f"Address '{ip}' not found.")
            addresses = [a for a in addresses if a.doc["PublicIp"] in ips]
        addresses = [a for a in addresses if matches(a, params.get("Filters"), ADDRESS_FILTERS)]
        return {"Addresses": [public(a.doc) for a in addresses]}
