"""The AWS CLI inside an instance calls minicloud with the instance profile role's permissions: the
role's credentials come from the instance metadata service, minicloud's API from the VPC's relay at
169.254.169.250. The AMI is the debian AMI plus Debian's awscli package (recipe ami-debian-awscli)."""

from __future__ import annotations

import json
import uuid

from tests.integration.test_ec2_instances import SSH_OPTIONS, Lab, lab, ssh, wait_for, wait_state  # noqa: F401
from tests.support.images import BaseImages, base_images, image_cache  # noqa: F401 - fixtures
from tests.support.server import MinicloudServer

assert SSH_OPTIONS  # (the module's skip conditions and helpers are test_ec2_instances')


def test_the_aws_cli_inside_an_instance_acts_as_the_instance_role(
        lab: Lab, server: MinicloudServer, base_images: BaseImages) -> None:  # noqa: F811
    base_images.push(server, ["ami-debian-awscli"])
    ec2, iam, s3 = lab.ec2, server.client("iam"), server.client("s3")
    image = ec2.register_image(Name=f"awscli-{uuid.uuid4().hex[:6]}",
                               ImageLocation="minicloud/ami-debian-awscli:bookworm")["ImageId"]
    name = f"s3reader-{uuid.uuid4().hex[:6]}"
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
                                                     "Action": "sts:AssumeRole"}]}
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
    iam.attach_role_policy(RoleName=name, PolicyArn="arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess")
    iam.create_instance_profile(InstanceProfileName=name)
    iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=name)
    bucket = f"inside-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="hello.txt", Body=b"hello from the host\n")
    group = lab.group(lab.vpc, f"cli-{uuid.uuid4().hex[:4]}")
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    try:
        _run_and_check(lab, server, image, name, bucket, group)
    finally:  # the session's server is shared: leave no AMI of this account behind
        ec2.deregister_image(ImageId=image)


def _run_and_check(lab: Lab, server: MinicloudServer, image: str, name: str, bucket: str,  # noqa: F811
                   group: str) -> None:
    ec2 = lab.ec2
    result = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.micro", SubnetId=lab.subnet,
                               SecurityGroupIds=[group], KeyName=lab.key_name, IamInstanceProfile={"Name": name})
    instance_id = result["Instances"][0]["InstanceId"]
    address = wait_state(ec2, instance_id, "running")["PublicIpAddress"]
    wait_for("ssh", lambda: ssh(lab.key, address, "true").returncode == 0, timeout=60, every=0.5)
    aws = f"aws --endpoint-url http://169.254.169.250:{server.port} --region us-east-1"

    identity = ssh(lab.key, address, f"{aws} sts get-caller-identity", timeout=60)
    assert json.loads(identity.stdout)["Arn"].endswith(f":assumed-role/{name}/{instance_id}"), identity.stderr
    read = ssh(lab.key, address, f"{aws} s3 cp s3://{bucket}/hello.txt -", timeout=60)
    assert read.stdout == "hello from the host\n", read.stderr
    refused = ssh(lab.key, address, f"{aws} s3 mb s3://{bucket}-no", timeout=60)
    assert refused.returncode != 0 and "AccessDenied" in refused.stderr
    ec2.terminate_instances(InstanceIds=[instance_id])
