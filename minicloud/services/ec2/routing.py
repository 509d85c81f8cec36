"""Route tables (the local route, routes to an internet gateway, subnet associations) and
internet gateways (attach, detach). A subnet is public when its route table (its own, else the
VPC's main one) sends 0.0.0.0/0 to an internet gateway attached to the VPC."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from minicloud.aws.context import RequestContext
from minicloud.services.ec2 import builders, store
from minicloud.services.ec2.base import Ec2Base, request_tag_keys
from minicloud.services.ec2.errors import (
    DependencyViolation,
    GatewayNotAttached,
    InvalidAssociationIDNotFound,
    InvalidInternetGatewayIDNotFound,
    InvalidParameterValue,
    InvalidRouteNotFound,
    InvalidRouteTableIDNotFound,
    MissingParameter,
    ResourceAlreadyAssociated,
    RouteAlreadyExists,
    UnsupportedOperation,
)
from minicloud.services.ec2.filters import member
from minicloud.services.ec2.ids import new_id
from minicloud.services.ec2.store import Resource, public
from minicloud.services.ec2.vpcs import parse_cidr, subnet_not_found, vpc_not_found


def table_not_found(table_id: str) -> InvalidRouteTableIDNotFound:
    return InvalidRouteTableIDNotFound(f"The routeTable ID '{table_id}' does not exist")


def gateway_not_found(gateway_id: str) -> InvalidInternetGatewayIDNotFound:
    return InvalidInternetGatewayIDNotFound(f"The internetGateway ID '{gateway_id}' does not exist")


ROUTE_TABLE_FILTERS = {
    "route-table-id": member("RouteTableId"), "vpc-id": member("VpcId"), "owner-id": member("OwnerId"),
    "association.main": member("Associations", "Main"),
    "association.subnet-id": member("Associations", "SubnetId"),
    "association.route-table-association-id": member("Associations", "RouteTableAssociationId"),
    "association.route-table-id": member("Associations", "RouteTableId"),
    "route.destination-cidr-block": member("Routes", "DestinationCidrBlock"),
    "route.gateway-id": member("Routes", "GatewayId"), "route.state": member("Routes", "State"),
    "route.origin": member("Routes", "Origin"),
}

GATEWAY_FILTERS = {
    "internet-gateway-id": member("InternetGatewayId"), "owner-id": member("OwnerId"),
    "attachment.vpc-id": member("Attachments", "VpcId"), "attachment.state": member("Attachments", "State"),
}


def effective_table(tables: list[Resource], subnet_id: str) -> Resource | None:
    """The route table a subnet uses: the one associated with it, else the VPC's main table."""
    main = None
    for table in tables:
        for association in table.doc["Associations"]:
            if association.get("SubnetId") == subnet_id:
                return table
            if association.get("Main"):
                main = table
    return main


def routes_to_internet(conn: sa.Connection, subnet: Resource) -> bool:
    """Whether ``subnet`` is public: 0.0.0.0/0 to an internet gateway attached to its VPC."""
    members = store.in_vpc(conn, subnet.vpc_id or "")
    tables = [r for r in members if r.kind == "route-table"]
    attached = {r.id for r in members if r.kind == "internet-gateway"}
    table = effective_table(tables, subnet.id)
    if table is None:
        return False
    return any(route.get("DestinationCidrBlock") == "0.0.0.0/0" and route.get("GatewayId") in attached
               for route in table.doc["Routes"])


class RoutingMixin(Ec2Base):
    # -- route tables ----------------------------------------------------------------------------------
    async def create_route_table(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        vpc_id = params["VpcId"]
        vpc = await self.find(ctx, "vpc", vpc_id, vpc_not_found)
        tags = self.tags_for(params, "route-table")
        await self.begin_each(ctx, params, "CreateRouteTable", [vpc], created=[
            ("route-table/*", {"ec2:Region": ctx.region, **request_tag_keys(tags)})])
        table = builders.route_table(ctx.account_id, ctx.region, vpc_id, vpc.doc["CidrBlock"], tags=tags)
        await self.runtime.db.write(lambda conn: store.insert(conn, table))
        return {"RouteTable": public(table.doc)}

    async def describe_route_tables(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        await self.begin(ctx, params, "DescribeRouteTables")
        tables = await self.select(ctx, "route-table", params.get("RouteTableIds"), params.get("Filters"),
                                   ROUTE_TABLE_FILTERS, table_not_found)
        items, token = self.page(tables, params, maximum=100)
        out: dict[str, Any] = {"RouteTables": [public(t.doc) for t in items]}
        if token:
            out["NextToken"] = token
        return out

    async def delete_route_table(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        table_id = params["RouteTableId"]
        table = await self.find(ctx, "route-table", table_id, table_not_found)
        await self.begin_each(ctx, params, "DeleteRouteTable", [table])
        if table.doc["Associations"]:
            raise DependencyViolation(f"The routeTable '{table_id}' has dependencies and cannot be deleted.")
        await self.runtime.db.write(lambda conn: store.delete(conn, table_id))
        return {}

    async def create_route(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        table_id = params["RouteTableId"]
        await self.begin_each(ctx, params, "CreateRoute", [await self.find(ctx, "route-table", table_id,
                                                                           table_not_found)])
        destination = params.get("DestinationCidrBlock")
        if not destination:
            raise MissingParameter("The request must contain the parameter destinationCidrBlock")
        network = str(parse_cidr(destination, "destinationCidrBlock"))
        gateway_id = params.get("GatewayId")
        others = [k for k in ("NatGatewayId", "InstanceId", "NetworkInterfaceId", "TransitGatewayId",
                              "VpcPeeringConnectionId", "EgressOnlyInternetGatewayId", "LocalGatewayId",
                              "CarrierGatewayId", "VpcEndpointId", "CoreNetworkArn") if params.get(k)]
        if others:
            raise UnsupportedOperation(f"minicloud routes only to internet gateways, not to {others[0]}")
        if not gateway_id:
            raise MissingParameter("The request must contain the parameter gatewayId")

        def create(conn: sa.Connection) -> None:
            table = store.get(conn, table_id, kind="route-table", account_id=ctx.account_id, region=ctx.region)
            if table is None:
                raise table_not_found(table_id)
            gateway = store.get(conn, gateway_id, kind="internet-gateway", account_id=ctx.account_id,
                                region=ctx.region)
            if gateway is None:
                raise gateway_not_found(gateway_id)
            if gateway.vpc_id != table.vpc_id:
                raise InvalidParameterValue(f"route table {table_id} and network gateway {gateway_id} belong to "
                                            "different networks")
            if any(r["DestinationCidrBlock"] == network for r in table.doc["Routes"]):
                raise RouteAlreadyExists(f"The route identified by {network} already exists.")
            table.doc["Routes"].append({"DestinationCidrBlock": network, "GatewayId": gateway_id,
                                        "Origin": "CreateRoute", "State": "active"})
            store.save(conn, table)
        await self.runtime.db.write(create)
        return {"Return": True}

    async def replace_route(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        await self.delete_route(ctx, dict(params))
        return await self.create_route(ctx, params)

    async def delete_route(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        table_id = params["RouteTableId"]
        table = await self.find(ctx, "route-table", table_id, table_not_found)
        await self.begin_each(ctx, params, "DeleteRoute", [table])
        destination = params.get("DestinationCidrBlock") or ""
        kept = [r for r in table.doc["Routes"] if r["DestinationCidrBlock"] != destination or
                r.get("GatewayId") == "local"]
        if len(kept) == len(table.doc["Routes"]):
            raise InvalidRouteNotFound(f"no route with destination-cidr-block {destination} in route table "
                                       f"{table_id}")
        table.doc["Routes"] = kept
        await self.runtime.db.write(lambda conn: store.save(conn, table))
        return {}

    async def associate_route_table(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        table_id = params["RouteTableId"]
        subnet_id = params.get("SubnetId")
        if not subnet_id:
            raise UnsupportedOperation("minicloud associates route tables with subnets only (SubnetId)")
        await self.begin_each(ctx, params, "AssociateRouteTable", [
            await self.find(ctx, "route-table", table_id, table_not_found),
            await self.find(ctx, "subnet", subnet_id, subnet_not_found)])

        def associate(conn: sa.Connection) -> str:
            table = store.get(conn, table_id, kind="route-table", account_id=ctx.account_id, region=ctx.region)
            if table is None:
                raise table_not_found(table_id)
            subnet = store.get(conn, subnet_id, kind="subnet", account_id=ctx.account_id, region=ctx.region)
            if subnet is None:
                raise subnet_not_found(subnet_id)
            if subnet.vpc_id != table.vpc_id:
                raise InvalidParameterValue(f"Route table {table_id} and subnet {subnet_id} belong to different "
                                            "networks")
            for other in store.select(conn, ctx.account_id, ctx.region, "route-table", vpc_id=table.vpc_id):
                if any(a.get("SubnetId") == subnet_id for a in other.doc["Associations"]):
                    raise ResourceAlreadyAssociated(f"the specified association for route table {table_id} "
                                                    "conflicts with an existing association")
            association_id = new_id("rtb-association")
            table.doc["Associations"].append({"Main": False, "RouteTableAssociationId": association_id,
                                              "RouteTableId": table_id, "SubnetId": subnet_id,
                                              "AssociationState": {"State": "associated"}})
            store.save(conn, table)
            return association_id
        association_id = await self.runtime.db.write(associate)
        return {"AssociationId": association_id, "AssociationState": {"State": "associated"}}

    async def disassociate_route_table(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        association_id = params["AssociationId"]

        def associated(conn: sa.Connection) -> tuple[Resource, dict[str, Any]]:
            for table in store.select(conn, ctx.account_id, ctx.region, "route-table"):
                for association in table.doc["Associations"]:
                    if association["RouteTableAssociationId"] == association_id:
                        return table, association
            raise InvalidAssociationIDNotFound(f"The association ID '{association_id}' does not exist")
        # Authorized on the route table's ARN (its tags), as EC2 does.
        await self.begin_each(ctx, params, "DisassociateRouteTable", [(await self.runtime.db.read(associated))[0]])

        def disassociate(conn: sa.Connection) -> None:
            table, association = associated(conn)
            if association.get("Main"):
                raise InvalidParameterValue(f"cannot disassociate the main route table association {association_id}")
            table.doc["Associations"].remove(association)
            store.save(conn, table)
        await self.runtime.db.write(disassociate)
        return {}

    # -- internet gateways ------------------------------------------------------------------------------
    async def create_internet_gateway(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        await self.begin(ctx, params, "CreateInternetGateway", "internet-gateway/*")
        gateway = builders.internet_gateway(ctx.account_id, ctx.region, self.tags_for(params, "internet-gateway"))
        await self.runtime.db.write(lambda conn: store.insert(conn, gateway))
        return {"InternetGateway": public(gateway.doc)}

    async def describe_internet_gateways(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        await self.begin(ctx, params, "DescribeInternetGateways")
        gateways = await self.select(ctx, "internet-gateway", params.get("InternetGatewayIds"),
                                     params.get("Filters"), GATEWAY_FILTERS, gateway_not_found)
        items, token = self.page(gateways, params)
        out: dict[str, Any] = {"InternetGateways": [public(g.doc) for g in items]}
        if token:
            out["NextToken"] = token
        return out

    async def attach_internet_gateway(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        gateway_id, vpc_id = params["InternetGatewayId"], params["VpcId"]
        await self.begin_each(ctx, params, "AttachInternetGateway", [
            await self.find(ctx, "internet-gateway", gateway_id, gateway_not_found),
            await self.find(ctx, "vpc", vpc_id, vpc_not_found)])

        def attach(conn: sa.Connection) -> None:
            gateway = store.get(conn, gateway_id, kind="internet-gateway", account_id=ctx.account_id,
                                region=ctx.region)
            if gateway is None:
                raise gateway_not_found(gateway_id)
            if store.get(conn, vpc_id, kind="vpc", account_id=ctx.account_id, region=ctx.region) is None:
                raise vpc_not_found(vpc_id)
            if gateway.vpc_id:
                raise ResourceAlreadyAssociated(f"resource {gateway_id} is already attached to network "
                                                f"{gateway.vpc_id}")
            if any(r.kind == "internet-gateway" for r in store.in_vpc(conn, vpc_id)):
                raise ResourceAlreadyAssociated(f"network {vpc_id} already has an internet gateway attached")
            gateway.vpc_id = vpc_id
            gateway.doc["Attachments"] = [{"State": "available", "VpcId": vpc_id}]
            store.save(conn, gateway)
        await self.runtime.db.write(attach)
        return {}

    async def detach_internet_gateway(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        gateway_id, vpc_id = params["InternetGatewayId"], params["VpcId"]
        await self.begin_each(ctx, params, "DetachInternetGateway", [
            await self.find(ctx, "internet-gateway", gateway_id, gateway_not_found),
            await self.find(ctx, "vpc", vpc_id, vpc_not_found)])

        def detach(conn: sa.Connection) -> None:
            gateway = store.get(conn, gateway_id, kind="internet-gateway", account_id=ctx.account_id,
                                region=ctx.region)
            if gateway is None:
                raise gateway_not_found(gateway_id)
            if gateway.vpc_id != vpc_id:
                raise GatewayNotAttached(f"resource {gateway_id} is not attached to network {vpc_id}")
            if any(r.kind == "instance" and r.doc.get("PublicIpAddress") and r.state != "terminated"
                   for r in store.in_vpc(conn, vpc_id)):
                raise DependencyViolation(f"Network {vpc_id} has some mapped public address(es). Please unmap "
                                          "those public address(es) before detaching the gateway.")
            gateway.vpc_id = None
            gateway.doc["Attachments"] = []
            store.save(conn, gateway)
        await self.runtime.db.write(detach)
        return {}

    async def delete_internet_gateway(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        gateway_id = params["InternetGatewayId"]
        gateway = await self.find(ctx, "internet-gateway", gateway_id, gateway_not_found)
        await self.begin_each(ctx, params, "DeleteInternetGateway", [gateway])
        if gateway.vpc_id:
            raise DependencyViolation(f"The internetGateway '{gateway_id}' has dependencies and cannot be "
                                      "deleted.")
        await self.runtime.db.write(lambda conn: store.delete(conn, gateway_id))
        return {}


