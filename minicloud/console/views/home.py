"""The home page: every service's health (as /_minicloud/health reports it) and resource counts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from minicloud.console.http import Response
from minicloud.console.page import Page, route
from minicloud.console.views.common import next_marker


@dataclass(frozen=True, slots=True)
class Count:
    label: str
    service: str
    value: int | None
    error: str | None = None
    link: str | None = None
    more: bool = False  # the first page of the listing was full: there are at least ``value``


# (label, service, operation, params, result member, page)
_COUNTS: list[tuple[str, str, str, dict[str, Any], str, str | None]] = [
    ("S3 buckets", "s3", "ListBuckets", {}, "Buckets", "/s3/buckets"),
    ("IAM users", "iam", "ListUsers", {}, "Users", "/iam/users"),
    ("IAM groups", "iam", "ListGroups", {}, "Groups", "/iam/groups"),
    ("IAM roles", "iam", "ListRoles", {}, "Roles", "/iam/roles"),
    ("Customer managed policies", "iam", "ListPolicies", {"Scope": "Local"}, "Policies", "/iam/policies"),
    ("ECR repositories", "ecr", "DescribeRepositories", {}, "repositories", "/ecr/repositories"),
    ("EC2 instances", "ec2", "DescribeInstances", {}, "Reservations", "/ec2/instances"),
    ("VPCs", "ec2", "DescribeVpcs", {}, "Vpcs", "/ec2/vpcs"),
    ("Security groups", "ec2", "DescribeSecurityGroups", {}, "SecurityGroups", "/ec2/security-groups"),
    ("Key pairs", "ec2", "DescribeKeyPairs", {}, "KeyPairs", "/ec2/key-pairs"),
    ("Elastic IPs", "ec2", "DescribeAddresses", {}, "Addresses", "/ec2/addresses"),
    ("Lambda functions", "lambda", "ListFunctions", {}, "Functions", "/lambda/functions"),
]


def _size(result: dict[str, Any], member: str) -> int:
    items = result.get(member) or []
    if member == "Reservations":  # instances, not reservations; terminated ones are history
        return sum(1 for r in items for i in r.get("Instances") or []
                   if (i.get("State") or {}).get("Name") != "terminated")
    return len(items)


async def _counts(page: Page) -> list[Count]:
    counts = []
    for label, service, operation, params, member, link in _COUNTS:
        if not page.calls.has(service):
            continue
        result, failure = await page.attempt(service, operation, params)
        if failure is not None:
            counts.append(Count(label, service, None, failure.message or failure.code, link))
        else:
            counts.append(Count(label, service, _size(result or {}, member), None, link,
                                next_marker(result) is not None or bool((result or {}).get("NextToken"))))
    return counts


async def home(page: Page) -> Response:
    health: dict[str, Any] = orjson.loads(page.console.health())
    return page.render("home.html", health=health, counts=await _counts(page))


ROUTES = [route("GET", "/", home)]
