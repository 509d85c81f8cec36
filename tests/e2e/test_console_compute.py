"""The console's EC2/VPC and Lambda pages in Chromium against a real ``minicloud up``: launch an
instance and watch it reach running, its console output, the VPC drawing, security group rules and
bad CIDRs; a Lambda function created, invoked (result and log tail), edited and invoked again."""

from __future__ import annotations

import json
import re
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from tests.e2e.conftest import console, sign_in_root
from tests.integration.test_ec2_images import push_busybox
from tests.support.server import MinicloudServer

LAMBDA_TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}


def services(server: MinicloudServer) -> dict[str, Any]:
    with urllib.request.urlopen(f"{server.endpoint}/_minicloud/health", timeout=10) as response:
        return dict(json.loads(response.read())["services"])


def need(server: MinicloudServer, service: str) -> None:
    """A missing service is a failure, not a skip: every service is registered in CI."""
    assert service in services(server), f"the {service} service is not registered in this minicloud"


def test_launch_an_instance_and_watch_it_run(page: Page, server: MinicloudServer, tmp_path: Path,
                                             artefacts: Path) -> None:
    need(server, "ec2")
    tag = f"console-{uuid.uuid4().hex[:6]}"
    push_busybox(server, tmp_path / "image", "library/busybox", tag,
                 cmd=("/bin/sh", "-c", "echo console-e2e-boot; sleep 600"))
    sign_in_root(page, server)
    page.goto(console(server, "/ec2/instances"))
    ec2 = server.client("ec2")
    ami = next(i["ImageId"] for i in ec2.describe_images()["Images"] if tag in (i.get("Name") or ""))
    # A subnet of its own VPC, without public addresses: other minicloud servers on this host may hold
    # the first public IPs (127.100.0.x), which the default subnet would map.
    vpc_id = ec2.create_vpc(CidrBlock="10.77.0.0/16")["Vpc"]["VpcId"]
    subnet_id = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.77.1.0/24", AvailabilityZone="us-east-1a")[
        "Subnet"]["SubnetId"]
    page.reload()
    page.get_by_label("Image (AMI)").select_option(ami)
    page.get_by_label("Subnet").select_option(subnet_id)
    page.get_by_label("Name (tag)").fill("console-e2e")
    page.get_by_role("button", name="Launch instance").click()
    expect(page.get_by_role("heading", name=re.compile(r"Instance i-"))).to_be_visible()
    instance_id = page.get_by_role("heading", name=re.compile(r"Instance i-")).inner_text().split()[-1]
    # The details refresh in place until the instance runs.
    expect(page.locator("#instance-state")).to_have_text("running", timeout=60_000)
    expect(page.locator("#instance-details")).to_contain_text("us-east-1a")
    expect(page.locator("#instance-details")).to_contain_text("10.77.1.")
    expect(page.locator("#console-output")).not_to_have_text("(no output yet)", timeout=30_000)
    page.screenshot(path=str(artefacts / "ec2-instance.png"), full_page=True)
    assert page.locator("#instance-details a[href*='/ec2/vpcs/']").inner_text() == vpc_id
    page.goto(console(server, f"/ec2/vpcs/{vpc_id}"))
    expect(page.locator("#topology")).to_contain_text(instance_id)
    page.screenshot(path=str(artefacts / "ec2-vpc-topology.png"), full_page=True)
    page.goto(console(server, f"/ec2/instances/{instance_id}"))
    page.get_by_role("button", name="Terminate").click()
    expect(page.locator("#instance-state")).to_have_text(re.compile("shutting-down|terminated"), timeout=30_000)
    state = ec2.describe_instances(InstanceIds=[instance_id])
    assert state["Reservations"][0]["Instances"][0]["State"]["Name"] in ("shutting-down", "terminated")


def test_vpc_and_security_group_forms(page: Page, server: MinicloudServer, artefacts: Path) -> None:
    need(server, "ec2")
    ec2 = server.client("ec2")
    sign_in_root(page, server)
    page.goto(console(server, "/ec2/vpcs"))
    before = len(ec2.describe_vpcs()["Vpcs"])
    page.get_by_label("IPv4 CIDR block").fill("10.300.0.0/16")
    page.get_by_role("button", name="Create VPC").click()
    expect(page.locator(".field.has-error #e-cidr")).to_contain_text("InvalidParameterValue")
    assert len(ec2.describe_vpcs()["Vpcs"]) == before
    page.get_by_label("IPv4 CIDR block").fill("10.42.0.0/16")
    page.get_by_role("button", name="Create VPC").click()
    expect(page.get_by_role("heading", name=re.compile("VPC vpc-"))).to_be_visible()
    vpc_id = page.get_by_role("heading", name=re.compile("VPC vpc-")).inner_text().split()[1]
    page.get_by_label("IPv4 CIDR block").fill("10.42.1.0/24")
    page.get_by_label("Availability zone").select_option("us-east-1b")
    page.get_by_role("button", name="Create subnet").click()
    expect(page.locator("#subnets")).to_contain_text("10.42.1.0/24")
    expect(page.locator("#topology")).to_contain_text("us-east-1b")

    page.goto(console(server, "/ec2/security-groups"))
    page.get_by_label("Name").fill(f"web-{uuid.uuid4().hex[:6]}")
    page.get_by_label("Description").fill("web tier")
    page.get_by_label("VPC").select_option(vpc_id)
    page.get_by_role("button", name="Create security group").click()
    expect(page.get_by_role("heading", name=re.compile(r"\(sg-"))).to_be_visible()
    group_id = re.search(r"sg-[0-9a-f]+", page.get_by_role("heading", level=1).inner_text()).group(0)  # type: ignore[union-attr]
    page.get_by_label("Port or range").fill("22")
    page.get_by_label("CIDR or security group").fill("10.0.0.0/99")
    page.get_by_role("button", name="Add rule").click()
    expect(page.locator(".field.has-error #e-source")).to_contain_text("InvalidParameterValue")
    page.get_by_label("CIDR or security group").fill("10.0.0.0/8")
    page.get_by_role("button", name="Add rule").click()
    expect(page.locator("#ingress-rules")).to_contain_text("10.0.0.0/8")
    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group_id]}])
    assert any(r.get("CidrIpv4") == "10.0.0.0/8" and r["FromPort"] == 22 and not r["IsEgress"]
               for r in rules["SecurityGroupRules"])
    page.screenshot(path=str(artefacts / "ec2-security-group.png"), full_page=True)
    page.locator("#ingress-rules tr", has_text="10.0.0.0/8").get_by_role("button", name="Remove").click()
    expect(page.locator("#ingress-rules")).not_to_contain_text("10.0.0.0/8")


def test_lambda_create_invoke_edit(page: Page, server: MinicloudServer, artefacts: Path) -> None:
    need(server, "lambda")
    role = f"fn-{uuid.uuid4().hex[:6]}"
    server.client("iam").create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST))
    name = f"hello-{uuid.uuid4().hex[:6]}"
    sign_in_root(page, server)
    page.goto(console(server, "/lambda/functions"))
    page.get_by_label("Function name").fill(name)
    page.get_by_label("Runtime").select_option("python3.11")
    page.get_by_label("Execution role").select_option(label=role)
    page.get_by_role("button", name="Create function").click()
    expect(page.get_by_role("heading", name=name)).to_be_visible()
    lam = server.client("lambda")
    # With a cold image cache the runtime image is built first (minutes); warm, this takes seconds.
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 2, "MaxAttempts": 240})
    expect(page.locator("#function-details")).to_contain_text("Active", timeout=30_000)  # refreshed in place
    page.get_by_label("Event (JSON)").fill('{"name": "e2e"}')
    page.get_by_role("button", name="Invoke").click()
    expect(page.locator("#invoke-payload")).to_contain_text('"hello": "e2e"', timeout=60_000)
    expect(page.locator("#invoke-log")).to_contain_text("REPORT RequestId")
    page.screenshot(path=str(artefacts / "lambda-function.png"), full_page=True)
    # Edit the code inline, deploy, invoke again: the new code answers, with its error.
    page.locator("#f-code").fill('def lambda_handler(event, context):\n    raise ValueError("edited in the console")\n')
    page.get_by_role("button", name="Save and deploy").click()
    expect(page.locator(".notice")).to_contain_text("saved and deployed")
    lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    page.get_by_role("button", name="Invoke").click()
    expect(page.locator("#invoke-result")).to_contain_text("Unhandled", timeout=60_000)
    expect(page.locator("#invoke-payload")).to_contain_text("edited in the console")
    expect(page.locator("#log-events")).to_contain_text("REPORT RequestId", timeout=30_000)
