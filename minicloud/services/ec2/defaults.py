"""The default VPC of an account in a region (172.31.0.0/16), made on its first EC2 call as AWS has
it: a default /20 subnet per availability zone mapping public IPs at launch, an attached internet
gateway, a main route table with 0.0.0.0/0 to it, the default security group."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress

import sqlalchemy as sa

from minicloud.services.ec2 import builders, store
from minicloud.storage.metadata.db import Database
from minicloud.topology import Topology

DEFAULT_CIDR = "172.31.0.0/16"


class DefaultVpcs:
    def __init__(self, db: Database, topology: Topology) -> None:
        self.db = db
        self.topology = topology
        self._done: set[tuple[str, str]] = set()
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    async def ensure(self, account_id: str, region: str) -> None:
        key = (account_id, region)
        if key in self._done:
            return
        async with self._locks.setdefault(key, asyncio.Lock()):
            if key in self._done:
                return
            with contextlib.suppress(sa.exc.IntegrityError):  # another API server made it meanwhile
                await self.db.write(lambda conn: self._ensure(conn, account_id, region))
            self._done.add(key)

    def _ensure(self, conn: sa.Connection, account_id: str, region: str) -> None:
        marker = f"default-vpc/{account_id}/{region}"
        if store.get(conn, marker) is not None:
            return
        resources = builders.vpc(account_id, region, DEFAULT_CIDR, default=True)
        vpc_id = resources[0].id
        main_table = resources[1]
        gateway = builders.internet_gateway(account_id, region)
        gateway.doc["Attachments"] = [{"State": "available", "VpcId": vpc_id}]
        gateway.vpc_id = vpc_id
        main_table.doc["Routes"].append({"DestinationCidrBlock": "0.0.0.0/0", "GatewayId": gateway.id,
                                         "Origin": "CreateRoute", "State": "active"})
        blocks = ipaddress.IPv4Network(DEFAULT_CIDR).subnets(new_prefix=20)
        for zone, block in zip(self.topology.zones(region), blocks, strict=False):
            resources.append(builders.subnet(account_id, region, vpc_id, str(block), zone, default=True))
        resources.append(gateway)
        for resource in resources:
            store.insert(conn, resource)
        store.insert(conn, store.Resource(marker, account_id, region, "marker", {"VpcId": vpc_id}))

    def forget(self, account_id: str, region: str) -> None:
        self._done.discard((account_id, region))
