"""EC2's pure parts: filters, security group rules, key fingerprints, ids, RunInstances parsing."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from minicloud.aws.errors import ClientError
from minicloud.services.ec2 import filters, keypairs, launch, sgrules
from minicloud.services.ec2.catalog import INSTANCE_TYPES
from minicloud.services.ec2.ids import new_id, stable_id, well_formed
from minicloud.services.ec2.store import Resource


def vpc(**doc: Any) -> Resource:
    return Resource("vpc-1", "111122223333", "us-east-1", "vpc", doc)


SPEC = {"cidr": filters.member("CidrBlock"), "assoc": filters.member("Assoc", "Id"), "default": filters.member("D")}


def test_filters_match_with_wildcards_tags_and_lists() -> None:
    resource = vpc(CidrBlock="10.0.0.0/16", Assoc=[{"Id": "a-1"}, {"Id": "a-2"}], D=True,
                   Tags=[{"Key": "Name", "Value": "web-1"}, {"Key": "team", "Value": "blue"}])
    assert filters.matches(resource, [{"Name": "cidr", "Values": ["10.0.*"]}], SPEC)
    assert filters.matches(resource, [{"Name": "assoc", "Values": ["x", "a-2"]}], SPEC)
    assert filters.matches(resource, [{"Name": "default", "Values": ["true"]}], SPEC)
    assert filters.matches(resource, [{"Name": "tag:Name", "Values": ["web-?"]},
                                      {"Name": "tag-key", "Values": ["team"]}], SPEC)
    assert not filters.matches(resource, [{"Name": "tag:Name", "Values": ["web"]}], SPEC)
    assert not filters.matches(resource, [{"Name": "cidr", "Values": ["10.0.0.0/16"]},
                                          {"Name": "tag-value", "Values": ["red"]}], SPEC)
    assert filters.matches(resource, [{"Name": "cidr", "Values": ["10.0.0.0/1[6]"]}], SPEC) is False  # no regex
    with pytest.raises(ClientError) as err:
        filters.check([{"Name": "nope", "Values": ["x"]}], SPEC)
    assert err.value.code == "InvalidParameterValue"


def test_security_group_rules_parse_and_render() -> None:
    rules = sgrules.parse([
        {"IpProtocol": "6", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "10.0.0.1/8", "Description": "d"}],
         "UserIdGroupPairs": [{"GroupId": "sg-1"}]},
        {"IpProtocol": "-1"} | {"IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
    ], egress=False, account_id="111122223333")
    assert [(r["proto"], r["from"], r["to"], r["cidr"], r["group"]) for r in rules] == [
        ("tcp", 22, 22, "10.0.0.0/8", None), ("tcp", 22, 22, None, "sg-1"), ("-1", -1, -1, "0.0.0.0/0", None)]
    rendered = sgrules.ip_permissions(sgrules.with_ids(rules), egress=False)
    assert rendered[0] == {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "Ipv6Ranges": [], "PrefixListIds": [],
                           "IpRanges": [{"CidrIp": "10.0.0.0/8", "Description": "d"}],
                           "UserIdGroupPairs": [{"GroupId": "sg-1", "UserId": "111122223333"}]}
    assert "FromPort" not in rendered[1]
    assert sgrules.describe_peer(rules[0]) == "peer: 10.0.0.0/8, TCP, from port: 22, to port: 22, ALLOW"
    for bad in ({"IpProtocol": "tcp", "FromPort": 90, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
                {"IpProtocol": "tcp", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
                {"IpProtocol": "banana", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
                {"IpProtocol": "tcp", "FromPort": 1, "ToPort": 2, "IpRanges": [{"CidrIp": "300.0.0.0/8"}]}):
        with pytest.raises(ClientError):
            sgrules.parse([bad], egress=False, account_id="1")
    with pytest.raises(ClientError) as err:
        sgrules.parse([{"IpProtocol": "tcp", "FromPort": 1, "ToPort": 2}], egress=True, account_id="1")
    assert err.value.code == "InvalidPermission.Malformed"


def test_key_fingerprints_as_ec2_computes_them() -> None:
    private, public_line, fingerprint = keypairs.generate("rsa")
    key = serialization.load_pem_private_key(private.encode(), None)
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    assert fingerprint == ":".join(f"{b:02x}" for b in hashlib.sha1(der).digest())
    assert public_line.startswith("ssh-rsa ")
    private, public_line, fingerprint = keypairs.generate("ed25519")
    assert private.startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    blob = base64.b64decode(public_line.split()[1])
    assert fingerprint == base64.b64encode(hashlib.sha256(blob).digest()).decode()
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    kind, _, imported = keypairs.imported(other.public_bytes(serialization.Encoding.OpenSSH,
                                                             serialization.PublicFormat.OpenSSH) + b" me@host")
    spki = other.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert (kind, imported) == ("rsa", ":".join(f"{b:02x}" for b in hashlib.md5(spki).digest()))
    for bad in (b"ssh-rsa AAAA", b"hello", b""):
        with pytest.raises(ClientError) as err:
            keypairs.imported(bad)
        assert err.value.code == "InvalidKeyPair.Format"


def test_ids() -> None:
    vpc_id = new_id("vpc")
    assert len(vpc_id) == 21 and well_formed(vpc_id, "vpc") and not well_formed(vpc_id, "subnet")
    assert well_formed("i-12345678", "instance") and not well_formed("i-xyz", "instance")
    assert stable_id("image", "library/busybox", "latest") == stable_id("image", "library/busybox", "latest")


def image() -> Resource:
    return Resource("ami-1", "0", "us-east-1", "image", {"_image": "library/busybox:latest"})


def test_run_instances_parameters() -> None:
    req = launch.parse_request({"MinCount": 1, "MaxCount": 3, "UserData": base64.b64encode(b"#!/bin/sh").decode(),
                                "NetworkInterfaces": [{"DeviceIndex": 0, "SubnetId": "subnet-1",
                                                       "AssociatePublicIpAddress": False}]},
                               "111122223333", "us-east-1", image(), [])
    assert (req.subnet_id, req.associate_public_ip, req.instance_type) == ("subnet-1", False, "t3.micro")
    bad_cases: list[tuple[dict[str, Any], str]] = [
        ({"MinCount": 2, "MaxCount": 1}, "InvalidParameterValue"),
        ({"MinCount": 1, "MaxCount": 1, "InstanceType": "x1.huge"}, "InvalidParameterValue"),
        ({"MinCount": 1, "MaxCount": 2, "PrivateIpAddress": "10.0.0.5"}, "InvalidParameterCombination"),
        ({"MinCount": 1, "MaxCount": 1, "UserData": "%%%"}, "InvalidParameterValue"),
        ({"MinCount": 1, "MaxCount": 1, "InstanceInitiatedShutdownBehavior": "hibernate"}, "InvalidParameterValue"),
    ]
    for params, expected in bad_cases:
        with pytest.raises(ClientError) as err:
            launch.parse_request(params, "1", "us-east-1", image(), [])
        assert err.value.code == expected, params
    assert launch.hostname("10.0.1.5", "us-east-1") == "ip-10-0-1-5.ec2.internal"
    assert launch.hostname("10.0.1.5", "eu-west-1") == "ip-10-0-1-5.eu-west-1.compute.internal"
    assert launch.public_dns("127.100.0.7", "us-east-1") == "ec2-127-100-0-7.compute-1.amazonaws.com"


def test_catalogue_limits() -> None:
    assert INSTANCE_TYPES["t3.nano"].memory_bytes == 512 << 20
    assert INSTANCE_TYPES["m5.xlarge"].info()["VCpuInfo"]["DefaultVCpus"] == 4
    assert 10**9 <= INSTANCE_TYPES["t3.2xlarge"].nano_cpus <= 8 * 10**9
