"""EC2 resources in the metadata store: one row per resource, its AWS-shaped document in ``doc``.

A document holds the members DescribeX returns (``VpcId``, ``CidrBlock``, ``Tags``...); members
whose name starts with ``_`` are minicloud's own (desired state, rules, private key material) and
never leave the API (``public``). Functions take a SQLAlchemy connection, as ``db.read``/``db.write``
hand it over.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa

from minicloud.services.ec2.tables import ec2_public_ips, ec2_resources


@dataclass(slots=True)
class Resource:
    id: str
    account_id: str
    region: str
    kind: str
    doc: dict[str, Any]
    vpc_id: str | None = None
    state: str | None = None
    name: str | None = None
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def tags(self) -> dict[str, str]:
        return {t["Key"]: t.get("Value", "") for t in self.doc.get("Tags") or []}


def public(doc: dict[str, Any]) -> dict[str, Any]:
    """The document without minicloud's private members."""
    return {k: v for k, v in doc.items() if not k.startswith("_")}


def _row(row: Any) -> Resource:
    return Resource(id=row.id, account_id=row.account_id, region=row.region, kind=row.kind,
                    doc=orjson.loads(row.doc), vpc_id=row.vpc_id, state=row.state, name=row.name,
                    created_at=row.created_at)


def insert(conn: sa.Connection, resource: Resource) -> None:
    now = datetime.now(UTC)
    conn.execute(ec2_resources.insert().values(
        id=resource.id, account_id=resource.account_id, region=resource.region, kind=resource.kind,
        vpc_id=resource.vpc_id, state=resource.state, name=resource.name, created_at=resource.created_at,
        updated_at=now, doc=orjson.dumps(resource.doc).decode()))


def save(conn: sa.Connection, resource: Resource) -> None:
    conn.execute(ec2_resources.update().where(ec2_resources.c.id == resource.id).values(
        vpc_id=resource.vpc_id, state=resource.state, name=resource.name, updated_at=datetime.now(UTC),
        doc=orjson.dumps(resource.doc).decode()))


def delete(conn: sa.Connection, resource_id: str) -> None:
    conn.execute(ec2_resources.delete().where(ec2_resources.c.id == resource_id))


def get(conn: sa.Connection, resource_id: str, *, kind: str | None = None, account_id: str | None = None,
        region: str | None = None) -> Resource | None:
    query = sa.select(ec2_resources).where(ec2_resources.c.id == resource_id)
    row = conn.execute(query).first()
    if row is None:
        return None
    if (kind and row.kind != kind) or (account_id and row.account_id != account_id) or \
            (region and row.region != region):
        return None
    return _row(row)


def select(conn: sa.Connection, account_id: str | None, region: str | None, kind: str, *,
           vpc_id: str | None = None, ids: Iterable[str] | None = None, name: str | None = None,
           states: Sequence[str] | None = None) -> list[Resource]:
    """Resources of one kind, oldest first (the order DescribeX pages in)."""
    query = sa.select(ec2_resources).where(ec2_resources.c.kind == kind)
    if account_id is not None:
        query = query.where(ec2_resources.c.account_id == account_id)
    if region is not None:
        query = query.where(ec2_resources.c.region == region)
    if vpc_id is not None:
        query = query.where(ec2_resources.c.vpc_id == vpc_id)
    if ids is not None:
        query = query.where(ec2_resources.c.id.in_(list(ids)))
    if name is not None:
        query = query.where(ec2_resources.c.name == name)
    if states is not None:
        query = query.where(ec2_resources.c.state.in_(list(states)))
    query = query.order_by(ec2_resources.c.created_at, ec2_resources.c.id)
    return [_row(row) for row in conn.execute(query)]


def in_vpc(conn: sa.Connection, vpc_id: str) -> list[Resource]:
    return [_row(r) for r in conn.execute(sa.select(ec2_resources).where(ec2_resources.c.vpc_id == vpc_id))]


def count(conn: sa.Connection, account_id: str, region: str, kind: str, states: Sequence[str]) -> int:
    query = sa.select(sa.func.count()).select_from(ec2_resources).where(
        ec2_resources.c.account_id == account_id, ec2_resources.c.region == region, ec2_resources.c.kind == kind,
        ec2_resources.c.state.in_(list(states)))
    return int(conn.execute(query).scalar_one())


# -- public addresses -----------------------------------------------------------------------------
def take_public_ip(conn: sa.Connection, pool: str, account_id: str, region: str, owner_id: str) -> str | None:
    """The lowest free address of ``pool`` (e.g. 127.100.0.0/16), now owned by ``owner_id``."""
    used = {row.address for row in conn.execute(sa.select(ec2_public_ips.c.address))}
    for address in ipaddress.ip_network(pool).hosts():
        text = str(address)
        if text not in used and not text.endswith(".0") and not text.endswith(".255"):
            conn.execute(ec2_public_ips.insert().values(address=text, account_id=account_id, region=region,
                                                        owner_id=owner_id))
            return text
    return None


def release_public_ip(conn: sa.Connection, address: str) -> None:
    conn.execute(ec2_public_ips.delete().where(ec2_public_ips.c.address == address))


def public_ip_owner(conn: sa.Connection, address: str) -> str | None:
    row = conn.execute(sa.select(ec2_public_ips.c.owner_id).where(ec2_public_ips.c.address == address)).first()
    return None if row is None else str(row.owner_id)


FOREIGN = "foreign"  # an address another program on the host maps: skipped by take_public_ip


def mark_public_ip_foreign(conn: sa.Connection, address: str) -> None:
    conn.execute(ec2_public_ips.update().where(ec2_public_ips.c.address == address).values(owner_id=FOREIGN))


def forget_foreign_public_ips(conn: sa.Connection) -> None:
    conn.execute(ec2_public_ips.delete().where(ec2_public_ips.c.owner_id == FOREIGN))
