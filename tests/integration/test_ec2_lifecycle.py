"""Instances across a restart of minicloud, instance-initiated shutdown, reboot and Elastic IPs,
against a minicloud of the test's own (busybox AMI: boots in a blink)."""

from __future__ import annotations

import os
import shutil
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

import minicloud.services.ec2.guest  # noqa: F401 - registers the AMI recipes
from tests.integration.test_ec2_instances import console, tcp_open, wait_for, wait_state
from tests.support.aws import code
from tests.support.images import BaseImages, base_images, image_cache  # noqa: F401 - fixtures
from tests.support.server import MinicloudServer

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("runc"), reason="instances need root and runc")

WEB = "#!/bin/sh\nmkdir -p /tmp/www && echo up > /tmp/www/index.html\nhttpd -p 9090 -h /tmp/www\necho web-up\n"


def setup(server: MinicloudServer, images: BaseImages, name: str = "busybox") -> tuple[Any, str, str]:
    server.start()
    images.push(server, [name])
    ec2 = server.client("ec2")
    ami = {"busybox": "busybox-minicloud", "ami-debian": "debian-12-amd64-minicloud"}[name]
    image = ec2.describe_images(Owners=["minicloud"], Filters=[{"Name": "name", "Values": [ami]}])
    group = ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"][0]["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
        for port in (22, 9090)])
    return ec2, image["Images"][0]["ImageId"], group


def run(ec2: Any, image: str, user_data: str = WEB, **kw: Any) -> str:
    return str(ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.nano", UserData=user_data,
                                 **kw)["Instances"][0]["InstanceId"])


def test_restart_keeps_every_instance_in_its_state(fresh_server: MinicloudServer,
                                                   base_images: BaseImages) -> None:  # noqa: F811
    """sshd is started at every boot (user data only at the first): it answers again after the restart."""
    ec2, image, _ = setup(fresh_server, base_images, "ami-debian")
    up, down = run(ec2, image), run(ec2, image)
    address = wait_state(ec2, up, "running")["PublicIpAddress"]  # the default VPC: public addresses
    wait_state(ec2, down, "running")
    ec2.stop_instances(InstanceIds=[down])
    wait_state(ec2, down, "stopped")
    wait_for("sshd", lambda: tcp_open(address, 22), timeout=30)
    fresh_server.stop()
    assert not tcp_open(address, 22, 0.5)  # everything of ours left the host with minicloud
    fresh_server.start()
    ec2 = fresh_server.client("ec2")
    wait_for("sshd after the restart", lambda: tcp_open(address, 22), timeout=60)
    assert instance_state(ec2, up) == "running" and instance_state(ec2, down) == "stopped"
    assert console(ec2, up).count("web-up") == 1  # user data ran at the first boot only
    ec2.terminate_instances(InstanceIds=[up, down])


def instance_state(ec2: Any, instance_id: str) -> str:
    found = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    return str(found["State"]["Name"])


def test_shutdown_reboot_and_elastic_ips(fresh_server: MinicloudServer,
                                         base_images: BaseImages) -> None:  # noqa: F811
    fresh_server.env.update(MINICLOUD_EC2_TERMINATED_RETENTION="2", MINICLOUD_EC2_MAX_INSTANCES="4")
    ec2, image, _ = setup(fresh_server, base_images)
    quota = ec2.describe_account_attributes(AttributeNames=["max-instances"])["AccountAttributes"][0]
    assert quota["AttributeValues"] == [{"AttributeValue": "4"}]
    with pytest.raises(ClientError) as err:
        ec2.run_instances(ImageId=image, MinCount=5, MaxCount=5)
    assert code(err) == "InstanceLimitExceeded"
    halt = "#!/bin/sh\nsleep 1\npoweroff\n"
    stops = run(ec2, image, halt)
    ends = run(ec2, image, halt, InstanceInitiatedShutdownBehavior="terminate")
    stopped = wait_state(ec2, stops, "stopped")
    assert stopped["StateReason"]["Code"] == "Client.InstanceInitiatedShutdown"
    wait_state(ec2, ends, "terminated")

    web = run(ec2, image)
    automatic = wait_state(ec2, web, "running")["PublicIpAddress"]
    eip = ec2.allocate_address(Domain="vpc")
    assert eip["AllocationId"].startswith("eipalloc-") and eip["PublicIp"].startswith("127.")
    association = ec2.associate_address(AllocationId=eip["AllocationId"], InstanceId=web)["AssociationId"]
    wait_for("the Elastic IP", lambda: tcp_open(eip["PublicIp"], 9090), timeout=30, every=0.1)
    assert not tcp_open(automatic, 9090, 0.5)
    described = ec2.describe_addresses(Filters=[{"Name": "instance-id", "Values": [web]}])["Addresses"]
    assert [a["AssociationId"] for a in described] == [association]
    with pytest.raises(ClientError) as err:
        ec2.release_address(AllocationId=eip["AllocationId"])
    assert code(err) == "InvalidIPAddress.InUse"
    ec2.disassociate_address(AssociationId=association)
    wait_for("the Elastic IP unmapped", lambda: not tcp_open(eip["PublicIp"], 9090, 0.3), timeout=30, every=0.1)
    renewed = wait_for("a new automatic address", lambda: ec2.describe_instances(InstanceIds=[web])[
        "Reservations"][0]["Instances"][0].get("PublicIpAddress"), timeout=30)
    wait_for("web on the new address", lambda: tcp_open(renewed, 9090, 0.3), timeout=30, every=0.1)
    ec2.release_address(AllocationId=eip["AllocationId"])
    with pytest.raises(ClientError) as err:
        ec2.describe_addresses(AllocationIds=[eip["AllocationId"]])
    assert code(err) == "InvalidAllocationID.NotFound"
    boots = console(ec2, web).count("Cloud-init v.")
    ec2.reboot_instances(InstanceIds=[web])
    wait_for("a second boot", lambda: console(ec2, web).count("Cloud-init v.") > boots, timeout=30)
    assert instance_state(ec2, web) == "running"
    started = time.monotonic()
    ec2.terminate_instances(InstanceIds=[web, stops])
    for instance_id in (web, stops):
        wait_state(ec2, instance_id, "terminated")
    assert time.monotonic() - started < 30

    def gone() -> bool:
        try:
            ec2.describe_instances(InstanceIds=[web])
        except ClientError as error:
            return bool(error.response["Error"]["Code"] == "InvalidInstanceID.NotFound")
        return False
    wait_for("the terminated instance to go", gone, timeout=20, every=0.5)  # retention: 2 s here
