"""Regions, availability zones (from minicloud's configured topology), instance types and the
account's attributes (the max-instances quota)."""

from __future__ import annotations

from typing import Any

from minicloud.aws.context import RequestContext
from minicloud.services.ec2 import filters as flt
from minicloud.services.ec2 import store
from minicloud.services.ec2.base import Ec2Base
from minicloud.services.ec2.catalog import INSTANCE_TYPES
from minicloud.services.ec2.errors import InvalidInstanceType, InvalidParameterValue, InvalidZoneNotFound
from minicloud.services.ec2.filters import member
from minicloud.services.ec2.store import Resource

REGION_FILTERS = {"region-name": member("RegionName"), "endpoint": member("Endpoint"),
                  "opt-in-status": member("OptInStatus")}
ZONE_FILTERS = {"zone-name": member("ZoneName"), "zone-id": member("ZoneId"), "region-name": member("RegionName"),
                "state": member("State"), "zone-type": member("ZoneType"), "group-name": member("GroupName"),
                "opt-in-status": member("OptInStatus")}
TYPE_FILTERS = {
    "instance-type": member("InstanceType"), "current-generation": member("CurrentGeneration"),
    "free-tier-eligible": member("FreeTierEligible"), "vcpu-info.default-vcpus": member("VCpuInfo", "DefaultVCpus"),
    "memory-info.size-in-mib": member("MemoryInfo", "SizeInMiB"),
    "processor-info.supported-architecture": member("ProcessorInfo", "SupportedArchitectures"),
    "burstable-performance-supported": member("BurstablePerformanceSupported"),
    "hypervisor": member("Hypervisor"), "bare-metal": member("BareMetal"),
}


def _documents(docs: list[dict[str, Any]], key: str) -> list[Resource]:
    return [Resource(d[key], "", "", "info", d) for d in docs]


class RegionsMixin(Ec2Base):
    async def describe_regions(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        await self.begin(ctx, params, "DescribeRegions")
        regions = [{"RegionName": r, "Endpoint": f"ec2.{r}.amazonaws.com", "OptInStatus": "opt-in-not-required"}
                   for r in self.runtime.topology.regions]
        names = params.get("RegionNames")
        if names:
            unknown = [n for n in names if not self.runtime.topology.has_region(n)]
            if unknown:
                raise InvalidParameterValue(f"Invalid region: {unknown[0]}")
            regions = [r for r in regions if r["RegionName"] in names]
        found = flt.apply(_documents(regions, "RegionName"), params.get("Filters"), REGION_FILTERS)
        return {"Regions": [r.doc for r in found]}

    async def describe_availability_zones(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        await self.begin(ctx, params, "DescribeAvailabilityZones")
        zones = [{"State": "available", "OptInStatus": "opt-in-not-required", "Messages": [],
                  "RegionName": z.region, "ZoneName": z.name, "ZoneId": z.zone_id, "GroupName": z.region,
                  "NetworkBorderGroup": z.region, "ZoneType": "availability-zone"}
                 for z in self.runtime.topology.zones(ctx.region)]
        for key, wanted in (("ZoneName", params.get("ZoneNames")), ("ZoneId", params.get("ZoneIds"))):
            if wanted:
                have = {z[key] for z in zones}
                for item in wanted:
                    if item not in have:
                        raise InvalidParameterValue(f"The zone '{item}' does not exist.") if key == "ZoneName" \
                            else InvalidZoneNotFound(f"The zone ID '{item}' does not exist.")
                zones = [z for z in zones if z[key] in wanted]
        found = flt.apply(_documents(zones, "ZoneName"), params.get("Filters"), ZONE_FILTERS)
        return {"AvailabilityZones": [z.doc for z in found]}

    async def describe_instance_types(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        await self.begin(ctx, params, "DescribeInstanceTypes")
        names = params.get("InstanceTypes")
        if names:
            unknown = [n for n in names if n not in INSTANCE_TYPES]
            if unknown:
                raise InvalidInstanceType(f"The following supplied instance types do not exist: "
                                          f"[{', '.join(unknown)}]")
        infos = [t.info() for t in INSTANCE_TYPES.values() if not names or t.name in names]
        found = flt.apply(_documents(infos, "InstanceType"), params.get("Filters"), TYPE_FILTERS)
        items, token = self.page([r.doc for r in found], params, maximum=100)
        out: dict[str, Any] = {"InstanceTypes": items}
        if token:
            out["NextToken"] = token
        return out

    async def describe_account_attributes(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        await self.begin(ctx, params, "DescribeAccountAttributes")
        vpcs = await self.runtime.db.read(lambda conn: store.select(conn, ctx.account_id, ctx.region, "vpc"))
        default_vpc = next((v.id for v in vpcs if v.doc.get("IsDefault")), "none")
        values = {"supported-platforms": ["VPC"], "default-vpc": [default_vpc],
                  "max-instances": [str(self.settings.max_instances)],
                  "max-elastic-ips": [str(self.settings.max_elastic_ips)],
                  "vpc-max-elastic-ips": [str(self.settings.max_elastic_ips)],
                  "vpc-max-security-groups-per-interface": ["5"]}
        names = params.get("AttributeNames") or list(values)
        unknown = [n for n in names if n not in values]
        if unknown:
            raise InvalidParameterValue(f"Value ({unknown[0]}) for parameter attributeName is invalid.")
        return {"AccountAttributes": [{"AttributeName": n, "AttributeValues": [{"AttributeValue": v}
                                                                                for v in values[n]]}
                                      for n in names]}
