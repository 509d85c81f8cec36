"""EC2 networking: VPCs (with their drawn topology), subnets, security groups and their rules."""

from __future__ import annotations

from typing import Any

from minicloud.console.http import Response, url
from minicloud.console.page import Page, Route, route
from minicloud.console.topology import draw_vpc
from minicloud.console.views.common import field_error, status_of

VPC = r"(?P<vpc>vpc-[0-9a-f]{1,32})"
GROUP = r"(?P<group>sg-[0-9a-f]{1,32})"


def _filter(name: str, value: str) -> list[dict[str, Any]]:
    return [{"Name": name, "Values": [value]}]


def all_instances(result: dict[str, Any] | None) -> list[dict[str, Any]]:
    return [i for r in (result or {}).get("Reservations") or [] for i in r.get("Instances") or []]


# -- VPCs ------------------------------------------------------------------------------------------
async def vpcs(page: Page, status: int = 200, **extra: Any) -> Response:
    result, failure = await page.attempt("ec2", "DescribeVpcs", {})
    values: dict[str, Any] = {"vpcs": (result or {}).get("Vpcs") or [], "failure": failure, "errors": {},
                              "values": {}}
    values.update(extra)
    return page.render("ec2_vpcs.html", status, **values)


async def create_vpc(page: Page) -> Response:
    result, failure = await page.attempt("ec2", "CreateVpc", {"CidrBlock": page.form("cidr").strip()})
    if failure is not None:
        return await vpcs(page, status_of(failure), errors=field_error(failure, "cidr"), values=page.request.form)
    vpc_id = (result or {}).get("Vpc", {}).get("VpcId", "")
    return await page.done(url(f"/ec2/vpcs/{vpc_id}"), f"VPC {vpc_id} created.")


async def vpc(page: Page, status: int = 200, **extra: Any) -> Response:
    vpc_id = page.request.params["vpc"]
    found, failure = await page.attempt("ec2", "DescribeVpcs", {"VpcIds": [vpc_id]})
    if failure is not None:
        return page.render("error.html", status_of(failure), code=failure.code, message=failure.message)
    described = ((found or {}).get("Vpcs") or [{}])[0]
    subnets_result, subnets_failure = await page.attempt("ec2", "DescribeSubnets",
                                                         {"Filters": _filter("vpc-id", vpc_id)})
    instances_result, instances_failure = await page.attempt("ec2", "DescribeInstances",
                                                             {"Filters": _filter("vpc-id", vpc_id)})
    subnets = (subnets_result or {}).get("Subnets") or []
    instances = [i for i in all_instances(instances_result) if (i.get("State") or {}).get("Name") != "terminated"]
    zones = [z.name for z in page.console.calls.topology.zones(page.session.region)]
    values: dict[str, Any] = {
        "vpc": described, "subnets": subnets, "subnets_failure": subnets_failure, "instances": instances,
        "instances_failure": instances_failure, "zones": zones,
        "drawing": draw_vpc(described, zones, subnets, instances), "errors": {}, "values": {},
        "action_failure": None,
    }
    values.update(extra)
    return page.render("ec2_vpc.html", status, **values)


async def delete_vpc(page: Page) -> Response:
    vpc_id = page.request.params["vpc"]
    _, failure = await page.attempt("ec2", "DeleteVpc", {"VpcId": vpc_id})
    if failure is not None:
        return await vpc(page, status_of(failure), action_failure=failure)
    return await page.done(url("/ec2/vpcs"), f"VPC {vpc_id} deleted.")


async def create_subnet(page: Page) -> Response:
    vpc_id = page.request.params["vpc"]
    params = {"VpcId": vpc_id, "CidrBlock": page.form("cidr").strip()}
    if page.form("zone"):
        params["AvailabilityZone"] = page.form("zone")
    result, failure = await page.attempt("ec2", "CreateSubnet", params)
    if failure is not None:
        return await vpc(page, status_of(failure), errors=field_error(failure, "cidr"), values=page.request.form)
    subnet_id = (result or {}).get("Subnet", {}).get("SubnetId", "")
    return await page.done(url(f"/ec2/vpcs/{vpc_id}"), f"Subnet {subnet_id} created.")


async def delete_subnet(page: Page) -> Response:
    vpc_id = page.request.params["vpc"]
    _, failure = await page.attempt("ec2", "DeleteSubnet", {"SubnetId": page.form("subnet_id")})
    if failure is not None:
        return await vpc(page, status_of(failure), action_failure=failure)
    return await page.done(url(f"/ec2/vpcs/{vpc_id}"), f"Subnet {page.form('subnet_id')} deleted.")


# -- security groups -----------------------------------------------------------------------------------
async def groups(page: Page, status: int = 200, **extra: Any) -> Response:
    result, failure = await page.attempt("ec2", "DescribeSecurityGroups", {})
    found_vpcs, _ = await page.attempt("ec2", "DescribeVpcs", {})
    values: dict[str, Any] = {"groups": (result or {}).get("SecurityGroups") or [], "failure": failure,
                              "vpcs": (found_vpcs or {}).get("Vpcs") or [], "errors": {}, "values": {}}
    values.update(extra)
    return page.render("ec2_groups.html", status, **values)


async def create_group(page: Page) -> Response:
    params = {"GroupName": page.form("group_name").strip(), "Description": page.form("description").strip()}
    if page.form("vpc_id"):
        params["VpcId"] = page.form("vpc_id")
    result, failure = await page.attempt("ec2", "CreateSecurityGroup", params)
    if failure is not None:
        field = "description" if "escription" in failure.message else "group_name"
        return await groups(page, status_of(failure), errors=field_error(failure, field), values=page.request.form)
    group_id = (result or {}).get("GroupId", "")
    return await page.done(url(f"/ec2/security-groups/{group_id}"), f"Security group {group_id} created.")


async def group(page: Page, status: int = 200, **extra: Any) -> Response:
    group_id = page.request.params["group"]
    found, failure = await page.attempt("ec2", "DescribeSecurityGroups", {"GroupIds": [group_id]})
    if failure is not None:
        return page.render("error.html", status_of(failure), code=failure.code, message=failure.message)
    rules, rules_failure = await page.attempt("ec2", "DescribeSecurityGroupRules",
                                              {"Filters": _filter("group-id", group_id)})
    all_rules = (rules or {}).get("SecurityGroupRules") or []
    values: dict[str, Any] = {
        "group": ((found or {}).get("SecurityGroups") or [{}])[0], "rules_failure": rules_failure,
        "ingress": [r for r in all_rules if not r.get("IsEgress")],
        "egress": [r for r in all_rules if r.get("IsEgress")], "errors": {}, "values": {}, "action_failure": None,
    }
    values.update(extra)
    return page.render("ec2_group.html", status, **values)


def _permission(page: Page) -> dict[str, Any]:
    protocol = page.form("protocol") or "tcp"
    permission: dict[str, Any] = {"IpProtocol": protocol}
    if protocol != "-1":
        low, _, high = page.form("ports").strip().partition("-")
        if low.strip().lstrip("-").isdigit():
            permission["FromPort"] = int(low)
            permission["ToPort"] = int(high) if high.strip().lstrip("-").isdigit() else int(low)
    source = page.form("source").strip()
    if source.startswith("sg-"):
        permission["UserIdGroupPairs"] = [{"GroupId": source}]
    else:
        permission["IpRanges"] = [{"CidrIp": source, **({"Description": page.form("note")} if page.form("note")
                                                          else {})}]
    return permission


async def add_rule(page: Page) -> Response:
    group_id = page.request.params["group"]
    egress = page.form("direction") == "egress"
    operation = "AuthorizeSecurityGroupEgress" if egress else "AuthorizeSecurityGroupIngress"
    _, failure = await page.attempt("ec2", operation, {"GroupId": group_id, "IpPermissions": [_permission(page)]})
    if failure is not None:
        field = "ports" if "port" in failure.message.lower() else "source"
        return await group(page, status_of(failure), errors=field_error(failure, field), values=page.request.form)
    return await page.done(url(f"/ec2/security-groups/{group_id}"), "Rule added.")


async def revoke_rule(page: Page) -> Response:
    group_id = page.request.params["group"]
    operation = "RevokeSecurityGroupEgress" if page.form("egress") == "1" else "RevokeSecurityGroupIngress"
    _, failure = await page.attempt("ec2", operation, {"GroupId": group_id,
                                                       "SecurityGroupRuleIds": [page.form("rule_id")]})
    if failure is not None:
        return await group(page, status_of(failure), action_failure=failure)
    return await page.done(url(f"/ec2/security-groups/{group_id}"), f"Rule {page.form('rule_id')} removed.")


async def delete_group(page: Page) -> Response:
    group_id = page.request.params["group"]
    _, failure = await page.attempt("ec2", "DeleteSecurityGroup", {"GroupId": group_id})
    if failure is not None:
        return await group(page, status_of(failure), action_failure=failure)
    return await page.done(url("/ec2/security-groups"), f"Security group {group_id} deleted.")


ROUTES: list[Route] = [
    route("GET", "/ec2/vpcs", vpcs),
    route("POST", "/ec2/vpcs", create_vpc),
    route("GET", f"/ec2/vpcs/{VPC}", vpc),
    route("POST", f"/ec2/vpcs/{VPC}/delete", delete_vpc),
    route("POST", f"/ec2/vpcs/{VPC}/subnets", create_subnet),
    route("POST", f"/ec2/vpcs/{VPC}/subnets/delete", delete_subnet),
    route("GET", "/ec2/security-groups", groups),
    route("POST", "/ec2/security-groups", create_group),
    route("GET", f"/ec2/security-groups/{GROUP}", group),
    route("POST", f"/ec2/security-groups/{GROUP}/rules", add_rule),
    route("POST", f"/ec2/security-groups/{GROUP}/rules/revoke", revoke_rule),
    route("POST", f"/ec2/security-groups/{GROUP}/delete", delete_group),
]
