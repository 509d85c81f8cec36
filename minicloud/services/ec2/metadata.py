"""What the instance metadata service (``imds.MetadataServer``) learns about the instance asking:
the instance at a private IP of a VPC, and its instance profile role's credentials, minted as
AssumeRole mints them (session name = instance id) and renewed 5 minutes before they expire."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

from minicloud.services.ec2 import store
from minicloud.services.ec2.imds import InstanceInfo, RoleCredentials
from minicloud.services.ec2.profiles import issue_role_credentials
from minicloud.services.ec2.store import Resource
from minicloud.storage.metadata.db import Database
from minicloud.topology import Topology

RENEW_BEFORE = timedelta(minutes=5)


def _launch_time(instance: Resource) -> datetime | None:
    value = instance.doc.get("LaunchTime")
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def instance_info(instance: Resource, vpc_cidr: str, subnet_cidr: str, zone_id: str) -> InstanceInfo:
    doc = instance.doc
    user_data = base64.b64decode(doc["_user_data"]) if doc.get("_user_data") else None
    interface = doc["NetworkInterfaces"][0]
    profile = doc.get("IamInstanceProfile") or {}
    options = doc.get("MetadataOptions") or {}
    return InstanceInfo(
        instance_id=instance.id, ami_id=doc["ImageId"], instance_type=doc["InstanceType"],
        private_ip=doc["PrivateIpAddress"], public_ip=doc.get("PublicIpAddress"),
        availability_zone=doc["Placement"]["AvailabilityZone"], region=instance.region,
        hostname=doc["PrivateDnsName"], mac=doc["_mac"], user_data=user_data, role_name=doc.get("_role_name"),
        security_groups=tuple(g["GroupName"] for g in doc["SecurityGroups"]), account_id=instance.account_id,
        vpc_id=instance.vpc_id or "", vpc_cidr=vpc_cidr, subnet_id=doc["SubnetId"], subnet_cidr=subnet_cidr,
        security_group_ids=tuple(g["GroupId"] for g in doc["SecurityGroups"]),
        interface_id=interface["NetworkInterfaceId"], reservation_id=doc["_reservation"],
        launch_index=int(doc.get("AmiLaunchIndex") or 0), launch_time=_launch_time(instance),
        public_hostname=doc.get("PublicDnsName") or "",
        public_keys=tuple((name, key) for name, key in doc.get("_public_keys") or []),
        instance_profile_arn=profile.get("Arn", ""), instance_profile_id=profile.get("Id", ""),
        http_tokens=options.get("HttpTokens", "optional"), http_endpoint=options.get("HttpEndpoint", "enabled"),
        tags=tuple((t["Key"], t.get("Value", "")) for t in doc.get("Tags") or []), availability_zone_id=zone_id,
        instance_metadata_tags=options.get("InstanceMetadataTags") == "enabled")


class Ec2InstanceMetadata:
    """``imds.InstanceMetadata`` over EC2's tables."""

    def __init__(self, db: Database, topology: Topology, credentials_ttl: float = 3600.0) -> None:
        self.db = db
        self.topology = topology
        self.ttl = timedelta(seconds=credentials_ttl)
        self._cache: dict[str, RoleCredentials] = {}

    async def lookup(self, vpc_id: str, private_ip: str) -> InstanceInfo | None:
        def find(conn: object) -> tuple[Resource, str, str] | None:
            members = store.in_vpc(conn, vpc_id)  # type: ignore[arg-type]
            vpc = next((r for r in members if r.kind == "vpc"), None)
            for instance in members:
                if instance.kind == "instance" and instance.doc.get("PrivateIpAddress") == private_ip and \
                        instance.state in ("pending", "running", "stopping"):
                    subnet = next((r for r in members if r.id == instance.doc["SubnetId"]), None)
                    return (instance, vpc.doc["CidrBlock"] if vpc else "",
                            subnet.doc["CidrBlock"] if subnet else "")
            return None
        found = await self.db.read(find)
        if found is None:
            return None
        instance, vpc_cidr, subnet_cidr = found
        zone = instance.doc["Placement"]["AvailabilityZone"]
        zone_id = next((z.zone_id for z in self.topology.zones(instance.region) if z.name == zone), "")
        return instance_info(instance, vpc_cidr, subnet_cidr, zone_id)

    async def credentials(self, info: InstanceInfo) -> RoleCredentials | None:
        if not info.role_name:
            return None
        now = datetime.now(UTC)
        cached = self._cache.get(info.instance_id)
        if cached is not None and cached.expiration - RENEW_BEFORE > now:
            return cached
        instance = await self.db.read(lambda conn: store.get(conn, info.instance_id, kind="instance"))
        role_arn = instance.doc.get("_role_arn") if instance else None
        if not role_arn:
            return None
        expires = (now + self.ttl).replace(microsecond=0)
        issued = await self.db.write(lambda conn: issue_role_credentials(conn, role_arn, info.instance_id, expires))
        if issued is None:
            return None
        creds = RoleCredentials(issued.access_key_id, issued.secret_access_key, issued.session_token,
                                issued.expiration, last_updated=now)
        self._cache[info.instance_id] = creds
        return creds
