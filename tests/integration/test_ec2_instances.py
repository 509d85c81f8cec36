"""EC2 instances for real, through boto3 and the AWS CLI against a real ``minicloud up``: containers
on minicloud's engine inside VPC namespaces (``minicloud.vpcnet``), the guest's AMIs (debian with
sshd, busybox) pushed into the server's registry. Security groups drop packets, public addresses
are 127.x host addresses, SSH logs in with the key pair, stop/start keeps files."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

import minicloud.services.ec2.guest  # noqa: F401 - registers the AMI recipes
from tests.support.aws import code
from tests.support.images import BaseImages, base_images, image_cache  # noqa: F401 - fixtures
from tests.support.server import MinicloudServer

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("runc") or not shutil.which("ssh"),
                                reason="instances need root, runc and Debian's ssh client")

SSH_OPTIONS = ("-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
               "-o", "ConnectTimeout=3", "-o", "LogLevel=ERROR")
WEB_USER_DATA = """#!/bin/sh
mkdir -p /tmp/www && echo "web on $(hostname)" > /tmp/www/index.html
httpd -p 8080 -h /tmp/www
httpd -p 9090 -h /tmp/www
httpd -p 7070 -h /tmp/www
echo web-servers-started
"""


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60, every: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every)


def instance(ec2: Any, instance_id: str) -> dict[str, Any]:
    return dict(ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0])


def wait_state(ec2: Any, instance_id: str, state: str, timeout: float = 90) -> dict[str, Any]:
    return dict(wait_for(f"{instance_id} {state}", lambda: (i := instance(ec2, instance_id))["State"]["Name"] == state
                         and i, timeout))


def tcp_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def ssh(key: Path, address: str, command: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ssh", "-i", str(key), *SSH_OPTIONS, f"admin@{address}", command], capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


class Lab:
    """A VPC with a public subnet (internet gateway, route, public IPs) and the AMIs' ids."""

    def __init__(self, server: MinicloudServer, images: BaseImages, work: Path) -> None:
        images.push(server, ["busybox", "ami-debian"])
        self.ec2 = ec2 = server.client("ec2")
        names = {i["Name"]: i["ImageId"] for i in ec2.describe_images(Owners=["minicloud"])["Images"]}
        self.debian, self.busybox = names["debian-12-amd64-minicloud"], names["busybox-minicloud"]
        self.vpc = ec2.create_vpc(CidrBlock="10.8.0.0/16")["Vpc"]["VpcId"]
        self.subnet = self.public_subnet(self.vpc, "10.8.1.0/24")
        self.key_name = f"lab-{uuid.uuid4().hex[:6]}"
        self.key = work / "lab.pem"
        self.key.write_text(ec2.create_key_pair(KeyName=self.key_name, KeyType="ed25519")["KeyMaterial"])
        self.key.chmod(0o600)

    def public_subnet(self, vpc_id: str, cidr: str) -> str:
        ec2 = self.ec2
        subnet = ec2.create_subnet(VpcId=vpc_id, CidrBlock=cidr)["Subnet"]["SubnetId"]
        ec2.modify_subnet_attribute(SubnetId=subnet, MapPublicIpOnLaunch={"Value": True})
        igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
        ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc_id)
        table = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["RouteTables"][0]
        ec2.create_route(RouteTableId=table["RouteTableId"], DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
        return str(subnet)

    def group(self, vpc_id: str, name: str) -> str:
        return str(self.ec2.create_security_group(GroupName=name, Description=name, VpcId=vpc_id)["GroupId"])

    def run(self, image: str, subnet: str, groups: list[str], user_data: str = "", **kw: Any) -> str:
        result = self.ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.nano",
                                        SubnetId=subnet, SecurityGroupIds=groups, UserData=user_data, **kw)
        return str(result["Instances"][0]["InstanceId"])


@pytest.fixture(scope="module")
def lab(server: MinicloudServer, base_images: BaseImages,  # noqa: F811
        tmp_path_factory: pytest.TempPathFactory) -> Lab:
    return Lab(server, base_images, tmp_path_factory.mktemp("ec2lab"))


def test_launch_errors_leave_nothing_behind(lab: Lab, server: MinicloudServer) -> None:
    ec2 = lab.ec2
    before = ec2.describe_instances()["Reservations"]
    cases: list[tuple[dict[str, Any], str]] = [
        ({"ImageId": "ami-0123456789abcdef0"}, "InvalidAMIID.NotFound"),
        ({"SubnetId": "subnet-0123456789abcdef0"}, "InvalidSubnetID.NotFound"),
        ({"SecurityGroupIds": ["sg-0123456789abcdef0"]}, "InvalidGroup.NotFound"),
        ({"InstanceType": "t9.huge"}, "InvalidParameterValue"),
        ({"KeyName": "no-such-key"}, "InvalidKeyPair.NotFound"),
        ({"MinCount": 21, "MaxCount": 21}, "InstanceLimitExceeded"),
        ({"PrivateIpAddress": "10.8.2.9"}, "InvalidParameterValue"),
    ]
    for overrides, expected in cases:
        params = {"ImageId": lab.busybox, "MinCount": 1, "MaxCount": 1, "SubnetId": lab.subnet, **overrides}
        with pytest.raises(ClientError) as err:
            ec2.run_instances(**params)
            pytest.fail(f"RunInstances with {overrides} succeeded")
        assert code(err) == expected, overrides
    assert ec2.describe_instances()["Reservations"] == before
    with pytest.raises(ClientError) as err:
        ec2.describe_instances(InstanceIds=["i-0123456789abcdef0"])
    assert code(err) == "InvalidInstanceID.NotFound"


def test_client_token_protection_and_attributes(lab: Lab, server: MinicloudServer) -> None:
    ec2 = lab.ec2
    token = uuid.uuid4().hex
    first = ec2.run_instances(ImageId=lab.busybox, MinCount=1, MaxCount=1, SubnetId=lab.subnet, ClientToken=token,
                              DisableApiTermination=True, TagSpecifications=[
                                  {"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "tok"}]}])
    again = ec2.run_instances(ImageId=lab.busybox, MinCount=1, MaxCount=1, SubnetId=lab.subnet, ClientToken=token)
    instance_id = first["Instances"][0]["InstanceId"]
    assert again["Instances"][0]["InstanceId"] == instance_id
    assert again["ReservationId"] == first["ReservationId"]
    running = wait_state(ec2, instance_id, "running")
    assert running["Tags"] == [{"Key": "Name", "Value": "tok"}] and running["PublicIpAddress"].startswith("127.")
    found = ec2.describe_instances(Filters=[{"Name": "tag:Name", "Values": ["tok"]},
                                            {"Name": "instance-state-name", "Values": ["running"]}])
    assert [i["InstanceId"] for r in found["Reservations"] for i in r["Instances"]] == [instance_id]
    with pytest.raises(ClientError) as err:
        ec2.terminate_instances(InstanceIds=[instance_id])
    assert code(err) == "OperationNotPermitted"
    with pytest.raises(ClientError) as err:
        ec2.modify_instance_attribute(InstanceId=instance_id, InstanceType={"Value": "t3.small"})
    assert code(err) == "IncorrectInstanceState"
    status = ec2.describe_instance_status(InstanceIds=[instance_id])["InstanceStatuses"]
    assert status[0]["InstanceState"]["Name"] == "running"
    ec2.modify_instance_attribute(InstanceId=instance_id, DisableApiTermination={"Value": False})
    out = server.aws_json("ec2", "describe-instance-attribute", "--instance-id", instance_id,
                          "--attribute", "disableApiTermination")
    assert out["DisableApiTermination"] == {"Value": False}
    ec2.terminate_instances(InstanceIds=[instance_id])
    gone = wait_state(ec2, instance_id, "terminated")
    assert "PublicIpAddress" not in gone


def test_describe_instances_pages_and_filters(lab: Lab, server: MinicloudServer) -> None:
    ec2 = lab.ec2
    reply = ec2.run_instances(ImageId=lab.busybox, MinCount=6, MaxCount=6, SubnetId=lab.subnet,
                              InstanceType="t3.nano")
    reservation, ids = reply["ReservationId"], [i["InstanceId"] for i in reply["Instances"]]
    assert [i["AmiLaunchIndex"] for i in reply["Instances"]] == list(range(6))
    assert len({i["PrivateIpAddress"] for i in reply["Instances"]}) == 6
    by_reservation = [{"Name": "reservation-id", "Values": [reservation]}]
    first = ec2.describe_instances(Filters=by_reservation, MaxResults=5)
    assert sum(len(r["Instances"]) for r in first["Reservations"]) == 5 and first["NextToken"]
    rest = ec2.describe_instances(Filters=by_reservation, MaxResults=5, NextToken=first["NextToken"])
    assert sum(len(r["Instances"]) for r in rest["Reservations"]) == 1 and "NextToken" not in rest
    out = server.aws_json("ec2", "describe-instances", "--filters", f"Name=reservation-id,Values={reservation}",
                          "--page-size", "5", "--query", "Reservations[].Instances[].InstanceId")
    assert sorted(out) == sorted(ids)
    with pytest.raises(ClientError) as err:
        ec2.describe_instances(InstanceIds=ids[:1], MaxResults=5)
    assert code(err) == "InvalidParameterCombination"
    found = ec2.describe_instances(Filters=[{"Name": "private-ip-address",
                                             "Values": [reply["Instances"][2]["PrivateIpAddress"]]}])
    assert [i["InstanceId"] for r in found["Reservations"] for i in r["Instances"]] == [ids[2]]
    enis = ec2.describe_network_interfaces(Filters=[{"Name": "attachment.instance-id", "Values": [ids[2]]}])
    (eni,) = enis["NetworkInterfaces"]
    assert eni["PrivateIpAddress"] == reply["Instances"][2]["PrivateIpAddress"] and eni["SubnetId"] == lab.subnet
    assert eni["NetworkInterfaceId"] == reply["Instances"][2]["NetworkInterfaces"][0]["NetworkInterfaceId"]
    ec2.terminate_instances(InstanceIds=ids)
    for instance_id in ids:
        wait_state(ec2, instance_id, "terminated")


def test_security_groups_isolation_and_public_addresses(lab: Lab, server: MinicloudServer) -> None:
    """B (busybox) serves 8080 (allowed from A's group), 9090 (allowed from anywhere) and 7070 (no
    rule). A (debian, ssh) reaches B on 8080 and not on 7070; the host reaches B's public address on
    9090 only, until the rule is revoked; C in another VPC is unreachable from A."""
    ec2 = lab.ec2
    ssh_group, web_group = lab.group(lab.vpc, "ssh"), lab.group(lab.vpc, "web")
    ec2.authorize_security_group_ingress(GroupId=ssh_group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    ec2.authorize_security_group_ingress(GroupId=web_group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080, "UserIdGroupPairs": [{"GroupId": ssh_group}]},
        {"IpProtocol": "tcp", "FromPort": 9090, "ToPort": 9090, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    other_vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    other_subnet = lab.public_subnet(other_vpc, "10.9.1.0/24")
    open_group = lab.group(other_vpc, "open")
    ec2.authorize_security_group_ingress(GroupId=open_group, IpPermissions=[
        {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    started = time.monotonic()
    a = lab.run(lab.debian, lab.subnet, [ssh_group], KeyName=lab.key_name)
    b = lab.run(lab.busybox, lab.subnet, [web_group], WEB_USER_DATA)
    c = lab.run(lab.busybox, other_subnet, [open_group], WEB_USER_DATA)
    a_info, b_info, c_info = (wait_state(ec2, i, "running") for i in (a, b, c))
    print(f"\nthree instances running {time.monotonic() - started:.2f} s after the first RunInstances")
    a_ip, b_ip = a_info["PublicIpAddress"], b_info["PublicIpAddress"]
    wait_for("sshd on A", lambda: ssh(lab.key, a_ip, "true").returncode == 0, timeout=60, every=0.5)
    wait_for("B's web servers", lambda: "web-servers-started" in console(ec2, b), timeout=30)
    wait_for("C's web servers", lambda: "web-servers-started" in console(ec2, c), timeout=30)

    def from_a(address: str, port: int) -> bool:
        probe = f"curl -s -m 2 -o /dev/null -w '%{{http_code}}' http://{address}:{port}/"
        return ssh(lab.key, a_ip, probe).stdout.strip() == "200"
    assert from_a(b_info["PrivateIpAddress"], 8080)
    assert not from_a(b_info["PrivateIpAddress"], 7070)
    assert not from_a(c_info["PrivateIpAddress"], 8080)  # another VPC: no route at all
    assert tcp_open(b_ip, 9090) and not tcp_open(b_ip, 8080, 0.5) and not tcp_open(b_ip, 7070, 0.5)
    assert not tcp_open(a_ip, 80, 0.5)
    ec2.revoke_security_group_ingress(GroupId=web_group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 9090, "ToPort": 9090, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    revoked = time.monotonic()
    wait_for("the revoke to take effect", lambda: not tcp_open(b_ip, 9090, 0.3), timeout=30, every=0.05)
    print(f"\nEC2: a revoked rule took effect in {time.monotonic() - revoked:.2f} s", file=sys.stderr)
    alt = lab.group(lab.vpc, "alt")
    ec2.authorize_security_group_ingress(GroupId=alt, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 7070, "ToPort": 7070, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    ec2.modify_instance_attribute(InstanceId=b, Groups=[alt])  # B's groups replaced on the running instance
    wait_for("B's new group", lambda: tcp_open(b_ip, 7070, 0.3), timeout=30, every=0.05)
    assert not from_a(b_info["PrivateIpAddress"], 8080)
    for instance_id in (a, b, c):
        ec2.terminate_instances(InstanceIds=[instance_id])


def console(ec2: Any, instance_id: str) -> str:
    """The console output (boto3 decodes its base64)."""
    return str(ec2.get_console_output(InstanceId=instance_id).get("Output") or "")


def test_ssh_user_data_stop_start_terminate(lab: Lab, server: MinicloudServer) -> None:
    ec2 = lab.ec2
    group = lab.group(lab.vpc, f"ssh-{uuid.uuid4().hex[:4]}")
    server.aws("ec2", "authorize-security-group-ingress", "--group-id", group, "--protocol", "tcp", "--port", "22",
               "--cidr", "0.0.0.0/0")
    user_data = "#!/bin/bash\necho user-data-ran-once\necho made-by-user-data > /var/tmp/from-user-data\n"
    out = server.aws_json("ec2", "run-instances", "--image-id", lab.debian, "--instance-type", "t3.micro",
                          "--subnet-id", lab.subnet, "--security-group-ids", group, "--key-name", lab.key_name,
                          "--user-data", user_data)
    instance_id = out["Instances"][0]["InstanceId"]
    address = wait_state(ec2, instance_id, "running")["PublicIpAddress"]
    wait_for("ssh", lambda: ssh(lab.key, address, "true").returncode == 0, timeout=60, every=0.5)
    result = ssh(lab.key, address, "cat /var/tmp/from-user-data; echo kept > ~/file; hostname; "
                                   "curl -s http://169.254.169.254/latest/meta-data/instance-id")
    assert result.stdout.split() == ["made-by-user-data", instance(ec2, instance_id)["PrivateDnsName"].split(".")[0],
                                     instance_id]
    assert "user-data-ran-once" in console(ec2, instance_id)
    ec2.stop_instances(InstanceIds=[instance_id])
    stopped = wait_state(ec2, instance_id, "stopped")
    assert "PublicIpAddress" not in stopped and stopped["StateReason"]["Code"] == "Client.UserInitiatedShutdown"
    assert not tcp_open(address, 22, 0.5)
    image_id = ec2.create_image(InstanceId=instance_id, Name=f"snap-{uuid.uuid4().hex[:6]}")["ImageId"]
    made = wait_for("the new AMI", lambda: (i := ec2.describe_images(ImageIds=[image_id])["Images"][0])[
        "State"] != "pending" and i, timeout=120, every=0.5)
    assert made["State"] == "available" and made["OwnerId"] == server.account_id
    ec2.modify_instance_attribute(InstanceId=instance_id, InstanceType={"Value": "t3.small"})
    ec2.start_instances(InstanceIds=[instance_id])
    started = wait_state(ec2, instance_id, "running")
    assert started["InstanceType"] == "t3.small"
    address = started["PublicIpAddress"]
    wait_for("ssh after start", lambda: ssh(lab.key, address, "true").returncode == 0, timeout=60, every=0.5)
    assert ssh(lab.key, address, "cat ~/file").stdout.strip() == "kept"
    assert console(ec2, instance_id).count("user-data-ran-once") == 1
    clone = lab.run(image_id, lab.subnet, [group], KeyName=lab.key_name)  # from the AMI made of the instance
    clone_address = wait_state(ec2, clone, "running")["PublicIpAddress"]
    wait_for("ssh to the clone", lambda: ssh(lab.key, clone_address, "true").returncode == 0, timeout=60, every=0.5)
    assert ssh(lab.key, clone_address, "cat ~/file /var/tmp/from-user-data").stdout.split() == [
        "kept", "made-by-user-data"]
    assert "user-data-ran-once" not in console(ec2, clone)  # no user data of its own
    ec2.terminate_instances(InstanceIds=[instance_id, clone])
    wait_state(ec2, instance_id, "terminated")
    assert not tcp_open(address, 22, 0.5)
    netns = server.data_dir / "ec2" / "vpcnet" / "netns" / f"instance.{instance_id}"
    assert not netns.exists()


def test_instance_profile_credentials(lab: Lab, server: MinicloudServer) -> None:
    ec2, iam = lab.ec2, server.client("iam")
    name = f"reader-{uuid.uuid4().hex[:6]}"
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
                                                     "Action": "sts:AssumeRole"}]}
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
    iam.put_role_policy(RoleName=name, PolicyName="ec2-read", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ec2:DescribeVpcs", "Resource": "*"}]}))
    iam.create_instance_profile(InstanceProfileName=name)
    iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=name)
    group = lab.group(lab.vpc, f"p-{uuid.uuid4().hex[:4]}")
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    instance_id = lab.run(lab.debian, lab.subnet, [group], KeyName=lab.key_name, IamInstanceProfile={"Name": name})
    info = wait_state(ec2, instance_id, "running")
    assert info["IamInstanceProfile"]["Arn"].endswith(f":instance-profile/{name}")
    address = info["PublicIpAddress"]
    wait_for("ssh", lambda: ssh(lab.key, address, "true").returncode == 0, timeout=60, every=0.5)
    doc = ssh(lab.key, address, f"curl -s http://169.254.169.254/latest/meta-data/iam/security-credentials/{name}")
    creds = json.loads(doc.stdout)
    assert creds["Code"] == "Success"
    lifetime = datetime.fromisoformat(creds["Expiration"].replace("Z", "+00:00")) - datetime.now(UTC)
    assert timedelta(minutes=50) < lifetime <= timedelta(hours=1)
    session = server.client("sts", keys=_keys(creds))
    identity = session.get_caller_identity()
    assert identity["Arn"].endswith(f":assumed-role/{name}/{instance_id}")
    as_role = server.client("ec2", keys=_keys(creds))
    assert as_role.describe_vpcs()["Vpcs"]
    with pytest.raises(ClientError) as err:
        as_role.create_vpc(CidrBlock="10.99.0.0/16")
    assert code(err) == "UnauthorizedOperation"
    inside = signed_call_from_inside(lab.key, address, name, server.port)
    assert f":assumed-role/{name}/{instance_id}" in inside("sts", "Action=GetCallerIdentity&Version=2011-06-15")
    assert "<DescribeVpcsResponse" in inside("ec2", "Action=DescribeVpcs&Version=2016-11-15")
    assert "UnauthorizedOperation" in inside("ec2", "Action=CreateVpc&Version=2016-11-15&CidrBlock=10.98.0.0/16")
    v1 = "curl -s -o /dev/null -w '%{http_code}' http://169.254.169.254/latest/meta-data/instance-id"
    assert ssh(lab.key, address, v1).stdout == "200"
    options = ec2.modify_instance_metadata_options(InstanceId=instance_id, HttpTokens="required")
    assert options["InstanceMetadataOptions"]["HttpTokens"] == "required"
    assert ssh(lab.key, address, v1).stdout == "401"  # IMDSv2 only now
    ec2.terminate_instances(InstanceIds=[instance_id])


SIGNED_CALL = """
import ast, datetime, hashlib, socket, subprocess, sys
role, port, service, body = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].encode()
imds = "http://169.254.169.254/latest/meta-data/iam/security-credentials/" + role
c = ast.literal_eval(subprocess.run(["curl", "-s", imds], capture_output=True, text=True).stdout)


def hmac(key, message):  # python3-minimal has no hmac module
    key = key.ljust(64, bytes(1))
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key) + message).digest()
    return hashlib.sha256(bytes(b ^ 0x5C for b in key) + inner).digest()


host = "169.254.169.250:" + port
amz = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
scope = amz[:8] + "/us-east-1/" + service + "/aws4_request"
headers = {"content-type": "application/x-www-form-urlencoded; charset=utf-8", "host": host, "x-amz-date": amz,
           "x-amz-security-token": c["Token"]}
signed = ";".join(sorted(headers))
canonical = "\\n".join(["POST", "/", "", "".join(k + ":" + headers[k] + "\\n" for k in sorted(headers)), signed,
                        hashlib.sha256(body).hexdigest()])
to_sign = "\\n".join(["AWS4-HMAC-SHA256", amz, scope, hashlib.sha256(canonical.encode()).hexdigest()])
key = ("AWS4" + c["SecretAccessKey"]).encode()
for part in (amz[:8], "us-east-1", service, "aws4_request"):
    key = hmac(key, part.encode())
signature = hmac(key, to_sign.encode()).hex()
headers["authorization"] = ("AWS4-HMAC-SHA256 Credential=" + c["AccessKeyId"] + "/" + scope + ", SignedHeaders="
                            + signed + ", Signature=" + signature)
headers["content-length"] = str(len(body))
headers["connection"] = "close"
head = "POST / HTTP/1.1\\r\\n" + "".join(k + ": " + v + "\\r\\n" for k, v in headers.items()) + "\\r\\n"
conn = socket.create_connection(("169.254.169.250", int(port)), timeout=10)
conn.sendall(head.encode() + body)
answer = b""
while chunk := conn.recv(65536):
    answer += chunk
print(answer.decode(errors="replace"))
"""


def signed_call_from_inside(key: Path, address: str, role: str, port: int) -> Callable[[str, str], str]:
    """A SigV4-signed API call made by python3 inside the instance (the AMI has python3-minimal: no
    hmac, json or urllib), with the role's credentials from the metadata service, through
    minicloud's endpoint in the VPC (169.254.169.250)."""
    def call(service: str, body: str) -> str:
        command = f"python3 - {role} {port} {service} '{body}' <<'PYEOF'\n{SIGNED_CALL}\nPYEOF"
        result = ssh(key, address, command)
        return result.stdout + result.stderr
    return call


def _keys(creds: dict[str, str]) -> Any:
    from tests.support.server import Keys

    return Keys(creds["AccessKeyId"], creds["SecretAccessKey"], creds["Token"])


def test_a_launch_the_engine_cannot_run_ends_terminated(lab: Lab, server: MinicloudServer, tmp_path: Path) -> None:
    from tests.integration.test_ec2_images import push_busybox
    from tests.integration.test_ecr import http

    ec2 = lab.ec2
    repository = f"gone/app-{uuid.uuid4().hex[:6]}"
    push_busybox(server, tmp_path, repository, "v1")
    image_id = ec2.register_image(Name=repository.replace("/", "-"), ImageLocation=f"{repository}:v1")["ImageId"]
    status, headers, _ = http(server, "HEAD", f"/v2/{repository}/manifests/v1",
                              headers={"accept": "application/vnd.oci.image.manifest.v1+json"})
    assert status == 200
    status, _, body = http(server, "DELETE", f"/v2/{repository}/manifests/{headers['docker-content-digest']}")
    assert status == 202, body
    instance_id = lab.run(image_id, lab.subnet, [])
    ended = wait_state(ec2, instance_id, "terminated", timeout=60)
    assert ended["StateReason"]["Code"] == "Server.InternalError"
    assert "PublicIpAddress" not in ended
    assert not (server.data_dir / "ec2" / "vpcnet" / "netns" / f"instance.{instance_id}").exists()
