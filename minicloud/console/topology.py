"""The drawing of a VPC: the VPC holds one column per availability zone, each column its subnets,
each subnet its instances. Boxes are computed here; the template draws them as SVG."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PAD = 16
HEADER = 34
COLUMN_WIDTH = 300
SUBNET_HEADER = 40
INSTANCE_HEIGHT = 34
INSTANCE_GAP = 6


@dataclass(slots=True)
class Box:
    x: int
    y: int
    width: int
    height: int
    title: str
    subtitle: str = ""
    link: str | None = None
    state: str = ""
    children: list[Box] = field(default_factory=list)


@dataclass(slots=True)
class Drawing:
    width: int
    height: int
    vpc: Box
    zones: list[Box]


def _instance_box(instance: dict[str, Any], x: int, y: int, width: int) -> Box:
    state = (instance.get("State") or {}).get("Name", "")
    address = instance.get("PrivateIpAddress") or ""
    public = instance.get("PublicIpAddress")
    subtitle = f"{address} · {public}" if public else address
    return Box(x, y, width, INSTANCE_HEIGHT, str(instance.get("InstanceId", "")), subtitle,
               f"/ec2/instances/{instance.get('InstanceId', '')}", state)


def _subnet_box(subnet: dict[str, Any], instances: list[dict[str, Any]], x: int, y: int, width: int) -> Box:
    mine = [i for i in instances if i.get("SubnetId") == subnet.get("SubnetId")]
    height = SUBNET_HEADER + len(mine) * (INSTANCE_HEIGHT + INSTANCE_GAP) + PAD // 2
    box = Box(x, y, width, height, str(subnet.get("SubnetId", "")), str(subnet.get("CidrBlock", "")))
    top = y + SUBNET_HEADER
    for instance in mine:
        box.children.append(_instance_box(instance, x + PAD // 2, top, width - PAD))
        top += INSTANCE_HEIGHT + INSTANCE_GAP
    return box


def draw_vpc(vpc: dict[str, Any], zones: list[str], subnets: list[dict[str, Any]],
             instances: list[dict[str, Any]]) -> Drawing:
    """Lay out ``vpc``: a column per zone (the region's zones, plus any a subnet names)."""
    names = list(zones) + sorted({str(s.get("AvailabilityZone")) for s in subnets} - set(zones))
    columns: list[Box] = []
    for index, zone in enumerate(names):
        x = PAD + index * (COLUMN_WIDTH + PAD)
        column = Box(x + PAD // 2, HEADER + PAD, COLUMN_WIDTH, 0, zone)
        top = column.y + HEADER
        for subnet in sorted((s for s in subnets if s.get("AvailabilityZone") == zone),
                             key=lambda s: str(s.get("CidrBlock"))):
            box = _subnet_box(subnet, instances, column.x + PAD // 2, top, COLUMN_WIDTH - PAD)
            column.children.append(box)
            top += box.height + PAD // 2
        column.height = max(top - column.y + PAD // 2, 90)
        columns.append(column)
    tallest = max((c.height for c in columns), default=90)
    width = PAD * 2 + max(1, len(columns)) * (COLUMN_WIDTH + PAD)
    height = HEADER + PAD * 2 + tallest + PAD
    title = str(vpc.get("VpcId", ""))
    outer = Box(PAD // 2, PAD // 2, width - PAD, height - PAD, title, str(vpc.get("CidrBlock", "")))
    return Drawing(width, height, outer, columns)
