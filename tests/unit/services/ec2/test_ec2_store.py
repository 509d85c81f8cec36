"""EC2's metadata on SQLite and PostgreSQL: resources, public addresses, the default VPC, instance
profiles and the credentials the metadata service hands out (renewed before they expire)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import sqlalchemy as sa

from minicloud.config import Config
from minicloud.iam.tables import iam_instance_profile_roles, iam_instance_profiles, iam_roles
from minicloud.services.ec2 import store
from minicloud.services.ec2.defaults import DefaultVpcs
from minicloud.services.ec2.metadata import Ec2InstanceMetadata
from minicloud.services.ec2.profiles import resolve_profile
from minicloud.services.ec2.store import Resource
from minicloud.storage.metadata.db import Database
from minicloud.storage.metadata.schema import accounts
from minicloud.topology import Topology

ACCOUNT = "111122223333"
REGION = "us-east-1"
EC2_TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}


def test_resources_round_trip(metadata_db: Database) -> None:
    def write(conn: sa.Connection) -> None:
        store.insert(conn, Resource("vpc-1", ACCOUNT, REGION, "vpc", {"VpcId": "vpc-1", "_x": 1}, vpc_id="vpc-1"))
        store.insert(conn, Resource("i-1", ACCOUNT, REGION, "instance", {"InstanceId": "i-1"}, vpc_id="vpc-1",
                                    state="pending"))
        store.insert(conn, Resource("i-2", "999999999999", REGION, "instance", {}, vpc_id="vpc-9", state="running"))
    metadata_db.write_sync(write)
    found = metadata_db.read_sync(lambda conn: store.get(conn, "vpc-1", kind="vpc", account_id=ACCOUNT))
    assert found is not None and found.doc == {"VpcId": "vpc-1", "_x": 1} and store.public(found.doc) == {
        "VpcId": "vpc-1"}
    assert metadata_db.read_sync(lambda conn: store.get(conn, "vpc-1", kind="subnet")) is None
    assert metadata_db.read_sync(lambda conn: store.get(conn, "vpc-1", account_id="999999999999")) is None
    mine = metadata_db.read_sync(lambda conn: store.select(conn, ACCOUNT, REGION, "instance"))
    assert [r.id for r in mine] == ["i-1"]
    every = metadata_db.read_sync(lambda conn: store.select(conn, None, None, "instance", states=["running"]))
    assert [r.id for r in every] == ["i-2"]
    assert metadata_db.read_sync(lambda conn: store.count(conn, ACCOUNT, REGION, "instance", ["pending"])) == 1
    instance = mine[0]
    instance.state, instance.doc["PrivateIpAddress"] = "running", "10.0.0.4"
    metadata_db.write_sync(lambda conn: store.save(conn, instance))
    members = metadata_db.read_sync(lambda conn: store.in_vpc(conn, "vpc-1"))
    assert {(r.id, r.state) for r in members} == {("vpc-1", None), ("i-1", "running")}
    metadata_db.write_sync(lambda conn: store.delete(conn, "i-1"))
    assert metadata_db.read_sync(lambda conn: store.get(conn, "i-1")) is None


def test_public_addresses(metadata_db: Database) -> None:
    pool = "127.100.0.0/30"  # hosts .1 and .2

    def take(owner: str) -> str | None:
        return metadata_db.write_sync(lambda conn: store.take_public_ip(conn, pool, ACCOUNT, REGION, owner))
    assert take("i-1") == "127.100.0.1"
    assert take("i-2") == "127.100.0.2"
    assert take("i-3") is None
    metadata_db.write_sync(lambda conn: store.mark_public_ip_foreign(conn, "127.100.0.1"))
    metadata_db.write_sync(lambda conn: store.release_public_ip(conn, "127.100.0.2"))
    assert metadata_db.read_sync(lambda conn: store.public_ip_owner(conn, "127.100.0.1")) == store.FOREIGN
    assert take("i-4") == "127.100.0.2"
    metadata_db.write_sync(store.forget_foreign_public_ips)
    assert take("i-5") == "127.100.0.1"


def test_default_vpc_is_made_once(metadata_db: Database) -> None:
    defaults = DefaultVpcs(metadata_db, Topology(Config()))

    async def twice() -> None:
        await asyncio.gather(defaults.ensure(ACCOUNT, REGION), defaults.ensure(ACCOUNT, REGION))
        defaults.forget(ACCOUNT, REGION)
        await defaults.ensure(ACCOUNT, REGION)
    asyncio.run(twice())
    vpcs = metadata_db.read_sync(lambda conn: store.select(conn, ACCOUNT, REGION, "vpc"))
    assert len(vpcs) == 1 and vpcs[0].doc["IsDefault"]
    members = metadata_db.read_sync(lambda conn: store.in_vpc(conn, vpcs[0].id))
    kinds = sorted(r.kind for r in members)
    assert kinds == ["internet-gateway", "network-acl", "route-table", "security-group", "subnet", "subnet",
                     "subnet", "vpc"]


def _role_and_profile(conn: sa.Connection) -> None:
    now = datetime.now(UTC)
    conn.execute(accounts.insert().values(account_id=ACCOUNT, name="a", email="a@example.com", status="ACTIVE",
                                          management=True, joined_method="CREATED", created_at=now))
    conn.execute(iam_roles.insert().values(
        role_id="AROAEXAMPLE1", account_id=ACCOUNT, name="Reader", name_key="reader", path="/",
        assume_role_policy=json.dumps(EC2_TRUST), max_session_duration=3600,
        created_at=now))
    conn.execute(iam_instance_profiles.insert().values(instance_profile_id="AIPAEXAMPLE1", account_id=ACCOUNT,
                                                       name="Reader", name_key="reader", path="/", created_at=now))
    conn.execute(iam_instance_profile_roles.insert().values(instance_profile_id="AIPAEXAMPLE1",
                                                            role_id="AROAEXAMPLE1"))


def test_instance_profile_credentials_are_renewed_before_they_expire(metadata_db: Database) -> None:
    metadata_db.write_sync(_role_and_profile)
    profile = metadata_db.read_sync(lambda conn: resolve_profile(conn, ACCOUNT, "READER", None))
    assert profile is not None and profile.role_name == "Reader"
    assert profile.arn == f"arn:aws:iam::{ACCOUNT}:instance-profile/Reader"
    assert metadata_db.read_sync(lambda conn: resolve_profile(conn, ACCOUNT, None, profile.arn)) == profile
    assert metadata_db.read_sync(lambda conn: resolve_profile(conn, ACCOUNT, "nope", None)) is None
    doc = {"InstanceId": "i-1", "ImageId": "ami-1", "InstanceType": "t3.micro", "PrivateIpAddress": "10.0.0.4",
           "Placement": {"AvailabilityZone": "us-east-1a"}, "PrivateDnsName": "ip-10-0-0-4.ec2.internal",
           "_mac": "02:00:00:00:00:01", "SecurityGroups": [{"GroupName": "default", "GroupId": "sg-1"}],
           "SubnetId": "subnet-1", "NetworkInterfaces": [{"NetworkInterfaceId": "eni-1"}], "_reservation": "r-1",
           "LaunchTime": datetime.now(UTC).isoformat(), "_role_arn": profile.role_arn, "_role_name": "Reader",
           "MetadataOptions": {"HttpTokens": "required"}}
    metadata_db.write_sync(lambda conn: store.insert(conn, Resource("i-1", ACCOUNT, REGION, "instance", doc,
                                                                    vpc_id="vpc-1", state="running")))
    topology = Topology(Config())

    async def flow() -> None:
        lasting = Ec2InstanceMetadata(metadata_db, topology, credentials_ttl=3600)
        info = await lasting.lookup("vpc-1", "10.0.0.4")
        assert info is not None and info.instance_id == "i-1" and info.http_tokens == "required"
        assert info.availability_zone_id == "use1-az1" and info.role_name == "Reader"
        assert await lasting.lookup("vpc-1", "10.0.0.5") is None and await lasting.lookup("vpc-2", "10.0.0.4") is None
        first, again = await lasting.credentials(info), await lasting.credentials(info)
        assert first is not None and first == again
        short = Ec2InstanceMetadata(metadata_db, topology, credentials_ttl=120)  # within the 5-minute renewal
        one, two = await short.credentials(info), await short.credentials(info)
        assert one is not None and two is not None and one.access_key_id != two.access_key_id
    asyncio.run(flow())
