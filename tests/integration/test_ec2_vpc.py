"""EC2's VPC API through boto3 and the AWS CLI against a real ``minicloud up``: topology, the default
VPC, VPCs, subnets, route tables, internet gateways, security groups, tags, filters, errors."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.aws import code
from tests.support.server import Keys, MinicloudServer


@pytest.fixture(scope="module")
def ec2(server: MinicloudServer) -> Any:
    return server.client("ec2")


def test_topology(ec2: Any, server: MinicloudServer) -> None:
    assert [r["RegionName"] for r in ec2.describe_regions()["Regions"]] == ["us-east-1"]
    zones = ec2.describe_availability_zones()["AvailabilityZones"]
    assert [z["ZoneName"] for z in zones] == ["us-east-1a", "us-east-1b", "us-east-1c"]
    assert zones[0]["ZoneId"] == "use1-az1" and zones[0]["State"] == "available"
    types = ec2.describe_instance_types(InstanceTypes=["t3.micro", "m5.large"])["InstanceTypes"]
    assert {t["InstanceType"]: t["MemoryInfo"]["SizeInMiB"] for t in types} == {"t3.micro": 1024, "m5.large": 8192}
    small = ec2.describe_instance_types(Filters=[{"Name": "vcpu-info.default-vcpus", "Values": ["1"]}])
    assert [t["InstanceType"] for t in small["InstanceTypes"]] == ["t2.micro"]
    with pytest.raises(ClientError) as err:
        ec2.describe_instance_types(InstanceTypes=["t9.huge"])
    assert code(err) == "InvalidInstanceType"
    attrs = ec2.describe_account_attributes(AttributeNames=["max-instances"])["AccountAttributes"]
    assert attrs[0]["AttributeValues"][0]["AttributeValue"] == "20"
    out = server.aws_json("ec2", "describe-availability-zones", "--filters", "Name=zone-name,Values=*-1b")
    assert [z["ZoneName"] for z in out["AvailabilityZones"]] == ["us-east-1b"]


def test_default_vpc(ec2: Any) -> None:
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    assert len(vpcs) == 1 and vpcs[0]["CidrBlock"] == "172.31.0.0/16"
    vpc_id = vpcs[0]["VpcId"]
    assert len(vpc_id) == len("vpc-") + 17
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]
    assert sorted(s["CidrBlock"] for s in subnets) == ["172.31.0.0/20", "172.31.16.0/20", "172.31.32.0/20"]
    assert all(s["DefaultForAz"] and s["MapPublicIpOnLaunch"] for s in subnets)
    assert subnets[0]["AvailableIpAddressCount"] == 4091
    gateways = ec2.describe_internet_gateways(
        Filters=[{"Name": "attachment.vpc-id", "Values": [vpc_id]}])["InternetGateways"]
    assert len(gateways) == 1
    tables = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc_id]},
                                                {"Name": "association.main", "Values": ["true"]}])["RouteTables"]
    routes = {r["DestinationCidrBlock"]: r["GatewayId"] for r in tables[0]["Routes"]}
    assert routes == {"172.31.0.0/16": "local", "0.0.0.0/0": gateways[0]["InternetGatewayId"]}
    groups = ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"]
    assert groups[0]["VpcId"] == vpc_id
    ingress = groups[0]["IpPermissions"]
    assert ingress == [{"IpProtocol": "-1", "IpRanges": [], "Ipv6Ranges": [], "PrefixListIds": [],
                        "UserIdGroupPairs": [{"GroupId": groups[0]["GroupId"], "UserId": groups[0]["OwnerId"]}]}]
    assert groups[0]["IpPermissionsEgress"][0]["IpRanges"] == [{"CidrIp": "0.0.0.0/0"}]
    options = ec2.describe_dhcp_options(DhcpOptionsIds=[vpcs[0]["DhcpOptionsId"]])["DhcpOptions"][0]
    servers = [c["Values"] for c in options["DhcpConfigurations"] if c["Key"] == "domain-name-servers"]
    assert servers == [[{"Value": "AmazonProvidedDNS"}]]


def test_vpc_and_subnets(ec2: Any) -> None:
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16", TagSpecifications=[
        {"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": "lab"}]}])["Vpc"]
    vpc_id = vpc["VpcId"]
    assert vpc["Tags"] == [{"Key": "Name", "Value": "lab"}] and vpc["IsDefault"] is False
    for bad in ("10.0.0.0/8", "10.0.0.0/29"):
        with pytest.raises(ClientError) as err:
            ec2.create_vpc(CidrBlock=bad)
        assert code(err) == "InvalidVpc.Range"
    with pytest.raises(ClientError) as err:
        ec2.create_vpc(CidrBlock="banana")
    assert code(err) == "InvalidParameterValue"
    a = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.1.1.0/24", AvailabilityZone="us-east-1a")["Subnet"]
    assert a["AvailableIpAddressCount"] == 251 and a["MapPublicIpOnLaunch"] is False
    with pytest.raises(ClientError) as err:
        ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.1.1.128/25")
    assert code(err) == "InvalidSubnet.Conflict"
    with pytest.raises(ClientError) as err:
        ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.2.0.0/24")
    assert code(err) == "InvalidSubnet.Range"
    with pytest.raises(ClientError) as err:
        ec2.create_subnet(VpcId="vpc-0123456789abcdef0", CidrBlock="10.2.0.0/24")
    assert code(err) == "InvalidVpcID.NotFound"
    with pytest.raises(ClientError) as err:
        ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.1.2.0/24", AvailabilityZone="mars-1a")
    assert code(err) == "InvalidParameterValue"
    ec2.modify_subnet_attribute(SubnetId=a["SubnetId"], MapPublicIpOnLaunch={"Value": True})
    found = ec2.describe_subnets(Filters=[{"Name": "map-public-ip-on-launch", "Values": ["true"]},
                                          {"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]
    assert [s["SubnetId"] for s in found] == [a["SubnetId"]]
    with pytest.raises(ClientError) as err:
        ec2.delete_vpc(VpcId=vpc_id)
    assert code(err) == "DependencyViolation"
    ec2.delete_subnet(SubnetId=a["SubnetId"])
    ec2.delete_vpc(VpcId=vpc_id)
    with pytest.raises(ClientError) as err:
        ec2.describe_vpcs(VpcIds=[vpc_id])
    assert code(err) == "InvalidVpcID.NotFound"


def test_route_tables_and_gateways(ec2: Any) -> None:
    vpc_id = ec2.create_vpc(CidrBlock="10.2.0.0/16")["Vpc"]["VpcId"]
    subnet_id = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.2.0.0/24")["Subnet"]["SubnetId"]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    table = ec2.create_route_table(VpcId=vpc_id)["RouteTable"]
    table_id = table["RouteTableId"]
    assert table["Routes"] == [{"DestinationCidrBlock": "10.2.0.0/16", "GatewayId": "local",
                                "Origin": "CreateRouteTable", "State": "active"}]
    with pytest.raises(ClientError) as err:
        ec2.create_route(RouteTableId=table_id, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    assert code(err) == "InvalidParameterValue"  # not attached to this VPC
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc_id)
    with pytest.raises(ClientError) as err:
        ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc_id)
    assert code(err) == "Resource.AlreadyAssociated"
    ec2.create_route(RouteTableId=table_id, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    with pytest.raises(ClientError) as err:
        ec2.create_route(RouteTableId=table_id, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    assert code(err) == "RouteAlreadyExists"
    association = ec2.associate_route_table(RouteTableId=table_id, SubnetId=subnet_id)["AssociationId"]
    with pytest.raises(ClientError) as err:
        ec2.delete_route_table(RouteTableId=table_id)
    assert code(err) == "DependencyViolation"
    found = ec2.describe_route_tables(Filters=[{"Name": "association.subnet-id", "Values": [subnet_id]}])
    assert [t["RouteTableId"] for t in found["RouteTables"]] == [table_id]
    ec2.disassociate_route_table(AssociationId=association)
    ec2.delete_route_table(RouteTableId=table_id)
    with pytest.raises(ClientError) as err:
        ec2.delete_internet_gateway(InternetGatewayId=igw)
    assert code(err) == "DependencyViolation"
    ec2.detach_internet_gateway(InternetGatewayId=igw, VpcId=vpc_id)
    with pytest.raises(ClientError) as err:
        ec2.detach_internet_gateway(InternetGatewayId=igw, VpcId=vpc_id)
    assert code(err) == "Gateway.NotAttached"
    ec2.delete_internet_gateway(InternetGatewayId=igw)
    ec2.delete_subnet(SubnetId=subnet_id)
    ec2.delete_vpc(VpcId=vpc_id)


def test_security_groups(ec2: Any, server: MinicloudServer) -> None:
    vpc_id = ec2.create_vpc(CidrBlock="10.3.0.0/16")["Vpc"]["VpcId"]
    web = ec2.create_security_group(GroupName="web", Description="web tier", VpcId=vpc_id)["GroupId"]
    app = ec2.create_security_group(GroupName="app", Description="app tier", VpcId=vpc_id)["GroupId"]
    with pytest.raises(ClientError) as err:
        ec2.create_security_group(GroupName="web", Description="again", VpcId=vpc_id)
    assert code(err) == "InvalidGroup.Duplicate"
    server.aws("ec2", "authorize-security-group-ingress", "--group-id", web, "--protocol", "tcp",
               "--port", "80", "--cidr", "0.0.0.0/0")
    rules = ec2.authorize_security_group_ingress(GroupId=app, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 8000, "ToPort": 8100, "UserIdGroupPairs": [{"GroupId": web}]}])
    assert rules["SecurityGroupRules"][0]["ReferencedGroupInfo"]["GroupId"] == web
    with pytest.raises(ClientError) as err:
        ec2.authorize_security_group_ingress(GroupId=web, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    assert code(err) == "InvalidPermission.Duplicate"
    with pytest.raises(ClientError) as err:
        ec2.authorize_security_group_ingress(GroupId=web, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 90, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    assert code(err) == "InvalidParameterValue"
    group = ec2.describe_security_groups(GroupIds=[web])["SecurityGroups"][0]
    assert group["IpPermissions"] == [{"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80,
                                       "IpRanges": [{"CidrIp": "0.0.0.0/0"}], "Ipv6Ranges": [],
                                       "PrefixListIds": [], "UserIdGroupPairs": []}]
    found = ec2.describe_security_groups(Filters=[{"Name": "ip-permission.from-port", "Values": ["8000"]}])
    assert [g["GroupId"] for g in found["SecurityGroups"]] == [app]
    listed = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [web]}])
    assert {(r["IsEgress"], r["IpProtocol"]) for r in listed["SecurityGroupRules"]} == {(False, "tcp"), (True, "-1")}
    with pytest.raises(ClientError) as err:
        ec2.delete_security_group(GroupId=web)
    assert code(err) == "DependencyViolation"  # app's rule references it
    ec2.revoke_security_group_ingress(GroupId=app, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 8000, "ToPort": 8100, "UserIdGroupPairs": [{"GroupId": web}]}])
    with pytest.raises(ClientError) as err:
        ec2.revoke_security_group_ingress(GroupId=app, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 8000, "ToPort": 8100, "UserIdGroupPairs": [{"GroupId": web}]}])
    assert code(err) == "InvalidPermission.NotFound"
    with pytest.raises(ClientError) as err:
        ec2.describe_security_groups(GroupIds=["sg-0123456789abcdef0"])
    assert code(err) == "InvalidGroup.NotFound"
    with pytest.raises(ClientError) as err:
        ec2.describe_security_groups(GroupIds=["nope"])
    assert code(err) == "InvalidGroupId.Malformed"
    default = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc_id]},
                                                    {"Name": "group-name", "Values": ["default"]}])
    with pytest.raises(ClientError) as err:
        ec2.delete_security_group(GroupId=default["SecurityGroups"][0]["GroupId"])
    assert code(err) == "CannotDelete"
    for group_id in (web, app):
        ec2.delete_security_group(GroupId=group_id)
    ec2.delete_vpc(VpcId=vpc_id)


def test_tags_filters_and_pagination(ec2: Any, server: MinicloudServer) -> None:
    ids = [ec2.create_vpc(CidrBlock=f"10.{50 + i}.0.0/16")["Vpc"]["VpcId"] for i in range(7)]
    ec2.create_tags(Resources=ids[:3], Tags=[{"Key": "team", "Value": "blue"}, {"Key": "Name", "Value": "web-1"}])
    server.aws("ec2", "create-tags", "--resources", ids[3], "--tags", "Key=team,Value=green")
    blue = ec2.describe_vpcs(Filters=[{"Name": "tag:team", "Values": ["blue"]}])["Vpcs"]
    assert sorted(v["VpcId"] for v in blue) == sorted(ids[:3])
    wild = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": ["web-?"]}, {"Name": "tag-key",
                                                                               "Values": ["team"]}])["Vpcs"]
    assert len(wild) == 3
    tags = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [ids[0]]}])["Tags"]
    assert [(t["Key"], t["Value"], t["ResourceType"]) for t in tags] == [("Name", "web-1", "vpc"),
                                                                          ("team", "blue", "vpc")]
    ec2.delete_tags(Resources=[ids[0]], Tags=[{"Key": "team", "Value": "red"}])  # value differs: kept
    ec2.delete_tags(Resources=[ids[0]], Tags=[{"Key": "Name"}])
    tags = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [ids[0]]}])["Tags"]
    assert [t["Key"] for t in tags] == ["team"]
    with pytest.raises(ClientError) as err:
        ec2.create_tags(Resources=["vpc-0000000000000000f"], Tags=[{"Key": "a", "Value": "b"}])
    assert code(err) == "InvalidVpcID.NotFound"
    with pytest.raises(ClientError) as err:
        ec2.describe_vpcs(Filters=[{"Name": "no-such-filter", "Values": ["x"]}])
    assert code(err) == "InvalidParameterValue"
    seen: list[str] = []
    pages = ec2.get_paginator("describe_vpcs").paginate(PaginationConfig={"PageSize": 5})
    for page in pages:
        assert len(page["Vpcs"]) <= 5
        seen += [v["VpcId"] for v in page["Vpcs"]]
    assert set(ids) <= set(seen) and len(seen) == len(set(seen))
    with pytest.raises(ClientError) as err:
        ec2.describe_vpcs(DryRun=True)
    assert code(err) == "DryRunOperation"
    for vpc_id in ids:
        ec2.delete_vpc(VpcId=vpc_id)


def test_iam_policies_see_resource_arns_and_tags(ec2: Any, server: MinicloudServer) -> None:
    """A user's policy on ``vpc/*`` with an ``aws:ResourceTag`` condition: EC2 authorizes each named
    resource's ARN with its tags, creations on ``<type>/*``."""
    iam = server.client("iam")
    name = f"netops-{uuid.uuid4().hex[:6]}"
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps({"Version": "2012-10-17",
                                                                                  "Statement": [
        {"Effect": "Allow", "Action": ["ec2:CreateVpc", "ec2:DescribeVpcs"], "Resource": "*"},
        {"Effect": "Allow", "Action": ["ec2:CreateTags", "ec2:DeleteVpc"], "Resource": "arn:aws:ec2:*:*:vpc/*",
         "Condition": {"StringEquals": {"aws:ResourceTag/team": "blue"}}}]}))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    user = server.client("ec2", keys=Keys(key["AccessKeyId"], key["SecretAccessKey"]))
    blue = user.create_vpc(CidrBlock="10.60.0.0/16")["Vpc"]["VpcId"]
    red = user.create_vpc(CidrBlock="10.61.0.0/16")["Vpc"]["VpcId"]
    ec2.create_tags(Resources=[blue], Tags=[{"Key": "team", "Value": "blue"}])
    ec2.create_tags(Resources=[red], Tags=[{"Key": "team", "Value": "red"}])
    user.create_tags(Resources=[blue], Tags=[{"Key": "Name", "Value": "mine"}])
    with pytest.raises(ClientError) as err:
        user.create_tags(Resources=[red], Tags=[{"Key": "Name", "Value": "not mine"}])
    assert code(err) == "UnauthorizedOperation" and err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    with pytest.raises(ClientError) as err:
        user.create_tags(Resources=[blue, red], Tags=[{"Key": "x", "Value": "y"}])
    assert code(err) == "UnauthorizedOperation"
    with pytest.raises(ClientError) as err:
        user.delete_vpc(VpcId=blue, DryRun=True)
    assert code(err) == "DryRunOperation"
    with pytest.raises(ClientError) as err:
        user.create_security_group(GroupName="g", Description="d", VpcId=blue)
    assert code(err) == "UnauthorizedOperation"
    for vpc_id in (blue, red):
        ec2.delete_vpc(VpcId=vpc_id)
